/// Writes the OpenAI JSON of one chat or text completion, whole or as SSE stream chunks.
///
/// The parts shared by every chunk (id, object, created, model) are rendered once per
/// request; each token then costs a few string appends. Callers collect the text and copy
/// it into a `ByteBuffer` once per write, which is much cheaper than many small buffer writes.
struct CompletionRenderer: Sendable {
    enum Kind: Sendable {
        /// `/v1/chat/completions`: `chat.completion` and `chat.completion.chunk` objects.
        case chat
        /// `/v1/completions`: `text_completion` objects.
        case text
    }

    let kind: Kind
    /// Whether the stream ends with a usage chunk (`stream_options.include_usage`).
    let includeUsage: Bool
    /// `{"id":…,"object":…,"created":…,"model":…,"choices":` for stream chunks.
    private let chunkPrefix: String
    /// What closes a stream chunk after its choices: `,"usage":null}` when usage comes last.
    private let chunkSuffix: String
    /// `{"id":…,"object":…,"created":…,"model":…,` for the whole response.
    private let responsePrefix: String

    static let done = "data: [DONE]\n\n"

    /// Creates a renderer for one response.
    /// - Parameters:
    ///   - kind: Chat or text completion.
    ///   - id: Response id, shared by all chunks.
    ///   - created: Unix time of creation.
    ///   - model: The model name the request gave, echoed back.
    ///   - includeUsage: Whether a stream carries `"usage":null` on each chunk and a usage chunk last.
    init(kind: Kind, id: String, created: Int, model: String, includeUsage: Bool) {
        self.kind = kind
        self.includeUsage = includeUsage
        let head = "{\"id\":\(JSONText.quoted(id)),\"object\":"
        let tail = ",\"created\":\(created),\"model\":\(JSONText.quoted(model)),"
        switch kind {
        case .chat:
            self.chunkPrefix = head + "\"chat.completion.chunk\"" + tail + "\"choices\":"
            self.responsePrefix = head + "\"chat.completion\"" + tail
        case .text:
            self.chunkPrefix = head + "\"text_completion\"" + tail + "\"choices\":"
            self.responsePrefix = head + "\"text_completion\"" + tail
        }
        self.chunkSuffix = includeUsage ? ",\"usage\":null}\n\n" : "}\n\n"
    }

    // MARK: Whole response

    /// Writes the non-streaming response body.
    func writeResponse(_ generation: Generation, into text: inout String) {
        text += responsePrefix
        text += "\"choices\":[{\"index\":0,"
        switch kind {
        case .chat:
            text += "\"message\":{\"role\":\"assistant\",\"content\":"
            text += JSONText.quoted(generation.text)
            text += "},"
        case .text:
            text += "\"text\":"
            text += JSONText.quoted(generation.text)
            text += ","
        }
        text += "\"logprobs\":null,\"finish_reason\":\"\(generation.finishReason)\"}],\"usage\":"
        text += Self.usage(generation)
        text += "}"
    }

    // MARK: Stream chunks

    /// Writes the chunk that opens a chat stream (`delta` with the role); text streams have none.
    func writeFirstChunk(into text: inout String) {
        guard kind == .chat else { return }
        writeChunk(choice: "\"delta\":{\"role\":\"assistant\",\"content\":\"\"}", finishReason: nil, into: &text)
    }

    /// Writes the chunk carrying one token.
    /// - Parameters:
    ///   - tokenID: Index into ``Vocabulary/tokens``.
    func writeTokenChunk(_ tokenID: Int, into text: inout String) {
        text += "data: "
        text += chunkPrefix
        switch kind {
        case .chat: text += Self.chatTokenChoices[tokenID]
        case .text: text += Self.textTokenChoices[tokenID]
        }
        text += chunkSuffix
    }

    /// Writes the chunk with an empty delta (or text) and the finish reason.
    func writeFinishChunk(_ finishReason: String, into text: inout String) {
        switch kind {
        case .chat: writeChunk(choice: "\"delta\":{}", finishReason: finishReason, into: &text)
        case .text: writeChunk(choice: "\"text\":\"\"", finishReason: finishReason, into: &text)
        }
    }

    /// Writes the usage chunk (`"choices":[]`) if the request asked for it, then `[DONE]`.
    func writeEnd(_ generation: Generation, into text: inout String) {
        if includeUsage {
            text += "data: "
            text += chunkPrefix
            text += "[],\"usage\":"
            text += Self.usage(generation)
            text += "}\n\n"
        }
        text += Self.done
    }

    /// The `choices` array of a token chunk, per token id: the vocabulary is fixed, so
    /// streaming a token is a handful of appends and no JSON work.
    private static let chatTokenChoices: [String] = Vocabulary.tokens.map {
        "[{\"index\":0,\"delta\":{\"content\":\(JSONText.quoted($0))},\"logprobs\":null,\"finish_reason\":null}]"
    }
    private static let textTokenChoices: [String] = Vocabulary.tokens.map {
        "[{\"index\":0,\"text\":\(JSONText.quoted($0)),\"logprobs\":null,\"finish_reason\":null}]"
    }

    private func writeChunk(choice: String, finishReason: String?, into text: inout String) {
        text += "data: "
        text += chunkPrefix
        text += "[{\"index\":0,"
        text += choice
        text += ",\"logprobs\":null,\"finish_reason\":"
        text += JSONText.quotedOrNull(finishReason)
        text += "}]"
        text += chunkSuffix
    }

    static func usage(_ generation: Generation) -> String {
        "{\"prompt_tokens\":\(generation.promptTokens),\"completion_tokens\":\(generation.completionTokens),"
            + "\"total_tokens\":\(generation.totalTokens)}"
    }
}
