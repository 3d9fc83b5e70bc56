/// What a provider said about its capacity in one response: limits, what remains, when
/// windows reset, and how long to wait before retrying. Every field is optional because
/// providers report different subsets. Durations are relative to the response.
public struct RateLimitSignals: Sendable, Equatable {
    public struct Window: Sendable, Equatable {
        public var limit: Int?
        public var remaining: Int?
        /// Until the window is full again.
        public var reset: Duration?

        public init(limit: Int? = nil, remaining: Int? = nil, reset: Duration? = nil) {
            self.limit = limit
            self.remaining = remaining
            self.reset = reset
        }

        public var isEmpty: Bool { limit == nil && remaining == nil && reset == nil }
    }

    public var requests = Window()
    public var tokens = Window()
    /// Anthropic reports input and output token windows apart.
    public var inputTokens = Window()
    public var outputTokens = Window()
    /// `retry-after` / `retry-after-ms` / Gemini's `RetryInfo.retryDelay`.
    public var retryAfter: Duration?
    /// `x-should-retry`, when the provider says.
    public var shouldRetry: Bool?

    public init() {}

    public var isEmpty: Bool {
        requests.isEmpty && tokens.isEmpty && inputTokens.isEmpty && outputTokens.isEmpty
            && retryAfter == nil && shouldRetry == nil
    }
}
