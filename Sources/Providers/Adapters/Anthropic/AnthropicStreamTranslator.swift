import NIOCore

/// Turns an Anthropic Messages stream (`event:` + `data:` server-sent events) into OpenAI
/// `chat.completion.chunk` events, whatever the chunk boundaries.
///
/// The role chunk goes out at `message_start`; text deltas become content chunks and
/// `tool_use` blocks become tool calls numbered 0, 1, … in order; `message_stop` brings the
/// finish chunk, the usage chunk when the client asked for it, and `[DONE]`. Thinking goes
/// out as `reasoning_content` deltas, and each finished thinking block with its signature
/// as `thinking_blocks`, when reasoning is exposed; otherwise, like server-tool blocks
/// and pings, it sends nothing. An `event: error`, or a bare JSON error in place of
/// events, is relayed as an OpenAI error event and ends the translation.
public struct AnthropicStreamTranslator: StreamTranslator {
    private var parser = SSEParser()
    private var machine: StateMachine

    /// - Parameters:
    ///   - clientWantsUsage: whether to send the usage chunk before `[DONE]`.
    ///   - labels: the id and creation time of the chunks; the model when the stream names none.
    public init(clientWantsUsage: Bool, labels: ResponseLabels) {
        machine = StateMachine(
            encoder: ChatCompletionEncoder(labels: labels), clientWantsUsage: clientWantsUsage,
            exposeReasoning: labels.exposeReasoning
        )
    }

    public var usage: TokenUsage? { machine.usage }
    public var contentChunks: Int { machine.contentChunks }
    public var upstreamError: OpenAIError? { machine.upstreamError }

    public mutating func translate(_ chunk: ByteBuffer) -> ByteBuffer {
        var output = ByteBuffer()
        for event in parser.feed(chunk) {
            machine.receive(event, into: &output)
        }
        return output
    }

    /// Delivers an event left without its blank line (Anthropic's last one may lack it),
    /// then, if `message_stop` never came, reports the cut stream as an error.
    public mutating func finish() -> ByteBuffer {
        var output = ByteBuffer()
        if let event = parser.finish() {
            machine.receive(event, into: &output)
        }
        if let body = parser.strayError {
            machine.receiveStrayError(body, into: &output)
        }
        machine.endOfStream(into: &output)
        return output
    }
}
