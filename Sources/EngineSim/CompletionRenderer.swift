import Hummingbird

/// Writes the OpenAI JSON of one chat or text completion, whole or as SSE stream chunks.
///
/// The parts shared by every chunk (id, object, created, model) are rendered once per
/// request; each token then costs a few appends.
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
    func writeResponse(_ generation: Generation, into buffer: inout ByteBuffer) {
        buffer.writeString(responsePrefix)
        buffer.writeString("\"choices\":[{\"index\":0,")
        switch kind {
        case .chat:
            buffer.writeString("\"message\":{\"role\":\"assistant\",\"content\":")
            buffer.writeString(JSONText.quoted(generation.text))
            buffer.writeString("},")
        case .text:
            buffer.writeString("\"text\":")
            buffer.writeString(JSONText.quoted(generation.text))
            buffer.writeString(",")
        }
        buffer.writeString("\"logprobs\":null,\"finish_reason\":\"\(generation.finishReason)\"}],\"usage\":")
        buffer.writeString(Self.usage(generation))
        buffer.writeString("}")
    }

    // MARK: Stream chunks

    /// Writes the chunk that opens a chat stream (`delta` with the role); text streams have none.
    func writeFirstChunk(into buffer: inout ByteBuffer) {
        guard kind == .chat else { return }
        writeChunk(choice: "\"delta\":{\"role\":\"assistant\",\"content\":\"\"}", finishReason: nil, into: &buffer)
    }

    /// Writes the chunk carrying one token.
    func writeTokenChunk(_ token: String, into buffer: inout ByteBuffer) {
        switch kind {
        case .chat: writeChunk(choice: "\"delta\":{\"content\":\(JSONText.quoted(token))}", finishReason: nil, into: &buffer)
        case .text: writeChunk(choice: "\"text\":\(JSONText.quoted(token))", finishReason: nil, into: &buffer)
        }
    }

    /// Writes the chunk with an empty delta (or text) and the finish reason.
    func writeFinishChunk(_ finishReason: String, into buffer: inout ByteBuffer) {
        switch kind {
        case .chat: writeChunk(choice: "\"delta\":{}", finishReason: finishReason, into: &buffer)
        case .text: writeChunk(choice: "\"text\":\"\"", finishReason: finishReason, into: &buffer)
        }
    }

    /// Writes the usage chunk (`"choices":[]`) if the request asked for it, then `[DONE]`.
    func writeEnd(_ generation: Generation, into buffer: inout ByteBuffer) {
        if includeUsage {
            buffer.writeString("data: ")
            buffer.writeString(chunkPrefix)
            buffer.writeString("[],\"usage\":")
            buffer.writeString(Self.usage(generation))
            buffer.writeString("}\n\n")
        }
        buffer.writeString(Self.done)
    }

    private func writeChunk(choice: String, finishReason: String?, into buffer: inout ByteBuffer) {
        buffer.writeString("data: ")
        buffer.writeString(chunkPrefix)
        buffer.writeString("[{\"index\":0,")
        buffer.writeString(choice)
        buffer.writeString(",\"logprobs\":null,\"finish_reason\":")
        buffer.writeString(JSONText.quotedOrNull(finishReason))
        buffer.writeString("}]")
        buffer.writeString(chunkSuffix)
    }

    static func usage(_ generation: Generation) -> String {
        "{\"prompt_tokens\":\(generation.promptTokens),\"completion_tokens\":\(generation.completionTokens),"
            + "\"total_tokens\":\(generation.totalTokens)}"
    }
}
