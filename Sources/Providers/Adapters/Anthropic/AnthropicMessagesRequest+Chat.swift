extension AnthropicMessagesRequest {
    /// Translates an OpenAI Chat Completions request whose unsupported parameters were
    /// already refused.
    ///
    /// - Parameters:
    ///   - chat: the decoded request.
    ///   - deployment: the upstream model and the output limit to use when none is given.
    ///   - stream: whether to ask for a stream.
    /// - Throws: `OpenAIError` 400 naming the part of the request Anthropic cannot take.
    init(
        chat: ChatRequest,
        deployment: DeploymentSettings,
        stream: Bool
    ) throws(OpenAIError) {
        let conversation = try Self.conversation(chat.messages)
        let tools = try Self.tools(chat.tools)
        var maxTokens = chat.maximumOutputTokens ?? deployment.defaultMaxTokens
        var thinking = chat.thinking
        if thinking == nil, let effort = chat.reasoningEffort {
            thinking = try Self.thinking(effort: effort, maxTokens: &maxTokens, clientSetMaximum: chat.maximumOutputTokens != nil)
        }
        self.init(
            model: deployment.upstreamModel,
            maxTokens: maxTokens,
            system: conversation.system,
            messages: conversation.turns,
            temperature: try Self.temperature(chat.temperature),
            topP: chat.topP,
            stopSequences: chat.stop.map(\.values).flatMap { $0.isEmpty ? nil : $0 },
            stream: stream ? true : nil,
            metadata: (chat.user ?? chat.safetyIdentifier).map { Metadata(userID: $0) },
            tools: tools,
            toolChoice: try Self.toolChoice(chat.toolChoice, parallelToolCalls: chat.parallelToolCalls, hasTools: tools != nil),
            outputConfig: try Self.outputConfig(chat.responseFormat),
            thinking: thinking
        )
    }

    /// OpenAI's `reasoning_effort` as extended thinking with a token budget (1,024 for
    /// `minimal` and `low`, 2,048 for `medium`, 4,096 for `high`, 8,192 for `xhigh`;
    /// `none` leaves thinking off). Anthropic wants the budget below `max_tokens`: with
    /// no limit from the client the limit grows to make room; a client's limit shrinks
    /// the budget, down to Anthropic's least of 1,024.
    static func thinking(effort: String, maxTokens: inout Int, clientSetMaximum: Bool) throws(OpenAIError) -> JSONValue? {
        var budget: Int
        switch effort {
        case "none": return nil
        case "minimal", "low": budget = 1024
        case "medium": budget = 2048
        case "high": budget = 4096
        case "xhigh": budget = 8192
        default:
            throw .invalidRequest(
                "Invalid value for 'reasoning_effort': '\(effort.prefix(40))'. Supported values are: 'none', 'minimal', 'low', 'medium', 'high' and 'xhigh'.",
                param: "reasoning_effort", code: "invalid_value"
            )
        }
        if budget >= maxTokens {
            if clientSetMaximum {
                budget = maxTokens - 1
                guard budget >= 1024 else {
                    throw .invalidRequest(
                        "'reasoning_effort' needs room to think: this model's thinking takes at least 1024 tokens, so 'max_tokens' must be above 1024.",
                        param: "max_tokens", code: "invalid_value"
                    )
                }
            } else {
                maxTokens = budget * 2
            }
        }
        return .object(["type": .string("enabled"), "budget_tokens": .number(Double(budget))])
    }

    /// Anthropic's range is 0…1. Its own OpenAI layer caps higher values at 1, which
    /// answers a different question than the client asked; Switchyard refuses instead.
    static func temperature(_ value: Double?) throws(OpenAIError) -> Double? {
        guard let value else { return nil }
        guard (0...1).contains(value) else {
            throw .invalidRequest(
                "This model accepts a temperature between 0 and 1; \(value) is out of range.",
                param: "temperature",
                code: "unsupported_value"
            )
        }
        return value
    }

    static func tools(_ tools: [Tool]?) throws(OpenAIError) -> [AnthropicToolParam]? {
        guard let tools, !tools.isEmpty else { return nil }
        var result: [AnthropicToolParam] = []
        for (index, tool) in tools.enumerated() {
            guard tool.type == "function" else {
                throw .invalidRequest(
                    "Tools of type '\(tool.type)' are not supported for this model; use 'function'.",
                    param: "tools[\(index)].type",
                    code: "unsupported_value"
                )
            }
            // `strict` is not forwarded: Anthropic's own OpenAI layer ignores it too, and
            // strict tools are refused by the Claude models that lack them.
            result.append(AnthropicToolParam(
                name: tool.function.name,
                description: tool.function.description,
                inputSchema: tool.function.parameters ?? .object(["type": .string("object"), "properties": .object([:])])
            ))
        }
        return result
    }

    /// OpenAI's `tool_choice` and `parallel_tool_calls` as one Anthropic `tool_choice`.
    static func toolChoice(_ choice: ToolChoice?, parallelToolCalls: Bool?, hasTools: Bool) throws(OpenAIError) -> AnthropicToolChoice? {
        let disableParallel: Bool? = parallelToolCalls == false ? true : nil
        guard hasTools else {
            switch choice {
            case .required, .function:
                throw .invalidRequest("'tool_choice' requires 'tools'.", param: "tool_choice", code: "invalid_value")
            case .some(.none), .auto, nil:
                return nil
            }
        }
        switch choice {
        case nil:
            return disableParallel.map { AnthropicToolChoice(type: "auto", disableParallelToolUse: $0) }
        case .auto:
            return AnthropicToolChoice(type: "auto", disableParallelToolUse: disableParallel)
        case .required:
            return AnthropicToolChoice(type: "any", disableParallelToolUse: disableParallel)
        case .function(let name):
            return AnthropicToolChoice(type: "tool", name: name, disableParallelToolUse: disableParallel)
        case .some(.none):
            // Anthropic's `none` takes no parallelism flag: no calls means no parallel calls.
            return AnthropicToolChoice(type: "none")
        }
    }

    /// `json_schema` becomes structured outputs (`output_config.format`). `json_object`
    /// has no faithful counterpart: Anthropic's structured outputs need a schema, and an
    /// open `{"type":"object"}` one is not what they constrain, so it is refused.
    static func outputConfig(_ format: ResponseFormat?) throws(OpenAIError) -> OutputConfig? {
        switch format {
        case nil, .text:
            return nil
        case .jsonObject:
            throw .invalidRequest(
                "response_format 'json_object' is not supported for this model; use 'json_schema' with a schema.",
                param: "response_format",
                code: "unsupported_value"
            )
        case .jsonSchema(_, let schema, _):
            guard let schema else {
                throw .invalidRequest(
                    "response_format 'json_schema' needs a 'schema' for this model.",
                    param: "response_format.json_schema.schema",
                    code: "missing_required_parameter"
                )
            }
            return OutputConfig(format: .init(schema: schema))
        }
    }
}
