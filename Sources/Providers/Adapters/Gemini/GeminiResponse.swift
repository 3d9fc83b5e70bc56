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
        /// Set on thought summaries, which are not part of the answer.
        var thought: Bool?
        var functionCall: FunctionCall?
    }

    struct FunctionCall: Decodable, Sendable {
        var id: String?
        var name: String?
        var args: JSONValue?
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

    /// The parts of the first candidate that belong to the answer: thoughts left out.
    var answerParts: [Part] {
        (candidates?.first?.content?.parts ?? []).filter { $0.thought != true }
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

extension GeminiResponse.FunctionCall {
    /// The OpenAI tool call for the `index`th call of an answer. Gemini's own id is kept
    /// when it sends one; otherwise `call_<index>` is unique within the answer, and a
    /// later `tool` message's `tool_call_id` is resolved against the latest assistant
    /// message that used it.
    func toolCall(index: Int) -> ToolCall {
        let identifier = id.flatMap { $0.isEmpty ? nil : $0 } ?? "call_\(index)"
        return ToolCall(id: identifier, name: name ?? "", arguments: (args ?? .object([:])).jsonText)
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
