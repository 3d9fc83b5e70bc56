import Foundation
import GRDB

/// The usage ledger in Switchyard's SQLite database: usage events, budgets and their
/// running totals, and the webhook outbox. Its tables sit beside the directory's in the
/// one file. Every write method is one transaction.
public struct Ledger: Sendable {
    let pool: DatabasePool

    /// Migrates the ledger's tables in `pool`, the database the proxy opened, after the
    /// directory's (budgets and webhooks name their tenant).
    public init(pool: DatabasePool) throws {
        self.pool = pool
        try Self.migrator.migrate(pool)
    }

    /// Makes the write-ahead log part of the main file, for a clean shutdown.
    public func checkpoint() throws {
        try pool.writeWithoutTransaction { db in
            _ = try db.checkpoint(.truncate)
        }
    }

    /// Runs `body` with SQLite overwriting deleted content with zeros, so a page that held a
    /// secret does not keep its bytes in free space (SQLite builds differ in their default).
    static func withSecureDelete(_ db: GRDB.Database, _ body: () throws -> Void) throws {
        let previous = try Int.fetchOne(db, sql: "PRAGMA secure_delete") ?? 0
        try db.execute(sql: "PRAGMA secure_delete = ON")
        defer { try? db.execute(sql: "PRAGMA secure_delete = \(previous)") }
        try body()
    }

    static func encodeList(_ list: [String]) throws -> String {
        String(decoding: try JSONEncoder().encode(list), as: UTF8.self)
    }

    static func decodeList(_ json: String) throws -> [String] {
        try JSONDecoder().decode([String].self, from: Data(json.utf8))
    }

