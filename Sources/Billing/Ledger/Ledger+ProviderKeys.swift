import Foundation
import GRDB

extension Ledger {
    // MARK: Provider keys

    /// The revision every write gives the key it changes: one more than any before, so a
    /// replica that polls `providerKeyRevision()` notices changes made through another one.
    private static let nextRevision = "(SELECT COALESCE(MAX(revision), 0) + 1 FROM provider_keys)"

    /// Adds an active provider key to the catalogue.
    /// - Parameters:
    ///   - new: the key, with an id chosen by the caller (its sealed secret is bound to it).
    ///   - now: the creation time.
    public func createProviderKey(_ new: NewProviderKey, now: Date = Date()) async throws -> ProviderKeyRecord {
        let now = now.roundedToLedgerMilliseconds
        let tiers = try Self.encodeList(new.tiers)
        let tenants = try Self.encodeList(new.tenants)
        return try await pool.write { db in
            try db.execute(
                sql: """
                    INSERT INTO provider_keys (
                        id, provider, label, weight, requests_per_minute, tokens_per_minute, tiers, tenants,
                        sealed_secret, last_four, state, state_reason, created_at, updated_at, revision
                    ) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, \(Self.nextRevision))
                    """,
                arguments: [
                    new.id, new.provider, new.label, new.weight, new.requestsPerMinute, new.tokensPerMinute,
                    tiers, tenants, Data(new.sealedSecret), new.lastFour, ProviderKeyRecord.State.active.rawValue,
                    now.ledgerMilliseconds, now.ledgerMilliseconds,
                ]
            )
            guard let record = try Self.fetchProviderKey(id: new.id, in: db) else {
                throw DatabaseError(message: "provider key \(new.id) vanished while it was created")
            }
            return record
        }
    }

    /// The catalogue, ordered by provider and then oldest first.
    /// - Parameter includeRetired: whether to list retired keys too.
    public func providerKeys(includeRetired: Bool = false) async throws -> [ProviderKeyRecord] {
        try await pool.read { db in try Self.fetchProviderKeys(includeRetired: includeRetired, in: db) }
    }

    /// The provider key with `id`, or nil.
    public func providerKey(id: String) async throws -> ProviderKeyRecord? {
        try await pool.read { db in try Self.fetchProviderKey(id: id, in: db) }
    }

    /// Moves a provider key to `state`. Retiring erases its sealed secret from the database.
    /// - Returns: the updated key, or nil for an unknown id.
    /// - Throws: `LedgerError` `.retired` when the key is already retired.
    public func setProviderKeyState(
        id: String,
        to state: ProviderKeyRecord.State,
        reason: String?,
        now: Date = Date()
    ) async throws -> ProviderKeyRecord? {
        let now = now.roundedToLedgerMilliseconds
        return try await pool.write { db in
            guard let current = try String.fetchOne(db, sql: "SELECT state FROM provider_keys WHERE id = ?", arguments: [id]) else {
                return nil
            }
            guard current != ProviderKeyRecord.State.retired.rawValue else { throw LedgerError.retired }
            let update = {
                // A zero-length blob, not NULL: the column is NOT NULL, and nothing of the secret stays.
                let secret = state == .retired ? ", sealed_secret = X''" : ""
                try db.execute(
                    sql: """
                        UPDATE provider_keys
                        SET state = ?, state_reason = ?, updated_at = ?, revision = \(Self.nextRevision)\(secret)
                        WHERE id = ?
                        """,
                    arguments: [state.rawValue, reason, now.ledgerMilliseconds, id]
                )
            }
            if state == .retired {
                try Self.withSecureDelete(db, update)
            } else {
                try update()
            }
            return try Self.fetchProviderKey(id: id, in: db)
        }
    }

    /// The catalogue's revision: the highest of its keys', 0 when there are none. Every
    /// replica polls it to notice changes made through another replica.
    public func providerKeyRevision() async throws -> Int64 {
        try await pool.read(Self.fetchProviderKeyRevision)
    }

    /// Runs `body` with SQLite overwriting deleted content with zeros, so a page that held a
    /// secret does not keep its bytes in free space (SQLite builds differ in their default).
    static func withSecureDelete(_ db: GRDB.Database, _ body: () throws -> Void) throws {
        let previous = try Int.fetchOne(db, sql: "PRAGMA secure_delete") ?? 0
        try db.execute(sql: "PRAGMA secure_delete = ON")
        defer { try? db.execute(sql: "PRAGMA secure_delete = \(previous)") }
        try body()
    }

    // MARK: Rows

    static func fetchProviderKeys(includeRetired: Bool, in db: GRDB.Database) throws -> [ProviderKeyRecord] {
        try Row.fetchAll(
            db,
            sql: """
                SELECT * FROM provider_keys WHERE ? OR state != ?
                ORDER BY provider, created_at, id
                """,
            arguments: [includeRetired, ProviderKeyRecord.State.retired.rawValue]
        ).map(Self.providerKey(from:))
    }

    static func fetchProviderKeyRevision(_ db: GRDB.Database) throws -> Int64 {
        try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(revision), 0) FROM provider_keys") ?? 0
    }

    static func fetchProviderKey(id: String, in db: GRDB.Database) throws -> ProviderKeyRecord? {
        try Row.fetchOne(db, sql: "SELECT * FROM provider_keys WHERE id = ?", arguments: [id]).map(Self.providerKey(from:))
    }

    static func providerKey(from row: Row) throws -> ProviderKeyRecord {
        let sealed: Data = row["sealed_secret"]
        let stateName: String = row["state"]
        guard let state = ProviderKeyRecord.State(rawValue: stateName) else {
            throw DatabaseError(message: "provider key \(row["id"] as String) has an unknown state '\(stateName)'")
        }
        return ProviderKeyRecord(
            id: row["id"],
            provider: row["provider"],
            label: row["label"],
            weight: row["weight"],
            requestsPerMinute: row["requests_per_minute"],
            tokensPerMinute: row["tokens_per_minute"],
            tiers: try decodeList(row["tiers"]),
            tenants: try decodeList(row["tenants"]),
            sealedSecret: Array(sealed),
            lastFour: row["last_four"],
            state: state,
            stateReason: row["state_reason"],
            createdAt: Date(ledgerMilliseconds: row["created_at"]),
            updatedAt: Date(ledgerMilliseconds: row["updated_at"]),
            revision: row["revision"]
        )
    }

    static func encodeList(_ list: [String]) throws -> String {
        String(decoding: try JSONEncoder().encode(list), as: UTF8.self)
    }

    static func decodeList(_ json: String) throws -> [String] {
        try JSONDecoder().decode([String].self, from: Data(json.utf8))
    }
}
