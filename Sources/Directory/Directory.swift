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
        migrator.registerMigration("directory 2: users, credentials, invites, key owners, the audit log, revocations") { db in
            // A user of a tenant has an org role; a global user (tenant_id NULL) a global one.
            // A removed user keeps its row (the audit log names it) and frees its email.
            // credentials are sessions and personal access tokens, stored as SHA-256 hashes.
            // tenant_keys.user_id is the key's owner, NULL for keys made before users existed.
            // audit_log is append-only: its triggers refuse every UPDATE and DELETE, and an
            // INSERT OR REPLACE of an entry (whose implied delete fires no trigger).
            // revocations lets every replica drop what it caches of a revoked key, a removed
            // user's keys or a changed tenant: each polls for rows past the last it saw.
            try db.execute(sql: """
                CREATE TABLE users (
                    id TEXT PRIMARY KEY NOT NULL,
                    tenant_id TEXT REFERENCES tenants(id),
                    email TEXT NOT NULL,
                    name TEXT NOT NULL,
                    role TEXT NOT NULL CHECK (role IN ('system_admin', 'analyst', 'org_admin', 'org_user')),
                    password_hash TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    removed_at INTEGER,
                    CHECK ((role IN ('system_admin', 'analyst')) = (tenant_id IS NULL))
                );
                CREATE UNIQUE INDEX users_by_email ON users(email) WHERE removed_at IS NULL;
                CREATE INDEX users_by_tenant ON users(tenant_id);
                CREATE TABLE credentials (
                    id TEXT PRIMARY KEY NOT NULL,
                    user_id TEXT NOT NULL REFERENCES users(id),
                    kind TEXT NOT NULL CHECK (kind IN ('session', 'access_token')),
                    name TEXT NOT NULL,
                    prefix TEXT NOT NULL,
                    secret_hash BLOB NOT NULL UNIQUE,
                    source_address TEXT,
                    created_at INTEGER NOT NULL,
                    expires_at INTEGER,
                    revoked_at INTEGER,
                    last_used_at INTEGER
                );
                CREATE INDEX credentials_by_user ON credentials(user_id);
                CREATE TABLE invites (
                    id TEXT PRIMARY KEY NOT NULL,
                    tenant_id TEXT NOT NULL REFERENCES tenants(id),
                    email TEXT NOT NULL,
                    role TEXT NOT NULL CHECK (role IN ('org_admin', 'org_user')),
                    secret_hash BLOB NOT NULL UNIQUE,
                    invited_by TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL,
                    accepted_at INTEGER,
                    accepted_by TEXT REFERENCES users(id),
                    revoked_at INTEGER
                );
                CREATE INDEX invites_by_tenant ON invites(tenant_id, created_at);
                ALTER TABLE tenant_keys ADD COLUMN user_id TEXT REFERENCES users(id);
                CREATE INDEX tenant_keys_by_user ON tenant_keys(user_id);
                CREATE TABLE audit_log (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    at INTEGER NOT NULL,
                    tenant_id TEXT,
                    actor_id TEXT NOT NULL,
                    actor_kind TEXT NOT NULL,
                    actor_role TEXT,
                    action TEXT NOT NULL,
                    target TEXT,
                    payload TEXT,
                    request_id TEXT,
                    source_address TEXT
                );
                CREATE INDEX audit_log_by_tenant ON audit_log(tenant_id, id);
                CREATE INDEX audit_log_by_time ON audit_log(at);
                CREATE TRIGGER audit_log_refuses_update BEFORE UPDATE ON audit_log
                BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
                CREATE TRIGGER audit_log_refuses_delete BEFORE DELETE ON audit_log
                BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
                CREATE TRIGGER audit_log_refuses_replace BEFORE INSERT ON audit_log
                WHEN NEW.id IS NOT NULL AND EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id)
                BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
                CREATE TABLE revocations (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    kind TEXT NOT NULL CHECK (kind IN ('key', 'user', 'tenant', 'credential')),
                    subject TEXT NOT NULL,
                    at INTEGER NOT NULL
                );
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
        /// A user (not removed) already has that email.
        case duplicateEmail
        /// The invite was used or revoked, or has expired.
        case inviteNotOpen
    }

    public var code: Code
    public var description: String

    static let duplicateName = DirectoryError(code: .duplicateName, description: "a tenant with that name exists")
    static let tenantNotFound = DirectoryError(code: .tenantNotFound, description: "no such tenant")
    static let retired = DirectoryError(code: .retired, description: "the provider key is retired and its state cannot change")
    static let duplicateEmail = DirectoryError(code: .duplicateEmail, description: "a user with that email exists")
    static let inviteNotOpen = DirectoryError(code: .inviteNotOpen, description: "the invite was used, revoked or has expired")
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
