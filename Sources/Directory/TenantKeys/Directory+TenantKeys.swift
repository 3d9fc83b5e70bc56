import Foundation
import GRDB

extension Directory {
    /// Stores a new tenant key.
    /// - Throws: `DirectoryError` `.tenantNotFound` for an unknown tenant.
    public func createKey(
        tenantID: String,
        name: String,
        prefix: String,
        secretHash: [UInt8],
        expiresAt: Date? = nil,
        userID: String? = nil,
        now: Date = Date()
    ) async throws -> TenantKeyRecord {
        let record = Self.newKey(
            tenantID: tenantID, name: name, prefix: prefix, secretHash: secretHash, expiresAt: expiresAt, userID: userID, now: now
        )
        try await pool.write { db in try Self.insertKey(record, in: db) }
        return record
    }

    /// A new key record, not yet stored.
    public static func newKey(
        tenantID: String, name: String, prefix: String, secretHash: [UInt8], expiresAt: Date?, userID: String?, now: Date
    ) -> TenantKeyRecord {
        TenantKeyRecord(
            id: Identifier.make(prefix: "key"), tenantID: tenantID, name: name, prefix: prefix, secretHash: secretHash,
            createdAt: now.wholeMilliseconds, expiresAt: expiresAt?.wholeMilliseconds, userID: userID
        )
    }

    /// Stores `record`, within the caller's transaction.
    /// - Throws: `DirectoryError` `.tenantNotFound` for an unknown tenant, or an owner who
    ///   is not a user of it (not removed).
    public static func insertKey(_ record: TenantKeyRecord, in db: GRDB.Database) throws {
        guard try Tenant.exists(db, key: record.tenantID) else { throw DirectoryError.tenantNotFound }
        if let userID = record.userID {
            guard let owner = try User.fetchOne(db, key: userID), owner.tenantID == record.tenantID, owner.removedAt == nil else {
                throw DirectoryError.tenantNotFound
            }
        }
        try record.insert(db)
    }

    /// A tenant's keys, oldest first; only `userID`'s when given.
    public func keys(tenantID: String, userID: String? = nil) async throws -> [TenantKeyRecord] {
        try await pool.read { db in
            var request = TenantKeyRecord
                .filter(TenantKeyRecord.Columns.tenantID == tenantID)
                .order(TenantKeyRecord.Columns.createdAt, TenantKeyRecord.Columns.id)
            if let userID { request = request.filter(TenantKeyRecord.Columns.userID == userID) }
            return try request.fetchAll(db)
        }
    }

    public func key(id: String) async throws -> TenantKeyRecord? {
        try await pool.read { db in try TenantKeyRecord.fetchOne(db, key: id) }
    }

    /// Revokes a key; revoking twice keeps the first time. Returns nil for an unknown id.
    public func revokeKey(id: String, now: Date = Date()) async throws -> TenantKeyRecord? {
        try await pool.write { db in try Self.revokeKey(id: id, now: now, in: db) }
    }

    /// `revokeKey(id:now:)` within the caller's transaction; every replica is told to
    /// forget the key.
    public static func revokeKey(id: String, now: Date, in db: GRDB.Database) throws -> TenantKeyRecord? {
        guard var key = try TenantKeyRecord.fetchOne(db, key: id) else { return nil }
        if key.revokedAt == nil {
            try key.updateChanges(db) { $0.revokedAt = now.wholeMilliseconds }
            try recordRevocation("key", subject: id, at: now, in: db)
        }
        return key
    }

    /// The key whose secret hashes to `secretHash`, with its tenant.
    public func lookUpKey(secretHash: [UInt8]) async throws -> (key: TenantKeyRecord, tenant: Tenant)? {
        try await pool.read { db in
            guard let key = try TenantKeyRecord.filter(TenantKeyRecord.Columns.secretHash == Data(secretHash)).fetchOne(db),
                  let tenant = try Tenant.fetchOne(db, key: key.tenantID)
            else { return nil }
            return (key, tenant)
        }
    }

    /// Records when keys were last used (only ever moving the time forward).
    public func touchKeys(_ lastUse: [String: Date]) async throws {
        guard !lastUse.isEmpty else { return }
        try await pool.write { db in try Self.touchKeys(lastUse, in: db) }
    }

    /// `touchKeys(_:)` blocking the caller: for the last flush at shutdown.
    public func touchKeysBlocking(_ lastUse: [String: Date]) throws {
        guard !lastUse.isEmpty else { return }
        try pool.write { db in try Self.touchKeys(lastUse, in: db) }
    }

    private static func touchKeys(_ lastUse: [String: Date], in db: GRDB.Database) throws {
        let statement = try db.cachedStatement(
            sql: "UPDATE tenant_keys SET last_used_at = max(coalesce(last_used_at, 0), ?) WHERE id = ?"
        )
        for (id, date) in lastUse {
            try statement.execute(arguments: [date.millisecondsSince1970, id])
        }
    }
}
