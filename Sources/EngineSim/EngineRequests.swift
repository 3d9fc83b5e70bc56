import Foundation
import Hummingbird

// Only the fields the simulator acts on are decoded; Codable ignores the rest, so any
// OpenAI request body an SDK sends is accepted.

/// The fields of a `POST /v1/chat/completions` body the simulator uses.
struct ChatCompletionRequest: Decodable {
    var model: String?
    var messages: [ChatMessage]?
    var stream: Bool?
    var streamOptions: StreamOptions?
    var maxTokens: Int?
    var maxCompletionTokens: Int?

    enum CodingKeys: String, CodingKey {
        case model, messages, stream
        case streamOptions = "stream_options"
        case maxTokens = "max_tokens"
        case maxCompletionTokens = "max_completion_tokens"
    }

    /// Words and hash of all message texts.
    func promptDigest() -> PromptDigest {
        var digest = PromptDigest()
        for message in messages ?? [] {
            switch message.content {
            case .text(let text):
                digest.add(text: text)
            case .parts(let parts):
                for part in parts {
                    if let text = part.text { digest.add(text: text) }
                }
            case nil:
                break
            }
            digest.endMessage()
        }
        return digest
    }
}

/// One chat message; only its content matters to the simulator.
struct ChatMessage: Decodable {
    var content: MessageContent?
}

/// A message's content: a string, or an array of parts of which the `text` ones count.
enum MessageContent: Decodable {
    case text(String)
    case parts([ContentPart])

    struct ContentPart: Decodable {
        var text: String?
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            self = .text(text)
        } else {
            self = .parts(try container.decode([ContentPart].self))
        }
    }
}

/// `stream_options`.
struct StreamOptions: Decodable {
    var includeUsage: Bool?

    enum CodingKeys: String, CodingKey {
        case includeUsage = "include_usage"
    }
}

/// The fields of a `POST /v1/completions` body the simulator uses.
struct TextCompletionRequest: Decodable {
    var model: String?
    var prompt: PromptInput?
    var stream: Bool?
    var streamOptions: StreamOptions?
    var maxTokens: Int?

    enum CodingKeys: String, CodingKey {
        case model, prompt, stream
        case streamOptions = "stream_options"
        case maxTokens = "max_tokens"
    }
}

/// The fields of a `POST /v1/embeddings` body the simulator uses.
struct EmbeddingRequest: Decodable {
    var model: String?
    var input: PromptInput?
    var encodingFormat: String?

    enum CodingKeys: String, CodingKey {
        case model, input
        case encodingFormat = "encoding_format"
    }
}

/// A `prompt` or `input`: a string, an array of strings, an array of token ids, or an
/// array of token-id arrays, as the OpenAI API allows.
enum PromptInput: Decodable {
    case texts([String])
    case tokenIDs([[Int]])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            self = .texts([text])
        } else if let texts = try? container.decode([String].self) {
            self = .texts(texts)
        } else if let ids = try? container.decode([Int].self) {
            self = .tokenIDs([ids])
        } else if let batches = try? container.decode([[Int]].self) {
            self = .tokenIDs(batches)
        } else {
            throw DecodingError.typeMismatch(
                PromptInput.self,
                .init(codingPath: decoder.codingPath, debugDescription: "Expected a string, an array of strings or an array of token ids.")
            )
        }
    }

    var isEmpty: Bool {
        switch self {
        case .texts(let texts): texts.isEmpty
        case .tokenIDs(let batches): batches.isEmpty
        }
    }

    /// One digest per input, for embeddings.
    func digests() -> [PromptDigest] {
        switch self {
        case .texts(let texts):
            texts.map { text in
                var digest = PromptDigest()
                digest.add(text: text)
                return digest
            }
        case .tokenIDs(let batches):
            batches.map { ids in
                var digest = PromptDigest()
                digest.add(tokenIDs: ids)
                return digest
            }
        }
    }

    /// One digest of all inputs together: a batch of prompts is answered as one completion.
    func combinedDigest() -> PromptDigest {
        var digest = PromptDigest()
        switch self {
        case .texts(let texts):
            for text in texts { digest.add(text: text) }
        case .tokenIDs(let batches):
            for ids in batches { digest.add(tokenIDs: ids) }
        }
        return digest
    }
}

// MARK: - Decoding a body

extension EngineRequestContext {
    /// Reads and decodes a JSON request body, turning every failure into a 400.
    func decodeBody<Body: Decodable>(_ type: Body.Type, from request: Request) async throws -> Body {
        let buffer = try await request.body.collect(upTo: maxUploadSize)
        return try decodeJSON(type, from: buffer)
    }

    /// Decodes the body, keeping it in `request` so the request can still watch for its
    /// client closing the connection.
    func decodeBody<Body: Decodable>(_ type: Body.Type, from request: inout Request) async throws -> Body {
        let buffer = try await request.collectBody(upTo: maxUploadSize)
        return try decodeJSON(type, from: buffer)
    }
}

/// Decodes `buffer` as `Body`, mapping syntax and type errors to OpenAI-shaped 400s.
func decodeJSON<Body: Decodable>(_ type: Body.Type, from buffer: ByteBuffer) throws -> Body {
    do {
        return try JSONDecoder().decode(Body.self, from: Data(buffer.readableBytesView))
    } catch let DecodingError.typeMismatch(_, context) where !context.codingPath.isEmpty,
        let DecodingError.valueNotFound(_, context) where !context.codingPath.isEmpty
    {
        let param = parameterName(context.codingPath)
        throw EngineError.invalidRequest("Invalid type for '\(param)': \(context.debugDescription)", param: param)
    } catch let DecodingError.keyNotFound(key, context) {
        let param = parameterName(context.codingPath + [key])
        throw EngineError.invalidRequest("Missing required parameter: '\(param)'.", param: param)
    } catch DecodingError.dataCorrupted(let context) where !context.codingPath.isEmpty {
        let param = parameterName(context.codingPath)
        throw EngineError.invalidRequest("Invalid value for '\(param)': \(context.debugDescription)", param: param)
    } catch {
        throw EngineError.invalidRequest(
            "We could not parse the JSON body of your request: send a JSON object.",
            code: "invalid_json"
        )
    }
}

/// `messages[0].content` style names for a coding path.
private func parameterName(_ path: [any CodingKey]) -> String {
    var name = ""
    for key in path {
        if let index = key.intValue {
            name += "[\(index)]"
        } else {
            name += name.isEmpty ? key.stringValue : "." + key.stringValue
        }
    }
    return name
}
