import Foundation
import GRDB

/// A tenant key as stored: never the secret, only its hash and display prefix.
public struct TenantKeyRecord: Sendable, Equatable, Identifiable {
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
    /// The user who made the key and owns it; nil for keys made before users existed.
    public var userID: String?

    public init(
        id: String, tenantID: String, name: String, prefix: String, secretHash: [UInt8], createdAt: Date,
        expiresAt: Date? = nil, revokedAt: Date? = nil, lastUsedAt: Date? = nil, userID: String? = nil
    ) {
        self.id = id
        self.tenantID = tenantID
        self.name = name
        self.prefix = prefix
        self.secretHash = secretHash
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
        self.lastUsedAt = lastUsedAt
        self.userID = userID
    }

    /// Whether the key may authenticate at `now`.
    public func isUsable(at now: Date) -> Bool {
        revokedAt == nil && (expiresAt.map { now < $0 } ?? true)
    }
}

extension TenantKeyRecord: FetchableRecord, PersistableRecord {
    public static let databaseTableName = "tenant_keys"

    public enum Columns {
        public static let id = Column("id")
        public static let tenantID = Column("tenant_id")
        public static let name = Column("name")
        public static let prefix = Column("prefix")
        public static let secretHash = Column("secret_hash")
        public static let createdAt = Column("created_at")
        public static let expiresAt = Column("expires_at")
        public static let revokedAt = Column("revoked_at")
        public static let lastUsedAt = Column("last_used_at")
        public static let userID = Column("user_id")
    }

    public init(row: Row) throws {
        let hash: Data = row[Columns.secretHash]
        self.init(
            id: row[Columns.id],
            tenantID: row[Columns.tenantID],
            name: row[Columns.name],
            prefix: row[Columns.prefix],
            secretHash: Array(hash),
            createdAt: Date(millisecondsSince1970: row[Columns.createdAt]),
            expiresAt: (row[Columns.expiresAt] as Int64?).map(Date.init(millisecondsSince1970:)),
            revokedAt: (row[Columns.revokedAt] as Int64?).map(Date.init(millisecondsSince1970:)),
            lastUsedAt: (row[Columns.lastUsedAt] as Int64?).map(Date.init(millisecondsSince1970:)),
            userID: row[Columns.userID]
        )
    }

    public func encode(to container: inout PersistenceContainer) throws {
        container[Columns.id] = id
        container[Columns.tenantID] = tenantID
        container[Columns.name] = name
        container[Columns.prefix] = prefix
        container[Columns.secretHash] = Data(secretHash)
        container[Columns.createdAt] = createdAt.millisecondsSince1970
        container[Columns.expiresAt] = expiresAt?.millisecondsSince1970
        container[Columns.revokedAt] = revokedAt?.millisecondsSince1970
        container[Columns.lastUsedAt] = lastUsedAt?.millisecondsSince1970
        container[Columns.userID] = userID
    }
}
