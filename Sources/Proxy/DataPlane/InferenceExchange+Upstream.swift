import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import Pools
import Providers

extension InferenceExchange {
    /// One upstream attempt: its connection and what its answer has come to so far.
    final class Attempt {
        enum Phase {
            /// Waiting for a connection from the pool.
            case connecting(ticket: Int?)
            /// The request is sent; its answer's head has not come.
            case awaitingHead
            /// A successful answer, relayed as it comes.
            case relaying(AnswerRelay)
            /// A successful answer in another format, collected to be translated whole.
            case collecting(ByteBuffer)
            /// An error answer, collected (bounded) to be judged.
            case collectingError(status: Int, headers: HeaderFields, body: ByteBuffer)
            case over
        }

        let deployment: Topology.Deployment
        var placement: Placement
        let target: UpstreamTarget
        let head: HTTPRequestHead
        /// The request's body, kept for a retry on a fresh connection until an answer comes.
        var body: ByteBuffer
        var connection: UpstreamConnection?
        var phase: Phase = .connecting(ticket: nil)
        /// The request went out on a connection that had carried one before: a failure
        /// before any byte of the answer may be the server closing it while idle.
        var retriedOnFreshConnection = false
        /// Reading stopped because the client is not taking what is written.
        var readPaused = false
        /// When the head must have come, and when the body last moved.
        var deadline: Scheduled<Void>?
        var lastRead = NIODeadline.now()

        init(deployment: Topology.Deployment, placement: Placement, target: UpstreamTarget, head: HTTPRequestHead, body: ByteBuffer) {
            self.deployment = deployment
            self.placement = placement
            self.target = target
            self.head = head
            self.body = body
        }

        func cancelTimers() {
            deadline?.cancel()
            deadline = nil
        }

        func resumeReading() {
            guard readPaused, let connection else { return }
            readPaused = false
            connection.read()
        }
    }

    // MARK: Sending

