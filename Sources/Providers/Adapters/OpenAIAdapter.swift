import NIOCore

/// The adapter for upstreams that already speak OpenAI's format: OpenAI, Azure OpenAI and
/// self-hosted engines. Requests are spliced (model rewritten, usage forced on for
/// streams), never decoded; answers are relayed as they arrive.
public struct OpenAIAdapter: ProviderAdapter {
    public init() {}

    public func makeRequest(
        head: InferenceRequestHead,
        body: ByteBuffer,
        deployment: DeploymentSettings,
        endpoint: ProviderEndpoint
    ) throws(OpenAIError) -> UpstreamRequest {
        var headers: HeaderFields = [
            ("content-type", "application/json"),
            ("accept", head.stream ? "text/event-stream" : "application/json"),
        ]
        headers.append(contentsOf: endpoint.credentialHeaders)
        return UpstreamRequest(
            url: try endpoint.url(for: head.endpoint, upstreamModel: deployment.upstreamModel),
            headers: headers,
            body: head.upstreamBody(from: body, upstreamModel: deployment.upstreamModel)
        )
    }

    public var translatesResponses: Bool { false }

    /// The body is already OpenAI's; only its usage is read.
    public func translateResponse(_ body: ByteBuffer, head: InferenceRequestHead, labels: ResponseLabels) throws(OpenAIError) -> TranslatedResponse {
        TranslatedResponse(body: body, usage: TokenUsage.fromResponseBody(body))
    }

    public func makeStreamTranslator(head: InferenceRequestHead, labels: ResponseLabels) -> any StreamTranslator {
        OpenAIStreamRelay(clientWantsUsage: head.clientWantsUsage)
    }

    public func mapError(status: Int, headers: HeaderFields, body: ByteBuffer) -> UpstreamFailure {
        let signals = rateLimitSignals(status: status, headers: headers, body: body)
        return UpstreamFailure(
            error: UpstreamError.map(status: status, body: body),
            retryable: signals.shouldRetry ?? UpstreamError.isRetryable(status: status),
            signals: signals
        )
    }

    public func rateLimitSignals(status: Int, headers: HeaderFields, body: ByteBuffer?) -> RateLimitSignals {
        RateLimitSignals.openAI(headers: headers)
    }
}
