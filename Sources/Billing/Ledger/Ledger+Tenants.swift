import Foundation
import GRDB

/// A customer organisation.
public struct Tenant: Sendable, Equatable {
    public var id: String
    public var name: String
    public var tier: String
    public var createdAt: Date
    /// The tenant's own rate limits; empty when the tier's apply.
    public var limitOverrides: TenantLimitOverrides = TenantLimitOverrides()
    /// Public model -> the one deployment that must serve it (compliance pinning).
    public var pinning: [String: String] = [:]
}

/// A tenant key as stored: never the secret, only its hash and display prefix.
public struct TenantKeyRecord: Sendable, Equatable {
    public var id: String
    public var tenantID: String
    public var name: String
    /// The first characters of the secret, shown to help people tell keys apart.
    public var prefix: String
    public var secretHash: [UInt8]
    public var createdAt: Date
    public var expiresAt: Date?
    public var revokedAt: Date?
    public var lastUsedAt: Date?

    /// Whether the key may authenticate at `now`.
    public func isUsable(at now: Date) -> Bool {
        revokedAt == nil && (expiresAt.map { now < $0 } ?? true)
    }
}

/// Why a directory write was refused.
public struct LedgerError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        case duplicateName
        case tenantNotFound
        /// A retired provider key's state cannot change.
        case retired
        /// No tenant key with that id belongs to the tenant.
        case keyNotFound
        /// A budget's scope, limits or thresholds are not ones a budget can have.
        case invalidBudget
        /// A webhook subscribes to no event, or to one that does not exist.
        case invalidWebhook
    }

    public var code: Code
    public var description: String

    static let duplicateName = LedgerError(code: .duplicateName, description: "a tenant with that name exists")
    static let tenantNotFound = LedgerError(code: .tenantNotFound, description: "no such tenant")
    static let retired = LedgerError(code: .retired, description: "the provider key is retired and its state cannot change")
    static let keyNotFound = LedgerError(code: .keyNotFound, description: "no such tenant key")
    static let invalidWebhook = LedgerError(
        code: .invalidWebhook,
        description: "a webhook subscribes to one or more of: \(BudgetAlert.allCases.map(\.rawValue).joined(separator: ", "))"
    )

    static func invalidBudget(_ reason: String) -> LedgerError {
        LedgerError(code: .invalidBudget, description: reason)
    }
}

extension Ledger {
    // MARK: Tenants

    public func createTenant(name: String, tier: String, now: Date = Date()) async throws -> Tenant {
        let now = now.roundedToLedgerMilliseconds
        let tenant = Tenant(id: Identifier.make(prefix: "ten"), name: name, tier: tier, createdAt: now)
        do {
            try await pool.write { db in
                try db.execute(
                    sql: "INSERT INTO tenants (id, name, tier, created_at) VALUES (?, ?, ?, ?)",
                    arguments: [tenant.id, tenant.name, tenant.tier, now.ledgerMilliseconds]
                )
            }
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
            throw LedgerError.duplicateName
        }
        return tenant
    }

