import Foundation
import GRDB

extension Directory {
    // MARK: Provider keys

    /// Adds an active provider key to the catalogue.
    /// - Parameters:
    ///   - new: the key, with an id chosen by the caller (its sealed secret is bound to it).
    ///   - now: the creation time.
    public func createProviderKey(_ new: NewProviderKey, now: Date = Date()) async throws -> ProviderKeyRecord {
        try await pool.write { db in try Self.createProviderKey(new, now: now, in: db) }
    }

    /// `createProviderKey(_:now:)` within the caller's transaction.
    public static func createProviderKey(_ new: NewProviderKey, now: Date, in db: GRDB.Database) throws -> ProviderKeyRecord {
        let now = now.wholeMilliseconds
        let record = ProviderKeyRecord(
            id: new.id, provider: new.provider, label: new.label, weight: new.weight,
            requestsPerMinute: new.requestsPerMinute, tokensPerMinute: new.tokensPerMinute,
            tiers: new.tiers, tenants: new.tenants, sealedSecret: new.sealedSecret, lastFour: new.lastFour,
            state: .active, createdAt: now, updatedAt: now, revision: try nextProviderKeyRevision(db)
        )
        try record.insert(db)
        return record
    }

    /// The catalogue, ordered by provider and then oldest first.
    /// - Parameter includeRetired: whether to list retired keys too.
    public func providerKeys(includeRetired: Bool = false) async throws -> [ProviderKeyRecord] {
        try await pool.read { db in try Self.fetchProviderKeys(includeRetired: includeRetired, in: db) }
    }

    /// The provider key with `id`, or nil.
    public func providerKey(id: String) async throws -> ProviderKeyRecord? {
        try await pool.read { db in try ProviderKeyRecord.fetchOne(db, key: id) }
    }

    /// Moves a provider key to `state`. Retiring erases its sealed secret from the database.
    /// - Returns: the updated key, or nil for an unknown id.
    /// - Throws: `DirectoryError` `.retired` when the key is already retired.
    public func setProviderKeyState(
        id: String,
        to state: ProviderKeyRecord.State,
        reason: String?,
        now: Date = Date()
    ) async throws -> ProviderKeyRecord? {
        try await pool.write { db in try Self.setProviderKeyState(id: id, to: state, reason: reason, now: now, in: db) }
    }

    /// `setProviderKeyState(id:to:reason:now:)` within the caller's transaction.
    public static func setProviderKeyState(
        id: String, to state: ProviderKeyRecord.State, reason: String?, now: Date, in db: GRDB.Database
    ) throws -> ProviderKeyRecord? {
        let now = now.wholeMilliseconds
        guard var key = try ProviderKeyRecord.fetchOne(db, key: id) else { return nil }
        guard key.state != .retired else { throw DirectoryError.retired }
        let revision = try nextProviderKeyRevision(db)
        let update = {
            try key.updateChanges(db) { key in
                key.state = state
                key.stateReason = reason
                key.updatedAt = now
                key.revision = revision
                // A zero-length blob, not NULL: the column is NOT NULL, and nothing of the secret stays.
                if state == .retired { key.sealedSecret = [] }
            }
        }
        if state == .retired {
            try withSecureDelete(db, update)
        } else {
            _ = try update()
        }
        return key
    }

    /// The catalogue's revision: the highest of its keys', 0 when there are none. Every
    /// replica polls it to notice changes made through another replica.
    public func providerKeyRevision() async throws -> Int64 {
        try await pool.read(Self.fetchProviderKeyRevision)
    }

    /// Runs `body` with SQLite overwriting deleted content with zeros, so a page that held a
    /// secret does not keep its bytes in free space (SQLite builds differ in their default).
    static func withSecureDelete(_ db: GRDB.Database, _ body: () throws -> Bool) throws {
        let previous = try Int.fetchOne(db, sql: "PRAGMA secure_delete") ?? 0
        try db.execute(sql: "PRAGMA secure_delete = ON")
        defer { try? db.execute(sql: "PRAGMA secure_delete = \(previous)") }
        _ = try body()
    }

    // MARK: Rows

    static func fetchProviderKeys(includeRetired: Bool, in db: GRDB.Database) throws -> [ProviderKeyRecord] {
        var request = ProviderKeyRecord.order(
            ProviderKeyRecord.Columns.provider, ProviderKeyRecord.Columns.createdAt, ProviderKeyRecord.Columns.id
        )
        if !includeRetired {
            request = request.filter(ProviderKeyRecord.Columns.state != ProviderKeyRecord.State.retired.rawValue)
        }
        return try request.fetchAll(db)
    }

    static func fetchProviderKeyRevision(_ db: GRDB.Database) throws -> Int64 {
        try Int64.fetchOne(db, ProviderKeyRecord.select(max(ProviderKeyRecord.Columns.revision))) ?? 0
    }

    /// The revision every write gives the key it changes: one more than any before, so a
    /// replica that polls `providerKeyRevision()` notices changes made through another one.
    private static func nextProviderKeyRevision(_ db: GRDB.Database) throws -> Int64 {
        try fetchProviderKeyRevision(db) + 1
    }
}
