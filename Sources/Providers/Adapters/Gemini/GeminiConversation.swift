/// OpenAI `messages` as Gemini's `systemInstruction` and `contents`: system and developer
/// messages become the system instruction (Gemini has no system turns, so their place in
/// the conversation is not kept); user and tool messages become `user` turns, assistant
/// messages `model` turns; consecutive turns of one role are merged, as Gemini wants
/// alternating roles and all results of one step of parallel calls in one turn.
struct GeminiConversation: Sendable {
    private(set) var systemParts: [GeminiPart] = []
    private(set) var contents: [GeminiContent] = []
    /// The function name of each tool call seen so far, by id: `tool` messages carry only
    /// the id, Gemini's `functionResponse` wants the name. A later call with the same id
    /// replaces an earlier one, as ids like `call_0` repeat across answers.
    private var functionNames: [String: String] = [:]

    /// Gemini 3 models refuse a replayed `functionCall` without the thought signature that
    /// came with it, and OpenAI's format has no place to keep it. This is the value
    /// Google documents for history the model did not produce itself; it goes on the
    /// first call of each step, where Gemini puts real signatures.
    static let foreignThoughtSignature = "skip_thought_signature_validator"

    /// Translates `messages`.
    ///
    /// - Throws: `OpenAIError` 400 naming the message (and part) Gemini cannot take.
    init(_ messages: [ChatMessage]) throws(OpenAIError) {
        for (index, message) in messages.enumerated() {
            try append(message, at: index)
        }
    }

    /// The system instruction, when there was any system or developer message.
    var systemInstruction: GeminiContent? {
        systemParts.isEmpty ? nil : GeminiContent(role: nil, parts: systemParts)
    }

    private mutating func append(_ message: ChatMessage, at index: Int) throws(OpenAIError) {
        switch message.role {
        case "system", "developer":
            systemParts += try Self.parts(of: message.content, message: index, textOnly: true)
        case "user":
            add(role: "user", try Self.parts(of: message.content, message: index, textOnly: false))
        case "assistant":
            add(role: "model", try modelParts(of: message, at: index))
        case "tool":
            add(role: "user", [try functionResponse(message, at: index)])
        default:
            throw OpenAIError.invalidRequest(
                "Invalid value for 'messages[\(index)].role': '\(message.role)' is not supported with this model.",
                param: "messages[\(index)].role",
                code: "invalid_value"
            )
        }
    }

    /// Adds a turn, merged into the previous one when the role is the same. Empty turns
    /// are left out: Gemini rejects contents without parts.
    private mutating func add(role: String, _ parts: [GeminiPart]) {
        guard !parts.isEmpty else { return }
        if let last = contents.indices.last, contents[last].role == role {
            contents[last].parts += parts
        } else {
            contents.append(GeminiContent(role: role, parts: parts))
        }
    }

    // MARK: Parts

    /// The parts of a message's content. Empty text is left out: Gemini rejects empty
    /// text parts.
    private static func parts(of content: MessageContent?, message: Int, textOnly: Bool) throws(OpenAIError) -> [GeminiPart] {
        switch content {
        case nil:
            return []
        case .text(let text):
            return text.isEmpty ? [] : [.text(text)]
        case .parts(let parts):
            var result: [GeminiPart] = []
            for (index, part) in parts.enumerated() {
                let param = "messages[\(message)].content[\(index)]"
                switch part {
                case .text(let text):
                    if !text.isEmpty { result.append(.text(text)) }
                case .imageURL(let url, _) where !textOnly:
                    result.append(GeminiPart(inlineData: try inlineData(url, param: param + ".image_url")))
                case .imageURL:
                    throw OpenAIError.invalidRequest(
                        "System and developer messages take text only with this model.", param: param, code: "unsupported_content"
                    )
                case .unsupported(let type):
                    throw OpenAIError.invalidRequest(
                        "Content parts of type '\(type)' are not supported with this model.", param: param + ".type", code: "unsupported_content"
                    )
                }
            }
            return result
        }
    }