    /// Sends the request to the placement's upstream, on a connection of this loop.
    func send(_ deployment: Topology.Deployment, placement: Placement, head: InferenceRequestHead) {
        let upstream: UpstreamRequest
        do {
            upstream = try pipeline.upstreamRequest(
                head: head, body: requestBody, deployment: deployment, placement: placement, band: currentTenant?.contract.band
            )
        } catch {
            // The tenant's request was at fault, not the key or the upstream.
            pipeline.giveBackUnused(placement)
            record { $0.record(attempt: .notSent(error)) }
            return
        }
        guard let target = UpstreamTarget(url: upstream.url) else {
            attemptUnreachable(deployment, placement: placement, model: head.model, error: UpstreamURLInvalid(url: upstream.url))
            return
        }
        var headers = HTTPHeaders()
        headers.reserveCapacity(upstream.headers.count + 3)
        headers.add(name: "host", value: target.origin.hostHeader)
        for header in upstream.headers { headers.add(name: header.name, value: header.value) }
        headers.add(name: "x-request-id", value: requestID)
        headers.add(name: "content-length", value: String(upstream.body.readableBytes))
        trace?.attemptStarted(deployment, headers: &headers)
        let requestHead = HTTPRequestHead(version: .http1_1, method: .POST, uri: target.target, headers: headers)
        let attempt = Attempt(deployment: deployment, placement: placement, target: target, head: requestHead, body: upstream.body)
        self.attempt = attempt
        // An answer's head is due within the upstream timeout.
        let timeout = pipeline.limits.upstreamTimeout
        attempt.deadline = eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(timeout.nanoseconds))) { [self] in
            guard let current = self.attempt, current === attempt else { return }
            attempt.deadline = nil
            upstreamTimedOut(attempt)
        }
        connect(attempt)
    }

    private func connect(_ attempt: Attempt) {
        let ticket = pool.lease(attempt.target.origin) { [self] result in
            guard let current = self.attempt, current === attempt, case .connecting = attempt.phase else {
                // Given up meanwhile: the connection goes back unused.
                if case .success(let connection) = result { pool.giveBack(connection) }
                return
            }
            switch result {
            case .success(let connection):
                attempt.connection = connection
                attempt.phase = .awaitingHead
                connection.send(head: attempt.head, body: attempt.body, to: self)
            case .failure(let error):
                attemptFailedBeforeAnswer(attempt, error: error)
            }
        }
        if let ticket, case .connecting = attempt.phase { attempt.phase = .connecting(ticket: ticket) }
    }

    /// No answer came: the connection failed, or could not be made.
    private func attemptFailedBeforeAnswer(_ attempt: Attempt, error: any Error) {
        if let connection = attempt.connection, connection.requests > 1, !connection.receivedAnything,
           !attempt.retriedOnFreshConnection, !clientGone, !pipeline.shutdown.isPastDeadline {
            // A kept connection the server closed while it was idle: once more, on a new one.
            attempt.retriedOnFreshConnection = true
            attempt.connection = nil
            attempt.phase = .connecting(ticket: nil)
            connect(attempt)
            return
        }
        over(attempt)
        if clientGone || pipeline.shutdown.isPastDeadline {
            // Neither the upstream's fault nor the key's.
            pipeline.giveBackUnused(attempt.placement)
            record { $0.record(attempt: clientGone ? .cancelled : .shuttingDown) }
            return
        }
        attemptUnreachable(attempt.deployment, placement: attempt.placement, model: model, error: error)
    }

    private func attemptUnreachable(_ deployment: Topology.Deployment, placement: Placement, model: String, error: any Error) {
        trace?.attemptFailed(reason: "unreachable: \(error)")
        switch pipeline.unreachable(deployment, placement: placement, model: model, error: error, logger: requestLogger) {
        case .engine(let failure):
            keepForNextReplica(placement)
            record { $0.record(attempt: .unreachable(failure)) }
        case .key(let failure, let report):
            runOffLoop({ await report() }) { exchange, _ in
                exchange.record { $0.record(attempt: .unreachable(failure)) }
            }
        }
    }

    private func upstreamTimedOut(_ attempt: Attempt) {
        trace?.attemptFailed(reason: "no answer within the upstream timeout")
        switch attempt.phase {
        case .connecting(let ticket):
            if let ticket { pool.cancelWait(ticket, origin: attempt.target.origin) }
            attemptFailedBeforeAnswer(attempt, error: UpstreamTimedOut())
        case .awaitingHead:
            attempt.connection?.abandon()
            attemptFailedBeforeAnswer(attempt, error: UpstreamTimedOut())
        case .relaying, .collecting, .collectingError, .over:
            break
        }
    }

    /// The attempt is done with: its connection is no longer this exchange's.
    private func over(_ attempt: Attempt) {
        attempt.phase = .over
        attempt.cancelTimers()
        if self.attempt === attempt { self.attempt = nil }
    }

    // MARK: The client leaving

    func attemptClientLeft(_ attempt: Attempt) {
        switch attempt.phase {
        case .connecting(let ticket):
            if let ticket { pool.cancelWait(ticket, origin: attempt.target.origin) }
            attemptFailedBeforeAnswer(attempt, error: CancellationError())
        case .awaitingHead, .collectingError:
            attempt.connection?.abandon()
            attemptFailedBeforeAnswer(attempt, error: CancellationError())
        case .collecting:
            // The client left while the answer was being generated.
            attempt.connection?.abandon()
            over(attempt)
            var outcome = RequestMeter.Outcome(deployment: attempt.deployment, status: 499)
            outcome.errorType = "client_closed_request"
            outcome.clientAborted = true
            finishMeter(outcome)
            end()
        case .relaying(var relay):
            attempt.connection?.abandon()
            over(attempt)
            relay.clientLeft()
            finishMeter(relay.completedOutcome())
            end()
        case .over:
            break
        }
    }
}

// MARK: The upstream's answer

