import NIOCore
import Providers

/// What happens to a successful upstream answer on its way to the client, one buffer at
/// a time, whichever path carries the bytes: streams go through the adapter's stream
/// translator (usage read, usage chunk hidden unless asked for); JSON bodies go through
/// as they are but for their `model`, which names the public model, their usage read once
/// the last byte is in.
///
/// What ends a stream (its `[DONE]`, and what the translator owes after the upstream's
/// last byte) is held back until the usage event is in the spool: a client that has its
/// whole answer is metered even if the process dies the next moment.
struct AnswerRelay {
    private(set) var outcome: RequestMeter.Outcome
    private let isStream: Bool
    private var translator: any StreamTranslator
    /// A whole answer names its model once; a stream's translator renames every chunk.
    private var modelRewriter: ModelNameRewriter?
    private var received: [ByteBuffer] = []
    private var receivedBytes = 0
    /// What is sent once the request is metered.
    private var end = ByteBuffer()

    init(head: InferenceRequestHead, deployment: Topology.Deployment, labels: ResponseLabels) {
        self.outcome = RequestMeter.Outcome(deployment: deployment, status: 200)
        self.isStream = head.stream
        self.translator = deployment.adapter.makeStreamTranslator(head: head, labels: labels)
        self.modelRewriter = head.stream ? nil : ModelNameRewriter(model: labels.model)
    }

    /// What to send the client of the next upstream bytes (possibly nothing).
    mutating func relay(_ chunk: ByteBuffer) -> ByteBuffer {
        if outcome.firstByte == nil { outcome.firstByte = .now }
        guard isStream else {
            received.append(chunk)
            receivedBytes += chunk.readableBytes
            return modelRewriter?.rewrite(chunk) ?? chunk
        }
        // An error event, the one part of a stream that carries the provider's words, is
        // scrubbed by the translator.
        var output = translator.translate(chunk)
        _ = Self.holdBackDone(&output, into: &end)
        return output
    }

    /// The upstream's answer is complete.
    mutating func upstreamEnded() {
        guard isStream else { return }
        var tail = translator.finish()
        end.writeBuffer(&tail)
    }

    /// How an answer the upstream failed mid-way ends for the client.
    enum Cut {
        /// The stream had its `[DONE]`: it is whole, and ends as one.
        case whole
        /// The stream ends with this error event.
        case inBand(ByteBuffer)
        /// A whole answer cut short cannot be finished as if complete: the connection
        /// closes without its last chunk.
        case closeConnection
    }

    /// The upstream failed mid-answer (or the shutdown's grace period ended it): the
    /// client already has the head, so the error goes in-band.
    mutating func upstreamFailed(_ failure: OpenAIError) -> Cut {
        if isStream, end.readableBytes > 0 { return .whole }
        outcome.status = failure.status
        outcome.errorType = failure.code == "shutting_down" ? "shutting_down" : failure.type
        return isStream ? .inBand(failure.sseEvent()) : .closeConnection
    }

    /// The client left before the answer was all written.
    mutating func clientLeft() {
        outcome.clientAborted = true
        outcome.status = 499
        outcome.errorType = "client_closed_request"
    }

    /// The outcome with its usage: reported by the upstream, else estimated from what
    /// went by.
    mutating func completedOutcome() -> RequestMeter.Outcome {
        if isStream {
            outcome.usage = translator.usage
            outcome.completionEstimate = translator.contentChunks
            if let error = translator.upstreamError, outcome.errorType == nil { outcome.errorType = error.type }
        } else if outcome.errorType == nil || outcome.clientAborted {
            var whole: ByteBuffer
            if received.count == 1 {
                whole = received[0]
            } else {
                whole = ByteBuffer()
                whole.reserveCapacity(receivedBytes)
                for var part in received { whole.writeBuffer(&part) }
            }
            outcome.usage = TokenUsage.fromResponseBody(whole)
            outcome.completionEstimate = TokenUsage.estimateTokens(byteCount: receivedBytes)
        }
        return outcome
    }

    /// What ends the answer, to be sent once it is metered.
    mutating func takeEnd() -> ByteBuffer {
        defer { end = ByteBuffer() }
        return end
    }

    /// Moves a `data: [DONE]` event that ends `output` to `end`, to be sent after the
    /// request is metered. Returns whether it did.
    static func holdBackDone(_ output: inout ByteBuffer, into end: inout ByteBuffer) -> Bool {
        let done = "data: [DONE]\n\n".utf8
        guard output.readableBytes >= done.count,
              let last = output.getBytes(at: output.writerIndex - done.count, length: done.count),
              last.elementsEqual(done)
        else { return false }
        var held = output.getSlice(at: output.writerIndex - done.count, length: done.count) ?? ByteBuffer()
        output.moveWriterIndex(to: output.writerIndex - done.count)
        end.writeBuffer(&held)
        return true
    }
}