    // MARK: Migrations (frozen once landed: add new ones, never edit these)

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("billing 1: usage events, budgets, webhooks") { db in
            // A database made before the ledger and the directory had migrations of their
            // own got these tables from the ledger's v1–v4, in this very shape: it keeps them.
            guard try !db.tableExists("usage_events") else { return }
            // queue_ms is NULL for requests that asked no engine pool. provider_key_id names
            // the provider key that served a request (NULL for engines). billed_micros is what
            // the tenant is billed for the request beyond its quota, NULL when the tenant is
            // not billed through Switchyard. budget_usage holds running totals per budget,
            // key budget and tier quota ('quota', tenant id, month) and period;
            // budget_crossings makes each alert once per threshold and period;
            // webhook_deliveries is the outbox, written in the transaction that records the
            // crossing. soft_thresholds and events are JSON arrays; times are milliseconds.
            try db.execute(sql: """
                CREATE TABLE usage_events (
                    id INTEGER PRIMARY KEY,
                    request_id TEXT NOT NULL UNIQUE,
                    tenant_id TEXT NOT NULL,
                    tenant_key_id TEXT,
                    model TEXT NOT NULL,
                    deployment TEXT,
                    provider TEXT,
                    prompt_tokens INTEGER NOT NULL,
                    cached_tokens INTEGER NOT NULL,
                    completion_tokens INTEGER NOT NULL,
                    reasoning_tokens INTEGER NOT NULL,
                    tokens_estimated INTEGER NOT NULL,
                    cost_micros INTEGER NOT NULL,
                    currency TEXT NOT NULL,
                    status INTEGER NOT NULL,
                    error_type TEXT,
                    started_at INTEGER NOT NULL,
                    ttft_ms INTEGER,
                    duration_ms INTEGER NOT NULL,
                    streamed INTEGER NOT NULL,
                    client_aborted INTEGER NOT NULL,
                    provider_key_id TEXT,
                    queue_ms INTEGER,
                    spilled INTEGER NOT NULL DEFAULT 0,
                    billed_micros INTEGER
                );
                CREATE INDEX usage_events_by_tenant_time ON usage_events(tenant_id, started_at);
                CREATE INDEX usage_events_by_time ON usage_events(started_at);
                CREATE TABLE budgets (
                    scope_kind TEXT NOT NULL CHECK (scope_kind IN ('tenant', 'key')),
                    scope_id TEXT NOT NULL,
                    tenant_id TEXT NOT NULL REFERENCES tenants(id),
                    period TEXT NOT NULL CHECK (period IN ('day', 'week', 'month')),
                    limit_tokens INTEGER,
                    limit_micros INTEGER,
                    soft_thresholds TEXT NOT NULL,
                    action TEXT NOT NULL CHECK (action IN ('block', 'throttle')),
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL,
                    PRIMARY KEY (scope_kind, scope_id)
                ) WITHOUT ROWID;
                CREATE INDEX budgets_by_tenant ON budgets(tenant_id);
                CREATE TABLE budget_usage (
                    scope_kind TEXT NOT NULL CHECK (scope_kind IN ('tenant', 'key', 'quota')),
                    scope_id TEXT NOT NULL,
                    period_start INTEGER NOT NULL,
                    used_tokens INTEGER NOT NULL,
                    used_micros INTEGER NOT NULL,
                    PRIMARY KEY (scope_kind, scope_id, period_start)
                ) WITHOUT ROWID;
                CREATE TABLE budget_crossings (
                    scope_kind TEXT NOT NULL,
                    scope_id TEXT NOT NULL,
                    period_start INTEGER NOT NULL,
                    event TEXT NOT NULL,
                    threshold REAL NOT NULL DEFAULT 0,
                    created_at INTEGER NOT NULL,
                    PRIMARY KEY (scope_kind, scope_id, period_start, event, threshold)
                ) WITHOUT ROWID;
                CREATE TABLE webhooks (
                    id TEXT PRIMARY KEY NOT NULL,
                    tenant_id TEXT NOT NULL REFERENCES tenants(id),
                    url TEXT NOT NULL,
                    events TEXT NOT NULL,
                    sealed_secret BLOB NOT NULL,
                    created_at INTEGER NOT NULL
                );
                CREATE INDEX webhooks_by_tenant ON webhooks(tenant_id);
                CREATE TABLE webhook_deliveries (
                    id TEXT PRIMARY KEY NOT NULL,
                    webhook_id TEXT NOT NULL REFERENCES webhooks(id),
                    tenant_id TEXT NOT NULL,
                    event TEXT NOT NULL,
                    payload TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    next_attempt_at INTEGER NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    claimed_until INTEGER,
                    delivered_at INTEGER,
                    failed_at INTEGER,
                    last_status INTEGER,
                    last_error TEXT
                );
                CREATE INDEX webhook_deliveries_pending ON webhook_deliveries(next_attempt_at)
                    WHERE delivered_at IS NULL AND failed_at IS NULL;
                CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries(webhook_id, created_at);
                """)
        }
        migrator.registerMigration("billing 2: the user of each usage event") { db in
            // user_id is the owner of the tenant key that sent the request, NULL for keys made
            // before users existed and for older events; usage can be summed by user.
            try db.execute(sql: """
                ALTER TABLE usage_events ADD COLUMN user_id TEXT;
                CREATE INDEX usage_events_by_user_time ON usage_events(user_id, started_at) WHERE user_id IS NOT NULL;
                """)
        }
        migrator.registerMigration("billing 3: engine occupancy, hourly rollups") { db in
            // engine_pool and slot_ms: the engine pool that served a request and how long it
            // held slots there (NULL for external providers), the basis of GPU cost by
            // occupancy. usage_rollups holds hourly sums of usage_events, kept in the same
            // transaction as the events and read by reports; a NULL dimension is ''.
            // Rollups outlive the raw events they sum (retention prunes events only).
            try db.execute(sql: """
                ALTER TABLE usage_events ADD COLUMN engine_pool TEXT;
                ALTER TABLE usage_events ADD COLUMN slot_ms INTEGER;
                CREATE TABLE usage_rollups (
                    hour INTEGER NOT NULL,
                    tenant_id TEXT NOT NULL,
                    tenant_key_id TEXT NOT NULL,
                    user_id TEXT NOT NULL,
                    model TEXT NOT NULL,
                    deployment TEXT NOT NULL,
                    provider TEXT NOT NULL,
                    provider_key_id TEXT NOT NULL,
                    engine_pool TEXT NOT NULL,
                    status INTEGER NOT NULL,
                    currency TEXT NOT NULL,
                    requests INTEGER NOT NULL,
                    prompt_tokens INTEGER NOT NULL,
                    cached_tokens INTEGER NOT NULL,
                    completion_tokens INTEGER NOT NULL,
                    reasoning_tokens INTEGER NOT NULL,
                    estimated_requests INTEGER NOT NULL,
                    cost_micros INTEGER NOT NULL,
                    billed_micros INTEGER NOT NULL,
                    billed_requests INTEGER NOT NULL,
                    slot_ms INTEGER NOT NULL,
                    PRIMARY KEY (
                        hour, tenant_id, tenant_key_id, user_id, model, deployment, provider,
                        provider_key_id, engine_pool, status, currency
                    )
                ) WITHOUT ROWID;
                INSERT INTO usage_rollups
                SELECT (started_at / 3600000) * 3600000, tenant_id, coalesce(tenant_key_id, ''),
                       coalesce(user_id, ''), model, coalesce(deployment, ''), coalesce(provider, ''),
                       coalesce(provider_key_id, ''), '', status, currency,
                       count(*), sum(prompt_tokens), sum(cached_tokens), sum(completion_tokens),
                       sum(reasoning_tokens), sum(tokens_estimated), sum(cost_micros),
                       sum(coalesce(billed_micros, 0)), count(billed_micros), 0
                FROM usage_events
                GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11;
                """)
        }
        migrator.registerMigration("billing 4: daily rollups") { db in
            // usage_rollups_daily: the same sums per UTC day (its `hour` column holds the
            // day's first hour), kept with the hourly ones; a report over whole days that
            // does not group by hour reads it, a twenty-fourth of the rows at most.
            // usage_events_by_user_time goes: an org user's usage is summed within their
            // tenant, through usage_events_by_tenant_time, and keeping the index cost a
            // fifth of every insert.
            try db.execute(sql: """
                DROP INDEX IF EXISTS usage_events_by_user_time;
                CREATE TABLE usage_rollups_daily (
                    hour INTEGER NOT NULL,
                    tenant_id TEXT NOT NULL,
                    tenant_key_id TEXT NOT NULL,
                    user_id TEXT NOT NULL,
                    model TEXT NOT NULL,
                    deployment TEXT NOT NULL,
                    provider TEXT NOT NULL,
                    provider_key_id TEXT NOT NULL,
                    engine_pool TEXT NOT NULL,
                    status INTEGER NOT NULL,
                    currency TEXT NOT NULL,
                    requests INTEGER NOT NULL,
                    prompt_tokens INTEGER NOT NULL,
                    cached_tokens INTEGER NOT NULL,
                    completion_tokens INTEGER NOT NULL,
                    reasoning_tokens INTEGER NOT NULL,
                    estimated_requests INTEGER NOT NULL,
                    cost_micros INTEGER NOT NULL,
                    billed_micros INTEGER NOT NULL,
                    billed_requests INTEGER NOT NULL,
                    slot_ms INTEGER NOT NULL,
                    PRIMARY KEY (
                        hour, tenant_id, tenant_key_id, user_id, model, deployment, provider,
                        provider_key_id, engine_pool, status, currency
                    )
                ) WITHOUT ROWID;
                INSERT INTO usage_rollups_daily
                SELECT (hour / 86400000) * 86400000, tenant_id, tenant_key_id, user_id, model, deployment,
                       provider, provider_key_id, engine_pool, status, currency,
                       sum(requests), sum(prompt_tokens), sum(cached_tokens), sum(completion_tokens),
                       sum(reasoning_tokens), sum(estimated_requests), sum(cost_micros), sum(billed_micros),
                       sum(billed_requests), sum(slot_ms)
                FROM usage_rollups
                GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11;
                """)
        }
        return migrator
    }
}

extension Date {
    /// Milliseconds since 1970, the ledger's time unit.
    public var ledgerMilliseconds: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }

    public init(ledgerMilliseconds: Int64) {
        self.init(timeIntervalSince1970: Double(ledgerMilliseconds) / 1000)
    }

    /// The date as the ledger stores it, so what a write returns equals what a read gives.
    public var roundedToLedgerMilliseconds: Date { Date(ledgerMilliseconds: ledgerMilliseconds) }
}
