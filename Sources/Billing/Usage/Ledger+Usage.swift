import Foundation
import GRDB

extension Ledger {
    /// Stores a batch of usage events in one transaction. A request id seen
    /// before is ignored, so a retried batch never meters a request twice.
    ///
    /// Each new event is added to the running totals of its tenant's tier quota and
    /// budgets; with `terms` it is billed for the tokens beyond the quota. Alerts it raises
    /// are recorded with their webhook deliveries in the same transaction.
    /// - Parameters:
    ///   - events: the events; their `billedMicros` is ignored (the ledger works it out).
    ///   - now: the time alerts and their deliveries are recorded at.
    /// - Returns: how many of the events were new (the others were stored before).
    @discardableResult
    public func record(_ events: [UsageEvent], now: Date = Date()) async throws -> Int {
        guard !events.isEmpty else { return 0 }
        return try await pool.writeWithoutTransaction { db in try Self.durably(db) { try Self.insert(events, now: now, in: db) } }
    }

    /// The same as `record`, blocking the caller: for the last flush at shutdown, which
    /// must happen even when the task that makes it has been cancelled.
    public func recordBlocking(_ events: [UsageEvent], now: Date = Date()) throws {
        guard !events.isEmpty else { return }
        try pool.writeWithoutTransaction { db in _ = try Self.durably(db) { try Self.insert(events, now: now, in: db) } }
    }

    /// Runs `body` in a transaction whose commit waits for the disk (`synchronous = FULL`),
    /// whatever the connection's setting: a spool segment is removed once its events are
    /// stored, so they must survive the machine stopping, not just the process. One `fsync`
    /// per batch, on the writer's task, never a request's.
    static func durably<T>(_ db: GRDB.Database, _ body: () throws -> T) throws -> T {
        let previous = try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? 2
        try db.execute(sql: "PRAGMA synchronous = FULL")
        defer { try? db.execute(sql: "PRAGMA synchronous = \(previous)") }
        var result: T?
        try db.inTransaction {
            result = try body()
            return .commit
        }
        guard let result else { throw DatabaseError(message: "the usage transaction returned nothing") }
        return result
    }

