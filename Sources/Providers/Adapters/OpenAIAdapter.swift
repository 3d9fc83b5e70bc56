import NIOCore

/// The adapter for upstreams that already speak OpenAI's format: OpenAI, Azure OpenAI and
/// self-hosted engines. Requests are spliced (model rewritten, usage forced on for
/// streams), never decoded; answers are relayed as they arrive.
///
/// An engine's answers also have its quirks fixed (`EngineStreamQuirks`,
/// `EngineResponseQuirks`): its streams as they go by, its non-streaming chat answers
/// once whole, since a fix there can depend on a later member.
public struct OpenAIAdapter: ProviderAdapter {
    /// Which OpenAI-format upstream this adapter fronts: `.engine` turns on the quirk
    /// fixes; any other kind relays answers as they are.
    public let kind: ProviderKind

    /// - Parameter kind: the upstream's kind; OpenAI unless told.
    public init(kind: ProviderKind = .openai) {
        self.kind = kind
    }

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
            body: head.upstreamBody(
                from: body, upstreamModel: deployment.upstreamModel, priority: kind == .engine ? deployment.enginePriority : nil
            )
        )
    }

    /// Only an engine's answers are collected, to have their quirks fixed.
    public var translatesResponses: Bool { kind == .engine }

    /// Engine chat and completions answers are fixed up whole (they are small); embeddings,
    /// which can be large, are relayed as they arrive.
    public func translatesResponses(for endpoint: InferenceEndpoint) -> Bool {
        kind == .engine && endpoint != .embeddings
    }

    /// The body is already OpenAI's; an engine's chat or completions answer has its
    /// quirks fixed, and the usage is read.
    public func translateResponse(_ body: ByteBuffer, head: InferenceRequestHead, labels: ResponseLabels) throws(OpenAIError) -> TranslatedResponse {
        guard kind == .engine, head.endpoint != .embeddings else {
            return TranslatedResponse(body: body, usage: TokenUsage.fromResponseBody(body))
        }
        let normalised = EngineResponseQuirks.normalise(body, labels: labels)
        return TranslatedResponse(body: normalised, usage: TokenUsage.fromResponseBody(normalised))
    }

    public func makeStreamTranslator(head: InferenceRequestHead, labels: ResponseLabels) -> any StreamTranslator {
        OpenAIStreamRelay(clientWantsUsage: head.clientWantsUsage, labels: labels, engine: kind == .engine)
    }

    public func mapError(status: Int, headers: HeaderFields, body: ByteBuffer) -> UpstreamFailure {
        let signals = rateLimitSignals(status: status, headers: headers, body: body)
        return UpstreamFailure(
            error: UpstreamError.map(status: status, body: body),
            status: status,
            signals: signals
        )
    }

    public func rateLimitSignals(status: Int, headers: HeaderFields, body: ByteBuffer?) -> RateLimitSignals {
        RateLimitSignals.openAI(headers: headers)
    }
}
