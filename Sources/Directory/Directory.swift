import Foundation
import GRDB

/// Who is who: tenants, their keys and the provider-key catalogue, kept in Switchyard's
/// SQLite database beside Billing's ledger. Every write method is one transaction.
public struct Directory: Sendable {
    let pool: DatabasePool

    /// Migrates the directory's tables in `pool`, the database the proxy opened; call it
    /// before Billing's `Ledger`, whose tables name the tenants.
    public init(pool: DatabasePool) throws {
        self.pool = pool
        try Self.migrator.migrate(pool)
    }

    // MARK: Migrations (frozen once landed: add new ones, never edit these)

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("directory 1: tenants, tenant keys, provider keys") { db in
            // A database made before the directory had migrations of its own got these
            // tables from the ledger's v1–v3, in this very shape: it keeps them.
            guard try !db.tableExists("tenants") else { return }
            // A NULL tenant limit means the tier's value applies; pinning is a JSON object
            // of public model -> deployment id, NULL for none. A provider key's tiers and
            // tenants are JSON arrays of strings, [] meaning every tier / every tenant.
            try db.execute(sql: """
                CREATE TABLE tenants (
                    id TEXT PRIMARY KEY NOT NULL,
                    name TEXT NOT NULL UNIQUE,
                    tier TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    requests_per_minute INTEGER,
                    tokens_per_minute INTEGER,
                    concurrent_requests INTEGER,
                    pinning TEXT
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
                """)
        }
        return migrator
    }
}

/// Why a directory write was refused.
public struct DirectoryError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        case duplicateName
        case tenantNotFound
        /// A retired provider key's state cannot change.
        case retired
    }

    public var code: Code
    public var description: String

    static let duplicateName = DirectoryError(code: .duplicateName, description: "a tenant with that name exists")
    static let tenantNotFound = DirectoryError(code: .tenantNotFound, description: "no such tenant")
    static let retired = DirectoryError(code: .retired, description: "the provider key is retired and its state cannot change")
}

extension Date {
    /// Milliseconds since 1970, the database's time unit.
    var millisecondsSince1970: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }

    init(millisecondsSince1970 milliseconds: Int64) {
        self.init(timeIntervalSince1970: Double(milliseconds) / 1000)
    }

    /// The date as the database stores it, so what a write returns equals what a read gives.
    var wholeMilliseconds: Date { Date(millisecondsSince1970: millisecondsSince1970) }
}