    /// Inserts the events not stored before and adds them to the hourly rollups, the
    /// budget totals and the billing, all in the caller's transaction.
    /// - Returns: how many of the events were new.
    @discardableResult
    static func insert(_ events: [UsageEvent], now: Date, in db: GRDB.Database) throws -> Int {
        var statement = try FastStatement(db, sql: """
            INSERT OR IGNORE INTO usage_events (
                request_id, tenant_id, tenant_key_id, model, deployment, provider, provider_key_id,
                prompt_tokens, cached_tokens, completion_tokens, reasoning_tokens, tokens_estimated,
                cost_micros, currency, status, error_type, started_at, ttft_ms, duration_ms,
                streamed, client_aborted, queue_ms, spilled, user_id, engine_pool, slot_ms
            ) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        let bill = try db.cachedStatement(sql: "UPDATE usage_events SET billed_micros = ? WHERE id = ?")
        var tally = BudgetTally(now: now)
        var rollup = UsageRollup()
        var inserted = 0
        for event in events {
            statement.bind(event.requestID)
            statement.bind(event.tenantID)
            statement.bind(event.tenantKeyID)
            statement.bind(event.model)
            statement.bind(event.deployment)
            statement.bind(event.provider)
            statement.bind(event.providerKeyID)
            statement.bind(event.promptTokens)
            statement.bind(event.cachedTokens)
            statement.bind(event.completionTokens)
            statement.bind(event.reasoningTokens)
            statement.bind(event.tokensEstimated)
            statement.bind(event.costMicros)
            statement.bind(event.currency)
            statement.bind(event.status)
            statement.bind(event.errorType)
            statement.bind(event.startedAt.ledgerMilliseconds)
            statement.bind(event.timeToFirstTokenMilliseconds)
            statement.bind(event.durationMilliseconds)
            statement.bind(event.streamed)
            statement.bind(event.clientAborted)
            statement.bind(event.queueMilliseconds)
            statement.bind(event.spilled)
            statement.bind(event.userID)
            statement.bind(event.enginePool)
            statement.bind(event.slotMilliseconds)
            try statement.run()
            // A request id seen before inserts nothing, and must change no total either.
            guard db.changesCount == 1 else { continue }
            inserted += 1
            let rowID = db.lastInsertedRowID
            let billed = try tally.meter(event, in: db)
            if let billed {
                try bill.execute(arguments: [billed, rowID])
            }
            rollup.add(event, billed: billed)
        }
        try tally.write(in: db)
        try rollup.write(in: db)
        return inserted
    }

    /// The stored event of one request.
    public func usageEvent(requestID: String) async throws -> UsageEvent? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM usage_events WHERE request_id = ?", arguments: [requestID])
                .map(Self.usageEvent(from:))
        }
    }

    /// Usage summed per group over `[from, to)`.
    public func usageSummary(_ query: UsageQuery) async throws -> [UsageSummaryRow] {
        var conditions: [String] = []
        var arguments: StatementArguments = []
        if let tenantID = query.tenantID {
            conditions.append("tenant_id = ?")
            arguments += [tenantID]
        }
        if let userID = query.userID {
            conditions.append("user_id = ?")
            arguments += [userID]
        }
        if let from = query.from {
            conditions.append("started_at >= ?")
            arguments += [from.ledgerMilliseconds]
        }
        if let to = query.to {
            conditions.append("started_at < ?")
            arguments += [to.ledgerMilliseconds]
        }
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let groupExpression = query.groupBy.sqlExpression
        let sql = """
            SELECT \(groupExpression) AS grp, currency,
                   count(*) AS requests,
                   sum(prompt_tokens) AS prompt_tokens, sum(cached_tokens) AS cached_tokens,
                   sum(completion_tokens) AS completion_tokens, sum(cost_micros) AS cost_micros,
                   sum(coalesce(billed_micros, 0)) AS billed_micros,
                   sum(tokens_estimated) AS estimated_requests
            FROM usage_events \(filter)
            GROUP BY grp, currency
            ORDER BY grp, currency
            """
        let finalArguments = arguments
        return try await pool.read { db in
            try Row.fetchAll(db, sql: sql, arguments: finalArguments).map { row in
                let cost: Int64 = row["cost_micros"]
                let billed: Int64 = row["billed_micros"]
                return UsageSummaryRow(
                    group: row["grp"] ?? "",
                    currency: row["currency"],
                    requests: row["requests"],
                    promptTokens: row["prompt_tokens"],
                    cachedTokens: row["cached_tokens"],
                    completionTokens: row["completion_tokens"],
                    costMicros: cost,
                    billedMicros: billed,
                    marginMicros: billed - cost,
                    estimatedRequests: row["estimated_requests"]
                )
            }
        }
    }

    static func usageEvent(from row: Row) -> UsageEvent {
        UsageEvent(
            requestID: row["request_id"],
            tenantID: row["tenant_id"],
            tenantKeyID: row["tenant_key_id"],
            model: row["model"],
            deployment: row["deployment"],
            provider: row["provider"],
            providerKeyID: row["provider_key_id"],
            promptTokens: row["prompt_tokens"],
            cachedTokens: row["cached_tokens"],
            completionTokens: row["completion_tokens"],
            reasoningTokens: row["reasoning_tokens"],
            tokensEstimated: row["tokens_estimated"],
            costMicros: row["cost_micros"],
            currency: row["currency"],
            status: row["status"],
            errorType: row["error_type"],
            startedAt: Date(ledgerMilliseconds: row["started_at"]),
            timeToFirstTokenMilliseconds: row["ttft_ms"],
            durationMilliseconds: row["duration_ms"],
            streamed: row["streamed"],
            clientAborted: row["client_aborted"],
            queueMilliseconds: row["queue_ms"],
            spilled: row["spilled"],
            enginePool: row["engine_pool"],
            slotMilliseconds: row["slot_ms"],
            billedMicros: row["billed_micros"],
            userID: row["user_id"]
        )
    }
}

/// What usage to sum and how to group it.
public struct UsageQuery: Sendable, Equatable {
    public enum GroupBy: String, Sendable, CaseIterable {
        case model, day, key, tenant
        /// The user who owns the key (empty for keys made before users existed).
        case user
        /// The provider key that served the requests (empty for engines), for allocating
        /// each provider account's spend.
        case providerKey = "provider_key"

        var sqlExpression: String {
            switch self {
            case .model: "model"
            case .day: "strftime('%Y-%m-%d', started_at / 1000, 'unixepoch')"
            case .key: "coalesce(tenant_key_id, '')"
            case .tenant: "tenant_id"
            case .user: "coalesce(user_id, '')"
            case .providerKey: "coalesce(provider_key_id, '')"
            }
        }
    }

    public var tenantID: String?
    /// Only the requests sent with keys this user owns, when set.
    public var userID: String?
    public var from: Date?
    public var to: Date?
    public var groupBy: GroupBy

    public init(tenantID: String? = nil, userID: String? = nil, from: Date? = nil, to: Date? = nil, groupBy: GroupBy = .model) {
        self.tenantID = tenantID
        self.userID = userID
        self.from = from
        self.to = to
        self.groupBy = groupBy
    }
}

/// Usage summed over one group.
public struct UsageSummaryRow: Sendable, Equatable {
    public var group: String
    public var currency: String
    public var requests: Int
    public var promptTokens: Int
    public var cachedTokens: Int
    public var completionTokens: Int
    public var costMicros: Int64
    /// What the tenants were billed through Switchyard, in micro-units (0 for requests
    /// not billed through it).
    public var billedMicros: Int64
    /// `billedMicros - costMicros`: what billing made over what upstreams cost.
    public var marginMicros: Int64
    /// How many of the requests carry estimated token counts.
    public var estimatedRequests: Int
}
