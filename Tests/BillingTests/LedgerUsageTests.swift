import Foundation
import Testing

@testable import Billing

@Suite("Ledger usage")
struct LedgerUsageTests {
    // MARK: Recording

    @Test("stores every field of a usage event")
    func roundTrip() async throws {
        try await withLedger { ledger, _ async throws in
            let full = UsageEvent(
                requestID: "req-full", tenantID: "ten_a", tenantKeyID: "key_a", model: "chat-large",
                deployment: "azure-gpt-4o", provider: "azure-openai", promptTokens: 1_234, cachedTokens: 1_000,
                completionTokens: 567, reasoningTokens: 89, tokensEstimated: true, costMicros: 9_876_543_210,
                currency: "EUR", status: 499, errorType: "client_aborted", startedAt: date("2026-03-01T10:00:00.123Z"),
                timeToFirstTokenMilliseconds: 321, durationMilliseconds: 4_567, streamed: true, clientAborted: true
            )
            let sparse = UsageEvent(
                requestID: "req-sparse", tenantID: "ten_b", tenantKeyID: nil, model: "chat-small", deployment: nil,
                provider: nil, status: 502, errorType: "server_error", startedAt: date("2026-03-01T10:00:01Z"),
                durationMilliseconds: 12, streamed: false
            )
            try await ledger.record([full, sparse])
            #expect(try await ledger.usageEvent(requestID: "req-full") == full)
            #expect(try await ledger.usageEvent(requestID: "req-sparse") == sparse)
            #expect(try await ledger.usageEvent(requestID: "req-missing") == nil)
        }
    }

    @Test("a request id recorded twice is stored once, as first recorded")
    func idempotent() async throws {
        try await withLedger { ledger, _ async throws in
            let first = usageEvent("req-1", prompt: 10, cost: 100)
            try await ledger.record([first])
            try await ledger.record([usageEvent("req-1", prompt: 99, cost: 999), usageEvent("req-2")])
            try await ledger.record([first, first])
            #expect(try await ledger.usageEvent(requestID: "req-1") == first)

            let rows = try await ledger.usageSummary(UsageQuery(groupBy: .tenant))
            #expect(rows.map(\.requests) == [2])
            #expect(rows.first?.costMicros == 1_100)
        }
    }

    @Test("recordBlocking stores the same way")
    func blocking() async throws {
        try await withLedger { ledger, _ async throws in
            try ledger.recordBlocking([usageEvent("req-1"), usageEvent("req-1")])
            try ledger.recordBlocking([])
            #expect(try await ledger.usageEvent(requestID: "req-1") == usageEvent("req-1"))
            #expect(try await ledger.usageSummary(UsageQuery()).map(\.requests) == [1])
        }
    }

    // MARK: Summaries

    /// Five events over two days, two tenants, two models, two currencies.
    private func recordSample(_ ledger: Ledger) async throws {
        try await ledger.record([
            usageEvent("r1", tenant: "ten_a", key: "key_a1", model: "chat-large", at: date("2026-03-01T00:00:00Z"), prompt: 100, cached: 20, completion: 10, cost: 1_000),
            usageEvent("r2", tenant: "ten_a", key: "key_a2", model: "chat-small", at: date("2026-03-01T23:59:59.999Z"), prompt: 200, completion: 20, estimated: true, cost: 2_000),
            usageEvent("r3", tenant: "ten_a", key: nil, model: "chat-large", at: date("2026-03-02T00:00:00Z"), prompt: 300, cached: 30, completion: 30, cost: 3_000),
            usageEvent("r4", tenant: "ten_b", key: "key_b1", model: "chat-large", at: date("2026-03-02T12:00:00Z"), prompt: 400, completion: 40, cost: 4_000),
            usageEvent("r5", tenant: "ten_b", key: "key_b1", model: "chat-large", at: date("2026-03-03T08:00:00Z"), prompt: 500, completion: 50, estimated: true, cost: 5_000, currency: "EUR"),
        ])
    }

    private struct Row: Equatable, CustomStringConvertible {
        var group: String, currency: String, requests: Int, prompt: Int, cached: Int, completion: Int, cost: Int64, estimated: Int

        init(_ group: String, _ currency: String, _ requests: Int, _ prompt: Int, _ cached: Int, _ completion: Int, _ cost: Int64, _ estimated: Int) {
            (self.group, self.currency, self.requests, self.prompt, self.cached, self.completion, self.cost, self.estimated) =
                (group, currency, requests, prompt, cached, completion, cost, estimated)
        }

        init(_ row: UsageSummaryRow) {
            self.init(row.group, row.currency, row.requests, row.promptTokens, row.cachedTokens, row.completionTokens, row.costMicros, row.estimatedRequests)
        }

        var description: String { "\(group)/\(currency): \(requests) req \(prompt)+\(completion) tok \(cost)µ" }
    }

