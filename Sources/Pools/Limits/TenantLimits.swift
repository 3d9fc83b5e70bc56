/// The rate limits of a tenant's contract: its tier's defaults with the tenant's own
/// overrides already applied. Each limit is optional; nil means unlimited.
public struct TenantLimits: Sendable, Hashable, Codable {
    /// Requests admitted per minute (`rpm`).
    public var requestsPerMinute: Int?
    /// Tokens per minute (`tpm`): prompt tokens plus output tokens.
    public var tokensPerMinute: Int?
    /// Requests in flight at once.
    public var concurrentRequests: Int?

    /// No limit at all.
    public static let unlimited = TenantLimits()

    /// The largest value any limit may be set to, in configuration or by an operator:
    /// far above real contracts, and low enough for the Redis scripts' exact arithmetic.
    public static let largestLimit = 1_000_000_000

    /// - Parameters:
    ///   - requestsPerMinute: Requests per minute; nil is unlimited, 0 admits nothing.
    ///   - tokensPerMinute: Tokens per minute; nil is unlimited.
    ///   - concurrentRequests: Requests in flight at once; nil is unlimited.
    public init(requestsPerMinute: Int? = nil, tokensPerMinute: Int? = nil, concurrentRequests: Int? = nil) {
        // Negative limits are configuration mistakes; reading them as "admit nothing"
        // fails safe instead of trapping in the request path.
        self.requestsPerMinute = requestsPerMinute.map { max(0, $0) }
        self.tokensPerMinute = tokensPerMinute.map { max(0, $0) }
        self.concurrentRequests = concurrentRequests.map { max(0, $0) }
    }

    /// True when no limit is set.
    public var isUnlimited: Bool {
        requestsPerMinute == nil && tokensPerMinute == nil && concurrentRequests == nil
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            requestsPerMinute: try container.decodeIfPresent(Int.self, forKey: .requestsPerMinute),
            tokensPerMinute: try container.decodeIfPresent(Int.self, forKey: .tokensPerMinute),
            concurrentRequests: try container.decodeIfPresent(Int.self, forKey: .concurrentRequests)
        )
    }

    private enum CodingKeys: String, CodingKey {
        case requestsPerMinute = "requests_per_minute"
        case tokensPerMinute = "tokens_per_minute"
        case concurrentRequests = "concurrent_requests"
    }
}
