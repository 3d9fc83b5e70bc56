/// A tenant's own rate limits, replacing its tier's. A nil field means the tier's value applies.
public struct TenantLimitOverrides: Sendable, Equatable, Hashable {
    public var requestsPerMinute: Int?
    public var tokensPerMinute: Int?
    public var concurrentRequests: Int?

    public init(requestsPerMinute: Int? = nil, tokensPerMinute: Int? = nil, concurrentRequests: Int? = nil) {
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
        self.concurrentRequests = concurrentRequests
    }

    /// Whether nothing is overridden, so the tier's limits apply unchanged.
    public var isEmpty: Bool {
        requestsPerMinute == nil && tokensPerMinute == nil && concurrentRequests == nil
    }
}