    private func summary(_ ledger: Ledger, _ query: UsageQuery) async throws -> [Row] {
        try await ledger.usageSummary(query).map(Row.init)
    }

    @Test("sums by model, keeping currencies apart")
    func byModel() async throws {
        try await withLedger { ledger, _ async throws in
            try await recordSample(ledger)
            #expect(try await summary(ledger, UsageQuery(groupBy: .model)) == [
                Row("chat-large", "EUR", 1, 500, 0, 50, 5_000, 1),
                Row("chat-large", "USD", 3, 800, 50, 80, 8_000, 0),
                Row("chat-small", "USD", 1, 200, 0, 20, 2_000, 1),
            ])
        }
    }

    @Test("sums by UTC day")
    func byDay() async throws {
        try await withLedger { ledger, _ async throws in
            try await recordSample(ledger)
            #expect(try await summary(ledger, UsageQuery(groupBy: .day)) == [
                Row("2026-03-01", "USD", 2, 300, 20, 30, 3_000, 1),
                Row("2026-03-02", "USD", 2, 700, 30, 70, 7_000, 0),
                Row("2026-03-03", "EUR", 1, 500, 0, 50, 5_000, 1),
            ])
        }
    }

    @Test("sums by tenant key, with keyless requests under the empty key")
    func byKey() async throws {
        try await withLedger { ledger, _ async throws in
            try await recordSample(ledger)
            #expect(try await summary(ledger, UsageQuery(groupBy: .key)) == [
                Row("", "USD", 1, 300, 30, 30, 3_000, 0),
                Row("key_a1", "USD", 1, 100, 20, 10, 1_000, 0),
                Row("key_a2", "USD", 1, 200, 0, 20, 2_000, 1),
                Row("key_b1", "EUR", 1, 500, 0, 50, 5_000, 1),
                Row("key_b1", "USD", 1, 400, 0, 40, 4_000, 0),
            ])
        }
    }

    @Test("sums by tenant, and filters to one tenant")
    func byTenant() async throws {
        try await withLedger { ledger, _ async throws in
            try await recordSample(ledger)
            #expect(try await summary(ledger, UsageQuery(groupBy: .tenant)) == [
                Row("ten_a", "USD", 3, 600, 50, 60, 6_000, 1),
                Row("ten_b", "EUR", 1, 500, 0, 50, 5_000, 1),
                Row("ten_b", "USD", 1, 400, 0, 40, 4_000, 0),
            ])
            #expect(try await summary(ledger, UsageQuery(tenantID: "ten_a", groupBy: .model)) == [
                Row("chat-large", "USD", 2, 400, 50, 40, 4_000, 0),
                Row("chat-small", "USD", 1, 200, 0, 20, 2_000, 1),
            ])
            #expect(try await summary(ledger, UsageQuery(tenantID: "ten_none")) == [])
        }
    }

    @Test("from is inclusive and to is exclusive, to the millisecond")
    func timeRange() async throws {
        try await withLedger { ledger, _ async throws in
            try await recordSample(ledger)
            let march2 = date("2026-03-02T00:00:00Z")
            // Everything before 2 March: r1 and r2 (the latter a millisecond before midnight).
            #expect(try await summary(ledger, UsageQuery(to: march2, groupBy: .tenant)) == [
                Row("ten_a", "USD", 2, 300, 20, 30, 3_000, 1),
            ])
            // From 2 March on: r3 (exactly at midnight), r4, r5.
            #expect(try await summary(ledger, UsageQuery(from: march2, groupBy: .day)).map(\.group) == ["2026-03-02", "2026-03-03"])
            // One day, [2 March, 3 March).
            #expect(try await summary(ledger, UsageQuery(from: march2, to: date("2026-03-03T00:00:00Z"), groupBy: .model)) == [
                Row("chat-large", "USD", 2, 700, 30, 70, 7_000, 0),
            ])
            // A window of one millisecond holds the event at its start only.
            let oneMillisecond = UsageQuery(from: march2, to: march2.addingTimeInterval(0.001), groupBy: .key)
            #expect(try await summary(ledger, oneMillisecond).map(\.group) == [""])
            #expect(try await summary(ledger, UsageQuery(from: march2, to: march2)) == [])
            #expect(try await summary(ledger, UsageQuery(tenantID: "ten_b", from: march2, to: date("2026-03-03T00:00:00Z"))) == [
                Row("chat-large", "USD", 1, 400, 0, 40, 4_000, 0),
            ])
        }
    }

    @Test("an empty ledger sums to no rows")
    func empty() async throws {
        try await withLedger { ledger, _ async throws in
            for groupBy in UsageQuery.GroupBy.allCases {
                #expect(try await ledger.usageSummary(UsageQuery(groupBy: groupBy)).isEmpty)
            }
        }
    }
}
