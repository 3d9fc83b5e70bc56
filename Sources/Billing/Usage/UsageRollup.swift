import GRDB

/// The hourly and daily sums of usage events that reports read, kept in `usage_rollups`
/// and `usage_rollups_daily` by the transaction that stores the events. One row per hour
/// (day) and combination of the dimensions; an absent dimension is the empty string.
struct UsageRollup {
    struct Key: Hashable {
        var hour: Int64
        var tenantID: String
        var tenantKeyID: String
        var userID: String
        var model: String
        var deployment: String
        var provider: String
        var providerKeyID: String
        var enginePool: String
        var status: Int
        var currency: String

        init(_ event: UsageEvent) {
            hour = UsageRollup.hour(containing: event.startedAt.ledgerMilliseconds)
            tenantID = event.tenantID
            tenantKeyID = event.tenantKeyID ?? ""
            userID = event.userID ?? ""
            model = event.model
            deployment = event.deployment ?? ""
            provider = event.provider ?? ""
            providerKeyID = event.providerKeyID ?? ""
            enginePool = event.enginePool ?? ""
            status = event.status
            currency = event.currency
        }
    }

    struct Sums {
        var requests = 0
        var promptTokens = 0
        var cachedTokens = 0
        var completionTokens = 0
        var reasoningTokens = 0
        var estimatedRequests = 0
        var costMicros: Int64 = 0
        var billedMicros: Int64 = 0
        var billedRequests = 0
        var slotMilliseconds = 0

        mutating func add(_ other: Sums) {
            requests += other.requests
            promptTokens &+= other.promptTokens
            cachedTokens &+= other.cachedTokens
            completionTokens &+= other.completionTokens
            reasoningTokens &+= other.reasoningTokens
            estimatedRequests += other.estimatedRequests
            costMicros &+= other.costMicros
            billedMicros &+= other.billedMicros
            billedRequests += other.billedRequests
            slotMilliseconds &+= other.slotMilliseconds
        }

        mutating func add(_ event: UsageEvent, billed: Int64?) {
            requests += 1
            promptTokens &+= event.promptTokens
            cachedTokens &+= event.cachedTokens
            completionTokens &+= event.completionTokens
            reasoningTokens &+= event.reasoningTokens
            estimatedRequests += event.tokensEstimated ? 1 : 0
            costMicros &+= event.costMicros
            if let billed {
                billedMicros &+= billed
                billedRequests += 1
            }
            slotMilliseconds &+= event.slotMilliseconds ?? 0
        }
    }

    static let hourMilliseconds: Int64 = 3_600_000
    static let dayMilliseconds: Int64 = 86_400_000

    /// The tables, finest first.
    static let hourlyTable = "usage_rollups"
    static let dailyTable = "usage_rollups_daily"

    /// The start of the UTC hour holding `milliseconds`.
    static func hour(containing milliseconds: Int64) -> Int64 {
        start(of: hourMilliseconds, containing: milliseconds)
    }

    /// The start of the period of `length` milliseconds (from 1970, UTC) holding `milliseconds`.
    static func start(of length: Int64, containing milliseconds: Int64) -> Int64 {
        milliseconds - ((milliseconds % length) + length) % length
    }

    /// The sums of one batch, grouped as the table groups them: a batch of thousands of
    /// events becomes a few upserts.
    private(set) var rows: [Key: Sums] = [:]

    mutating func add(_ event: UsageEvent, billed: Int64?) {
        rows[Key(event), default: Sums()].add(event, billed: billed)
    }

    /// Adds the batch's sums to the hourly table and, summed by day, to the daily one.
    func write(in db: Database) throws {
        guard !rows.isEmpty else { return }
        try Self.write(rows, to: Self.hourlyTable, in: db)
        var days: [Key: Sums] = [:]
        for (key, sums) in rows {
            var day = key
            day.hour = Self.start(of: Self.dayMilliseconds, containing: key.hour)
            days[day, default: Sums()].add(sums)
        }
        try Self.write(days, to: Self.dailyTable, in: db)
    }

    private static func write(_ rows: [Key: Sums], to table: String, in db: Database) throws {
        var statement = try FastStatement(db, sql: """
            INSERT INTO \(table) (
                hour, tenant_id, tenant_key_id, user_id, model, deployment, provider, provider_key_id,
                engine_pool, status, currency, requests, prompt_tokens, cached_tokens, completion_tokens,
                reasoning_tokens, estimated_requests, cost_micros, billed_micros, billed_requests, slot_ms
            ) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT DO UPDATE SET
                requests = requests + excluded.requests,
                prompt_tokens = prompt_tokens + excluded.prompt_tokens,
                cached_tokens = cached_tokens + excluded.cached_tokens,
                completion_tokens = completion_tokens + excluded.completion_tokens,
                reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens,
                estimated_requests = estimated_requests + excluded.estimated_requests,
                cost_micros = cost_micros + excluded.cost_micros,
                billed_micros = billed_micros + excluded.billed_micros,
                billed_requests = billed_requests + excluded.billed_requests,
                slot_ms = slot_ms + excluded.slot_ms
            """)
        for (key, sums) in rows {
            statement.bind(key.hour)
            statement.bind(key.tenantID)
            statement.bind(key.tenantKeyID)
            statement.bind(key.userID)
            statement.bind(key.model)
            statement.bind(key.deployment)
            statement.bind(key.provider)
            statement.bind(key.providerKeyID)
            statement.bind(key.enginePool)
            statement.bind(key.status)
            statement.bind(key.currency)
            statement.bind(sums.requests)
            statement.bind(sums.promptTokens)
            statement.bind(sums.cachedTokens)
            statement.bind(sums.completionTokens)
            statement.bind(sums.reasoningTokens)
            statement.bind(sums.estimatedRequests)
            statement.bind(sums.costMicros)
            statement.bind(sums.billedMicros)
            statement.bind(sums.billedRequests)
            statement.bind(sums.slotMilliseconds)
            try statement.run()
        }
    }
}