    public func tenants() async throws -> [Tenant] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT \(Self.tenantColumns) FROM tenants ORDER BY created_at, id")
                .map(Self.tenant(from:))
        }
    }

    public func tenant(id: String) async throws -> Tenant? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT \(Self.tenantColumns) FROM tenants WHERE id = ?", arguments: [id])
                .map(Self.tenant(from:))
        }
    }

    /// Replaces a tenant's limit overrides (an empty value restores the tier's limits).
    /// Returns the updated tenant, or nil for an unknown tenant.
    public func setTenantLimits(id: String, _ overrides: TenantLimitOverrides) async throws -> Tenant? {
        try await pool.write { db in
            try db.execute(
                sql: """
                    UPDATE tenants SET requests_per_minute = ?, tokens_per_minute = ?, concurrent_requests = ?
                    WHERE id = ?
                    """,
                arguments: [overrides.requestsPerMinute, overrides.tokensPerMinute, overrides.concurrentRequests, id]
            )
            return try Row.fetchOne(db, sql: "SELECT \(Self.tenantColumns) FROM tenants WHERE id = ?", arguments: [id])
                .map(Self.tenant(from:))
        }
    }

    /// Replaces a tenant's pinning (empty: none). Returns the updated tenant, or nil for
    /// an unknown tenant.
    public func setTenantPinning(id: String, _ pinning: [String: String]) async throws -> Tenant? {
        let text = Self.pinningText(pinning)
        return try await pool.write { db in
            try db.execute(sql: "UPDATE tenants SET pinning = ? WHERE id = ?", arguments: [text, id])
            return try Row.fetchOne(db, sql: "SELECT \(Self.tenantColumns) FROM tenants WHERE id = ?", arguments: [id])
                .map(Self.tenant(from:))
        }
    }

    static func pinningText(_ pinning: [String: String]) -> String? {
        guard !pinning.isEmpty, let data = try? JSONSerialization.data(withJSONObject: pinning, options: [.sortedKeys]) else {
            return nil
        }
        return String(decoding: data, as: UTF8.self)
    }

    static func pinning(from text: String?) -> [String: String] {
        guard let text, let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: String] else {
            return [:]
        }
        return object
    }

    // MARK: Tenant keys

    public func createKey(
        tenantID: String,
        name: String,
        prefix: String,
        secretHash: [UInt8],
        expiresAt: Date? = nil,
        now: Date = Date()
    ) async throws -> TenantKeyRecord {
        let now = now.roundedToLedgerMilliseconds
        let expiresAt = expiresAt?.roundedToLedgerMilliseconds
        let record = TenantKeyRecord(
            id: Identifier.make(prefix: "key"),
            tenantID: tenantID,
            name: name,
            prefix: prefix,
            secretHash: secretHash,
            createdAt: now,
            expiresAt: expiresAt
        )
        try await pool.write { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM tenants WHERE id = ?", arguments: [tenantID]) != nil else {
                throw LedgerError.tenantNotFound
            }
            try db.execute(
                sql: """
                    INSERT INTO tenant_keys (id, tenant_id, name, prefix, secret_hash, created_at, expires_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    record.id, tenantID, name, prefix, Data(secretHash),
                    now.ledgerMilliseconds, expiresAt?.ledgerMilliseconds,
                ]
            )
        }
        return record
    }

    public func keys(tenantID: String) async throws -> [TenantKeyRecord] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM tenant_keys WHERE tenant_id = ? ORDER BY created_at, id",
                arguments: [tenantID]
            ).map(Self.key(from:))
        }
    }

    public func key(id: String) async throws -> TenantKeyRecord? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM tenant_keys WHERE id = ?", arguments: [id]).map(Self.key(from:))
        }
    }

    /// Revokes a key; revoking twice keeps the first time. Returns nil for an unknown id.
    public func revokeKey(id: String, now: Date = Date()) async throws -> TenantKeyRecord? {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE tenant_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                arguments: [now.ledgerMilliseconds, id]
            )
            return try Row.fetchOne(db, sql: "SELECT * FROM tenant_keys WHERE id = ?", arguments: [id]).map(Self.key(from:))
        }
    }

    /// The key whose secret hashes to `secretHash`, with its tenant.
    public func lookUpKey(secretHash: [UInt8]) async throws -> (key: TenantKeyRecord, tenant: Tenant)? {
        try await pool.read { db in
            guard let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT k.*, t.name AS tenant_name, t.tier AS tenant_tier, t.created_at AS tenant_created_at,
                        t.requests_per_minute AS tenant_requests_per_minute,
                        t.tokens_per_minute AS tenant_tokens_per_minute,
                        t.concurrent_requests AS tenant_concurrent_requests,
                        t.pinning AS tenant_pinning
                    FROM tenant_keys k JOIN tenants t ON t.id = k.tenant_id
                    WHERE k.secret_hash = ?
                    """,
                arguments: [Data(secretHash)]
            ) else { return nil }
            let key = Self.key(from: row)
            let tenant = Tenant(
                id: key.tenantID,
                name: row["tenant_name"],
                tier: row["tenant_tier"],
                createdAt: Date(ledgerMilliseconds: row["tenant_created_at"]),
                limitOverrides: TenantLimitOverrides(
                    requestsPerMinute: row["tenant_requests_per_minute"],
                    tokensPerMinute: row["tenant_tokens_per_minute"],
                    concurrentRequests: row["tenant_concurrent_requests"]
                ),
                pinning: Self.pinning(from: row["tenant_pinning"])
            )
            return (key, tenant)
        }
    }

    /// Records when keys were last used (only ever moving the time forward).
    static func touchKeys(_ lastUse: [String: Date], in db: GRDB.Database) throws {
        let statement = try db.cachedStatement(
            sql: "UPDATE tenant_keys SET last_used_at = max(coalesce(last_used_at, 0), ?) WHERE id = ?"
        )
        for (id, date) in lastUse {
            try statement.execute(arguments: [date.ledgerMilliseconds, id])
        }
    }

    // MARK: Rows

    static let tenantColumns = "id, name, tier, created_at, requests_per_minute, tokens_per_minute, concurrent_requests, pinning"

    static func tenant(from row: Row) -> Tenant {
        Tenant(
            id: row["id"],
            name: row["name"],
            tier: row["tier"],
            createdAt: Date(ledgerMilliseconds: row["created_at"]),
            limitOverrides: TenantLimitOverrides(
                requestsPerMinute: row["requests_per_minute"],
                tokensPerMinute: row["tokens_per_minute"],
                concurrentRequests: row["concurrent_requests"]
            ),
            pinning: pinning(from: row["pinning"])
        )
    }

    static func key(from row: Row) -> TenantKeyRecord {
        let hash: Data = row["secret_hash"]
        return TenantKeyRecord(
            id: row["id"],
            tenantID: row["tenant_id"],
            name: row["name"],
            prefix: row["prefix"],
            secretHash: Array(hash),
            createdAt: Date(ledgerMilliseconds: row["created_at"]),
            expiresAt: (row["expires_at"] as Int64?).map(Date.init(ledgerMilliseconds:)),
            revokedAt: (row["revoked_at"] as Int64?).map(Date.init(ledgerMilliseconds:)),
            lastUsedAt: (row["last_used_at"] as Int64?).map(Date.init(ledgerMilliseconds:))
        )
    }
}
