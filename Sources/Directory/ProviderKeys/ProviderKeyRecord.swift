import Foundation
import GRDB

/// A provider key as stored in the catalogue: its routing attributes and its secret,
/// sealed by the proxy (the directory never sees the plain secret).
public struct ProviderKeyRecord: Sendable, Equatable {
    /// Where a key is in its rotation.
    public enum State: String, Sendable, CaseIterable {
        /// Serves new requests.
        case active
        /// Finishes requests in flight but takes no new ones.
        case draining
        /// Serves nothing, and may be made active again.
        case disabled
        /// Gone for good: its secret is erased and its state can no longer change.
        case retired
    }

    /// `pk_` followed by random base62 characters.
    public var id: String
    public var provider: String
    public var label: String
    public var weight: Int
    public var requestsPerMinute: Int?
    public var tokensPerMinute: Int?
    /// The tiers the key may serve; empty means every tier.
    public var tiers: [String]
    /// The ids of the tenants the key may serve; empty means every tenant.
    public var tenants: [String]
    /// The AES-GCM sealed box of the secret, opaque to the directory; empty once the key is retired.
    public var sealedSecret: [UInt8]
    /// The secret's last characters, shown to help people tell keys apart.
    public var lastFour: String
    public var state: State
    public var stateReason: String?
    public var createdAt: Date
    public var updatedAt: Date
    /// The catalogue revision of the key's last change.
    public var revision: Int64

    public init(
        id: String,
        provider: String,
        label: String,
        weight: Int,
        requestsPerMinute: Int? = nil,
        tokensPerMinute: Int? = nil,
        tiers: [String] = [],
        tenants: [String] = [],
        sealedSecret: [UInt8],
        lastFour: String,
        state: State = .active,
        stateReason: String? = nil,
        createdAt: Date,
        updatedAt: Date,
        revision: Int64
    ) {
        self.id = id
        self.provider = provider
        self.label = label
        self.weight = weight
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
        self.tiers = tiers
        self.tenants = tenants
        self.sealedSecret = sealedSecret
        self.lastFour = lastFour
        self.state = state
        self.stateReason = stateReason
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.revision = revision
    }

    /// A new random provider key id, `pk_…`. The caller picks the id before sealing the
    /// secret, because the sealed box is bound to it.
    public static func newProviderKeyID() -> String {
        Identifier.make(prefix: "pk")
    }
}

extension ProviderKeyRecord: FetchableRecord, PersistableRecord {
    public static let databaseTableName = "provider_keys"

    public enum Columns {
        public static let id = Column("id")
        public static let provider = Column("provider")
        public static let label = Column("label")
        public static let weight = Column("weight")
        public static let requestsPerMinute = Column("requests_per_minute")
        public static let tokensPerMinute = Column("tokens_per_minute")
        public static let tiers = Column("tiers")
        public static let tenants = Column("tenants")
        public static let sealedSecret = Column("sealed_secret")
        public static let lastFour = Column("last_four")
        public static let state = Column("state")
        public static let stateReason = Column("state_reason")
        public static let createdAt = Column("created_at")
        public static let updatedAt = Column("updated_at")
        public static let revision = Column("revision")
    }

    public init(row: Row) throws {
        let sealed: Data = row[Columns.sealedSecret]
        let stateName: String = row[Columns.state]
        guard let state = State(rawValue: stateName) else {
            throw DatabaseError(message: "provider key \(row[Columns.id] as String) has an unknown state '\(stateName)'")
        }
        self.init(
            id: row[Columns.id],
            provider: row[Columns.provider],
            label: row[Columns.label],
            weight: row[Columns.weight],
            requestsPerMinute: row[Columns.requestsPerMinute],
            tokensPerMinute: row[Columns.tokensPerMinute],
            tiers: try Self.decodeList(row[Columns.tiers]),
            tenants: try Self.decodeList(row[Columns.tenants]),
            sealedSecret: Array(sealed),
            lastFour: row[Columns.lastFour],
            state: state,
            stateReason: row[Columns.stateReason],
            createdAt: Date(millisecondsSince1970: row[Columns.createdAt]),
            updatedAt: Date(millisecondsSince1970: row[Columns.updatedAt]),
            revision: row[Columns.revision]
        )
    }

    public func encode(to container: inout PersistenceContainer) throws {
        container[Columns.id] = id
        container[Columns.provider] = provider
        container[Columns.label] = label
        container[Columns.weight] = weight
        container[Columns.requestsPerMinute] = requestsPerMinute
        container[Columns.tokensPerMinute] = tokensPerMinute
        container[Columns.tiers] = try Self.encodeList(tiers)
        container[Columns.tenants] = try Self.encodeList(tenants)
        container[Columns.sealedSecret] = Data(sealedSecret)
        container[Columns.lastFour] = lastFour
        container[Columns.state] = state.rawValue
        container[Columns.stateReason] = stateReason
        container[Columns.createdAt] = createdAt.millisecondsSince1970
        container[Columns.updatedAt] = updatedAt.millisecondsSince1970
        container[Columns.revision] = revision
    }

    static func encodeList(_ list: [String]) throws -> String {
        String(decoding: try JSONEncoder().encode(list), as: UTF8.self)
    }

    static func decodeList(_ json: String) throws -> [String] {
        try JSONDecoder().decode([String].self, from: Data(json.utf8))
    }
}

/// What an operator gives to add a provider key to the catalogue.
public struct NewProviderKey: Sendable {
    /// From `ProviderKeyRecord.newProviderKeyID()`; the sealed secret is bound to it.
    public var id: String
    public var provider: String
    public var label: String
    public var weight: Int
    public var requestsPerMinute: Int?
    public var tokensPerMinute: Int?
    /// Empty means every tier.
    public var tiers: [String]
    /// Tenant ids; empty means every tenant.
    public var tenants: [String]
    public var sealedSecret: [UInt8]
    public var lastFour: String

    public init(
        id: String,
        provider: String,
        label: String,
        weight: Int = 1,
        requestsPerMinute: Int? = nil,
        tokensPerMinute: Int? = nil,
        tiers: [String] = [],
        tenants: [String] = [],
        sealedSecret: [UInt8],
        lastFour: String
    ) {
        self.id = id
        self.provider = provider
        self.label = label
        self.weight = weight
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
        self.tiers = tiers
        self.tenants = tenants
        self.sealedSecret = sealedSecret
        self.lastFour = lastFour
    }
}