extension InferenceExchange: UpstreamReceiver {
    func upstreamHead(_ head: HTTPResponseHead) {
        guard let attempt, case .awaitingHead = attempt.phase, let request = preparedHead else { return }
        attempt.cancelTimers()
        let status = Int(head.status.code)
        guard (200..<300).contains(status) else {
            attempt.phase = .collectingError(status: status, headers: head.headers.map { ($0.name, $0.value) }, body: ByteBuffer())
            return
        }
        pipeline.noteAnswer(
            status: status, headers: head.headers.map { ($0.name, $0.value) }, deployment: attempt.deployment,
            placement: &attempt.placement
        )
        meterUse(attempt.placement)
        // An answer has come: no retry or failover sends the request again, so its bytes
        // (and the read buffers they are slices of) are let go for the answer's duration.
        attempt.body = ByteBuffer()
        releaseRequestBody()
        let deployment = attempt.deployment
        let labels = ResponseLabels(
            id: "chatcmpl-" + requestID, created: Int(Date().timeIntervalSince1970), model: request.model,
            exposeReasoning: deployment.settings.exposesReasoning(for: request),
            promptTokenEstimate: promptTokenEstimate,
            redaction: attempt.placement.redaction(naming: request.model)
        )
        if !request.stream, deployment.adapter.translatesResponses(for: request.endpoint) {
            attempt.phase = .collecting(ByteBuffer())
            self.labels = labels
        } else {
            attempt.phase = .relaying(AnswerRelay(head: request, deployment: deployment, labels: labels))
            startAnswer(upstreamHead: head, deployment: deployment, placement: attempt.placement)
        }
        attempt.lastRead = .now()
        armReadTimeout(attempt)
        trace?.answerStarted(status: status, deployment: deployment)
        record { $0.record(attempt: .answered) }
    }

    func upstreamBody(_ buffer: ByteBuffer) {
        guard let attempt else { return }
        attempt.lastRead = .now()
        switch attempt.phase {
        case .relaying(var relay):
            attempt.phase = .over
            let output = relay.relay(buffer)
            attempt.phase = .relaying(relay)
            if output.readableBytes > 0 { writeAnswer(.body(output)) }
        case .collecting(var whole):
            attempt.phase = .over
            var buffer = buffer
            if whole.readableBytes + buffer.readableBytes > pipeline.limits.maximumTranslatedBodyBytes {
                attempt.connection?.abandon()
                translationFailed(attempt, error: OpenAIError.upstreamFailed("The upstream's answer could not be read."))
                return
            }
            if whole.readableBytes == 0 { whole = buffer } else { whole.writeBuffer(&buffer) }
            attempt.phase = .collecting(whole)
        case .collectingError(let status, let headers, var body):
            attempt.phase = .over
            var buffer = buffer
            // Beyond the bound the body is read and dropped; an error that large is judged by its status.
            if body.readableBytes + buffer.readableBytes <= pipeline.limits.maximumErrorBodyBytes {
                if body.readableBytes == 0 { body = buffer } else { body.writeBuffer(&buffer) }
            } else {
                body.clear()
            }
            attempt.phase = .collectingError(status: status, headers: headers, body: body)
        case .connecting, .awaitingHead, .over:
            break
        }
    }

    func upstreamReadComplete() {
        guard let attempt, let connection = attempt.connection else { return }
        if case .relaying = attempt.phase {
            flushAnswer()
            // The client's pace: the next read waits until what was written can go out.
            guard isClientWritable else {
                attempt.readPaused = true
                return
            }
        }
        connection.read()
    }

    func upstreamEnd() {
        guard let attempt else { return }
        if let connection = attempt.connection {
            attempt.connection = nil
            pool.giveBack(connection)
        }
        switch attempt.phase {
        case .relaying(var relay):
            over(attempt)
            relay.upstreamEnded()
            completeAnswer(&relay)
        case .collecting(let whole):
            over(attempt)
            translate(attempt, body: whole)
        case .collectingError(let status, let headers, let body):
            over(attempt)
            judge(attempt, status: status, headers: headers, body: body)
        case .connecting, .awaitingHead, .over:
            break
        }
    }

    func upstreamFailed(_ error: any Error) {
        guard let attempt else { return }
        attempt.connection = nil
        switch attempt.phase {
        case .awaitingHead:
            attemptFailedBeforeAnswer(attempt, error: error)
        case .relaying(var relay):
            over(attempt)
            let failure = pipeline.shutdown.isPastDeadline
                ? ServerShutdown.error(requestID: requestID)
                : OpenAIError.upstreamFailed("The upstream failed mid-stream (request id \(requestID)).")
            switch relay.upstreamFailed(failure) {
            case .whole:
                completeAnswer(&relay)
            case .inBand(let event):
                writeAnswer(.body(event))
                completeAnswer(&relay)
            case .closeConnection:
                finishMeter(relay.completedOutcome())
                closeClientAndEnd()
            }
        case .collecting:
            translationFailed(attempt, error: error)
        case .collectingError(let status, let headers, _):
            // What could not be read is judged by its status alone.
            over(attempt)
            judge(attempt, status: status, headers: headers, body: ByteBuffer())
        case .connecting, .over:
            break
        }
    }

