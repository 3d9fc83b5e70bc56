import Foundation
import NIOCore

/// An OpenAI Chat Completions request, decoded whole: what adapters for providers that
/// speak another format need. (OpenAI-format upstreams never decode it: their bodies are
/// spliced through.)
public struct ChatRequest: Sendable, Decodable {
    public var model: String
    public var messages: [ChatMessage]
    public var stream: Bool?
    public var streamOptions: StreamOptions?
    public var maxTokens: Int?
    public var maxCompletionTokens: Int?
    public var temperature: Double?
    public var topP: Double?
    public var stop: StopSequences?
    public var n: Int?
    public var logprobs: Bool?
    public var topLogprobs: Int?
    public var presencePenalty: Double?
    public var frequencyPenalty: Double?
    public var logitBias: [String: Double]?
    public var seed: Int?
    public var user: String?
    public var tools: [Tool]?
    public var toolChoice: ToolChoice?
    public var parallelToolCalls: Bool?
    public var responseFormat: ResponseFormat?
    public var reasoningEffort: String?
    /// Output modalities (`["text"]`, `["text","audio"]`), kept raw for adapters to check.
    public var modalities: JSONValue?
    /// OpenAI's successor to `user`: an opaque end-user id for abuse detection.
    public var safetyIdentifier: String?
    /// Anthropic's extended-thinking object, which Anthropic's OpenAI layer accepts as an extra.
    public var thinking: JSONValue?

    /// Every top-level key the client set to a value, so an adapter can refuse what it
    /// cannot honour instead of dropping it silently. A null member counts as not set,
    /// as it does in OpenAI's API.
    public var presentKeys: Set<String> = []

    enum CodingKeys: String, CodingKey {
        case model, messages, stream, streamOptions, maxTokens, maxCompletionTokens, temperature, topP, stop, n
        case logprobs, topLogprobs, presencePenalty, frequencyPenalty, logitBias, seed, user, tools, toolChoice
        case parallelToolCalls, responseFormat, reasoningEffort, modalities, safetyIdentifier, thinking
    }

    public struct StreamOptions: Sendable, Decodable, Equatable {
        public var includeUsage: Bool?
    }

    /// The longest output the client allows: `max_completion_tokens`, else `max_tokens`.
    public var maximumOutputTokens: Int? { maxCompletionTokens ?? maxTokens }

    /// Decodes a request body.
    ///
    /// - Throws: `OpenAIError` 400 naming the field that does not fit.
    public static func decode(_ body: ByteBuffer) throws(OpenAIError) -> ChatRequest {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        do {
            var request = try decoder.decode(ChatRequest.self, from: Data(body.readableBytesView))
            request.presentKeys = body.withUnsafeReadableBytes { raw in
                let scanner = JSONScanner(raw)
                guard let members = try? scanner.topLevelMembers() else { return [] }
                return Set(members.filter { !scanner.isNull(at: $0.value) }.map { scanner.decodeString(contentsOf: $0.key) })
            }
            return request
        } catch {
            throw OpenAIError(decoding: error)
        }
    }
}

// MARK: - Messages

public struct ChatMessage: Sendable, Decodable, Equatable {
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    public var role: String
    public var content: MessageContent?
    public var name: String?
    public var toolCalls: [ToolCall]?
    public var toolCallId: String?
    /// An assistant's refusal, when it refused.
    public var refusal: String?
    /// The thinking blocks of an earlier answer, sent back with their signatures so the
    /// model can continue from its reasoning (Anthropic requires them with tool use).
    public var thinkingBlocks: [ThinkingBlock]?
}

/// A block of a model's reasoning as Switchyard's answers carry it (`thinking_blocks`):
/// `thinking` with its text and signature, or `redacted_thinking` with opaque data.
public struct ThinkingBlock: Sendable, Decodable, Equatable {
    public var type: String
    public var thinking: String?
    public var signature: String?
    public var data: String?

    public init(type: String, thinking: String? = nil, signature: String? = nil, data: String? = nil) {
        self.type = type
        self.thinking = thinking
        self.signature = signature
        self.data = data
    }
}

