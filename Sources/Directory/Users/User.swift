import Foundation
import GRDB

/// What a user may do, fixed: two global roles and two within one tenant.
public enum Role: String, Sendable, CaseIterable, Codable {
    /// Everything on the platform: tenants, models, providers, provider keys, pools.
    case systemAdmin = "system_admin"
    /// Reads usage and cost reports across tenants, and nothing else.
    case analyst
    /// Manages one tenant: its users, keys, budgets, limits, pinning, webhooks, audit log.
    case orgAdmin = "org_admin"
    /// Uses one tenant: makes and revokes their own keys, sees their own usage.
    case orgUser = "org_user"

    /// Whether the role is platform-wide rather than within a tenant.
    public var isGlobal: Bool { self == .systemAdmin || self == .analyst }
}

/// A person who signs in: with a tenant for an org role, without one for a global role.
public struct User: Sendable, Equatable, Identifiable {
    public var id: String
    public var tenantID: String?
    /// Trimmed and lower-cased (by `init`); unique among users not removed.
    public var email: String
    public var name: String
    public var role: Role
    /// The bcrypt hash of the password; never leaves the server.
    public var passwordHash: String
    public var createdAt: Date
    /// When the user was removed: they sign in no more and their keys and sessions are revoked.
    public var removedAt: Date?

    public init(
        id: String = Identifier.make(prefix: "usr"), tenantID: String?, email: String, name: String, role: Role,
        passwordHash: String, createdAt: Date, removedAt: Date? = nil
    ) {
        self.id = id
        self.tenantID = tenantID
        self.email = User.normalizedEmail(email)
        self.name = name
        self.role = role
        self.passwordHash = passwordHash
        self.createdAt = createdAt.wholeMilliseconds
        self.removedAt = removedAt?.wholeMilliseconds
    }

    /// The form emails are stored and compared in.
    public static func normalizedEmail(_ email: String) -> String {
        email.trimmingCharacters(in: .whitespaces).lowercased()
    }
}

extension User: FetchableRecord, PersistableRecord {
    public static let databaseTableName = "users"

    public enum Columns {
        public static let id = Column("id")
        public static let tenantID = Column("tenant_id")
        public static let email = Column("email")
        public static let name = Column("name")
        public static let role = Column("role")
        public static let passwordHash = Column("password_hash")
        public static let createdAt = Column("created_at")
        public static let removedAt = Column("removed_at")
    }

    public init(row: Row) throws {
        let roleName: String = row[Columns.role]
        guard let role = Role(rawValue: roleName) else {
            throw DatabaseError(message: "user \(row[Columns.id] as String) has an unknown role '\(roleName)'")
        }
        self.init(
            id: row[Columns.id], tenantID: row[Columns.tenantID], email: row[Columns.email], name: row[Columns.name],
            role: role, passwordHash: row[Columns.passwordHash],
            createdAt: Date(millisecondsSince1970: row[Columns.createdAt]),
            removedAt: (row[Columns.removedAt] as Int64?).map(Date.init(millisecondsSince1970:))
        )
    }

    public func encode(to container: inout PersistenceContainer) throws {
        container[Columns.id] = id
        container[Columns.tenantID] = tenantID
        container[Columns.email] = email
        container[Columns.name] = name
        container[Columns.role] = role.rawValue
        container[Columns.passwordHash] = passwordHash
        container[Columns.createdAt] = createdAt.millisecondsSince1970
        container[Columns.removedAt] = removedAt?.millisecondsSince1970
    }
}

/// A session (from signing in) or a personal access token (for automation) of a user,
/// stored as the SHA-256 hash of its secret.
public struct Credential: Sendable, Equatable, Identifiable {
    public enum Kind: String, Sendable, CaseIterable {
        case session
        case accessToken = "access_token"
    }

    public var id: String
    public var userID: String
    public var kind: Kind
    public var name: String
    /// The first characters of the secret, shown to tell tokens apart.
    public var prefix: String
    public var secretHash: [UInt8]
    /// Where it was made from (the client's address), for the user's own review.
    public var sourceAddress: String?
    public var createdAt: Date
    public var expiresAt: Date?
    public var revokedAt: Date?
    public var lastUsedAt: Date?

    public init(
        id: String, userID: String, kind: Kind, name: String, prefix: String, secretHash: [UInt8],
        sourceAddress: String? = nil, createdAt: Date, expiresAt: Date?, revokedAt: Date? = nil, lastUsedAt: Date? = nil
    ) {
        self.id = id
        self.userID = userID
        self.kind = kind
        self.name = name
        self.prefix = prefix
        self.secretHash = secretHash
        self.sourceAddress = sourceAddress
        self.createdAt = createdAt.wholeMilliseconds
        self.expiresAt = expiresAt?.wholeMilliseconds
        self.revokedAt = revokedAt?.wholeMilliseconds
        self.lastUsedAt = lastUsedAt?.wholeMilliseconds
    }

    /// Whether the credential may authenticate at `now`.
    public func isUsable(at now: Date) -> Bool {
        revokedAt == nil && (expiresAt.map { now < $0 } ?? true)
    }
}

extension Credential: FetchableRecord, PersistableRecord {
    public static let databaseTableName = "credentials"

    public enum Columns {
        public static let id = Column("id")
        public static let userID = Column("user_id")
        public static let kind = Column("kind")
        public static let name = Column("name")
        public static let prefix = Column("prefix")
        public static let secretHash = Column("secret_hash")
        public static let sourceAddress = Column("source_address")
        public static let createdAt = Column("created_at")
        public static let expiresAt = Column("expires_at")
        public static let revokedAt = Column("revoked_at")
        public static let lastUsedAt = Column("last_used_at")
    }

