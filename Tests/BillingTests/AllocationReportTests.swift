import Foundation
import GRDB
import Testing

@testable import Billing

/// The allocation report read from the hourly rollups, against sums straight from the
/// usage events it was recorded from.
@Suite("Allocation report")
struct AllocationReportTests {
    /// The dimensions whose every subset the property test groups by.
    static let core: [AllocationDimension] = [.tenant, .key, .user, .model, .deployment, .provider, .providerKey, .status]
    /// The window of a test: whole hours (read from the hourly rollups) unless a test sets
    /// whole days (read from the daily ones, unless it groups by hour).
    @TaskLocal static var window = (start: date("2026-03-02T03:00:00Z"), end: date("2026-03-05T21:00:00Z"))
    static var windowStart: Date { window.start }
    static var windowEnd: Date { window.end }
    static let wholeDays = (start: date("2026-03-02T00:00:00Z"), end: date("2026-03-05T00:00:00Z"))

    @Test("for every grouping, totals equal the events' sums and the rows sum to the totals")
    func everyGrouping() async throws {
        try await everyGroupingHolds()
    }

    @Test("over whole days, read from the daily rollups, every grouping holds just the same")
    func everyGroupingOverWholeDays() async throws {
        try await Self.$window.withValue(Self.wholeDays) {
            try await everyGroupingHolds()
        }
    }

    private func everyGroupingHolds() async throws {
        try await withLedger { ledger, _ async throws in
            try await Self.recordRandomEvents(ledger, seed: 0x5EED_2026)
            let expected = try await Self.eventTotals(ledger)
            #expect(expected.count == 2, "both currencies are in the window")
            var groupings: [[AllocationDimension]] = (0..<(1 << Self.core.count)).map { mask in
                Self.core.indices.filter { mask & (1 << $0) != 0 }.map { Self.core[$0] }
            }
            // Sampled: the time and pool dimensions, and column orders other than the listed one.
            groupings += [[.day], [.hour], [.enginePool], [.day, .tenant], [.hour, .model, .status], [.enginePool, .user, .day],
                          [.status, .tenant], [.model, .key, .tenant], AllocationDimension.allCases, Array(AllocationDimension.allCases.reversed())]
            for groupBy in groupings {
                let report = try await ledger.allocationReport(Self.query(groupBy, limit: AllocationQuery.maximumLimit))
                #expect(report.nextCursor == nil)
                #expect(Self.byCurrency(report.totals) == expected, "totals grouped by \(groupBy)")
                #expect(Self.byCurrency(Self.summed(report.rows)) == expected, "rows grouped by \(groupBy)")
                #expect(Self.keys(report.rows) == Self.keys(report.rows).sorted(by: Self.precedes), "rows in order, by \(groupBy)")
                #expect(Set(Self.keys(report.rows)).count == report.rows.count, "each group once, by \(groupBy)")
                #expect(try await Self.rowsByKey(report.rows) == Self.eventGroups(ledger, groupBy), "each row, by \(groupBy)")
            }
        }
    }

    @Test("a tenant's or a user's report holds only their events")
    func narrowed() async throws {
        try await withLedger { ledger, _ async throws in
            try await Self.recordRandomEvents(ledger, seed: 7)
            for (tenant, user) in [("ten_b", nil), (nil, "usr_2"), ("ten_a", "usr_1")] as [(String?, String?)] {
                var query = Self.query([.model, .status], limit: AllocationQuery.maximumLimit)
                query.tenantID = tenant
                query.userID = user
                let report = try await ledger.allocationReport(query)
                let expected = try await Self.eventTotals(ledger, tenant: tenant, user: user)
                #expect(Self.byCurrency(report.totals) == expected)
                #expect(Self.byCurrency(Self.summed(report.rows)) == expected)
            }
        }
    }

