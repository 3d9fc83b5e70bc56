extension GeminiRequest {
    /// Translates an OpenAI Chat Completions request.
    ///
    /// - Throws: `OpenAIError` 400 naming the parameter or message Gemini cannot honour.
    ///
    /// - Parameters:
    ///   - upstreamModel: the Gemini model, whose generation decides how a reasoning
    ///     effort is said (Gemini 3 takes a thinking level, earlier models a budget).
    ///   - exposeReasoning: whether the deployment exposes reasoning: thought summaries
    ///     are asked for even when the request set no `reasoning_effort`.
    init(_ chat: ChatRequest, upstreamModel: String = "", exposeReasoning: Bool = false) throws(OpenAIError) {
        try Self.refuseUnsupported(chat)
        let conversation = try GeminiConversation(chat.messages)
        self.init(contents: conversation.contents, systemInstruction: conversation.systemInstruction)
        tools = try Self.tools(chat.tools)
        toolConfig = Self.toolConfig(chat.toolChoice)
        var config = Self.generationConfig(chat)
        config.thinkingConfig = try Self.thinkingConfig(
            effort: chat.reasoningEffort, upstreamModel: upstreamModel, exposeReasoning: exposeReasoning
        )
        generationConfig = config.isEmpty ? nil : config
    }

    /// OpenAI's `reasoning_effort` in Gemini's terms, as Google's own OpenAI layer maps
    /// it: Gemini 3 models take `thinkingLevel` (`low`, `high`), earlier ones a token
    /// budget (1,024, 8,192, 24,576; `none` turns thinking off where the model allows).
    /// Thought summaries are included when the request asked for reasoning or the
    /// deployment exposes it.
    static func thinkingConfig(effort: String?, upstreamModel: String, exposeReasoning: Bool) throws(OpenAIError) -> GeminiThinkingConfig? {
        let modelName = upstreamModel.split(separator: "/").last.map(String.init) ?? upstreamModel
        let levels = modelName.hasPrefix("gemini-3")
        var config = GeminiThinkingConfig()
        switch effort {
        case nil:
            break
        case "none":
            if levels { config.thinkingLevel = "low" } else { config.thinkingBudget = 0 }
        case "minimal", "low":
            if levels { config.thinkingLevel = "low" } else { config.thinkingBudget = 1024 }
        case "medium":
            if levels { config.thinkingLevel = "high" } else { config.thinkingBudget = 8192 }
        case "high", "xhigh":
            if levels { config.thinkingLevel = "high" } else { config.thinkingBudget = 24576 }
        case let other?:
            throw OpenAIError.invalidRequest(
                "Invalid value for 'reasoning_effort': '\(other.prefix(40))'. Supported values are: 'none', 'minimal', 'low', 'medium', 'high' and 'xhigh'.",
                param: "reasoning_effort", code: "invalid_value"
            )
        }
        let asked = effort.map { $0 != "none" } ?? false
        if asked || (exposeReasoning && effort == nil) { config.includeThoughts = true }
        return config == GeminiThinkingConfig() ? nil : config
    }

    // MARK: What Gemini cannot do

    /// The top-level keys a Chat Completions request may carry to a Gemini deployment.
    /// Every other key is refused rather than dropped, because it would change the answer.
    static let acceptedKeys: Set<String> = [
        "model", "messages", "stream", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop",
        "presence_penalty", "frequency_penalty", "seed", "tools", "tool_choice", "response_format",
        // Accepted only with values Gemini can honour; checked in `refuseUnsupported`.
        "n", "logprobs", "top_logprobs", "logit_bias", "parallel_tool_calls",
        // Read by the proxy itself (usage is always metered), not sent upstream.
        "stream_options",
        // End-user and cache identifiers for OpenAI's abuse monitoring and prompt cache
        // routing: nothing in Gemini takes them, and they do not change the answer.
        "user", "safety_identifier", "prompt_cache_key",
        // OpenAI-side storage and its tags (distillation, evals): Gemini stores nothing.
        "store", "metadata",
        // OpenAI's processing tier: latency and price, not content.
        "service_tier",
        // Mapped to Gemini's thinking configuration.
        "reasoning_effort",
    ]

    private static func refuseUnsupported(_ chat: ChatRequest) throws(OpenAIError) {
        if let key = chat.presentKeys.subtracting(acceptedKeys).sorted().first {
            throw unsupported(key, "It is not supported with this model")
        }
        if let n = chat.n, n != 1 {
            throw unsupported("n", "This model returns one choice; 'n' must be 1")
        }
        if chat.logprobs == true {
            // ChatCompletionEncoder writes no logprobs, so Gemini's could not be relayed.
            throw unsupported("logprobs", "Log probabilities are not available with this model")
        }
        if let top = chat.topLogprobs, top > 0 {
            throw unsupported("top_logprobs", "Log probabilities are not available with this model")
        }
        if let bias = chat.logitBias, !bias.isEmpty {
            throw unsupported("logit_bias", "Token bias is not available with this model")
        }
        if chat.parallelToolCalls == false {
            throw unsupported("parallel_tool_calls", "This model cannot be limited to one tool call per answer")
        }
        if let seed = chat.seed, Int32(exactly: seed) == nil {
            throw OpenAIError.invalidRequest(
                "Invalid value for 'seed': this model takes a 32-bit seed.", param: "seed", code: "invalid_value"
            )
        }
    }

    private static func unsupported(_ key: String, _ reason: String) -> OpenAIError {
        OpenAIError.invalidRequest(
            "Unsupported parameter: '\(key)'. \(reason).", param: key, code: "unsupported_parameter"
        )
    }

    // MARK: Tools

    private static func tools(_ tools: [Tool]?) throws(OpenAIError) -> [GeminiTool]? {
        guard let tools, !tools.isEmpty else { return nil }
        var declarations: [GeminiFunctionDeclaration] = []
        for (index, tool) in tools.enumerated() {
            guard tool.type == "function" else {
                throw OpenAIError.invalidRequest(
                    "Tools of type '\(tool.type)' are not supported with this model.", param: "tools[\(index)].type", code: "invalid_value"
                )
            }
            // `strict` has no Gemini counterpart per declaration; Gemini follows the
            // declared schema without OpenAI's guarantee.
            declarations.append(GeminiFunctionDeclaration(
                name: tool.function.name,
                description: tool.function.description ?? "",
                parametersJsonSchema: tool.function.parameters
            ))
        }
        return [GeminiTool(functionDeclarations: declarations)]
    }

    private static func toolConfig(_ choice: ToolChoice?) -> GeminiToolConfig? {
        guard let choice else { return nil }
        let config: GeminiToolConfig.FunctionCallingConfig
        switch choice {
        case .auto: config = .init(mode: "AUTO")
        case .none: config = .init(mode: "NONE")
        case .required: config = .init(mode: "ANY")
        case .function(let name): config = .init(mode: "ANY", allowedFunctionNames: [name])
        }
        return GeminiToolConfig(functionCallingConfig: config)
    }

    // MARK: Generation

    private static func generationConfig(_ chat: ChatRequest) -> GeminiGenerationConfig {
        var config = GeminiGenerationConfig(
            candidateCount: chat.n,
            stopSequences: chat.stop.map(\.values).flatMap { $0.isEmpty ? nil : $0 },
            maxOutputTokens: chat.maximumOutputTokens,
            temperature: chat.temperature,
            topP: chat.topP,
            seed: chat.seed,
            presencePenalty: chat.presencePenalty,
            frequencyPenalty: chat.frequencyPenalty
        )
        switch chat.responseFormat {
        case nil, .text:
            break
        case .jsonObject:
            config.responseMimeType = "application/json"
        case .jsonSchema(_, let schema, _):
            // OpenAI's `strict` has no counterpart: Gemini constrains output to the schema.
            config.responseMimeType = "application/json"
            config.responseJsonSchema = schema
        }
        return config
    }
}