/// A message's content: a string, or parts.
public enum MessageContent: Sendable, Decodable, Equatable {
    case text(String)
    case parts([ContentPart])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            self = .text(text)
        } else {
            self = .parts(try container.decode([ContentPart].self))
        }
    }

    /// The text parts joined, for roles whose target takes plain text only.
    public var text: String {
        switch self {
        case .text(let text): text
        case .parts(let parts): parts.compactMap { if case .text(let text) = $0 { text } else { nil } }.joined(separator: "\n")
        }
    }
}

public enum ContentPart: Sendable, Decodable, Equatable {
    case text(String)
    /// `url` is an http(s) URL or a `data:` URL; `detail` is OpenAI's low/high/auto.
    case imageURL(url: String, detail: String?)
    /// A part type Switchyard does not translate (e.g. `input_audio`, `file`).
    case unsupported(type: String)

    enum CodingKeys: String, CodingKey {
        case type, text, imageUrl
    }

    struct ImageURL: Decodable {
        var url: String
        var detail: String?
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let type = try container.decode(String.self, forKey: .type)
        switch type {
        case "text":
            self = .text(try container.decode(String.self, forKey: .text))
        case "image_url":
            let image = try container.decode(ImageURL.self, forKey: .imageUrl)
            self = .imageURL(url: image.url, detail: image.detail)
        default:
            self = .unsupported(type: type)
        }
    }
}

public struct ToolCall: Sendable, Codable, Equatable {
    public struct Function: Sendable, Codable, Equatable {
        public var name: String
        /// The arguments as JSON text, as OpenAI sends them.
        public var arguments: String

        public init(name: String, arguments: String) {
            self.name = name
            self.arguments = arguments
        }
    }

    public var id: String
    public var type: String
    public var function: Function

    public init(id: String, name: String, arguments: String) {
        self.id = id
        self.type = "function"
        self.function = Function(name: name, arguments: arguments)
    }
}

// MARK: - Tools and output control

public struct Tool: Sendable, Decodable, Equatable {
    public struct Function: Sendable, Decodable, Equatable {
        public var name: String
        public var description: String?
        /// A JSON Schema object.
        public var parameters: JSONValue?
        public var strict: Bool?
    }

    public var type: String
    public var function: Function
}

public enum ToolChoice: Sendable, Decodable, Equatable {
    case none
    case auto
    case required
    case function(name: String)

    private struct Named: Decodable {
        struct Function: Decodable { var name: String }
        var type: String
        var function: Function
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let mode = try? container.decode(String.self) {
            switch mode {
            case "none": self = .none
            case "auto": self = .auto
            case "required": self = .required
            default:
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected none, auto, required or a function")
            }
        } else {
            self = .function(name: try container.decode(Named.self).function.name)
        }
    }
}

public enum StopSequences: Sendable, Decodable, Equatable {
    case one(String)
    case many([String])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let one = try? container.decode(String.self) {
            self = .one(one)
        } else {
            self = .many(try container.decode([String].self))
        }
    }

    public var values: [String] {
        switch self {
        case .one(let value): [value]
        case .many(let values): values
        }
    }
}

public enum ResponseFormat: Sendable, Decodable, Equatable {
    case text
    case jsonObject
    case jsonSchema(name: String, schema: JSONValue?, strict: Bool?)

    enum CodingKeys: String, CodingKey {
        case type, jsonSchema
    }

    struct Schema: Decodable {
        var name: String
        var schema: JSONValue?
        var strict: Bool?
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        switch try container.decode(String.self, forKey: .type) {
        case "text": self = .text
        case "json_object": self = .jsonObject
        case "json_schema":
            let schema = try container.decode(Schema.self, forKey: .jsonSchema)
            self = .jsonSchema(name: schema.name, schema: schema.schema, strict: schema.strict)
        default:
            throw DecodingError.dataCorruptedError(forKey: .type, in: container, debugDescription: "expected text, json_object or json_schema")
        }
    }
}
