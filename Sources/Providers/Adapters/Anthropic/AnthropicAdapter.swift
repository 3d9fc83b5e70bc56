import NIOCore

/// The adapter for Anthropic's Messages API: translates OpenAI Chat Completions requests
/// into Messages requests, and Messages answers and streams back into OpenAI's format.
/// Pure translation; the proxy does the I/O.
public struct AnthropicAdapter: ProviderAdapter {
    /// The API version Switchyard speaks (the `anthropic-version` header).
    static let apiVersion = "2023-06-01"

    public init() {}

    public var translatesResponses: Bool { true }

    public func makeStreamTranslator(head: InferenceRequestHead, labels: ResponseLabels) -> any StreamTranslator {
        AnthropicStreamTranslator(clientWantsUsage: head.clientWantsUsage, labels: labels)
    }

    public func mapError(status: Int, headers: HeaderFields, body: ByteBuffer) -> UpstreamFailure {
        let signals = rateLimitSignals(status: status, headers: headers, body: body)
        return UpstreamFailure(
            error: AnthropicError.map(status: status, body: body),
            status: status,
            signals: signals
        )
    }

    /// Anthropic's `anthropic-ratelimit-*` headers plus `retry-after` and `x-should-retry`;
    /// its error bodies say nothing more about capacity.
    public func rateLimitSignals(status: Int, headers: HeaderFields, body: ByteBuffer?) -> RateLimitSignals {
        RateLimitSignals.anthropic(headers: headers)
    }
}