    @Test("pages of a small limit return every row exactly once, in order, each with the whole totals")
    func pagination() async throws {
        try await withLedger { ledger, _ async throws in
            try await Self.recordRandomEvents(ledger, seed: 42)
            for groupBy in [[], [.tenant, .model], [.user, .status, .day], Self.core, [.hour]] as [[AllocationDimension]] {
                let whole = try await ledger.allocationReport(Self.query(groupBy, limit: AllocationQuery.maximumLimit))
                var paged: [AllocationRow] = []
                var cursor: String?
                var pages = 0
                repeat {
                    let page = try await ledger.allocationReport(Self.query(groupBy, limit: 7, cursor: cursor))
                    #expect(page.rows.count <= 7)
                    #expect(page.totals == whole.totals)
                    paged += page.rows
                    cursor = page.nextCursor
                    pages += 1
                } while cursor != nil && pages < 10_000
                #expect(paged == whole.rows, "paged by \(groupBy)")
            }
        }
    }

    @Test("with GPU cost, for any grouping, the totals are the other requests' token cost plus the whole pool cost")
    func everyGroupingWithGPU() async throws {
        try await withLedger { ledger, _ async throws in
            try await Self.recordRandomEvents(ledger, seed: 0xC0FFEE)
            // pool-a is priced; pool-b is not, and keeps its token cost.
            let pool = EnginePoolCost(pool: "pool-a", replicas: 2, slots: 16, costPerHourMicros: 1_000_003, currency: "USD")
            let poolCost = 2 * 90 * 1_000_003 as Int64
            let sql = """
                SELECT currency, sum(cost_micros) FROM usage_events
                WHERE started_at >= ? AND started_at < ? AND coalesce(engine_pool, '') != 'pool-a' GROUP BY currency
                """
            let tokenCosts = try await ledger.pool.read { db in
                Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: sql, arguments: [Self.windowStart.ledgerMilliseconds, Self.windowEnd.ledgerMilliseconds])
                    .map { ($0[0] as String, $0[1] as Int64) })
            }
            let plain = try await Self.eventTotals(ledger)
            for groupBy in [[], [.tenant], [.model, .user], [.enginePool], [.day, .tenant, .status], Self.core] as [[AllocationDimension]] {
                var query = Self.query(groupBy, limit: AllocationQuery.maximumLimit)
                query.includeGPU = true
                query.poolCosts = [pool]
                let report = try await ledger.allocationReport(query)
                #expect(report.rows.filter { $0.kind == .idle }.map(\.pool) == ["pool-a"])
                let totals = Dictionary(uniqueKeysWithValues: report.totals.map { ($0.currency, $0.sums) })
                #expect(totals["USD"]?.costMicros == tokenCosts["USD"] && totals["EUR"]?.costMicros == tokenCosts["EUR"], "by \(groupBy)")
                #expect(totals["USD"]?.gpuCostMicros == poolCost && totals["EUR"]?.gpuCostMicros == 0, "by \(groupBy)")
                // Counts are the events' whatever the pool cost.
                #expect(totals["USD"]?.requests == Int(plain["USD"]?.requests ?? -1) && totals["EUR"]?.requests == Int(plain["EUR"]?.requests ?? -1))
                #expect(Ledger.totals(of: report.rows) == report.totals, "rows sum to the totals, by \(groupBy)")

                var paged: [AllocationRow] = []
                var cursor: String?
                repeat {
                    query.limit = 5
                    query.cursor = cursor
                    let page = try await ledger.allocationReport(query)
                    #expect(page.totals == report.totals)
                    paged += page.rows
                    cursor = page.nextCursor
                } while cursor != nil && paged.count <= report.rows.count
                #expect(paged == report.rows, "paged by \(groupBy)")
            }
        }
    }

    @Test("billed is null for a group no billed event is in, and margin is billed less cost")
    func billedAndMargin() async throws {
        try await withLedger { ledger, _ async throws in
            let terms = BillingTerms(monthlyQuotaTokens: 0, overagePerMillion: 1_000_000)
            try await ledger.record([
                billed(usageEvent("r1", tenant: "ten_a", at: date("2026-03-01T10:15:00Z"), prompt: 100, completion: 50, cost: 40), terms),
                usageEvent("r2", tenant: "ten_b", at: date("2026-03-01T10:20:00Z"), cost: 70),
            ])
            let report = try await ledger.allocationReport(
                AllocationQuery(from: date("2026-03-01T10:00:00Z"), to: date("2026-03-01T11:00:00Z"), groupBy: [.tenant])
            )
            #expect(report.rows.map(\.groupValues) == [["ten_a"], ["ten_b"]])
            #expect(report.rows.map(\.sums.billedMicros) == [150, nil])
            #expect(report.rows.map(\.sums.marginMicros) == [110, -70])
            #expect(report.totals.map(\.sums.billedMicros) == [150])
        }
    }

    @Test("a window off the hour, a limit out of range and a cursor not given are refused, naming the parameter")
    func refusals() async throws {
        try await withLedger { ledger, _ async throws in
            let hour = date("2026-03-01T10:00:00Z")
            let cases: [(AllocationQuery, String)] = [
                (AllocationQuery(from: date("2026-03-01T10:30:00Z"), to: hour.addingTimeInterval(7200), groupBy: []), "from"),
                (AllocationQuery(from: hour, to: date("2026-03-01T11:00:00.001Z"), groupBy: []), "to"),
                (AllocationQuery(from: hour, to: hour, groupBy: []), "from"),
                (AllocationQuery(from: hour, to: hour.addingTimeInterval(3600), groupBy: [], limit: 0), "limit"),
                (AllocationQuery(from: hour, to: hour.addingTimeInterval(3600), groupBy: [], limit: 10_001), "limit"),
                (AllocationQuery(from: hour, to: hour.addingTimeInterval(3600), groupBy: [.tenant, .tenant]), "group_by"),
                (AllocationQuery(from: hour, to: hour.addingTimeInterval(3600), groupBy: [], cursor: "not a cursor!"), "cursor"),
                // A cursor of another grouping, and an idle row's without pool costs.
                (AllocationQuery(from: hour, to: hour.addingTimeInterval(3600), groupBy: [.tenant],
                                 cursor: AllocationCursor(kind: .group, values: ["USD"]).encoded), "cursor"),
                (AllocationQuery(from: hour, to: hour.addingTimeInterval(3600), groupBy: [],
                                 cursor: AllocationCursor(kind: .idle, values: ["gpu", "USD"]).encoded), "cursor"),
            ]
            for (query, parameter) in cases {
                await #expect(throws: ReportError.self) { _ = try await ledger.allocationReport(query) }
                do {
                    _ = try await ledger.allocationReport(query)
                } catch let error as ReportError {
                    #expect(error.parameter == parameter, "\(error)")
                }
            }
        }
    }

    @Test("group_by lists parse in order, skip currency, and refuse unknown or repeated names")
    func groupByLists() throws {
        #expect(try AllocationDimension.parseList("tenant,model, provider_key,currency") == [.tenant, .model, .providerKey])
        #expect(try AllocationDimension.parseList("") == [])
        #expect(throws: ReportError.self) { try AllocationDimension.parseList("tenant,planet") }
        #expect(throws: ReportError.self) { try AllocationDimension.parseList("model,model") }
    }

    // MARK: Events

    /// Several hundred events over six days: tenants, keys, users, models (one with a
    /// comma and a quote), deployments, providers, provider keys, engine pools, statuses,
    /// two currencies, billed under terms and not.
    static func recordRandomEvents(_ ledger: Ledger, seed: UInt64) async throws {
        var random = ReportTestRandom(seed: seed)
        let start = date("2026-03-01T00:00:00Z")
        let models = ["chat-large", "chat-small", #"chat "odd", v2"#, "embed-small"]
        let deployments: [String?] = ["openai-gpt-4o", "local-llama-8b", nil, "anthropic-sonnet"]
        let providers: [String?] = ["openai", "local", nil, "anthropic"]
        let terms: [BillingTerms?] = [
            nil, BillingTerms(monthlyQuotaTokens: 5_000, overagePerMillion: 3_000_000),
            BillingTerms(monthlyQuotaTokens: nil, overagePerMillion: 1_250_000), BillingTerms(monthlyQuotaTokens: 100, overagePerMillion: nil),
        ]
        var batch: [UsageEvent] = []
        for index in 0..<700 {
            let tenant = ["ten_a", "ten_b", "ten_c"][Int.random(in: 0..<3, using: &random)]
            let route = Int.random(in: 0..<4, using: &random)
            let onEngine = route == 1
            var event = usageEvent(
                "req-\(seed)-\(index)", tenant: tenant,
                key: [nil, "\(tenant)-key1", "\(tenant)-key2"][Int.random(in: 0..<3, using: &random)],
                model: models[Int.random(in: 0..<models.count, using: &random)],
                at: start.addingTimeInterval(Double(Int.random(in: 0..<(6 * 86_400_000), using: &random)) / 1000),
                prompt: Int.random(in: 0..<4_000, using: &random), cached: Int.random(in: 0..<100, using: &random),
                completion: Int.random(in: 0..<2_000, using: &random), estimated: Bool.random(using: &random),
                cost: Int64.random(in: 0..<5_000_000, using: &random), currency: Bool.random(using: &random) ? "USD" : "EUR",
                status: [200, 200, 200, 429, 500, 499][Int.random(in: 0..<6, using: &random)]
            )
            event.deployment = deployments[route]
            event.provider = providers[route]
            event.providerKeyID = onEngine ? nil : [nil, "pk_1", "pk_2"][Int.random(in: 0..<3, using: &random)]
            event.enginePool = onEngine ? ["pool-a", "pool-b"][Int.random(in: 0..<2, using: &random)] : nil
            event.slotMilliseconds = onEngine ? Int.random(in: 0..<90_000, using: &random) : nil
            event.reasoningTokens = Int.random(in: 0..<50, using: &random)
            event.userID = [nil, "usr_1", "usr_2", "usr_3"][Int.random(in: 0..<4, using: &random)]
            event.terms = terms[Int.random(in: 0..<terms.count, using: &random)]
            batch.append(event)
            if batch.count == 64 {
                try await ledger.record(batch)
                batch.removeAll()
            }
        }
        try await ledger.record(batch)
    }

    static func query(_ groupBy: [AllocationDimension], limit: Int, cursor: String? = nil) -> AllocationQuery {
        AllocationQuery(from: windowStart, to: windowEnd, groupBy: groupBy, limit: limit, cursor: cursor)
    }

    /// The sums a report row compares on, as SQL over usage_events computes them.
    struct Sums: Equatable, CustomStringConvertible {
        var requests: Int64, prompt: Int64, cached: Int64, completion: Int64, reasoning: Int64, estimated: Int64
        var cost: Int64, billed: Int64?, slot: Int64

        init(requests: Int64, prompt: Int64, cached: Int64, completion: Int64, reasoning: Int64, estimated: Int64, cost: Int64, billed: Int64?, slot: Int64) {
            (self.requests, self.prompt, self.cached, self.completion, self.reasoning) = (requests, prompt, cached, completion, reasoning)
            (self.estimated, self.cost, self.billed, self.slot) = (estimated, cost, billed, slot)
        }

        init(_ sums: AllocationSums) {
            self.init(
                requests: Int64(sums.requests), prompt: Int64(sums.promptTokens), cached: Int64(sums.cachedTokens),
                completion: Int64(sums.completionTokens), reasoning: Int64(sums.reasoningTokens),
                estimated: Int64(sums.estimatedRequests), cost: sums.costMicros, billed: sums.billedMicros, slot: sums.slotMilliseconds
            )
        }

        init(_ row: Row) {
            self.init(
                requests: row["requests"], prompt: row["prompt"], cached: row["cached"], completion: row["completion"],
                reasoning: row["reasoning"], estimated: row["estimated"], cost: row["cost"],
                billed: (row["billed_count"] as Int64) == 0 ? nil : (row["billed"] as Int64), slot: row["slot"]
            )
        }

        var description: String { "\(requests) req, \(cost) cost, \(billed.map(String.init) ?? "-") billed, \(slot) slot ms" }
    }

    static let eventSums = """
        count(*) AS requests, sum(prompt_tokens) AS prompt, sum(cached_tokens) AS cached,
        sum(completion_tokens) AS completion, sum(reasoning_tokens) AS reasoning, sum(tokens_estimated) AS estimated,
        sum(cost_micros) AS cost, sum(coalesce(billed_micros, 0)) AS billed, count(billed_micros) AS billed_count,
        sum(coalesce(slot_ms, 0)) AS slot
        """

    /// The window's totals per currency, straight from usage_events.
    static func eventTotals(_ ledger: Ledger, tenant: String? = nil, user: String? = nil) async throws -> [String: Sums] {
        var sql = "SELECT currency, \(eventSums) FROM usage_events WHERE started_at >= ? AND started_at < ?"
        var arguments: StatementArguments = [windowStart.ledgerMilliseconds, windowEnd.ledgerMilliseconds]
        if let tenant {
            sql += " AND tenant_id = ?"
            arguments += [tenant]
        }
        if let user {
            sql += " AND user_id = ?"
            arguments += [user]
        }
        let finalSQL = sql + " GROUP BY currency"
        let finalArguments = arguments
        return try await ledger.pool.read { db in
            Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: finalSQL, arguments: finalArguments).map { ($0["currency"] as String, Sums($0)) })
        }
    }

    /// Each group's sums straight from usage_events, keyed by its values and currency.
    static func eventGroups(_ ledger: Ledger, _ groupBy: [AllocationDimension]) async throws -> [[String]: Sums] {
        let expressions = groupBy.map { dimension in
            switch dimension {
            case .tenant: "tenant_id"
            case .key: "coalesce(tenant_key_id, '')"
            case .user: "coalesce(user_id, '')"
            case .model: "model"
            case .deployment: "coalesce(deployment, '')"
            case .provider: "coalesce(provider, '')"
            case .providerKey: "coalesce(provider_key_id, '')"
            case .enginePool: "coalesce(engine_pool, '')"
            case .status: "CAST(status AS TEXT)"
            case .day: "strftime('%Y-%m-%d', started_at / 1000, 'unixepoch')"
            case .hour: "strftime('%Y-%m-%dT%H:00:00Z', started_at / 1000, 'unixepoch')"
            }
        } + ["currency"]
        let selected = expressions.enumerated().map { "\($0.element) AS k\($0.offset)" }.joined(separator: ", ")
        let sql = """
            SELECT \(selected), \(eventSums) FROM usage_events WHERE started_at >= ? AND started_at < ?
            GROUP BY \(expressions.indices.map { "k\($0)" }.joined(separator: ", "))
            """
        return try await ledger.pool.read { db in
            let rows = try Row.fetchAll(db, sql: sql, arguments: [windowStart.ledgerMilliseconds, windowEnd.ledgerMilliseconds])
            return Dictionary(uniqueKeysWithValues: rows.map { row in (expressions.indices.map { row["k\($0)"] as String }, Sums(row)) })
        }
    }

    static func rowsByKey(_ rows: [AllocationRow]) -> [[String]: Sums] {
        Dictionary(uniqueKeysWithValues: rows.map { ($0.groupValues + [$0.currency], Sums($0.sums)) })
    }

    static func byCurrency(_ rows: [AllocationRow]) -> [String: Sums] {
        Dictionary(uniqueKeysWithValues: rows.map { ($0.currency, Sums($0.sums)) })
    }

    static func summed(_ rows: [AllocationRow]) -> [AllocationRow] {
        Ledger.totals(of: rows)
    }

    static func keys(_ rows: [AllocationRow]) -> [[String]] { rows.map { $0.groupValues + [$0.currency] } }

    static func precedes(_ left: [String], _ right: [String]) -> Bool {
        left.lexicographicallyPrecedes(right) { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }
}

/// SplitMix64: the same events for the same seed, on every run.
struct ReportTestRandom: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
