import NIOCore

/// HTTP header fields as name/value pairs, lowercase names.
public typealias HeaderFields = [(name: String, value: String)]

/// One request ready to send upstream.
public struct UpstreamRequest: Sendable {
    public var url: String
    public var headers: HeaderFields
    public var body: ByteBuffer

    public init(url: String, headers: HeaderFields, body: ByteBuffer) {
        self.url = url
        self.headers = headers
        self.body = body
    }
}

/// What an adapter needs to know about the deployment it sends to.
public struct DeploymentSettings: Sendable {
    /// The model name the upstream knows.
    public var upstreamModel: String
    /// Output tokens to ask for when the client set no limit, for providers that
    /// require one (Anthropic).
    public var defaultMaxTokens: Int
    /// vLLM's `priority` for this request (lower is served first), for engines told the
    /// request's band; nil sends the client's body as it is.
    public var enginePriority: Int?
    /// Whether answers carry the model's reasoning without the request asking for it.
    public var exposeReasoning: Bool

    public init(upstreamModel: String, defaultMaxTokens: Int = 4096, enginePriority: Int? = nil, exposeReasoning: Bool = false) {
        self.upstreamModel = upstreamModel
        self.defaultMaxTokens = defaultMaxTokens
        self.enginePriority = enginePriority
        self.exposeReasoning = exposeReasoning
    }

    /// Whether reasoning goes to the client for `head`: the deployment exposes it, or the
    /// request asked for reasoning.
    public func exposesReasoning(for head: InferenceRequestHead) -> Bool {
        exposeReasoning || head.asksForReasoning
    }
}

/// How answers are labelled, and what they may carry besides what the upstream sent.
public struct ResponseLabels: Sendable {
    /// The `id` of the completion, e.g. `chatcmpl-req_…`.
    public var id: String
    /// Unix seconds.
    public var created: Int
    /// The public model the tenant asked for: every answer, chunk and usage chunk names
    /// it, never the upstream model behind it.
    public var model: String
    /// Whether reasoning (Anthropic thinking, Gemini thought summaries) goes to the client
    /// as `reasoning_content`: the deployment exposes it, or the request set
    /// `reasoning_effort`.
    public var exposeReasoning: Bool
    /// Prompt tokens to report when the upstream reports none: the estimate the ledger
    /// records, from the request's size.
    public var promptTokenEstimate: Int
    /// Scrubs the provider's words in a stream's error event (the one part of a stream
    /// that carries them) before it is encoded: the key it was sent with, the upstream
    /// model, provider names and links.
    public var redaction: SecretRedaction

    public init(
        id: String, created: Int, model: String, exposeReasoning: Bool = false, promptTokenEstimate: Int = 0,
        redaction: SecretRedaction = .credentialShapes
    ) {
        self.id = id
        self.created = created
        self.model = model
        self.exposeReasoning = exposeReasoning
        self.promptTokenEstimate = promptTokenEstimate
        self.redaction = redaction
    }

    /// The usage to report for an answer whose upstream reported none: the prompt
    /// estimate and one token per content chunk, flagged estimated.
    public func estimatedUsage(contentChunks: Int) -> TokenUsage {
        TokenUsage(promptTokens: promptTokenEstimate, completionTokens: contentChunks, estimated: true)
    }
}

/// A successful non-streaming answer in OpenAI's format.
public struct TranslatedResponse: Sendable {
    public var body: ByteBuffer
    public var usage: TokenUsage?

    public init(body: ByteBuffer, usage: TokenUsage?) {
        self.body = body
        self.usage = usage
    }
}

/// An upstream's error answer, in OpenAI's terms.
public struct UpstreamFailure: Sendable {
    public var error: OpenAIError
    /// Whether another key or deployment may succeed where this one failed: rate limits,
    /// overload, 5xx, timeouts; not 400/401/403/404.
    public var retryable: Bool
    public var signals: RateLimitSignals

    public init(error: OpenAIError, retryable: Bool, signals: RateLimitSignals) {
        self.error = error
        self.retryable = retryable
        self.signals = signals
    }

    /// A failure whose retryability follows the status (timeouts, rate limits, overload
    /// and server errors), unless the provider said otherwise with `x-should-retry`.
    public init(error: OpenAIError, status: Int, signals: RateLimitSignals) {
        self.init(error: error, retryable: signals.shouldRetry ?? UpstreamError.isRetryable(status: status), signals: signals)
    }
}

/// Translates between OpenAI's Chat Completions format, which tenants speak, and one
/// provider's wire format. Pure translation: no I/O, routing or money.
public protocol ProviderAdapter: Sendable {
    /// Builds the upstream request for an OpenAI request of `head.endpoint`.
    ///
    /// - Throws: `OpenAIError` 400 naming a parameter the provider cannot honour, or 400
    ///   `unsupported_endpoint` for an operation (completions, embeddings) it does not offer.
    func makeRequest(
        head: InferenceRequestHead,
        body: ByteBuffer,
        deployment: DeploymentSettings,
        endpoint: ProviderEndpoint
    ) throws(OpenAIError) -> UpstreamRequest

    /// Whether successful non-streaming answers must be collected and translated (else
    /// they are relayed as they arrive, in OpenAI's format already).
    var translatesResponses: Bool { get }

    /// The same, per operation: an adapter may fix up some answers (engine chat) and
    /// relay others untouched (large embeddings).
    func translatesResponses(for endpoint: InferenceEndpoint) -> Bool

    /// Translates a complete successful non-streaming answer.
    func translateResponse(_ body: ByteBuffer, head: InferenceRequestHead, labels: ResponseLabels) throws(OpenAIError) -> TranslatedResponse

    /// A translator for one successful streaming answer.
    func makeStreamTranslator(head: InferenceRequestHead, labels: ResponseLabels) -> any StreamTranslator

    /// Maps an error answer (any status outside 2xx).
    func mapError(status: Int, headers: HeaderFields, body: ByteBuffer) -> UpstreamFailure

    /// What the provider said about its capacity in a response's headers (and, for some
    /// providers, an error body).
    func rateLimitSignals(status: Int, headers: HeaderFields, body: ByteBuffer?) -> RateLimitSignals
}

extension ProviderAdapter {
    public func translatesResponses(for endpoint: InferenceEndpoint) -> Bool { translatesResponses }
}

/// Turns one upstream stream into OpenAI `chat.completion.chunk` server-sent events,
/// whatever the chunk boundaries. A value-type state machine: feed bytes, get bytes.
///
/// A successful stream ends with a chunk carrying `finish_reason`, then the usage chunk
/// when the client asked for it, then `data: [DONE]`. An upstream error mid-stream
/// becomes `data: {"error":{...}}` and nothing follows it.
public protocol StreamTranslator: Sendable {
    /// Consumes the next upstream bytes; returns what to send to the client.
    mutating func translate(_ chunk: ByteBuffer) -> ByteBuffer
    /// The upstream ended; returns the closing events still owed to the client.
    mutating func finish() -> ByteBuffer
    /// The usage the upstream reported, once known.
    var usage: TokenUsage? { get }
    /// Chunks that carried choices: with no reported usage, a stand-in for output tokens.
    var contentChunks: Int { get }
    /// The error the upstream reported mid-stream, if it did (already sent to the client).
    var upstreamError: OpenAIError? { get }
}
