import NIOCore

/// Writes OpenAI's `chat.completion` and `chat.completion.chunk` JSON for adapters that
/// translate from other formats, so every translated answer has exactly one shape.
public struct ChatCompletionEncoder: Sendable {
    public let labels: ResponseLabels

    public init(labels: ResponseLabels) {
        self.labels = labels
    }

    // MARK: Streams

    /// `data: {chunk}\n\n` whose only choice carries `delta` (already JSON) and, when
    /// given, a `finish_reason`.
    public func chunk(deltaJSON: String, finishReason: String? = nil, into buffer: inout ByteBuffer) {
        writeChunkHead(into: &buffer)
        buffer.writeStaticString(#","choices":[{"index":0,"delta":"#)
        buffer.writeString(deltaJSON)
        buffer.writeStaticString(#","logprobs":null,"finish_reason":"#)
        if let finishReason { buffer.writeJSONString(finishReason) } else { buffer.writeStaticString("null") }
        buffer.writeStaticString("}]}\n\n")
    }

    /// The first chunk of a stream: the assistant role with empty content.
    public func roleChunk(into buffer: inout ByteBuffer) {
        chunk(deltaJSON: #"{"role":"assistant","content":""}"#, into: &buffer)
    }

    public func contentChunk(_ text: String, into buffer: inout ByteBuffer) {
        textChunk(#"{"content":"#, text, into: &buffer)
    }

    /// A piece of the model's reasoning, as `reasoning_content` (the field vLLM and
    /// DeepSeek use).
    public func reasoningChunk(_ text: String, into buffer: inout ByteBuffer) {
        textChunk(#"{"reasoning_content":"#, text, into: &buffer)
    }

    /// A chunk whose delta is one string member; `opening` is `{"name":`.
    private func textChunk(_ opening: StaticString, _ text: String, into buffer: inout ByteBuffer) {
        var delta = ByteBuffer()
        delta.writeStaticString(opening)
        delta.writeJSONString(text)
        delta.writeStaticString("}")
        chunk(deltaJSON: String(buffer: delta), into: &buffer)
    }

    /// Finished thinking blocks with their signatures, which a client sends back on the
    /// assistant message for the next turn.
    public func thinkingBlocksChunk(_ blocks: [ThinkingBlock], into buffer: inout ByteBuffer) {
        var delta = ByteBuffer()
        delta.writeStaticString(#"{"thinking_blocks":"#)
        Self.writeThinkingBlocks(blocks, into: &delta)
        delta.writeStaticString("}")
        chunk(deltaJSON: String(buffer: delta), into: &buffer)
    }

    /// The chunk that opens tool call `index`: its id, name and empty arguments.
    public func toolCallStartChunk(index: Int, id: String, name: String, arguments: String = "", into buffer: inout ByteBuffer) {
        var delta = ByteBuffer()
        delta.writeString(#"{"tool_calls":[{"index":\#(index),"id":"#)
        delta.writeJSONString(id)
        delta.writeStaticString(#","type":"function","function":{"name":"#)
        delta.writeJSONString(name)
        delta.writeStaticString(#","arguments":"#)
        delta.writeJSONString(arguments)
        delta.writeStaticString("}}]}")
        chunk(deltaJSON: String(buffer: delta), into: &buffer)
    }

    /// A fragment of tool call `index`'s argument JSON text.
    public func toolCallArgumentsChunk(index: Int, fragment: String, into buffer: inout ByteBuffer) {
        var delta = ByteBuffer()
        delta.writeString(#"{"tool_calls":[{"index":\#(index),"function":{"arguments":"#)
        delta.writeJSONString(fragment)
        delta.writeStaticString("}}]}")
        chunk(deltaJSON: String(buffer: delta), into: &buffer)
    }

    /// The last chunk with choices: empty delta, the finish reason.
    public func finishChunk(_ finishReason: String, into buffer: inout ByteBuffer) {
        chunk(deltaJSON: "{}", finishReason: finishReason, into: &buffer)
    }

    /// The usage chunk (`choices: []`), sent when the client asked for usage.
    public func usageChunk(_ usage: TokenUsage, into buffer: inout ByteBuffer) {
        writeChunkHead(into: &buffer)
        buffer.writeStaticString(#","choices":[],"usage":"#)
        Self.writeUsage(usage, into: &buffer)
        buffer.writeStaticString("}\n\n")
    }

    public func done(into buffer: inout ByteBuffer) {
        buffer.writeStaticString("data: [DONE]\n\n")
    }

    private func writeChunkHead(into buffer: inout ByteBuffer) {
        buffer.writeStaticString(#"data: {"id":"#)
        buffer.writeJSONString(labels.id)
        buffer.writeString(#","object":"chat.completion.chunk","created":\#(labels.created),"model":"#)
        buffer.writeJSONString(labels.model)
    }

    // MARK: Whole answers

    /// A complete `chat.completion` with one choice.
    ///
    /// - Parameters:
    ///   - content: the text, or nil when the answer is only tool calls.
    ///   - toolCalls: the calls, arguments as JSON text.
    public func completion(
        content: String?,
        toolCalls: [ToolCall],
        finishReason: String,
        usage: TokenUsage?,
        refusal: String? = nil,
        reasoning: String? = nil,
        thinkingBlocks: [ThinkingBlock] = []
    ) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeStaticString(#"{"id":"#)
        buffer.writeJSONString(labels.id)
        buffer.writeString(#","object":"chat.completion","created":\#(labels.created),"model":"#)
        buffer.writeJSONString(labels.model)
        buffer.writeStaticString(#","choices":[{"index":0,"message":{"role":"assistant","content":"#)
        if let content { buffer.writeJSONString(content) } else { buffer.writeStaticString("null") }
        buffer.writeStaticString(#","refusal":"#)
        if let refusal { buffer.writeJSONString(refusal) } else { buffer.writeStaticString("null") }
        if let reasoning {
            buffer.writeStaticString(#","reasoning_content":"#)
            buffer.writeJSONString(reasoning)
        }
        if !thinkingBlocks.isEmpty {
            buffer.writeStaticString(#","thinking_blocks":"#)
            Self.writeThinkingBlocks(thinkingBlocks, into: &buffer)
        }
        if !toolCalls.isEmpty {
            buffer.writeStaticString(#","tool_calls":["#)
            for (index, call) in toolCalls.enumerated() {
                if index > 0 { buffer.writeStaticString(",") }
                buffer.writeStaticString(#"{"id":"#)
                buffer.writeJSONString(call.id)
                buffer.writeStaticString(#","type":"function","function":{"name":"#)
                buffer.writeJSONString(call.function.name)
                buffer.writeStaticString(#","arguments":"#)
                buffer.writeJSONString(call.function.arguments)
                buffer.writeStaticString("}}")
            }
            buffer.writeStaticString("]")
        }
        buffer.writeStaticString(#"},"logprobs":null,"finish_reason":"#)
        buffer.writeJSONString(finishReason)
        buffer.writeStaticString("}]")
        if let usage {
            buffer.writeStaticString(#","usage":"#)
            Self.writeUsage(usage, into: &buffer)
        }
        buffer.writeStaticString("}")
        return buffer
    }

    /// OpenAI's usage object, with the cached and reasoning token details.
    public static func writeUsage(_ usage: TokenUsage, into buffer: inout ByteBuffer) {
        buffer.writeString(
            #"{"prompt_tokens":\#(usage.promptTokens),"completion_tokens":\#(usage.completionTokens),"#
                + #""total_tokens":\#(usage.totalTokens),"#
                + #""prompt_tokens_details":{"cached_tokens":\#(usage.cachedPromptTokens)},"#
                + #""completion_tokens_details":{"reasoning_tokens":\#(usage.reasoningTokens)}}"#
        )
    }

    /// `[{"type":"thinking","thinking":…,"signature":…}, {"type":"redacted_thinking","data":…}]`.
    static func writeThinkingBlocks(_ blocks: [ThinkingBlock], into buffer: inout ByteBuffer) {
        buffer.writeStaticString("[")
        for (index, block) in blocks.enumerated() {
            if index > 0 { buffer.writeStaticString(",") }
            buffer.writeStaticString(#"{"type":"#)
            buffer.writeJSONString(block.type)
            if let thinking = block.thinking {
                buffer.writeStaticString(#","thinking":"#)
                buffer.writeJSONString(thinking)
            }
            if let signature = block.signature {
                buffer.writeStaticString(#","signature":"#)
                buffer.writeJSONString(signature)
            }
            if let data = block.data {
                buffer.writeStaticString(#","data":"#)
                buffer.writeJSONString(data)
            }
            buffer.writeStaticString("}")
        }
        buffer.writeStaticString("]")
    }

    /// A mid-stream error event with the provider's words scrubbed (`labels.redaction`);
    /// nothing may follow it. Returns the error as sent.
    @discardableResult
    public func errorEvent(_ error: OpenAIError, into buffer: inout ByteBuffer) -> OpenAIError {
        let scrubbed = labels.redaction.redact(error)
        Self.errorEvent(scrubbed, into: &buffer)
        return scrubbed
    }

    /// A mid-stream error event; nothing may follow it.
    public static func errorEvent(_ error: OpenAIError, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("data: ")
        error.writeJSON(into: &buffer)
        buffer.writeStaticString("\n\n")
    }
}
