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
            var relay = AnswerRelay(head: head, deployment: deployment, labels: labels)
            defer { meter.finish(relay.outcome) }
            var clientError: (any Error)?
            do {
                for try await chunk in upstream.body {
                    let output = relay.relay(chunk)
                    guard output.readableBytes > 0 else { continue }
                    do {
                        try await writer.write(output)
                    } catch {
                        clientError = error
                        relay.clientLeft()
                        break
                    }
                }
                if clientError == nil { relay.upstreamEnded() }
            } catch {
                let failure = shutdown.isPastDeadline
                    ? ServerShutdown.error(requestID: requestID)
                    : OpenAIError.upstreamFailed("The upstream failed mid-stream (request id \(requestID)).")
                if clientError == nil {
                    switch relay.upstreamFailed(failure) {
                    case .whole: break
                    case .inBand(let event): try? await writer.write(event)
                    case .closeConnection: clientError = UpstreamBodyCutOff()
                    }
                }
            }
            let outcome = relay.completedOutcome()
            if let clientError { throw clientError }
            meter.finish(outcome)
            let end = relay.takeEnd()
            if end.readableBytes > 0 { try await writer.write(end) }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers, body: body)
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
