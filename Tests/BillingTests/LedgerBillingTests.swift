import Foundation
import Testing

@testable import Billing

@Suite("Ledger billing")
struct LedgerBillingTests {
    /// 1,000 tokens a month bundled, 2 micro-units a token beyond.
    private let terms = BillingTerms(monthlyQuotaTokens: 1_000, overagePerMillion: 2_000_000)

    private func billedMicros(_ ledger: Ledger, _ requestID: String) async throws -> Int64? {
        try #require(try await ledger.usageEvent(requestID: requestID)).billedMicros
    }

    @Test("only the tokens beyond the month's quota are billed, cached tokens counted once")
    func overage() async throws {
        try await withLedger { ledger, _ async throws in
            try await ledger.record([
                // 600 tokens: the 400 cached are part of the 500 prompt tokens.
                billed(usageEvent("r1", at: date("2026-03-01T00:00:00Z"), prompt: 500, cached: 400, completion: 100), terms),
                // 600 more straddle the quota: 200 of them are beyond it.
                billed(usageEvent("r2", at: date("2026-03-10T00:00:00Z"), prompt: 500, completion: 100), terms),
            ])
            // All 300 beyond, in a later batch.
            try await ledger.record([billed(usageEvent("r3", at: date("2026-03-31T23:59:59.999Z"), prompt: 200, completion: 100), terms)])
            // A new month bundles its own 1,000.
            try await ledger.record([billed(usageEvent("r4", at: date("2026-04-01T00:00:00Z"), prompt: 900, completion: 100), terms)])
            #expect(try await billedMicros(ledger, "r1") == 0)
            #expect(try await billedMicros(ledger, "r2") == 400)
            #expect(try await billedMicros(ledger, "r3") == 600)
            #expect(try await billedMicros(ledger, "r4") == 0)
            let march = BudgetPeriod.month.interval(containing: date("2026-03-05T00:00:00Z"))
            #expect(try await ledger.budgetUsage(.quota("ten_a"), period: march) == BudgetUsage(tokens: 1_500, micros: 3_000))
        }
    }

    @Test("terms without an overage price bill 0; no terms leave the amount NULL")
    func unbilled() async throws {
        try await withLedger { ledger, _ async throws in
            try await ledger.record([
                billed(usageEvent("blocked", prompt: 5_000, completion: 0), BillingTerms(monthlyQuotaTokens: 1_000, overagePerMillion: nil)),
                usageEvent("outside", tenant: "ten_b", prompt: 5_000, completion: 0),
                billed(usageEvent("no-quota", tenant: "ten_c", prompt: 10, completion: 0), BillingTerms(monthlyQuotaTokens: nil, overagePerMillion: 1_500_000)),
            ])
            #expect(try await billedMicros(ledger, "blocked") == 0)
            #expect(try await billedMicros(ledger, "outside") == nil)
            #expect(try await billedMicros(ledger, "no-quota") == 15)
            #expect(try await ledger.integer("SELECT count(*) FROM usage_events WHERE billed_micros IS NULL") == 1)
        }
    }

    @Test("an event read back carries its billed amount but not its terms")
    func readBack() async throws {
        try await withLedger { ledger, _ async throws in
            let event = billed(usageEvent("r1", prompt: 1_500, completion: 0), terms)
            try await ledger.record([event])
            var expected = event
            expected.terms = nil
            expected.billedMicros = 1_000
            #expect(try await ledger.usageEvent(requestID: "r1") == expected)
        }
    }

    @Test("a request id recorded again changes no amount and no total")
    func duplicate() async throws {
        try await withLedger { ledger, _ async throws in
            try await ledger.record([billed(usageEvent("r1", prompt: 900, completion: 0, cost: 70), terms)])
            let month = BudgetPeriod.month.interval(containing: date("2026-03-01T10:00:00Z"))
            // The same request again, bigger and dearer, alone and beside a new one.
            let again = billed(usageEvent("r1", prompt: 9_000, completion: 0, cost: 700), BillingTerms(monthlyQuotaTokens: 0, overagePerMillion: 9_000_000))
            try await ledger.record([again])
            try await ledger.record([again, billed(usageEvent("r2", prompt: 200, completion: 0, cost: 30), terms), again])
            try ledger.recordBlocking([again])
            #expect(try await billedMicros(ledger, "r1") == 0)
            #expect(try await billedMicros(ledger, "r2") == 200)
            #expect(try await ledger.budgetUsage(.quota("ten_a"), period: month) == BudgetUsage(tokens: 1_100, micros: 100))
            #expect(try await ledger.rows("SELECT * FROM budget_usage") == ["quota|ten_a|\(month.start.ledgerMilliseconds)|1100|100"])
        }
    }

    @Test("events without terms still count towards the month's quota once it is kept")
    func untermedCount() async throws {
        try await withLedger { ledger, _ async throws in
            try await ledger.record([usageEvent("before", prompt: 400, completion: 0)])
            // The first event with terms starts the total from the month's events so far.
            try await ledger.record([billed(usageEvent("first", prompt: 400, completion: 0), terms)])
            try await ledger.record([usageEvent("between", prompt: 400, completion: 0)])
            try await ledger.record([billed(usageEvent("last", prompt: 400, completion: 0), terms)])
            #expect(try await billedMicros(ledger, "first") == 0)
            #expect(try await billedMicros(ledger, "last") == 800)
            let month = BudgetPeriod.month.interval(containing: date("2026-03-01T10:00:00Z"))
            #expect(try await ledger.integer("SELECT used_tokens FROM budget_usage WHERE scope_kind = 'quota'") == 1_600)
            #expect(try await ledger.budgetUsage(.quota("ten_a"), period: month).tokens == 1_600)
        }
    }

    @Test("the summary's billed amount and margin add up to the events exactly")
    func summary() async throws {
        try await withLedger { ledger, _ async throws in
            try await ledger.record([
                billed(usageEvent("a1", tenant: "ten_a", model: "chat-large", prompt: 800, completion: 0, cost: 1_000), terms),
                billed(usageEvent("a2", tenant: "ten_a", model: "chat-small", prompt: 700, completion: 0, cost: 300), terms),
                billed(usageEvent("a3", tenant: "ten_a", model: "chat-large", prompt: 1_234, completion: 0, cost: 2_000), terms),
                usageEvent("b1", tenant: "ten_b", model: "chat-large", prompt: 5_000, completion: 0, cost: 4_000),
            ])
            // a1 0, a2 500 beyond (1,000), a3 all beyond (2,468).
            let byTenant = try await ledger.usageSummary(UsageQuery(groupBy: .tenant))
            #expect(byTenant.map(\.group) == ["ten_a", "ten_b"])
            #expect(byTenant.map(\.billedMicros) == [3_468, 0])
            #expect(byTenant.map(\.costMicros) == [3_300, 4_000])
            #expect(byTenant.map(\.marginMicros) == [168, -4_000])
            let byModel = try await ledger.usageSummary(UsageQuery(tenantID: "ten_a", groupBy: .model))
            #expect(byModel.map(\.billedMicros) == [2_468, 1_000])
            #expect(byModel.map(\.marginMicros) == [-532, 700])
            let total = try #require(try await ledger.integer("SELECT sum(billed_micros) FROM usage_events"))
            #expect(byTenant.map(\.billedMicros).reduce(0, +) == total)
        }
    }
}
