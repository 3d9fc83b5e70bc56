/// The body of an Anthropic Messages API request (`POST /v1/messages`), as Switchyard
/// writes it from an OpenAI Chat Completions request. Nil members are left out.
struct AnthropicMessagesRequest: Encodable, Sendable, Equatable {
    var model: String
    var maxTokens: Int
    /// Every system and developer message, joined: Anthropic takes one system prompt.
    var system: String?
    var messages: [AnthropicMessageParam]
    var temperature: Double?
    var topP: Double?
    var stopSequences: [String]?
    var stream: Bool?
    var metadata: Metadata?
    var tools: [AnthropicToolParam]?
    var toolChoice: AnthropicToolChoice?
    var outputConfig: OutputConfig?
    /// Extended thinking, passed through as the client wrote it (Anthropic's own
    /// OpenAI-compatible layer accepts it the same way).
    var thinking: JSONValue?

    // Explicit keys rather than `.convertToSnakeCase`: that strategy would also rewrite
    // the keys of tool schemas and tool inputs, which must pass through unchanged.
    enum CodingKeys: String, CodingKey {
        case model, system, messages, temperature, stream, metadata, tools, thinking
        case maxTokens = "max_tokens"
        case topP = "top_p"
        case stopSequences = "stop_sequences"
        case toolChoice = "tool_choice"
        case outputConfig = "output_config"
    }

    struct Metadata: Encodable, Sendable, Equatable {
        var userID: String

        enum CodingKeys: String, CodingKey {
            case userID = "user_id"
        }
    }

    /// Structured outputs: `output_config.format` holds a JSON schema the answer follows.
    struct OutputConfig: Encodable, Sendable, Equatable {
        struct Format: Encodable, Sendable, Equatable {
            var type = "json_schema"
            var schema: JSONValue
        }

        var format: Format
    }
}

/// One turn of the conversation: `user` or `assistant`, always with content blocks.
struct AnthropicMessageParam: Encodable, Sendable, Equatable {
    var role: String
    var content: [AnthropicContentBlockParam]
}

/// A content block of a request message.
enum AnthropicContentBlockParam: Encodable, Sendable, Equatable {
    case text(String)
    case image(AnthropicImageSource)
    /// A call the assistant made earlier; `input` is the parsed argument object.
    case toolUse(id: String, name: String, input: JSONValue)
    /// The answer to a call, in the user turn that follows it.
    case toolResult(toolUseID: String, content: String)
    /// Reasoning of an earlier answer, sent back as it came (with its signature).
    case thinking(thinking: String, signature: String)
    case redactedThinking(data: String)

    var isToolResult: Bool {
        if case .toolResult = self { return true }
        return false
    }

    enum CodingKeys: String, CodingKey {
        case type, text, source, id, name, input, content, thinking, signature, data
        case toolUseID = "tool_use_id"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .text(let text):
            try container.encode("text", forKey: .type)
            try container.encode(text, forKey: .text)
        case .image(let source):
            try container.encode("image", forKey: .type)
            try container.encode(source, forKey: .source)
        case .toolUse(let id, let name, let input):
            try container.encode("tool_use", forKey: .type)
            try container.encode(id, forKey: .id)
            try container.encode(name, forKey: .name)
            try container.encode(input, forKey: .input)
        case .toolResult(let toolUseID, let content):
            try container.encode("tool_result", forKey: .type)
            try container.encode(toolUseID, forKey: .toolUseID)
            try container.encode(content, forKey: .content)
        case .thinking(let thinking, let signature):
            try container.encode("thinking", forKey: .type)
            try container.encode(thinking, forKey: .thinking)
            try container.encode(signature, forKey: .signature)
        case .redactedThinking(let data):
            try container.encode("redacted_thinking", forKey: .type)
            try container.encode(data, forKey: .data)
        }
    }
}

/// Where an image comes from: inline base64 bytes or a URL Anthropic fetches.
enum AnthropicImageSource: Encodable, Sendable, Equatable {
    case base64(mediaType: String, data: String)
    case url(String)

    /// The media types Anthropic accepts for inline images.
    static let mediaTypes: Set<String> = ["image/jpeg", "image/png", "image/gif", "image/webp"]

    enum CodingKeys: String, CodingKey {
        case type, data, url
        case mediaType = "media_type"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .base64(let mediaType, let data):
            try container.encode("base64", forKey: .type)
            try container.encode(mediaType, forKey: .mediaType)
            try container.encode(data, forKey: .data)
        case .url(let url):
            try container.encode("url", forKey: .type)
            try container.encode(url, forKey: .url)
        }
    }
}

/// A client tool the model may call.
struct AnthropicToolParam: Encodable, Sendable, Equatable {
    var name: String
    var description: String?
    var inputSchema: JSONValue

    enum CodingKeys: String, CodingKey {
        case name, description
        case inputSchema = "input_schema"
    }
}

/// How the model should use the tools.
struct AnthropicToolChoice: Encodable, Sendable, Equatable {
    /// `auto`, `any`, `tool` or `none`.
    var type: String
    /// The tool to call, for `tool`.
    var name: String?
    /// At most one call per turn (OpenAI's `parallel_tool_calls: false`); not valid with `none`.
    var disableParallelToolUse: Bool?

    enum CodingKeys: String, CodingKey {
        case type, name
        case disableParallelToolUse = "disable_parallel_tool_use"
    }
}