    // MARK: Ending an answer

    /// The relayed answer is complete: metered first, then its end goes out.
    private func completeAnswer(_ relay: inout AnswerRelay) {
        finishMeter(relay.completedOutcome())
        let end = relay.takeEnd()
        if end.readableBytes > 0 { writeAnswer(.body(end)) }
        writeAnswer(.end(nil), flush: true)
        self.end()
    }

    private func translate(_ attempt: Attempt, body: ByteBuffer) {
        guard let head = preparedHead, let labels else { return }
        var outcome = RequestMeter.Outcome(deployment: attempt.deployment, status: 200)
        outcome.firstByte = .now
        let translated: TranslatedResponse
        do {
            translated = try attempt.deployment.adapter.translateResponse(body, head: head, labels: labels)
        } catch {
            translationFailed(attempt, error: error)
            return
        }
        outcome.usage = translated.usage
        outcome.completionEstimate = TokenUsage.estimateTokens(byteCount: translated.body.readableBytes)
        finishMeter(outcome)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[.contentLength] = String(translated.body.readableBytes)
        answer(PlainResponse(status: 200, headers: answerHeaders(headers, deployment: attempt.deployment, placement: attempt.placement), body: translated.body))
    }

    /// A whole answer in another format that failed to arrive or translate: a 502 (or the
    /// shutdown's 503), which the client gets before any byte of an answer.
    private func translationFailed(_ attempt: Attempt, error: any Error) {
        over(attempt)
        guard let head = preparedHead else { return }
        let failure = pipeline.shutdown.isPastDeadline
            ? ServerShutdown.error(requestID: requestID)
            : attempt.placement.redaction(naming: head.model).redact(
                error as? OpenAIError ?? OpenAIError.upstreamFailed("The upstream's answer could not be read.")
            )
        var outcome = RequestMeter.Outcome(deployment: attempt.deployment, status: failure.status)
        outcome.errorType = failure.code == "shutting_down" ? "shutting_down" : failure.type
        finishMeter(outcome)
        answer(PlainResponse(failure))
    }

    /// An error answer: the pipeline judges who was at fault, and the route goes on.
    private func judge(_ attempt: Attempt, status: Int, headers: HeaderFields, body: ByteBuffer) {
        trace?.attemptFailed(reason: "the upstream answered \(status)")
        var placement = attempt.placement
        switch pipeline.judge(
            status: status, headers: headers, body: body, deployment: attempt.deployment, placement: &placement,
            model: model, logger: requestLogger
        ) {
        case .decided(let outcome):
            record { $0.record(attempt: outcome) }
        case .reporting(let report):
            runOffLoop({ await report() }) { exchange, outcome in
                exchange.record { $0.record(attempt: outcome) }
            }
        }
    }

    /// Closes an upstream whose answer stops moving for the read timeout (not counting
    /// time the client's pace held its reads).
    private func armReadTimeout(_ attempt: Attempt, after delay: TimeAmount = InferenceExchange.readTimeout) {
        attempt.deadline = eventLoop.assumeIsolated().scheduleTask(in: delay) { [weak self, weak attempt] in
            guard let self, let attempt, self.attempt === attempt else { return }
            attempt.deadline = nil
            let quiet = NIODeadline.now() - attempt.lastRead
            if quiet >= Self.readTimeout, !attempt.readPaused {
                attempt.connection?.abandonForShutdown()
            } else {
                self.armReadTimeout(attempt, after: quiet >= Self.readTimeout ? Self.readTimeout : Self.readTimeout - quiet)
            }
        }
    }

    /// How long an answer may stop moving before its upstream is given up.
    static let readTimeout = TimeAmount.seconds(300)
}

/// The upstream gave no answer within the upstream timeout.
struct UpstreamTimedOut: Error, CustomStringConvertible {
    var description: String { "the upstream did not answer in time" }
}

/// A deployment's URL that is not an absolute http or https URL.
struct UpstreamURLInvalid: Error, CustomStringConvertible {
    var url: String
    var description: String { "not an http or https URL" }
}
