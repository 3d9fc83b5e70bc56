/// What a tenant bought, in force: its tier's terms with the tenant's own overrides
/// applied. Resolved once, when the tenant key is looked up, and carried by every request.
public struct Contract: Sendable, Equatable {
    /// Whether a request may leave a saturated engine pool for an external provider.
    public enum SpillOver: String, Sendable, Equatable, CaseIterable {
        /// Wait for the engine pool, or be refused when the wait would be too long.
        case never
        /// Go to the next candidate with capacity once the pool's predicted start passes
        /// `spillAfter`.
        case whenSaturated = "when_saturated"
    }

    /// The tier's name.
    public var tier: String
    /// The priority band the tenant's requests dispatch in; higher is served first.
    public var band: Int
    /// The tenant's share of a band relative to the other tenants in it.
    public var weight: Int
    /// Rate limits, with the tenant's overrides applied.
    public var limits: TenantLimits
    /// The share of each engine pool's slots, and of each provider key's windows, held
    /// for tenants of this tier whenever they have demand (0…1).
    public var reservedShare: Double
    /// The share of every pool's slots and every key's windows the other tiers have
    /// reserved: what this contract may only borrow (engine slots) or not use (key windows).
    public var reservedForOtherTiers: Double = 0
    /// The longest a request may wait for an engine slot; nil waits as long as needed.
    public var maximumQueueWait: Duration?
    public var spillOver: SpillOver
    /// How late an engine pool's predicted start may be before a request spills over.
    public var spillAfter: Duration
    /// The dearest blended price per million tokens (micro-units) a spill may go to; nil
    /// is any price.
    public var maximumSpillPricePerMillion: Int?
    /// The public models the contract includes; nil is every model.
    public var models: Set<String>?
    /// Public model -> the one deployment that must serve it (compliance pinning).
    public var pinning: [String: String]
    /// The tokens bundled with the tier each calendar month, and what happens beyond them.
    public var quota: Quota?
    /// The price of tokens beyond the quota (integer micro-units per million), when they
    /// are billed: with `Quota.WhenExhausted.overage`, or with no quota at all (every token
    /// is then overage). nil: nothing is billed through Switchyard.
    public var overagePerMillion: Int64?
    /// Requests per minute while a quota or budget that throttles is spent.
    public var throttledRequestsPerMinute: Int = AdmissionRequest.defaultThrottledRequestsPerMinute

    /// The tokens a tier bundles per calendar month (UTC).
    public struct Quota: Sendable, Equatable {
        public enum WhenExhausted: String, Sendable, Equatable, CaseIterable {
            /// Serve, and bill the tokens beyond the quota at the overage price.
            case overage
            /// Serve in the lowest band at the throttled rate.
            case throttle
            /// Refuse with 429 `insufficient_quota` until the month resets.
            case block
        }

        public var monthlyTokens: Int
        public var whenExhausted: WhenExhausted

        public init(monthlyTokens: Int, whenExhausted: WhenExhausted) {
            self.monthlyTokens = max(0, monthlyTokens)
            self.whenExhausted = whenExhausted
        }
    }

    /// The band a throttled request dispatches in: below every tier's.
    public static let throttledBand = 0

    /// The same contract for a request admitted at the throttled rate: the lowest band,
    /// no reserved capacity, the smallest share.
    public var throttled: Contract {
        var contract = self
        contract.band = Self.throttledBand
        contract.weight = 1
        contract.reservedShare = 0
        return contract
    }

    /// The parts of a contract a tenant can have set apart from its tier.
    public struct Overrides: Sendable, Equatable {
        public var requestsPerMinute: Int?
        public var tokensPerMinute: Int?
        public var concurrentRequests: Int?
        public var pinning: [String: String]

        public init(
            requestsPerMinute: Int? = nil,
            tokensPerMinute: Int? = nil,
            concurrentRequests: Int? = nil,
            pinning: [String: String] = [:]
        ) {
            self.requestsPerMinute = requestsPerMinute
            self.tokensPerMinute = tokensPerMinute
            self.concurrentRequests = concurrentRequests
            self.pinning = pinning
        }
    }

    /// - Parameters:
    ///   - tier: The tier's name.
    ///   - band: The tier's `priority`.
    ///   - weight: The fair-share weight, at least 1.
    ///   - limits: The tier's rate limits.
    ///   - reservedShare: Clamped to 0…1.
    ///   - models: nil is every model.
    public init(
        tier: String,
        band: Int,
        weight: Int = 1,
        limits: TenantLimits = .unlimited,
        reservedShare: Double = 0,
        maximumQueueWait: Duration? = nil,
        spillOver: SpillOver = .never,
        spillAfter: Duration = .zero,
        maximumSpillPricePerMillion: Int? = nil,
        models: Set<String>? = nil,
        pinning: [String: String] = [:]
    ) {
        self.tier = tier
        self.band = band
        self.weight = max(1, weight)
        self.limits = limits
        self.reservedShare = reservedShare.isFinite ? min(1, max(0, reservedShare)) : 0
        self.maximumQueueWait = maximumQueueWait
        self.spillOver = spillOver
        self.spillAfter = spillAfter
        self.maximumSpillPricePerMillion = maximumSpillPricePerMillion
        self.models = models
        self.pinning = pinning
    }

    /// The contract of a tier no longer configured: it includes no model, so its tenants
    /// are refused rather than served on terms nobody set.
    public static func lapsed(tier: String) -> Contract {
        Contract(tier: tier, band: 0, models: [])
    }

    /// This tier's contract for one tenant: each limit the tenant overrides replaced, and
    /// its pinning added.
    public func applying(_ overrides: Overrides) -> Contract {
        var contract = self
        contract.limits = TenantLimits(
            requestsPerMinute: overrides.requestsPerMinute ?? limits.requestsPerMinute,
            tokensPerMinute: overrides.tokensPerMinute ?? limits.tokensPerMinute,
            concurrentRequests: overrides.concurrentRequests ?? limits.concurrentRequests
        )
        contract.pinning = overrides.pinning
        return contract
    }

    /// Whether the contract includes `model`.
    public func allows(model: String) -> Bool {
        models?.contains(model) ?? true
    }
}
