import Directory
import Billing
import Foundation
import GRDB

/// Switchyard's one SQLite database file, opened once by the proxy: the directory's tables
/// and the ledger's side by side, each migrated by its own module.
public struct SwitchyardDatabase: Sendable {
    public let directory: Directory
    public let ledger: Ledger

    /// Opens (creating if needed) the database at `path` in WAL mode and migrates it: a
    /// database from before the directory and the ledger had migrations of their own is
    /// first brought to the last shape those had (`legacyMigrator`). A new database, and a
    /// directory created for it, are private to Switchyard's user (0600 and 0700).
    public init(path: String) throws {
        try PrivateFiles.createDirectory(URL(fileURLWithPath: path).deletingLastPathComponent().path)
        try PrivateFiles.createFile(path)
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            // 32 MiB of pages per connection (SQLite's default is 2 MiB): the writer keeps
            // the hot parts of the usage indexes in memory instead of reading them back.
            try db.execute(sql: "PRAGMA cache_size = -32768")
            // Reads (reports over the rollups) map the file instead of copying each page in.
            try db.execute(sql: "PRAGMA mmap_size = 268435456")
        }
        let pool = try DatabasePool(path: path, configuration: configuration)
        let legacy = Self.legacyMigrator
        if try pool.read({ db in try !legacy.appliedMigrations(db).isEmpty }) {
            try legacy.migrate(pool)
        }
        self.directory = try Directory(pool: pool)
        self.ledger = try Ledger(pool: pool)
    }

    // MARK: The ledger's migrations before the modules had their own (frozen: never edit)

    /// Made the one schema every table had when Billing held all of them. Applied only to
    /// a database that began under them, to finish what such a database may lack; a new
    /// database starts from the modules' own first migrations, which create the same shape.
    static var legacyMigrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: tenants, tenant keys, usage events") { db in
            try db.execute(sql: """
                CREATE TABLE tenants (
                    id TEXT PRIMARY KEY NOT NULL,
                    name TEXT NOT NULL UNIQUE,
                    tier TEXT NOT NULL,
                    created_at INTEGER NOT NULL
                );
                CREATE TABLE tenant_keys (
                    id TEXT PRIMARY KEY NOT NULL,
                    tenant_id TEXT NOT NULL REFERENCES tenants(id),
                    name TEXT NOT NULL,
                    prefix TEXT NOT NULL,
                    secret_hash BLOB NOT NULL UNIQUE,
                    created_at INTEGER NOT NULL,
                    expires_at INTEGER,
                    revoked_at INTEGER,
                    last_used_at INTEGER
                );
                CREATE INDEX tenant_keys_by_tenant ON tenant_keys(tenant_id);
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
                    client_aborted INTEGER NOT NULL
                );
                CREATE INDEX usage_events_by_tenant_time ON usage_events(tenant_id, started_at);
                CREATE INDEX usage_events_by_time ON usage_events(started_at);
                """)
        }
        migrator.registerMigration("v2: provider keys, tenant limit overrides") { db in
            // tiers and tenants are JSON arrays of strings; [] means every tier / every tenant.
            // A NULL tenant limit means the tier's value applies. usage_events.provider_key_id
            // names the provider key that served a request (NULL for engines and older events).
            try db.execute(sql: """
                CREATE TABLE provider_keys (
                    id TEXT PRIMARY KEY NOT NULL,
                    provider TEXT NOT NULL,
                    label TEXT NOT NULL,
                    weight INTEGER NOT NULL,
                    requests_per_minute INTEGER,
                    tokens_per_minute INTEGER,
                    tiers TEXT NOT NULL,
                    tenants TEXT NOT NULL,
                    sealed_secret BLOB NOT NULL,
                    last_four TEXT NOT NULL,
                    state TEXT NOT NULL,
                    state_reason TEXT,
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL,
                    revision INTEGER NOT NULL
                );
                CREATE INDEX provider_keys_by_provider ON provider_keys(provider);
                ALTER TABLE tenants ADD COLUMN requests_per_minute INTEGER;
                ALTER TABLE tenants ADD COLUMN tokens_per_minute INTEGER;
                ALTER TABLE tenants ADD COLUMN concurrent_requests INTEGER;
                ALTER TABLE usage_events ADD COLUMN provider_key_id TEXT;
                """)
        }
        migrator.registerMigration("v3: queue wait and spill-over of usage events, tenant pinning") { db in
            // queue_ms is NULL for requests that asked no engine pool (and older events).
            // tenants.pinning is a JSON object of public model -> deployment id, NULL for none.
            try db.execute(sql: """
                ALTER TABLE usage_events ADD COLUMN queue_ms INTEGER;
                ALTER TABLE usage_events ADD COLUMN spilled INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE tenants ADD COLUMN pinning TEXT;
                """)
        }
        migrator.registerMigration("v4: budgets, billed amounts, webhooks") { db in
            // usage_events.billed_micros is what the tenant is billed for the request beyond its
            // quota, NULL when the tenant is not billed through Switchyard (and for older events).
            // budget_usage holds running totals per budget, key budget and tier quota ('quota',
            // tenant id, month) and period; budget_crossings makes each alert once per threshold
            // and period; webhook_deliveries is the outbox, written in the transaction that
            // records the crossing. soft_thresholds and events are JSON arrays; times are ledger
            // milliseconds.
            try db.execute(sql: """
                ALTER TABLE usage_events ADD COLUMN billed_micros INTEGER;
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
        return migrator
    }
}
