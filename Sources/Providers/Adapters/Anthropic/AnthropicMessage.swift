/// An Anthropic Messages API answer (`"type":"message"`), as far as Switchyard reads it.
/// Unknown members and block kinds are skipped, as Anthropic's versioning policy asks.
struct AnthropicMessage: Decodable, Sendable {
    var id: String?
    var model: String?
    var content: [AnthropicContentBlock]
    var stopReason: String?
    var usage: AnthropicUsage?

    enum CodingKeys: String, CodingKey {
        case id, model, content, usage
        case stopReason = "stop_reason"
    }
}

/// A content block of an answer: `text`, `tool_use`, `thinking`, `server_tool_use`, …
/// Only the members Switchyard translates are read.
struct AnthropicContentBlock: Decodable, Sendable {
    var type: String
    var text: String?
    var id: String?
    var name: String?
    /// A `tool_use` block's arguments, an object.
    var input: JSONValue?
    /// A `thinking` block's reasoning and the signature that vouches for it.
    var thinking: String?
    var signature: String?
    /// A `redacted_thinking` block's opaque reasoning.
    var data: String?
}

/// Anthropic's token counts. Input is split three ways: uncached, read from the cache,
/// and written to it; all three are prompt tokens in OpenAI's terms.
struct AnthropicUsage: Decodable, Sendable, Equatable {
    var inputTokens: Int?
    var cacheCreationInputTokens: Int?
    var cacheReadInputTokens: Int?
    var outputTokens: Int?

    enum CodingKeys: String, CodingKey {
        case inputTokens = "input_tokens"
        case cacheCreationInputTokens = "cache_creation_input_tokens"
        case cacheReadInputTokens = "cache_read_input_tokens"
        case outputTokens = "output_tokens"
    }

    /// The counts of `newer` where it has them, else these: a stream's `message_delta`
    /// repeats some counts of `message_start`, cumulatively, and may omit others.
    func updated(with newer: AnthropicUsage) -> AnthropicUsage {
        AnthropicUsage(
            inputTokens: newer.inputTokens ?? inputTokens,
            cacheCreationInputTokens: newer.cacheCreationInputTokens ?? cacheCreationInputTokens,
            cacheReadInputTokens: newer.cacheReadInputTokens ?? cacheReadInputTokens,
            outputTokens: newer.outputTokens ?? outputTokens
        )
    }

    /// In OpenAI's terms. Anthropic counts thinking in `output_tokens` without a split,
    /// so no reasoning tokens are reported apart.
    var tokenUsage: TokenUsage {
        let cacheRead = cacheReadInputTokens ?? 0
        return TokenUsage(
            promptTokens: TokenUsage.sum(inputTokens, cacheRead, cacheCreationInputTokens),
            cachedPromptTokens: cacheRead,
            completionTokens: outputTokens ?? 0
        )
    }
}

/// One event of a Messages stream, decoded once: every event type's members, optional.
struct AnthropicStreamEvent: Decodable, Sendable {
    struct MessageStart: Decodable, Sendable {
        var model: String?
        var usage: AnthropicUsage?
    }

    struct Delta: Decodable, Sendable {
        /// `text_delta`, `input_json_delta`, `thinking_delta`, `signature_delta`, …;
        /// absent in `message_delta`.
        var type: String?
        var text: String?
        var partialJSON: String?
        var stopReason: String?
        var thinking: String?
        var signature: String?

        enum CodingKeys: String, CodingKey {
            case type, text, thinking, signature
            case partialJSON = "partial_json"
            case stopReason = "stop_reason"
        }
    }

    var type: String
    var message: MessageStart?
    var index: Int?
    var contentBlock: AnthropicContentBlock?
    var delta: Delta?
    var usage: AnthropicUsage?
    var error: AnthropicErrorBody.Detail?

    enum CodingKeys: String, CodingKey {
        case type, message, index, delta, usage, error
        case contentBlock = "content_block"
    }
}

/// Anthropic's error body: `{"type":"error","error":{"type","message"},"request_id"}`.
struct AnthropicErrorBody: Decodable, Sendable {
    struct Detail: Decodable, Sendable {
        var type: String?
        var message: String?
    }

    var error: Detail
}
