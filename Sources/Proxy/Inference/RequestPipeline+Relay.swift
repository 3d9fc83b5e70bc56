import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Pools
import Providers

extension RequestPipeline {
    /// Relays a successful upstream answer to the client as it arrives, with backpressure:
    /// each chunk is written before the next is read. Streams go through the stream relay
    /// (usage read, usage chunk hidden unless asked for); JSON bodies go through as they
    /// are but for their `model`, which names the public model, their usage read once the
    /// last byte has been sent.
    func relay(
        _ upstream: HTTPClientResponse,
        head: InferenceRequestHead,
        deployment: Topology.Deployment,
        placement: Placement,
        meter: RequestMeter,
        requestID: String,
        rateLimitHeaders: RateLimitHeaders?
    ) async -> Response {
        let labels = ResponseLabels(
            id: "chatcmpl-" + requestID, created: Int(Date().timeIntervalSince1970), model: head.model,
            exposeReasoning: deployment.settings.exposesReasoning(for: head),
            promptTokenEstimate: meter.promptTokenEstimate,
            redaction: placement.redaction(naming: head.model)
        )
        if !head.stream, deployment.adapter.translatesResponses(for: head.endpoint) {
            var response = await translateWhole(
                upstream, head: head, deployment: deployment, placement: placement, meter: meter, labels: labels,
                requestID: requestID
            )
            if let rateLimitHeaders { response.headers.append(rateLimitHeaders: rateLimitHeaders) }
            return response
        }
        var headers = HTTPFields()
        headers[.contentType] = upstream.headers.first(name: "content-type")
            ?? (head.stream ? "text/event-stream" : "application/json")
        if let rateLimitHeaders { headers.append(rateLimitHeaders: rateLimitHeaders) }
        if head.stream {
            headers[.cacheControl] = "no-cache"
        }
        let shutdown = self.shutdown
        // A relayed body's length changes with its `model`: it goes out chunked.
        let body = ResponseBody { writer in
            var outcome = RequestMeter.Outcome(deployment: deployment, status: 200)
            defer { meter.finish(outcome) }
            var streamRelay = deployment.adapter.makeStreamTranslator(head: head, labels: labels)
            // A whole answer names its model once; a stream's relay renames every chunk.
            var modelRewriter = head.stream ? nil : ModelNameRewriter(model: labels.model)
            var received: [ByteBuffer] = []
            var receivedBytes = 0
            var clientError: (any Error)?
            var cutOff = false
            // What ends a stream (its `[DONE]`, and what the relay owes after the upstream's
            // last byte) goes out only once the usage event is in the spool: a client that
            // has its whole answer is metered even if the process dies the next moment.
            var end = ByteBuffer()
            do {
                for try await chunk in upstream.body {
                    if outcome.firstByte == nil { outcome.firstByte = .now }
                    var output: ByteBuffer
                    if head.stream {
                        // An error event, the one part of a stream that carries the
                        // provider's words, is scrubbed by the translator.
                        output = streamRelay.translate(chunk)
                    } else {
                        received.append(chunk)
                        receivedBytes += chunk.readableBytes
                        output = modelRewriter?.rewrite(chunk) ?? chunk
                    }
                    if head.stream { _ = Self.holdBackDone(&output, into: &end) }
                    guard output.readableBytes > 0 else { continue }
                    do {
                        try await writer.write(output)
                    } catch {
                        clientError = error
                        break
                    }
                }
                if clientError == nil, head.stream {
                    var tail = streamRelay.finish()
                    end.writeBuffer(&tail)
                }
            } catch where head.stream && clientError == nil && end.readableBytes > 0 {
                // The upstream failed after its `[DONE]`: the answer is whole, and ends as one.
            } catch {
                // The upstream failed mid-answer, or the shutdown's grace period ended it:
                // the client already has the head, so the error goes in-band and the
                // stream ends.
                let failure = shutdown.isPastDeadline
                    ? ServerShutdown.error(requestID: requestID)
                    : OpenAIError.upstreamFailed("The upstream failed mid-stream (request id \(requestID)).")
                outcome.status = failure.status
                outcome.errorType = failure.code == "shutting_down" ? "shutting_down" : failure.type
                if head.stream, clientError == nil {
                    try? await writer.write(failure.sseEvent())
                } else if clientError == nil {
                    // A whole answer cut short cannot be finished as if complete: the
                    // connection closes without the last chunk.
                    clientError = UpstreamBodyCutOff()
                    cutOff = true
                }
            }
            if let clientError {
                if !cutOff {
                    outcome.clientAborted = true
                    outcome.status = 499
                    outcome.errorType = "client_closed_request"
                }
                Self.fillInUsage(&outcome, head: head, stream: streamRelay, received: received, receivedBytes: receivedBytes)
                throw clientError
            }
            Self.fillInUsage(&outcome, head: head, stream: streamRelay, received: received, receivedBytes: receivedBytes)
            meter.finish(outcome)
            if end.readableBytes > 0 { try await writer.write(end) }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers, body: body)
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

    /// Fills in usage: reported by the upstream, else estimated from what went by.
    private static func fillInUsage(
        _ outcome: inout RequestMeter.Outcome,
        head: InferenceRequestHead,
        stream: any StreamTranslator,
        received: [ByteBuffer],
        receivedBytes: Int
    ) {
        if head.stream {
            outcome.usage = stream.usage
            outcome.completionEstimate = stream.contentChunks
            if let error = stream.upstreamError, outcome.errorType == nil { outcome.errorType = error.type }
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
    }
}

extension RequestPipeline {
    /// For adapters whose answers are in another format: collects the (bounded) answer,
    /// translates it, and sends it whole. A body that fails to arrive or translate is a
    /// 502, which the client gets before any byte of an answer.
    private func translateWhole(
        _ upstream: HTTPClientResponse,
        head: InferenceRequestHead,
        deployment: Topology.Deployment,
        placement: Placement,
        meter: RequestMeter,
        labels: ResponseLabels,
        requestID: String
    ) async -> Response {
        var outcome = RequestMeter.Outcome(deployment: deployment, status: 200)
        defer { meter.finish(outcome) }
        let translated: TranslatedResponse
        do {
            let body = try await upstream.body.collect(upTo: limits.maximumTranslatedBodyBytes)
            outcome.firstByte = .now
            translated = try deployment.adapter.translateResponse(body, head: head, labels: labels)
        } catch {
            if shutdown.isPastDeadline {
                let failure = ServerShutdown.error(requestID: requestID)
                outcome.status = failure.status
                outcome.errorType = "shutting_down"
                return failure.response()
            }
            if Task.isCancelled {
                // The client left while the answer was being generated.
                outcome.status = 499
                outcome.errorType = "client_closed_request"
                outcome.clientAborted = true
                return OpenAIError.clientClosedRequest.response()
            }
            let failure = placement.redaction(naming: head.model).redact(
                error as? OpenAIError ?? OpenAIError.upstreamFailed("The upstream's answer could not be read.")
            )
            outcome.status = failure.status
            outcome.errorType = failure.type
            return failure.response()
        }
        outcome.usage = translated.usage
        outcome.completionEstimate = TokenUsage.estimateTokens(byteCount: translated.body.readableBytes)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[.contentLength] = String(translated.body.readableBytes)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: translated.body))
    }
}

/// Ends the writing of a whole answer the upstream cut short, so the connection closes
/// rather than carrying fewer bytes than its content-length promised.
struct UpstreamBodyCutOff: Error {}
