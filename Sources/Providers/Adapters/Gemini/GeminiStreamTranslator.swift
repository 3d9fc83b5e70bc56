import NIOCore

/// Turns a Gemini `streamGenerateContent?alt=sse` stream into OpenAI chunks.
///
/// Gemini frames each `GenerateContentResponse` as `data: {json}` with CRLF line ends and
/// sends no `[DONE]`: the stream is over when the upstream closes, and a candidate with
/// a `finishReason` says it ended on purpose. Text parts become content chunks; thought
/// summaries become `reasoning_content` when reasoning is exposed; function calls, whole
/// or with streamed arguments, become one tool call each (`GeminiFunctionCalls`);
/// `usageMetadata` is cumulative, so the last one counts. A bare JSON error object after
/// the events (Gemini's way of failing a stream late) ends it as an error event.
public struct GeminiStreamTranslator: StreamTranslator {
    private let encoder: ChatCompletionEncoder
    private let clientWantsUsage: Bool
    private let exposeReasoning: Bool
    private var parser = SSEParser()
    private var sentRole = false
    private var calls = GeminiFunctionCalls()
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
        self.exposeReasoning = labels.exposeReasoning
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
        if let body = parser.strayError {
            let error = GeminiError.decode(body)?.openAIError(httpStatus: 500)
                ?? .upstreamFailed("The upstream ended the stream with an error.")
            fail(error, into: &output)
            return output
        }
        send(calls.finish(), into: &output)
        let reason: String
        if promptBlocked {
            reason = GeminiFinishReason.promptBlocked
        } else if let lastFinishReason {
            reason = GeminiFinishReason.openAI(lastFinishReason, sawToolCalls: calls.count > 0)
        } else {
            fail(.upstreamFailed("upstream stream ended early"), into: &output)
            return output
        }
        sendRoleIfNeeded(into: &output)
        encoder.finishChunk(reason, into: &output)
        if clientWantsUsage {
            // A blocked prompt may come without usage; the client still gets the chunk,
            // with the estimate the ledger records.
            let reported = usage ?? encoder.labels.estimatedUsage(contentChunks: contentChunks)
            usage = reported
            encoder.usageChunk(reported, into: &output)
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
        sendRoleIfNeeded(into: &output)
        if let usageMetadata = response.usageMetadata {
            usage = usageMetadata.tokenUsage
        }
        if response.promptFeedback?.blockReason != nil {
            promptBlocked = true
        }
        for part in response.parts {
            if let text = part.text, !text.isEmpty {
                if part.thought == true {
                    if exposeReasoning {
                        encoder.reasoningChunk(text, into: &output)
                        contentChunks += 1
                    }
                } else {
                    encoder.contentChunk(text, into: &output)
                    contentChunks += 1
                }
            }
            if let call = part.functionCall {
                send(calls.receive(call), into: &output)
            }
        }
        if let reason = response.candidates?.first?.finishReason {
            lastFinishReason = reason
        }
    }

    private mutating func sendRoleIfNeeded(into output: inout ByteBuffer) {
        guard !sentRole else { return }
        encoder.roleChunk(into: &output)
        sentRole = true
    }

    private mutating func send(_ events: [GeminiFunctionCalls.Event], into output: inout ByteBuffer) {
        for event in events {
            switch event {
            case .start(let index, let id, let name, let arguments):
                encoder.toolCallStartChunk(index: index, id: id, name: name, arguments: arguments, into: &output)
            case .arguments(let index, let fragment):
                encoder.toolCallArgumentsChunk(index: index, fragment: fragment, into: &output)
            }
            contentChunks += 1
        }
    }

    /// Sends the error event; nothing follows it.
    private mutating func fail(_ error: OpenAIError, into output: inout ByteBuffer) {
        upstreamError = encoder.errorEvent(error, into: &output)
    }
}
