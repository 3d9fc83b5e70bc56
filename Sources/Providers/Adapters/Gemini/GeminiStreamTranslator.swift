import NIOCore

/// Turns a Gemini `streamGenerateContent?alt=sse` stream into OpenAI chunks.
///
/// Gemini frames each `GenerateContentResponse` as `data: {json}` with CRLF line ends and
/// sends no `[DONE]`: the stream is over when the upstream closes, and a candidate with
/// a `finishReason` says it ended on purpose. Text parts become content chunks; function
/// calls arrive whole and become one tool-call chunk each, with their full arguments;
/// `usageMetadata` is cumulative, so the last one counts.
public struct GeminiStreamTranslator: StreamTranslator {
    private let encoder: ChatCompletionEncoder
    private let clientWantsUsage: Bool
    private var parser = SSEParser()
    /// The model Gemini names (`modelVersion`) in its first event; every chunk carries it.
    private var model: String?
    private var sentRole = false
    private var toolCalls = 0
    /// Gemini's last finish reason, once an event carried one.
    private var lastFinishReason: String?
    /// Gemini refused the prompt (`promptFeedback.blockReason`): no candidate follows.
    private var promptBlocked = false
    private var finished = false

    public private(set) var usage: TokenUsage?
    public private(set) var contentChunks = 0
    public private(set) var upstreamError: OpenAIError?

    /// - Parameters:
    ///   - labels: the id, creation time and fallback model of the chunks.
    ///   - clientWantsUsage: whether to send the usage chunk before `[DONE]`.
    public init(labels: ResponseLabels, clientWantsUsage: Bool) {
        self.encoder = ChatCompletionEncoder(labels: labels)
        self.clientWantsUsage = clientWantsUsage
    }

    public mutating func translate(_ chunk: ByteBuffer) -> ByteBuffer {
        var output = ByteBuffer()
        guard !finished, upstreamError == nil else { return output }
        for event in parser.feed(chunk) {
            handle(event, into: &output)
            if upstreamError != nil { break }
        }
        return output
    }

    public mutating func finish() -> ByteBuffer {
        var output = ByteBuffer()
        guard !finished else { return output }
        defer { finished = true }
        if upstreamError == nil, let event = parser.finish() {
            handle(event, into: &output)
        }
        guard upstreamError == nil else { return output }
        let reason: String
        if promptBlocked {
            reason = GeminiFinishReason.promptBlocked
        } else if let lastFinishReason {
            reason = GeminiFinishReason.openAI(lastFinishReason, sawToolCalls: toolCalls > 0)
        } else {
            fail(.upstreamFailed("upstream stream ended early"), into: &output)
            return output
        }
        encoder.finishChunk(reason, model: model, into: &output)
        if clientWantsUsage, let usage {
            encoder.usageChunk(usage, model: model, into: &output)
        }
        encoder.done(into: &output)
        return output
    }

    // MARK: Events

    private mutating func handle(_ event: SSEEvent, into output: inout ByteBuffer) {
        guard !event.data.isEmpty, !event.isDone else { return }
        guard let response = GeminiResponse.decode(event.data) else {
            fail(.upstreamFailed("The upstream sent a stream event Switchyard could not read."), into: &output)
            return
        }
        if let error = response.error {
            fail(error.openAIError(httpStatus: error.code ?? 500), into: &output)
            return
        }
        if !sentRole {
            model = response.modelVersion
            encoder.roleChunk(model: model, into: &output)
            sentRole = true
        }
        if let usageMetadata = response.usageMetadata {
            usage = usageMetadata.tokenUsage
        }
        if response.promptFeedback?.blockReason != nil {
            promptBlocked = true
        }
        for part in response.answerParts {
            if let text = part.text, !text.isEmpty {
                encoder.contentChunk(text, model: model, into: &output)
                contentChunks += 1
            }
            if let call = part.functionCall {
                let toolCall = call.toolCall(index: toolCalls)
                encoder.toolCallStartChunk(
                    index: toolCalls, id: toolCall.id, name: toolCall.function.name,
                    arguments: toolCall.function.arguments, model: model, into: &output
                )
                toolCalls += 1
                contentChunks += 1
            }
        }
        if let reason = response.candidates?.first?.finishReason {
            lastFinishReason = reason
        }
    }

    /// Sends the error event; nothing follows it.
    private mutating func fail(_ error: OpenAIError, into output: inout ByteBuffer) {
        upstreamError = error
        ChatCompletionEncoder.errorEvent(error, into: &output)
    }
}
