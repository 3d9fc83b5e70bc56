import Foundation
import Testing

@testable import Billing

@Suite("Ledger budgets")
struct LedgerBudgetsTests {
    private let march = BudgetPeriod.month.interval(containing: date("2026-03-15T00:00:00Z"))
    private let start = date("2026-03-01T00:00:00Z")

    private func monthly(_ tenant: String, tokens: Int? = 1_000, micros: Int64? = nil, thresholds: [Double] = [0.5, 0.8]) -> Budget {
        Budget(scope: .tenant(tenant), tenantID: tenant, period: .month, limitTokens: tokens, limitMicros: micros, softThresholds: thresholds)
    }

    /// `count` events of 30 tokens and 7 micro-units each, from `first` on, a minute apart.
    private func small(_ count: Int, tenant: String, key: String?, from first: Int = 0) -> [UsageEvent] {
        (first..<first + count).map { index in
            usageEvent("req-\(tenant)-\(index)", tenant: tenant, key: key, at: start.addingTimeInterval(Double(index) * 60), prompt: 20, completion: 10, cost: 7)
        }
    }

    private func crossings(_ ledger: Ledger) async throws -> [String] {
        try await ledger.rows("SELECT scope_kind, event, threshold FROM budget_crossings ORDER BY scope_kind, event, threshold")
    }

    // MARK: Alerts

    @Test("each threshold and the limit alert once, however the events are batched, to subscribed webhooks only")
    func thresholdsOnce() async throws {
        try await withLedger { ledger, _ async throws in
            let (tenant, key) = try await makeTenantAndKey(ledger)
            let (other, otherKey) = try await makeTenantAndKey(ledger, name: "Globex")
            _ = try await ledger.setBudget(monthly(tenant), now: start)
            _ = try await ledger.setBudget(monthly(other), now: start)
            let thresholds = try await ledger.createWebhook(tenantID: tenant, url: "https://a.example/hook", events: ["budget.threshold_reached"], sealedSecret: [1], id: "whk_a")
            let limits = try await ledger.createWebhook(tenantID: tenant, url: "https://b.example/hook", events: ["quota.exhausted", "budget.exceeded"], sealedSecret: [2], id: "whk_b")
            let elsewhere = try await ledger.createWebhook(tenantID: other, url: "https://c.example/hook", events: BudgetAlert.allCases.map(\.rawValue), sealedSecret: [3], id: "whk_c")
            #expect(limits.events == ["budget.exceeded", "quota.exhausted"])

            let now = date("2026-03-20T12:00:00Z")
            let events = small(50, tenant: tenant, key: key)
            for event in events[0..<10] { try await ledger.record([event], now: now) }
            try await ledger.record(Array(events[10..<30]), now: now)
            for event in events[30..<40] { try await ledger.record([event, event], now: now) }
            try await ledger.record(Array(events[40...]), now: now)
            // The other tenant stays under its budget's first threshold.
            try await ledger.record(small(16, tenant: other, key: otherKey), now: now)

            #expect(try await crossings(ledger) == [
                "tenant|budget.exceeded|0.0", "tenant|budget.threshold_reached|0.5", "tenant|budget.threshold_reached|0.8",
            ])
            #expect(try await ledger.budgetUsage(.tenant(tenant), period: march) == BudgetUsage(tokens: 1_500, micros: 350))
            let sent = try await ledger.deliveries(webhookID: thresholds.id).reversed()
            #expect(sent.map(\.event) == ["budget.threshold_reached", "budget.threshold_reached"])
            #expect(try await ledger.deliveries(webhookID: limits.id).map(\.event) == ["budget.exceeded"])
            #expect(try await ledger.deliveries(webhookID: elsewhere.id).isEmpty)

