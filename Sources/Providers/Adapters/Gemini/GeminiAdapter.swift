import Foundation
import NIOCore

/// The adapter for Google's Gemini API (generativelanguage v1beta): OpenAI Chat
/// Completions requests become `generateContent` / `streamGenerateContent?alt=sse`
/// requests, and Gemini's answers, streams and errors come back in OpenAI's format.
///
/// Parameters Gemini cannot honour are refused with a 400 naming them, never dropped.
/// Embeddings and legacy completions are not offered.
public struct GeminiAdapter: ProviderAdapter {
    public init() {}

    public func makeRequest(
        head: InferenceRequestHead,
        body: ByteBuffer,
        deployment: DeploymentSettings,
        endpoint: ProviderEndpoint
    ) throws(OpenAIError) -> UpstreamRequest {
        guard head.endpoint == .chatCompletions else {
            throw OpenAIError.invalidRequest(
                "This model does not support the \(head.endpoint.rawValue) endpoint.",
                code: "unsupported_endpoint"
            )
        }
        let request = try GeminiRequest(
            ChatRequest.decode(body), upstreamModel: deployment.upstreamModel,
            exposeReasoning: deployment.exposeReasoning
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        guard let json = try? encoder.encode(request) else {
            throw OpenAIError.invalidRequest("The request could not be translated for this model.")
        }
        var headers: HeaderFields = [("content-type", "application/json")]
        if let apiKey = endpoint.apiKey { headers.append(("x-goog-api-key", apiKey)) }
        return UpstreamRequest(
            url: Self.url(base: endpoint.baseURL, model: deployment.upstreamModel, stream: head.stream),
            headers: headers,
            body: ByteBuffer(bytes: json)
        )
    }

    /// `{base}/models/{model}:generateContent`, or the streaming method with SSE framing.
    /// A model given with its collection (`models/…`, `tunedModels/…`) is used as is.
    static func url(base: String, model: String, stream: Bool) -> String {
        let resource = model.contains("/") ? model : "models/\(model)"
        return stream ? "\(base)/\(resource):streamGenerateContent?alt=sse" : "\(base)/\(resource):generateContent"
    }

    public var translatesResponses: Bool { true }

    public func makeStreamTranslator(head: InferenceRequestHead, labels: ResponseLabels) -> any StreamTranslator {
        GeminiStreamTranslator(labels: labels, clientWantsUsage: head.clientWantsUsage)
    }

    // MARK: Errors and capacity

    public func mapError(status: Int, headers: HeaderFields, body: ByteBuffer) -> UpstreamFailure {
        let signals = rateLimitSignals(status: status, headers: headers, body: body)
        let error: OpenAIError
        if let gemini = GeminiError.decode(body) {
            error = gemini.openAIError(httpStatus: status)
        } else if status == 404 {
            // Not Google's answer about a model but a path it does not serve: a
            // deployment's base URL is wrong, which is no fault of the client's.
            error = .upstreamFailed("The upstream answered 404 Not Found.")
        } else {
            error = GeminiError(code: status).openAIError(httpStatus: status)
        }
        return UpstreamFailure(
            error: error,
            status: status,
            signals: signals
        )
    }

    /// Gemini sends no rate-limit headers; a 429 says how long to wait in the body's
    /// `google.rpc.RetryInfo`. A `retry-after` header, should one come, wins.
    public func rateLimitSignals(status: Int, headers: HeaderFields, body: ByteBuffer?) -> RateLimitSignals {
        var signals = RateLimitSignals()
        signals.readCommonHeaders(headers)
        if signals.retryAfter == nil, let body, let delay = GeminiError.decode(body)?.retryDelay {
            signals.retryAfter = delay
        }
        return signals
    }
}