    public init(row: Row) throws {
        let kindName: String = row[Columns.kind]
        guard let kind = Kind(rawValue: kindName) else {
            throw DatabaseError(message: "credential \(row[Columns.id] as String) has an unknown kind '\(kindName)'")
        }
        let hash: Data = row[Columns.secretHash]
        self.init(
            id: row[Columns.id], userID: row[Columns.userID], kind: kind, name: row[Columns.name], prefix: row[Columns.prefix],
            secretHash: Array(hash), sourceAddress: row[Columns.sourceAddress],
            createdAt: Date(millisecondsSince1970: row[Columns.createdAt]),
            expiresAt: (row[Columns.expiresAt] as Int64?).map(Date.init(millisecondsSince1970:)),
            revokedAt: (row[Columns.revokedAt] as Int64?).map(Date.init(millisecondsSince1970:)),
            lastUsedAt: (row[Columns.lastUsedAt] as Int64?).map(Date.init(millisecondsSince1970:))
        )
    }

    public func encode(to container: inout PersistenceContainer) throws {
        container[Columns.id] = id
        container[Columns.userID] = userID
        container[Columns.kind] = kind.rawValue
        container[Columns.name] = name
        container[Columns.prefix] = prefix
        container[Columns.secretHash] = Data(secretHash)
        container[Columns.sourceAddress] = sourceAddress
        container[Columns.createdAt] = createdAt.millisecondsSince1970
        container[Columns.expiresAt] = expiresAt?.millisecondsSince1970
        container[Columns.revokedAt] = revokedAt?.millisecondsSince1970
        container[Columns.lastUsedAt] = lastUsedAt?.millisecondsSince1970
    }
}

/// A single-use invitation to join a tenant with an org role.
public struct Invite: Sendable, Equatable, Identifiable {
    public var id: String
    public var tenantID: String
    public var email: String
    public var role: Role
    public var secretHash: [UInt8]
    /// The actor who invited (a user id, or the admin token's id).
    public var invitedBy: String
    public var createdAt: Date
    public var expiresAt: Date
    public var acceptedAt: Date?
    public var acceptedBy: String?
    public var revokedAt: Date?

    public init(
        id: String = Identifier.make(prefix: "inv"), tenantID: String, email: String, role: Role, secretHash: [UInt8],
        invitedBy: String, createdAt: Date, expiresAt: Date, acceptedAt: Date? = nil, acceptedBy: String? = nil,
        revokedAt: Date? = nil
    ) {
        self.id = id
        self.tenantID = tenantID
        self.email = User.normalizedEmail(email)
        self.role = role
        self.secretHash = secretHash
        self.invitedBy = invitedBy
        self.createdAt = createdAt.wholeMilliseconds
        self.expiresAt = expiresAt.wholeMilliseconds
        self.acceptedAt = acceptedAt?.wholeMilliseconds
        self.acceptedBy = acceptedBy
        self.revokedAt = revokedAt?.wholeMilliseconds
    }

    /// Whether the invite can still be accepted at `now`.
    public func isOpen(at now: Date) -> Bool {
        acceptedAt == nil && revokedAt == nil && now < expiresAt
    }
}

extension Invite: FetchableRecord, PersistableRecord {
    public static let databaseTableName = "invites"

    public enum Columns {
        public static let id = Column("id")
        public static let tenantID = Column("tenant_id")
        public static let email = Column("email")
        public static let role = Column("role")
        public static let secretHash = Column("secret_hash")
        public static let invitedBy = Column("invited_by")
        public static let createdAt = Column("created_at")
        public static let expiresAt = Column("expires_at")
        public static let acceptedAt = Column("accepted_at")
        public static let acceptedBy = Column("accepted_by")
        public static let revokedAt = Column("revoked_at")
    }

    public init(row: Row) throws {
        let roleName: String = row[Columns.role]
        guard let role = Role(rawValue: roleName) else {
            throw DatabaseError(message: "invite \(row[Columns.id] as String) has an unknown role '\(roleName)'")
        }
        let hash: Data = row[Columns.secretHash]
        self.init(
            id: row[Columns.id], tenantID: row[Columns.tenantID], email: row[Columns.email], role: role,
            secretHash: Array(hash), invitedBy: row[Columns.invitedBy],
            createdAt: Date(millisecondsSince1970: row[Columns.createdAt]),
            expiresAt: Date(millisecondsSince1970: row[Columns.expiresAt]),
            acceptedAt: (row[Columns.acceptedAt] as Int64?).map(Date.init(millisecondsSince1970:)),
            acceptedBy: row[Columns.acceptedBy],
            revokedAt: (row[Columns.revokedAt] as Int64?).map(Date.init(millisecondsSince1970:))
        )
    }

    public func encode(to container: inout PersistenceContainer) throws {
        container[Columns.id] = id
        container[Columns.tenantID] = tenantID
        container[Columns.email] = email
        container[Columns.role] = role.rawValue
        container[Columns.secretHash] = Data(secretHash)
        container[Columns.invitedBy] = invitedBy
        container[Columns.createdAt] = createdAt.millisecondsSince1970
        container[Columns.expiresAt] = expiresAt.millisecondsSince1970
        container[Columns.acceptedAt] = acceptedAt?.millisecondsSince1970
        container[Columns.acceptedBy] = acceptedBy
        container[Columns.revokedAt] = revokedAt?.millisecondsSince1970
    }
}
