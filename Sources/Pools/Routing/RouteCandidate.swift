/// One deployment a request may be sent to, as routing sees it.
public struct RouteCandidate: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// A self-hosted engine pool with this many replicas.
        case engine(replicas: Int)
        /// An external provider: each attempt draws a key from its pool.
        case keyPool
    }

    /// The deployment's id.
    public var id: String
    public var kind: Kind
    public var inputPricePerMillion: Int64
    public var outputPricePerMillion: Int64
    /// Whether the provider has a key at all (an engine always can serve).
    public var hasKeys: Bool

    public init(id: String, kind: Kind, inputPricePerMillion: Int64 = 0, outputPricePerMillion: Int64 = 0, hasKeys: Bool = true) {
        self.id = id
        self.kind = kind
        self.inputPricePerMillion = inputPricePerMillion
        self.outputPricePerMillion = outputPricePerMillion
        self.hasKeys = hasKeys
    }

    public var isEngine: Bool {
        if case .engine = kind { true } else { false }
    }

    /// The price of a request as it is expected to be, in micro-units (unrounded; for ranking).
    public func expectedCost(promptTokens: Int, outputTokens: Int) -> Double {
        (Double(promptTokens) * Double(inputPricePerMillion) + Double(outputTokens) * Double(outputPricePerMillion)) / 1e6
    }

    /// The blended price per million tokens, three input tokens to one output token: what
    /// a contract's `max_spill_price_per_million` is compared with.
    public var blendedPricePerMillion: Int64 {
        (3 * inputPricePerMillion + outputPricePerMillion) / 4
    }
}
