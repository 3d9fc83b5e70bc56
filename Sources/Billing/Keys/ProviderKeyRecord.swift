import Foundation

/// A provider key as stored in the catalogue: its routing attributes and its secret,
/// sealed by the proxy (Billing never sees the plain secret).
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
    /// The AES-GCM sealed box of the secret, opaque to Billing; empty once the key is retired.
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
