import Foundation

/// A `GenerateContentResponse` as Gemini's REST API writes it, whole or as one event of
/// a stream; only what the OpenAI answer needs is decoded.
struct GeminiResponse: Decodable, Sendable {
    struct Candidate: Decodable, Sendable {
        var content: Content?
        var finishReason: String?
    }

    struct Content: Decodable, Sendable {
        var parts: [Part]?
    }

    /// A `Part`. Other kinds (inline media, code execution) are left undecoded: Switchyard
    /// never enables the tools or modalities that produce them.
    struct Part: Decodable, Sendable {
        var text: String?
        /// Set on thought summaries, which are reasoning, not part of the answer.
        var thought: Bool?
        var functionCall: FunctionCall?
    }

    /// A function call, whole (`name`, `args`) or one piece of a streamed one
    /// (`partialArgs`, `willContinue`).
    struct FunctionCall: Decodable, Sendable {
        var id: String?
        var name: String?
        var args: JSONValue?
        var partialArgs: [PartialArg]?
        /// True while more pieces of this call follow.
        var willContinue: Bool?
    }

    /// One piece of a streamed call's arguments: the value at `jsonPath`; a string value
    /// continues in the next piece for the same path while `willContinue` is true.
    struct PartialArg: Decodable, Sendable {
        var jsonPath: String?
        var stringValue: String?
        var numberValue: Double?
        var boolValue: Bool?
        /// Present (as JSON `null` or `"NULL_VALUE"`) for a null value.
        var nullValue: Bool?
        var structValue: JSONValue?
        var listValue: JSONValue?
        var willContinue: Bool?

        enum CodingKeys: String, CodingKey {
            case jsonPath, stringValue, numberValue, boolValue, nullValue, structValue, listValue, willContinue
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            jsonPath = try container.decodeIfPresent(String.self, forKey: .jsonPath)
            stringValue = try container.decodeIfPresent(String.self, forKey: .stringValue)
            numberValue = try container.decodeIfPresent(Double.self, forKey: .numberValue)
            boolValue = try container.decodeIfPresent(Bool.self, forKey: .boolValue)
            nullValue = container.contains(.nullValue) ? true : nil
            structValue = try container.decodeIfPresent(JSONValue.self, forKey: .structValue)
            listValue = try container.decodeIfPresent(JSONValue.self, forKey: .listValue)
            willContinue = try container.decodeIfPresent(Bool.self, forKey: .willContinue)
        }
    }

    struct PromptFeedback: Decodable, Sendable {
        var blockReason: String?
    }

    struct UsageMetadata: Decodable, Sendable {
        var promptTokenCount: Int?
        var cachedContentTokenCount: Int?
        var candidatesTokenCount: Int?
        var toolUsePromptTokenCount: Int?
        var thoughtsTokenCount: Int?
    }

    var candidates: [Candidate]?
    var promptFeedback: PromptFeedback?
    var usageMetadata: UsageMetadata?
    var modelVersion: String?
    /// Set instead of everything else when a stream fails mid-way.
    var error: GeminiError?

    /// Decodes one response body or stream event.
    static func decode(_ bytes: some Collection<UInt8>) -> GeminiResponse? {
        try? JSONDecoder().decode(GeminiResponse.self, from: Data(bytes))
    }

    /// The parts of the first candidate: thought summaries (`thought: true`) among them.
    var parts: [Part] {
        candidates?.first?.content?.parts ?? []
    }
}

// MARK: - In OpenAI's terms

extension GeminiResponse.UsageMetadata {
    /// OpenAI counts reasoning inside completion tokens; Gemini counts thoughts apart.
    /// Tool-use prompt tokens (built-in tools' results) are billed as input.
    var tokenUsage: TokenUsage {
        let thoughts = thoughtsTokenCount ?? 0
        return TokenUsage(
            promptTokens: TokenUsage.sum(promptTokenCount, toolUsePromptTokenCount),
            cachedPromptTokens: cachedContentTokenCount ?? 0,
            completionTokens: TokenUsage.sum(candidatesTokenCount, thoughts),
            reasoningTokens: thoughts
        )
    }
}

/// Gemini's `Candidate.FinishReason` as OpenAI's `finish_reason`.
enum GeminiFinishReason {
    static func openAI(_ reason: String, sawToolCalls: Bool) -> String {
        switch reason {
        case "MAX_TOKENS":
            return "length"
        case "SAFETY", "RECITATION", "LANGUAGE", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
            "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION":
            return "content_filter"
        default:
            // STOP, and the reasons OpenAI has no word for: MALFORMED_FUNCTION_CALL,
            // UNEXPECTED_TOOL_CALL, TOO_MANY_TOOL_CALLS, OTHER. These end the answer
            // normally rather than as an error, so the tokens spent are still metered
            // and whatever text came is kept.
            return sawToolCalls ? "tool_calls" : "stop"
        }
    }

    /// A prompt blocked before any candidate was generated.
    static let promptBlocked = "content_filter"
}
