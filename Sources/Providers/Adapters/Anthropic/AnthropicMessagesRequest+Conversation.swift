extension AnthropicMessagesRequest {
    /// OpenAI's messages as Anthropic's system prompt and strictly alternating turns.
    ///
    /// System and developer messages are hoisted into one system prompt, joined by a
    /// newline in order (as Anthropic's own OpenAI layer does). Tool messages become
    /// `tool_result` blocks of a user turn. Consecutive turns of one role are merged,
    /// since Anthropic wants user and assistant to alternate.
    ///
    /// - Throws: `OpenAIError` 400 naming the message or part that cannot be sent.
    static func conversation(_ messages: [ChatMessage]) throws(OpenAIError) -> (system: String?, turns: [AnthropicMessageParam]) {
        var system: [String] = []
        var turns: [AnthropicMessageParam] = []
        for (index, message) in messages.enumerated() {
            let role: String
            let blocks: [AnthropicContentBlockParam]
            switch message.role {
            case "system", "developer":
                let text = try plainText(message.content, messageIndex: index)
                if !text.isEmpty { system.append(text) }
                continue
            case "user":
                role = "user"
                blocks = try userBlocks(message.content, messageIndex: index)
            case "assistant":
                role = "assistant"
                blocks = try assistantBlocks(message, messageIndex: index)
            case "tool":
                role = "user"
                blocks = [try toolResult(message, messageIndex: index)]
            default:
                throw .invalidRequest(
                    "Messages with role '\(message.role)' are not supported for this model.",
                    param: "messages[\(index)].role",
                    code: "unsupported_value"
                )
            }
            append(blocks, role: role, to: &turns)
        }
        return (system.isEmpty ? nil : system.joined(separator: "\n"), turns)
    }

    /// Adds a turn, merging it into the previous one of the same role. In a user turn,
    /// `tool_result` blocks go first: Anthropic requires them before any other content.
    private static func append(_ blocks: [AnthropicContentBlockParam], role: String, to turns: inout [AnthropicMessageParam]) {
        // A message with nothing to say is left out: Anthropic refuses empty turns.
        guard !blocks.isEmpty else { return }
        guard let last = turns.last, last.role == role else {
            turns.append(AnthropicMessageParam(role: role, content: blocks))
            return
        }
        var content = last.content + blocks
        if role == "user" {
            content = content.filter(\.isToolResult) + content.filter { !$0.isToolResult }
        }
        turns[turns.count - 1].content = content
    }

    // MARK: Roles

    private static func userBlocks(_ content: MessageContent?, messageIndex: Int) throws(OpenAIError) -> [AnthropicContentBlockParam] {
        switch content {
        case nil:
            return []
        case .text(let text):
            return textBlock(text).map { [$0] } ?? []
        case .parts(let parts):
            var blocks: [AnthropicContentBlockParam] = []
            for (partIndex, part) in parts.enumerated() {
                let param = "messages[\(messageIndex)].content[\(partIndex)]"
                switch part {
                case .text(let text):
                    if let block = textBlock(text) { blocks.append(block) }
                case .imageURL(let url, _):
                    // `detail` has no Anthropic counterpart; it tunes cost, not meaning.
                    blocks.append(.image(try imageSource(url, param: param)))
                case .unsupported(let type):
                    throw unsupportedPart(type, param: param)
                }
            }
            return blocks
        }
    }

    private static func assistantBlocks(_ message: ChatMessage, messageIndex: Int) throws(OpenAIError) -> [AnthropicContentBlockParam] {
        var blocks: [AnthropicContentBlockParam] = []
        // Thinking comes first in an assistant turn, as Anthropic answered it.
        for (blockIndex, block) in (message.thinkingBlocks ?? []).enumerated() {
            let param = "messages[\(messageIndex)].thinking_blocks[\(blockIndex)]"
            switch block.type {
            case "thinking":
                guard let signature = block.signature else {
                    throw .invalidRequest(
                        "A thinking block must carry the signature it came with.", param: param + ".signature",
                        code: "missing_required_parameter"
                    )
                }
                blocks.append(.thinking(thinking: block.thinking ?? "", signature: signature))
            case "redacted_thinking":
                guard let data = block.data else {
                    throw .invalidRequest(
                        "A redacted thinking block must carry its data.", param: param + ".data", code: "missing_required_parameter"
                    )
                }
                blocks.append(.redactedThinking(data: data))
            default:
                throw .invalidRequest(
                    "Thinking blocks are of type 'thinking' or 'redacted_thinking'.", param: param + ".type", code: "invalid_value"
                )
            }
        }
        let text = try plainText(message.content, messageIndex: messageIndex)
        // An earlier refusal is what the assistant said; keep it as its words.
        if let block = textBlock(text) ?? message.refusal.flatMap(textBlock) {
            blocks.append(block)
        }
        for (callIndex, call) in (message.toolCalls ?? []).enumerated() {
            let param = "messages[\(messageIndex)].tool_calls[\(callIndex)]"
            guard call.type == "function" else {
                throw .invalidRequest(
                    "Tool calls of type '\(call.type)' are not supported for this model.",
                    param: param + ".type",
                    code: "unsupported_value"
                )
            }
            blocks.append(.toolUse(
                id: call.id,
                name: call.function.name,
                input: try toolInput(call.function.arguments, param: param + ".function.arguments")
            ))
        }
        return blocks
    }

    private static func toolResult(_ message: ChatMessage, messageIndex: Int) throws(OpenAIError) -> AnthropicContentBlockParam {
        guard let toolCallID = message.toolCallId else {
            throw .invalidRequest(
                "Missing required parameter: 'messages[\(messageIndex)].tool_call_id'.",
                param: "messages[\(messageIndex)].tool_call_id",
                code: "missing_required_parameter"
            )
        }
        return .toolResult(toolUseID: toolCallID, content: try plainText(message.content, messageIndex: messageIndex))
    }

    // MARK: Content

    /// The text of a message whose target takes text only; any other part is refused.
    private static func plainText(_ content: MessageContent?, messageIndex: Int) throws(OpenAIError) -> String {
        guard case .parts(let parts) = content else { return content?.text ?? "" }
        for (partIndex, part) in parts.enumerated() {
            switch part {
            case .text:
                continue
            case .imageURL:
                throw unsupportedPart("image_url", param: "messages[\(messageIndex)].content[\(partIndex)]")
            case .unsupported(let type):
                throw unsupportedPart(type, param: "messages[\(messageIndex)].content[\(partIndex)]")
            }
        }
        return content?.text ?? ""
    }

    /// A text block, or nil for whitespace-only text, which Anthropic refuses as a block.
    private static func textBlock(_ text: String) -> AnthropicContentBlockParam? {
        text.allSatisfy(\.isWhitespace) ? nil : .text(text)
    }

    /// Tool arguments as the object Anthropic wants. Empty arguments mean a call without
    /// any, which some clients send as `""` rather than `{}`.
    private static func toolInput(_ arguments: String, param: String) throws(OpenAIError) -> JSONValue {
        if arguments.allSatisfy(\.isWhitespace) { return .object([:]) }
        guard let input = JSONValue.parse(arguments), case .object = input else {
            throw .invalidRequest(
                "Invalid value for '\(param)': tool call arguments must be a JSON object.",
                param: param,
                code: "invalid_value"
            )
        }
        return input
    }

    /// An `image_url` as an Anthropic image source: a base64 `data:` URL inline, an
    /// http(s) URL by reference.
    static func imageSource(_ url: String, param: String) throws(OpenAIError) -> AnthropicImageSource {
        let lowercased = url.prefix(8).lowercased()
        if lowercased.hasPrefix("https://") || lowercased.hasPrefix("http://") {
            return .url(url)
        }
        guard lowercased.hasPrefix("data:"), let comma = url.firstIndex(of: ",") else {
            throw .invalidRequest(
                "Invalid value for '\(param)': image URLs must be http(s) or base64 data URLs.",
                param: param,
                code: "invalid_value"
            )
        }
        let header = url[url.index(url.startIndex, offsetBy: 5)..<comma].split(separator: ";")
        let mediaType = header.first.map { $0.lowercased() } ?? ""
        guard header.last?.lowercased() == "base64", AnthropicImageSource.mediaTypes.contains(mediaType) else {
            throw .invalidRequest(
                "Invalid value for '\(param)': images must be base64 JPEG, PNG, GIF or WebP for this model.",
                param: param,
                code: "unsupported_value"
            )
        }
        return .base64(mediaType: mediaType, data: String(url[url.index(after: comma)...]))
    }

    private static func unsupportedPart(_ type: String, param: String) -> OpenAIError {
        .invalidRequest(
            "Content parts of type '\(type)' are not supported here for this model.",
            param: param,
            code: "unsupported_value"
        )
    }
}