            // 17 events of 30 tokens pass 500; the payload is the delivery's exact body.
            let first = try #require(sent.first)
            #expect(first.payload == """
                {"created":\(Int(now.timeIntervalSince1970)),"data":{"key_id":null,"limit_micros":null,"limit_tokens":1000,\
                "period":"month","period_start":"2026-03-01T00:00:00Z","resets_at":"2026-04-01T00:00:00Z","scope":"tenant",\
                "threshold":0.5,"used_micros":119,"used_tokens":510},"id":"\(first.id)","tenant_id":"\(tenant)",\
                "type":"budget.threshold_reached"}
                """)
            #expect(first.id.hasPrefix("dlv_"))
            #expect(first.createdAt == now && first.nextAttemptAt == now && first.attempts == 0 && first.isPending)
            #expect(first.url == "https://a.example/hook" && first.sealedSecret == [1])
            #expect(sent.last?.payload.contains(#""threshold":0.8,"used_micros":189,"used_tokens":810}"#) == true)
            let exceeded = try #require(try await ledger.deliveries(webhookID: limits.id).first)
            #expect(exceeded.payload.contains(#""scope":"tenant","threshold":null,"used_micros":238,"used_tokens":1020}"#))
        }
    }

    @Test("a key's budget counts that key alone, and a cost limit alerts like a token limit")
    func keyBudget() async throws {
        try await withLedger { ledger, _ async throws in
            let (tenant, key) = try await makeTenantAndKey(ledger)
            let sibling = try await ledger.directory.createKey(tenantID: tenant, name: "ci", prefix: "sk-ci", secretHash: [9, 9], now: start)
            let budget = Budget(scope: .key(key), tenantID: tenant, period: .week, limitMicros: 70, softThresholds: [0.9])
            _ = try await ledger.setBudget(budget, now: start)
            let hook = try await ledger.createWebhook(tenantID: tenant, url: "https://a.example", events: ["budget.threshold_reached", "budget.exceeded"], sealedSecret: [], id: "whk_k")
            let now = date("2026-03-01T12:00:00Z")
            // Interleaved with the sibling's, which must not count: 9 of 7 pass 63, 10 reach 70.
            for index in 0..<12 {
                try await ledger.record([
                    usageEvent("own-\(index)", tenant: tenant, key: key, at: now, prompt: 1, completion: 0, cost: 7),
                    usageEvent("sib-\(index)", tenant: tenant, key: sibling.id, at: now, prompt: 1, completion: 0, cost: 7),
                ], now: now)
            }
            #expect(try await crossings(ledger) == ["key|budget.exceeded|0.0", "key|budget.threshold_reached|0.9"])
            let week = BudgetPeriod.week.interval(containing: now)
            #expect(try await ledger.budgetUsage(.key(key), period: week) == BudgetUsage(tokens: 12, micros: 84))
            #expect(try await ledger.budgetUsage(.key(sibling.id), period: week) == BudgetUsage(tokens: 12, micros: 84))
            #expect(try await ledger.integer("SELECT count(*) FROM budget_usage WHERE scope_kind = 'key'") == 1)
            let delivered = try await ledger.deliveries(webhookID: hook.id)
            #expect(delivered.map(\.event) == ["budget.exceeded", "budget.threshold_reached"])
            #expect(delivered.last?.payload.contains("""
                "data":{"key_id":"\(key)","limit_micros":70,"limit_tokens":null,"period":"week",\
                "period_start":"2026-02-23T00:00:00Z","resets_at":"2026-03-02T00:00:00Z","scope":"key",\
                "threshold":0.9,"used_micros":63,"used_tokens":9}
                """) == true)
        }
    }

    @Test("exhausting the tier quota alerts once a month")
    func quotaExhausted() async throws {
        try await withLedger { ledger, _ async throws in
            let (tenant, key) = try await makeTenantAndKey(ledger)
            let hook = try await ledger.createWebhook(tenantID: tenant, url: "https://a.example", events: ["quota.exhausted"], sealedSecret: [], id: "whk_q")
            let terms = BillingTerms(monthlyQuotaTokens: 100, overagePerMillion: nil)
            let now = date("2026-04-02T00:00:00Z")
            try await ledger.record(small(10, tenant: tenant, key: key).map { billed($0, terms) }, now: now)
            try await ledger.record([billed(usageEvent("april", tenant: tenant, key: key, at: date("2026-04-01T00:00:00Z"), prompt: 100, completion: 0, cost: 1), terms)], now: now)
            #expect(try await crossings(ledger) == ["quota|quota.exhausted|0.0", "quota|quota.exhausted|0.0"])
            let delivered = try await ledger.deliveries(webhookID: hook.id)
            #expect(delivered.count == 2)
            #expect(delivered.last?.payload == """
                {"created":\(Int(now.timeIntervalSince1970)),"data":{"key_id":null,"limit_micros":null,"limit_tokens":100,\
                "period":"month","period_start":"2026-03-01T00:00:00Z","resets_at":"2026-04-01T00:00:00Z","scope":"quota",\
                "threshold":null,"used_micros":28,"used_tokens":120},"id":"\(delivered.last?.id ?? "")","tenant_id":"\(tenant)",\
                "type":"quota.exhausted"}
                """)
        }
    }

    @Test("an alert and its deliveries are written together or not at all")
    func outbox() async throws {
        try await withLedger { ledger, _ async throws in
            let (tenant, key) = try await makeTenantAndKey(ledger)
            _ = try await ledger.setBudget(monthly(tenant, tokens: 10, thresholds: []), now: start)
            let hook = try await ledger.createWebhook(tenantID: tenant, url: "https://a.example", events: ["budget.exceeded"], sealedSecret: [], id: "whk_o")
            try await ledger.pool.write { db in
                try db.execute(sql: """
                    CREATE TRIGGER outbox_down BEFORE INSERT ON webhook_deliveries
                    BEGIN SELECT RAISE(ABORT, 'outbox down'); END
                    """)
            }
            let event = usageEvent("r1", tenant: tenant, key: key, at: start, prompt: 20, completion: 0)
            await #expect(throws: (any Error).self) { try await ledger.record([event]) }
            #expect(try await ledger.usageEvent(requestID: "r1") == nil)
            #expect(try await crossings(ledger) == [])
            #expect(try await ledger.budgetUsage(.tenant(tenant), period: march) == .zero)

            try await ledger.pool.write { db in try db.execute(sql: "DROP TRIGGER outbox_down") }
            try await ledger.record([event])
            #expect(try await crossings(ledger) == ["tenant|budget.exceeded|0.0"])
            #expect(try await ledger.deliveries(webhookID: hook.id).count == 1)
            #expect(try await ledger.budgetUsage(.tenant(tenant), period: march) == BudgetUsage(tokens: 20, micros: 1_000))
        }
    }

    // MARK: Running totals

    @Test("running totals equal the sums of the events, period by period")
    func runningTotals() async throws {
        try await withLedger { ledger, _ async throws in
            let (tenant, key) = try await makeTenantAndKey(ledger)
            let other = try await ledger.directory.createKey(tenantID: tenant, name: "other", prefix: "sk-o", secretHash: [7], now: start)
            _ = try await ledger.setBudget(monthly(tenant, tokens: 1_000_000_000), now: start)
            _ = try await ledger.setBudget(Budget(scope: .key(key), tenantID: tenant, period: .week, limitTokens: 1_000_000_000), now: start)
            // 120 events over six weeks with varied sizes, two keys and no key, in batches of 1 to 7.
            let events = (0..<120).map { index in
                let keyID = [key, other.id, nil][index % 3]
                return usageEvent(
                    "r\(index)", tenant: tenant, key: keyID, at: start.addingTimeInterval(Double(index) * 8 * 3600 + 17),
                    prompt: (index * 37) % 500, cached: (index * 11) % 50, completion: (index * 13) % 200, cost: Int64((index * 7919) % 10_000)
                )
            }
            var remaining = events[...]
            var size = 1
            while !remaining.isEmpty {
                try await ledger.record(Array(remaining.prefix(size)))
                remaining = remaining.dropFirst(size)
                size = size % 7 + 1
            }
            func sum(_ predicate: (UsageEvent) -> Bool) -> BudgetUsage {
                events.filter(predicate).reduce(.zero) { total, event in
                    BudgetUsage(tokens: total.tokens + event.promptTokens + event.completionTokens, micros: total.micros + event.costMicros)
                }
            }
            let months = [march, BudgetPeriod.month.interval(containing: date("2026-04-05T00:00:00Z"))]
            var weeks: [DateInterval] = []
            var week = BudgetPeriod.week.interval(containing: start)
            while week.start < date("2026-04-12T00:00:00Z") {
                weeks.append(week)
                week = BudgetPeriod.week.interval(containing: week.end)
            }
            for month in months {
                let expected = sum { month.contains($0.startedAt) && $0.startedAt < month.end }
                #expect(expected.tokens > 0)
                #expect(try await ledger.budgetUsage(.tenant(tenant), period: month) == expected)
                let row = try await ledger.rows(
                    "SELECT used_tokens, used_micros FROM budget_usage WHERE scope_kind = 'tenant' AND period_start = ?",
                    [month.start.ledgerMilliseconds]
                )
                #expect(row == ["\(expected.tokens)|\(expected.micros)"])
            }
            for week in weeks {
                let expected = sum { $0.tenantKeyID == key && week.start <= $0.startedAt && $0.startedAt < week.end }
                #expect(try await ledger.budgetUsage(.key(key), period: week) == expected)
                // Without a budget the other key's usage is summed from its events.
                let otherExpected = sum { $0.tenantKeyID == other.id && week.start <= $0.startedAt && $0.startedAt < week.end }
                #expect(try await ledger.budgetUsage(.key(other.id), period: week) == otherExpected)
            }
            #expect(try await ledger.integer("SELECT count(*) FROM budget_usage WHERE scope_kind = 'key'") == Int64(weeks.count))
            #expect(try await ledger.integer("SELECT count(*) FROM budget_usage WHERE scope_id = ?", [other.id]) == 0)

            // The sums the admission store rebuilds from agree with the totals kept.
            let kept = try await ledger.budgetUsage(.tenant(tenant), period: march)
            try await ledger.pool.write { db in try db.execute(sql: "DELETE FROM budget_usage") }
            #expect(try await ledger.budgetUsage(.tenant(tenant), period: march) == kept)
            // A day is summed, not read from the month's total that starts with it.
            let firstDay = BudgetPeriod.day.interval(containing: start)
            try await ledger.pool.write { db in try BudgetTally.store(kept, of: .tenant(tenant), periodStart: march.start, in: db) }
            #expect(try await ledger.budgetUsage(.tenant(tenant), period: firstDay) == sum { firstDay.contains($0.startedAt) && $0.startedAt < firstDay.end })
        }
    }

    @Test("an event that arrives late for a past period starts that period's total from all its events")
    func lateEvent() async throws {
        try await withLedger { ledger, _ async throws in
            let (tenant, key) = try await makeTenantAndKey(ledger)
            try await ledger.record([usageEvent("feb-1", tenant: tenant, key: key, at: date("2026-02-10T00:00:00Z"), prompt: 100, completion: 0, cost: 1)])
            _ = try await ledger.setBudget(monthly(tenant), now: date("2026-03-01T00:00:00Z"))
            try await ledger.record([usageEvent("feb-late", tenant: tenant, key: key, at: date("2026-02-28T23:59:59.999Z"), prompt: 50, completion: 0, cost: 2)])
            let february = BudgetPeriod.month.interval(containing: date("2026-02-10T00:00:00Z"))
            #expect(try await ledger.integer("SELECT used_tokens FROM budget_usage WHERE period_start = ?", [february.start.ledgerMilliseconds]) == 150)
            #expect(try await ledger.budgetUsage(.tenant(tenant), period: february) == BudgetUsage(tokens: 150, micros: 3))
            #expect(try await ledger.budgetUsage(.tenant(tenant), period: march) == .zero)
        }
    }

    // MARK: Setting budgets

    @Test("a budget set mid-period counts what was spent, and alerts only for points still ahead")
    func midPeriod() async throws {
        try await withLedger { ledger, _ async throws in
            let (tenant, key) = try await makeTenantAndKey(ledger)
            try await ledger.record([
                usageEvent("feb", tenant: tenant, key: key, at: date("2026-02-28T23:59:59.999Z"), prompt: 100, completion: 0, cost: 1),
                usageEvent("m1", tenant: tenant, key: key, at: date("2026-03-01T00:00:00Z"), cost: 10),
                usageEvent("m2", tenant: tenant, key: nil, at: date("2026-03-10T00:00:00Z"), cost: 20),
                usageEvent("other", tenant: "ten_other", key: key, at: date("2026-03-10T00:00:00Z"), cost: 40),
            ])
            let stored = try await ledger.setBudget(monthly(tenant, thresholds: [0.5, 0.25]), now: date("2026-03-15T00:00:00Z"))
            #expect(stored.softThresholds == [0.25, 0.5])
            #expect(try await ledger.rows("SELECT scope_kind, used_tokens, used_micros FROM budget_usage") == ["tenant|300|30"])
            _ = try await ledger.setBudget(Budget(scope: .key(key), tenantID: tenant, period: .month, limitTokens: 10_000), now: date("2026-03-15T00:00:00Z"))
            #expect(try await ledger.budgetUsage(.key(key), period: march) == BudgetUsage(tokens: 150, micros: 10))

            // 300 is past the 0.25 point (250): only 0.5 (500) is still ahead.
            try await ledger.record([usageEvent("m3", tenant: tenant, key: key, at: date("2026-03-16T00:00:00Z"))])
            #expect(try await crossings(ledger) == [])
            try await ledger.record([usageEvent("m4", tenant: tenant, key: key, at: date("2026-03-16T00:00:00Z"))])
            #expect(try await crossings(ledger) == ["tenant|budget.threshold_reached|0.5"])
            #expect(try await ledger.budgetUsage(.tenant(tenant), period: march) == BudgetUsage(tokens: 600, micros: 2_030))
        }
    }

    @Test("setting a budget again keeps its creation time and re-arms the period's alerts for the new limits")
    func reset() async throws {
        try await withLedger { ledger, _ async throws in
            let (tenant, key) = try await makeTenantAndKey(ledger)
            let hook = try await ledger.createWebhook(tenantID: tenant, url: "https://a.example", events: ["budget.exceeded"], sealedSecret: [], id: "whk_r")
            let first = try await ledger.setBudget(monthly(tenant, tokens: 300, thresholds: []), now: date("2026-03-01T00:00:00.5Z"))
            try await ledger.record(small(10, tenant: tenant, key: key))
            #expect(try await ledger.deliveries(webhookID: hook.id).count == 1)

            // The same budget again: what is behind the usage stays quiet.
            _ = try await ledger.setBudget(monthly(tenant, tokens: 300, thresholds: []), now: date("2026-03-02T00:00:00Z"))
            try await ledger.record(small(1, tenant: tenant, key: key, from: 10))
            #expect(try await ledger.deliveries(webhookID: hook.id).count == 1)

            // Raised, the limit alerts again when reached.
            let raised = try await ledger.setBudget(monthly(tenant, tokens: 600, thresholds: []), now: date("2026-03-03T00:00:00Z"))
            #expect(raised.createdAt == first.createdAt && first.createdAt == date("2026-03-01T00:00:00.5Z"))
            #expect(raised.updatedAt == date("2026-03-03T00:00:00Z"))
            #expect(try await ledger.budget(.tenant(tenant)) == raised)
            try await ledger.record(small(8, tenant: tenant, key: key, from: 11))
            #expect(try await ledger.deliveries(webhookID: hook.id).count == 1)
            try await ledger.record(small(1, tenant: tenant, key: key, from: 19))
            #expect(try await ledger.deliveries(webhookID: hook.id).count == 2)
            #expect(try await ledger.deliveries(webhookID: hook.id).first?.payload.contains(#""limit_tokens":600"#) == true)
        }
    }

    @Test("changing the period drops the old period's totals; clearing drops the budget and its totals")
    func periodChangeAndClear() async throws {
        try await withLedger { ledger, _ async throws in
            let (tenant, key) = try await makeTenantAndKey(ledger)
            try await ledger.record(small(3, tenant: tenant, key: key))
            _ = try await ledger.setBudget(monthly(tenant), now: date("2026-03-01T00:05:00Z"))
            let monthStart = march.start.ledgerMilliseconds
            #expect(try await ledger.rows("SELECT period_start, used_tokens FROM budget_usage") == ["\(monthStart)|90"])
            var daily = monthly(tenant)
            daily.period = .day
            _ = try await ledger.setBudget(daily, now: date("2026-03-02T00:00:00Z"))
            let day = date("2026-03-02T00:00:00Z").ledgerMilliseconds
            #expect(try await ledger.rows("SELECT period_start, used_tokens FROM budget_usage") == ["\(day)|0"])
            // The month's total went with the change: 1 March as a day is summed from its events.
            #expect(try await ledger.budgetUsage(.tenant(tenant), period: BudgetPeriod.day.interval(containing: start)).tokens == 90)

            #expect(try await ledger.clearBudget(.tenant(tenant)))
            #expect(try await ledger.clearBudget(.tenant(tenant)) == false)
            #expect(try await ledger.budget(.tenant(tenant)) == nil)
            #expect(try await ledger.integer("SELECT count(*) FROM budget_usage") == 0)
            #expect(try await ledger.budgetUsage(.tenant(tenant), period: march).tokens == 90)
        }
    }

    @Test("budgets are refused for unknown tenants, and for scopes and limits a budget cannot have")
    func refusals() async throws {
        try await withLedger { ledger, _ async throws in
            let (tenant, key) = try await makeTenantAndKey(ledger)
            let (other, otherKey) = try await makeTenantAndKey(ledger, name: "Globex")
            await #expect(throws: LedgerError.tenantNotFound) {
                try await ledger.setBudget(monthly("ten_missing"))
            }
            do {
                _ = try await ledger.setBudget(Budget(scope: .quota(tenant), tenantID: tenant, period: .month, limitTokens: 1))
                Issue.record("a quota budget was accepted")
            } catch let error as LedgerError {
                #expect(error.code == .invalidBudget)
            }
            #expect(try await ledger.budgets(tenantID: tenant).isEmpty)

            let own = try await ledger.setBudget(monthly(tenant), now: start)
            let keyed = try await ledger.setBudget(Budget(scope: .key(key), tenantID: tenant, period: .day, limitTokens: 5, action: .throttle), now: start)
            _ = try await ledger.setBudget(monthly(other), now: start)
            let both = try await ledger.budgets(tenantID: tenant, keyID: key)
            #expect(both.tenant == own && both.key == keyed)
            let tenantOnly = try await ledger.budgets(tenantID: tenant, keyID: nil)
            #expect(tenantOnly.tenant == own && tenantOnly.key == nil)
            let wrongKey = try await ledger.budgets(tenantID: tenant, keyID: otherKey)
            #expect(wrongKey.key == nil)
            #expect(try await ledger.budgets(tenantID: tenant) == [own, keyed])
        }
    }

    // MARK: Roll-over

    @Test("a new period records one reset per budget created before it, once")
    func rollOver() async throws {
        try await withLedger { ledger, _ async throws in
            let (tenant, key) = try await makeTenantAndKey(ledger)
            let hook = try await ledger.createWebhook(tenantID: tenant, url: "https://a.example", events: ["budget.reset"], sealedSecret: [], id: "whk_z")
            let created = date("2026-03-10T08:00:00Z")
            _ = try await ledger.setBudget(monthly(tenant), now: created)
            _ = try await ledger.setBudget(Budget(scope: .key(key), tenantID: tenant, period: .week, limitTokens: 100), now: created)

            // The week of 12 March began on the 9th, before the budgets were made.
            #expect(try await ledger.rollOverBudgets(now: date("2026-03-12T00:00:00Z")) == 0)
            #expect(try await ledger.rollOverBudgets(now: date("2026-03-16T00:00:00Z")) == 1)
            #expect(try await ledger.rollOverBudgets(now: date("2026-03-16T00:00:01Z")) == 0)
            #expect(try await ledger.rollOverBudgets(now: date("2026-03-20T00:00:00Z")) == 0)
            let april = date("2026-04-01T00:00:00Z")
            #expect(try await ledger.rollOverBudgets(now: april) == 2)
            #expect(try await ledger.rollOverBudgets(now: april) == 0)
            #expect(try await ledger.rollOverBudgets(now: date("2026-04-02T00:00:00Z")) == 0)

            let resets = try await ledger.deliveries(webhookID: hook.id)
            #expect(resets.count == 3)
            #expect(try await ledger.integer("SELECT count(*) FROM budget_crossings WHERE event = 'budget.reset'") == 3)
            let monthReset = try #require(resets.first { $0.payload.contains(#""scope":"tenant""#) })
            #expect(monthReset.payload == """
                {"created":\(Int(april.timeIntervalSince1970)),"data":{"key_id":null,"limit_micros":null,"limit_tokens":1000,\
                "period":"month","period_start":"2026-04-01T00:00:00Z","resets_at":"2026-05-01T00:00:00Z","scope":"tenant",\
                "threshold":null,"used_micros":0,"used_tokens":0},"id":"\(monthReset.id)","tenant_id":"\(tenant)",\
                "type":"budget.reset"}
                """)
        }
    }
}
