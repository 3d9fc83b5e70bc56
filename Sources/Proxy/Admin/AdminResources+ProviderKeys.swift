import Directory
import Billing
import Foundation
import Pools

/// A key's live state summed over its provider's deployments (one key pool each).
struct ProviderKeyLive: Sendable {
    var inFlight = 0
    var requestsLastMinute = 0
    var lastUsedAt: Date?
    var lastError: String?
    var lastErrorAt: Date?
    var disabledReason: String?
    /// Deployments the key is cooling down on, with the end of each cooldown.
    var coolingDown: [(deployment: String, until: Date)] = []

    mutating func add(_ status: KeyLiveStatus, deployment: String, now: Date = Date()) {
        inFlight += status.inFlight
        requestsLastMinute += status.requestsLastMinute
        if let used = status.lastUsedAt, used > (lastUsedAt ?? .distantPast) { lastUsedAt = used }
        if let at = status.lastErrorAt, at > (lastErrorAt ?? .distantPast) {
            lastErrorAt = at
            lastError = status.lastError
        }
        if disabledReason == nil { disabledReason = status.disabledReason }
        if let until = status.coolingDownUntil, until > now { coolingDown.append((deployment, until)) }
    }
}

extension AdminResources {
    struct CreateProviderKey: Decodable, Sendable {
        var provider: String
        /// The provider key itself: accepted here, never returned.
        var key: String
        var label: String?
        var weight: Int?
        var requestsPerMinute: Int?
        var tokensPerMinute: Int?
        var tiers: [String]?
        var tenants: [String]?
    }

    /// The provider-key list, with the catalogue revision this replica has loaded: a
    /// change made through another replica is in effect here once `loaded_revision`
    /// reaches `revision`.
    struct ProviderKeyListBody: Codable, Sendable {
        var object = "list"
        var revision: Int64
        var loadedRevision: Int64
        var data: [ProviderKeyBody]
    }

    /// A provider key as operators see it: never the key, only its last four characters.
    struct ProviderKeyBody: Codable, Sendable {
        var id: String
        var provider: String
        var label: String
        /// `catalogue` (added through this API) or `environment` (named in providers.json).
        var source: String
        var lastFour: String
        var weight: Int
        var requestsPerMinute: Int?
        var tokensPerMinute: Int?
        var tiers: [String]
        var tenants: [String]
        /// `active`, `cooling_down`, `draining`, `disabled` or `retired`.
        var state: String
        /// Why the key is disabled, drained or cooling down, when it is.
        var stateReason: String?
        /// The latest end of a cooldown, while the key cools down on any deployment.
        var coolingDownUntil: Date?
        /// The deployments the key is cooling down on (it serves the others).
        var coolingDownOn: [String]?
        var inFlight: Int?
        var requestsLastMinute: Int?
        var lastUsedAt: Date?
        var lastError: String?
        var lastErrorAt: Date?
        var createdAt: Date?
        var updatedAt: Date?

        init(record: ProviderKeyRecord, live: ProviderKeyLive?, now: Date = Date()) {
            self.id = record.id
            self.provider = record.provider
            self.label = record.label
            self.source = "catalogue"
            self.lastFour = record.lastFour
            self.weight = record.weight
            self.requestsPerMinute = record.requestsPerMinute
            self.tokensPerMinute = record.tokensPerMinute
            self.tiers = record.tiers
            self.tenants = record.tenants
            self.state = record.state.rawValue
            self.stateReason = record.stateReason
            self.createdAt = record.createdAt
            self.updatedAt = record.updatedAt
            if record.state == .active || record.state == .disabled { apply(live, now: now) } else { show(live) }
        }

        init(environmentKey key: ProviderKeyCatalogue.Key, live: ProviderKeyLive?, now: Date = Date()) {
            self.id = key.id
            self.provider = key.provider
            self.label = key.label
            self.source = "environment"
            self.lastFour = key.lastFour
            self.weight = key.pooled.weight
            self.tiers = []
            self.tenants = []
            self.state = ProviderKeyRecord.State.active.rawValue
            apply(live, now: now)
        }

        /// Live health overrides the catalogue's word for an active key: disabled by a
        /// rejection, or cooling down after a rate limit.
        private mutating func apply(_ live: ProviderKeyLive?, now: Date) {
            show(live)
            guard let live else { return }
            if let reason = live.disabledReason {
                state = ProviderKeyRecord.State.disabled.rawValue
                stateReason = reason
            } else if state == ProviderKeyRecord.State.active.rawValue, !live.coolingDown.isEmpty {
                state = "cooling_down"
                stateReason = live.lastError ?? "rate limited by the provider"
            }
        }

        private mutating func show(_ live: ProviderKeyLive?) {
            guard let live else { return }
            if !live.coolingDown.isEmpty {
                coolingDownUntil = live.coolingDown.map(\.until).max()
                coolingDownOn = live.coolingDown.map(\.deployment).sorted()
            }
            inFlight = live.inFlight
            requestsLastMinute = live.requestsLastMinute
            lastUsedAt = live.lastUsedAt
            lastError = live.lastError
            lastErrorAt = live.lastErrorAt
        }
    }

    /// `PUT /admin/v1/tenants/{id}/limits`: the tenant's own limits; a missing or null
    /// field falls back to the tier's.
    struct TenantLimitsBody: Codable, Sendable {
        var requestsPerMinute: Int?
        var tokensPerMinute: Int?
        var concurrentRequests: Int?

        init(requestsPerMinute: Int?, tokensPerMinute: Int?, concurrentRequests: Int?) {
            self.requestsPerMinute = requestsPerMinute
            self.tokensPerMinute = tokensPerMinute
            self.concurrentRequests = concurrentRequests
        }

        init(_ limits: TenantLimits) {
            self.init(
                requestsPerMinute: limits.requestsPerMinute, tokensPerMinute: limits.tokensPerMinute,
                concurrentRequests: limits.concurrentRequests
            )
        }

        init(_ overrides: TenantLimitOverrides) {
            self.init(
                requestsPerMinute: overrides.requestsPerMinute, tokensPerMinute: overrides.tokensPerMinute,
                concurrentRequests: overrides.concurrentRequests
            )
        }

        func encode(to encoder: any Encoder) throws {
            // Nulls are written out: a null limit means "unlimited" (or "the tier's" in overrides).
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(requestsPerMinute, forKey: .requestsPerMinute)
            try container.encode(tokensPerMinute, forKey: .tokensPerMinute)
            try container.encode(concurrentRequests, forKey: .concurrentRequests)
        }
    }
}
