import Foundation
import NIOCore

extension AnthropicAdapter {
    /// Builds the Messages request for an OpenAI Chat Completions request.
    ///
    /// - Throws: `OpenAIError` 400 for another operation (code `unsupported_endpoint`), a
    ///   malformed request, or a parameter Anthropic cannot honour (named in `param`).
    public func makeRequest(
        head: InferenceRequestHead,
        body: ByteBuffer,
        deployment: DeploymentSettings,
        endpoint: ProviderEndpoint
    ) throws(OpenAIError) -> UpstreamRequest {
        guard head.endpoint == .chatCompletions else {
            throw .invalidRequest(
                "This model serves chat/completions only; '\(head.endpoint.rawValue)' is not available for this model.",
                code: "unsupported_endpoint"
            )
        }
        let chat = try ChatRequest.decode(body)
        try Self.refuseUnsupported(chat)
        let request = try AnthropicMessagesRequest(chat: chat, deployment: deployment, stream: head.stream)

        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        guard let data = try? encoder.encode(request) else {
            throw OpenAIError(status: 500, message: "Switchyard could not write the upstream request.", type: "server_error")
        }
        var headers: HeaderFields = [
            ("content-type", "application/json"),
            ("accept", head.stream ? "text/event-stream" : "application/json"),
            ("anthropic-version", Self.apiVersion),
        ]
        if let apiKey = endpoint.apiKey { headers.append(("x-api-key", apiKey)) }
        return UpstreamRequest(url: Self.messagesURL(baseURL: endpoint.baseURL), headers: headers, body: ByteBuffer(bytes: data))
    }

    /// `{base}/v1/messages`; a base URL that already ends in `/v1` is taken as meant.
    static func messagesURL(baseURL: String) -> String {
        baseURL.hasSuffix("/v1") ? "\(baseURL)/messages" : "\(baseURL)/v1/messages"
    }

    // MARK: Parameters

    /// Parameters translated into the Messages request.
    static let translatedParameters: Set<String> = [
        "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "temperature",
        "top_p", "stop", "user", "safety_identifier", "tools", "tool_choice", "parallel_tool_calls",
        "response_format", "thinking", "reasoning_effort",
    ]

    /// Parameters Anthropic has no counterpart for, accepted only at values that change
    /// nothing (checked in `refuseUnsupported`).
    static let checkedParameters: Set<String> = [
        "n", "logprobs", "top_logprobs", "logit_bias", "presence_penalty", "frequency_penalty", "modalities",
    ]

    /// Parameters dropped because they do not change the answer, following what
    /// Anthropic's own OpenAI layer ignores (specs/anthropic/openai-sdk.md): `store` and
    /// `metadata` label stored completions; `service_tier` picks capacity, not content;
    /// `seed` only ever promised best-effort repeatability; `prompt_cache_key` is a
    /// caching hint.
    static let ignoredParameters: Set<String> = [
        "store", "metadata", "service_tier", "seed", "prompt_cache_key",
    ]

    /// Refuses what would change the answer and Anthropic cannot do: any top-level
    /// parameter not known above (audio, prediction, web search, functions, …), and
    /// known ones at values Anthropic cannot honour.
    ///
    /// - Throws: `OpenAIError` 400 naming the parameter, code `unsupported_parameter`.
    static func refuseUnsupported(_ chat: ChatRequest) throws(OpenAIError) {
        let known = translatedParameters.union(checkedParameters).union(ignoredParameters)
        if let unknown = chat.presentKeys.subtracting(known).sorted().first {
            throw unsupported(unknown, "'\(unknown)' is not supported for this model.")
        }
        if let n = chat.n, n != 1 {
            throw unsupported("n", "This model returns exactly one choice; 'n' must be 1.")
        }
        if chat.logprobs == true {
            throw unsupported("logprobs", "'logprobs' is not supported for this model.")
        }
        if let topLogprobs = chat.topLogprobs, topLogprobs > 0 {
            throw unsupported("top_logprobs", "'top_logprobs' is not supported for this model.")
        }
        if let logitBias = chat.logitBias, !logitBias.isEmpty {
            throw unsupported("logit_bias", "'logit_bias' is not supported for this model.")
        }
        if let penalty = chat.presencePenalty, penalty != 0 {
            throw unsupported("presence_penalty", "'presence_penalty' is not supported for this model.")
        }
        if let penalty = chat.frequencyPenalty, penalty != 0 {
            throw unsupported("frequency_penalty", "'frequency_penalty' is not supported for this model.")
        }
        if let modalities = chat.modalities, modalities != .array([.string("text")]) {
            throw unsupported("modalities", "This model answers with text only; 'modalities' must be [\"text\"].")
        }
    }

    private static func unsupported(_ param: String, _ message: String) -> OpenAIError {
        .invalidRequest(message, param: param, code: "unsupported_parameter")
    }
}