    /// An image given as a `data:` URL. `detail` has no per-part counterpart in Gemini and
    /// is ignored. Remote URLs are refused: Gemini fetches only files uploaded to it, and
    /// Switchyard does not fetch on a tenant's behalf.
    private static func inlineData(_ url: String, param: String) throws(OpenAIError) -> GeminiBlob {
        guard url.prefix(5).lowercased() == "data:" else {
            throw OpenAIError.invalidRequest(
                "Images must be sent as base64 data: URLs with this model; remote image URLs are not supported.",
                param: param, code: "unsupported_content"
            )
        }
        guard let comma = url.firstIndex(of: ","),
              case let header = url[url.index(url.startIndex, offsetBy: 5)..<comma].split(separator: ";"),
              header.count >= 2, header.last?.lowercased() == "base64",
              let mimeType = header.first, mimeType.contains("/"),
              url.index(after: comma) < url.endIndex
        else {
            throw OpenAIError.invalidRequest(
                "Invalid image data URL: expected 'data:<mime type>;base64,<data>'.", param: param, code: "invalid_value"
            )
        }
        return GeminiBlob(mimeType: mimeType.lowercased(), data: String(url[url.index(after: comma)...]))
    }

    // MARK: Tool calls and results

    /// An assistant message: its text (or refusal) and its tool calls as `functionCall`s.
    private mutating func modelParts(of message: ChatMessage, at index: Int) throws(OpenAIError) -> [GeminiPart] {
        var parts = try Self.parts(of: message.content, message: index, textOnly: false)
        if message.content == nil, let refusal = message.refusal, !refusal.isEmpty {
            parts.append(.text(refusal))
        }
        for (callIndex, call) in (message.toolCalls ?? []).enumerated() {
            let param = "messages[\(index)].tool_calls[\(callIndex)]"
            guard call.type == "function" else {
                throw OpenAIError.invalidRequest(
                    "Tool calls of type '\(call.type)' are not supported with this model.", param: param + ".type", code: "invalid_value"
                )
            }
            let arguments = try Self.arguments(call.function.arguments, param: param + ".function.arguments")
            functionNames[call.id] = call.function.name
            parts.append(GeminiPart(
                functionCall: GeminiFunctionCall(id: call.id, name: call.function.name, args: arguments),
                thoughtSignature: callIndex == 0 ? Self.foreignThoughtSignature : nil
            ))
        }
        return parts
    }

    /// A call's arguments, which Gemini takes as a JSON object. Empty text is no
    /// arguments, as some clients send for functions without parameters.
    private static func arguments(_ text: String, param: String) throws(OpenAIError) -> JSONValue {
        if text.allSatisfy(\.isWhitespace) { return .object([:]) }
        guard let value = JSONValue.parse(text), case .object = value else {
            throw OpenAIError.invalidRequest(
                "Invalid value for '\(param)': the arguments must be a JSON object.", param: param, code: "invalid_value"
            )
        }
        return value
    }

    /// A `tool` message as the `functionResponse` for the call it answers. A result that
    /// is a JSON object goes as is; anything else is wrapped as `{"content": text}`,
    /// since Gemini takes only objects.
    private func functionResponse(_ message: ChatMessage, at index: Int) throws(OpenAIError) -> GeminiPart {
        let param = "messages[\(index)].tool_call_id"
        guard let id = message.toolCallId, let name = functionNames[id] else {
            throw OpenAIError.invalidRequest(
                "Invalid value for '\(param)': it must be the id of a tool call of an earlier assistant message.",
                param: param, code: "invalid_value"
            )
        }
        let text = message.content?.text ?? ""
        let response: JSONValue
        if let parsed = JSONValue.parse(text), case .object = parsed {
            response = parsed
        } else {
            response = .object(["content": .string(text)])
        }
        return GeminiPart(functionResponse: GeminiFunctionResponse(id: id, name: name, response: response))
    }
}
