import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import Pools
import Providers

/// One inference request on the data plane, from its head to the last byte of its answer,
/// on its client connection's event loop: authenticate (a cache hit needs no wait), read
/// the body, plan the route, admit, place, send upstream on a pooled connection of the
/// same loop, relay the answer buffer to buffer at the client's pace, and meter it. The
/// route plan (`RoutePlan`) decides failover before the first byte, as on the router's
/// path; the request pipeline (`RequestPipeline`) supplies every decision, so both paths
/// answer alike.
///
/// What must wait on something else (a directory lookup, Redis, a queued slot, a key
/// pool, a key's failure report) runs as a task whose result completes a promise on the
/// loop; the common path runs none.
final class InferenceExchange {
    private let plane: DataPlane
    var pipeline: RequestPipeline { plane.pipeline }
    let pool: UpstreamPool
    private weak var handler: InferenceChannelHandler?
    let eventLoop: any EventLoop
    let route: InferenceRoute
    private let request: HTTPRequest
    let requestID: String
    private let startedAt = Date()
    private let startInstant = ContinuousClock.now

    /// Until the request's end has been read.
    private(set) var isReadingRequest = true
    private var body = ByteBuffer()
    @OutOfLine private var tenant: AuthenticatedTenant? = nil
    @OutOfLine private var prepared: RequestPipeline.PreparedRequest? = nil
    @OutOfLine private var plan: RoutePlan<OpenAIError>? = nil
    @OutOfLine private var reservation: Reservation? = nil
    private var meter: RequestMeter?
    /// The placement of the next attempt.
    @OutOfLine private var placement: Placement? = nil
    /// An engine slot whose replica could not be reached, kept for the next replica.
    @OutOfLine private var unreachable: Placement? = nil
    /// The upstream attempt in progress.
    var attempt: Attempt?
    /// How a translated answer names itself, once its head has come.
    @OutOfLine var labels: ResponseLabels? = nil
    /// Work off the loop whose result the exchange waits for.
    private var task: Task<Void, Never>?
    private var retryTimer: Scheduled<Void>?
    private var clientHasLeft = false
    private var isDone = false
    /// Whether the answer's head has gone to the client.
    private var answerStarted = false
    /// The request's spans, when tracing is on.
    let trace: RequestTrace?

    init(plane: DataPlane, pool: UpstreamPool, handler: InferenceChannelHandler, route: InferenceRoute, request: HTTPRequest) {
        self.plane = plane
        self.pool = pool
        self.handler = handler
        self.eventLoop = pool.eventLoop
        self.route = route
        self.request = request
        let requestID = RequestIDs.next()
        self.requestID = requestID
        self.trace = plane.pipeline.tracer.map {
            RequestTrace(tracer: $0, request: request, endpoint: route.endpoint, requestID: requestID)
        }
        plane.tookRequest()
    }

    // MARK: Reading the request

    /// The head is in: who sent it is known at once when the key's lookup is cached.
    func start() {
        trace?.begin("authenticate")
        let now = startedAt
        do {
            if let tenant = try plane.authenticator.cachedTenant(authorization: request.headerFields[.authorization], now: now) {
                authenticated(tenant)
                return
            }
        } catch {
            answer(PlainResponse(error))
            return
        }
        let (authenticator, authorization) = (plane.authenticator, request.headerFields[.authorization])
        runOffLoop({ () async -> Result<AuthenticatedTenant, OpenAIError> in
            do {
                return .success(try await authenticator.authenticate(authorization: authorization, now: now))
            } catch let error as OpenAIError {
                return .failure(error)
            } catch {
                return .failure(OpenAIError(
                    status: 503, message: "Keys cannot be checked right now; retry shortly.", type: "server_error",
                    code: "directory_unavailable"
                ))
            }
        }) { exchange, result in
            switch result {
            case .success(let tenant): exchange.authenticated(tenant)
            case .failure(let error): exchange.answer(PlainResponse(error))
            }
        }
    }

    private func authenticated(_ tenant: AuthenticatedTenant) {
        guard !isDone else { return }
        // A key of another tenant on a tenant's path: 404, as for a URL that does not
        // exist, so the answer reveals nothing about which tenants exist.
        if let scope = route.tenant, scope != tenant.tenantID, scope != tenant.tenantName {
            answer(PlainResponse(OpenAIErrorMiddleware.unknownURL(method: "POST", path: route.path)))
            return
        }
        plane.keyUses.record(keyID: tenant.keyID, at: startedAt)
        trace?.authenticated(tenant)
        self.tenant = tenant
        if !isReadingRequest { prepare() }
    }

    func requestPart(_ part: HTTPRequestPart) {
        switch part {
        case .head:
            break
        case .body(var bytes):
            guard !isDone else { return }
            let limit = pipeline.limits.maximumRequestBodyBytes
            guard body.readableBytes + bytes.readableBytes <= limit else {
                answer(PlainResponse(OpenAIError.bodyTooLarge(limit: limit)))
                return
            }
            if body.readableBytes == 0 {
                body = bytes
            } else {
                body.writeBuffer(&bytes)
            }
        case .end:
            isReadingRequest = false
            if !isDone, tenant != nil { prepare() }
        }
    }

    /// The connection guard refused the request being read (its body too slow, say).
    func rejected(_ error: OpenAIError) {
        answer(PlainResponse(error), closing: true)
    }

    // MARK: Routing and admission

    private func prepare() {
        guard let tenant, !isDone else { return }
        let prepared: RequestPipeline.PreparedRequest
        do {
            prepared = try pipeline.prepare(body, endpoint: route.endpoint, tenant: tenant, at: startedAt)
        } catch {
            answer(PlainResponse(error))
            return
        }
        self.prepared = prepared
        trace?.requested(model: prepared.head.model, stream: prepared.head.stream)
        guard RequestPipeline.needsAdmission(tenant, demand: prepared.demand) else {
            admitted(nil)
            return
        }
        trace?.begin("admission")
        let (pipeline, demand) = (self.pipeline, prepared.demand)
        runOffLoop({ () async -> Result<RequestPipeline.AdmissionOutcome, OpenAIError> in
            do {
                return .success(try await pipeline.admit(tenant: tenant, demand: demand))
            } catch let error as OpenAIError {
                return .failure(error)
            } catch {
                return .failure(OpenAIError.clientClosedRequest)
            }
        }) { exchange, result in
            switch result {
            case .success(.admitted(let reservation)): exchange.admitted(reservation)
            case .success(.refused(let response)): exchange.answer(response)
            case .failure(let error): exchange.answer(PlainResponse(error))
            }
        }
    }

    private func admitted(_ reservation: Reservation?) {
        guard var tenant, let prepared else { return }
        trace?.endPhase()
        self.reservation = reservation
        if reservation?.throttled == true {
            // A spent budget or quota that throttles: served, in the lowest band.
            tenant.contract = tenant.contract.throttled
            self.tenant = tenant
        }
        meter = pipeline.makeMeter(
            prepared, tenant: tenant, requestID: requestID, startedAt: startedAt, startInstant: startInstant,
            reservation: reservation, trace: trace
        )
        var plan = prepared.plan
        let first = plan.next()
        self.plan = plan
        advance(first)
    }

    // MARK: The route plan

    /// Carries out the route plan from `action` for as long as no step waits.
    private func advance(_ action: RoutePlan<OpenAIError>.Action) {
        guard var plan, let tenant, let meter, let head = prepared?.head else { return }
        var action = action
        defer { self.plan = plan }
        while true {
            switch action {
            case .weighSpillOver(let candidate):
                guard let deployment = deployment(candidate) else { return }
                action = plan.record(saturated: pipeline.shouldSpill(from: deployment, tenant: tenant))
            case .place(let candidate, let excludingKeys, let spilled):
                guard let deployment = deployment(candidate) else { return }
                meter.spilled(spilled)
                if let moved = Placement.moving(&unreachable, to: deployment) {
                    placement = moved
                    action = plan.record(placement: .placed(key: nil))
                    continue
                }
                if clientHasLeft {
                    action = plan.record(placement: .cancelled)
                    continue
                }
                if let found = pipeline.placeAtOnce(deployment, tenant: tenant, meter: meter) {
                    placement = found
                    action = plan.record(placement: .placed(key: nil))
                    continue
                }
                self.plan = plan
                placeOffLoop(deployment, tenant: tenant, tokens: prepared?.demand.reservedTokens ?? 0, excludingKeys: excludingKeys)
                return
            case .attempt(let candidate):
                guard let sending = placement.take() else { preconditionFailure("an attempt without a placement") }
                guard let deployment = deployment(candidate) else {
                    sending.release(served: false)
                    return
                }
                meter.use(deployment)
                self.plan = plan
                send(deployment, placement: sending, head: head)
                return
            case .wait(let delay):
                self.plan = plan
                waitToRetry(delay)
                return
            case .finish(let ending):
                unreachable?.release(served: false)
                unreachable = nil
                self.plan = plan
                finish(ending, model: head.model)
                return
            }
        }
    }

    /// Records an outcome in the plan and carries on.
    func record(_ step: (inout RoutePlan<OpenAIError>) -> RoutePlan<OpenAIError>.Action) {
        guard var plan else { return }
        let action = step(&plan)
        self.plan = plan
        advance(action)
    }

    private func deployment(_ candidate: RouteCandidate) -> Topology.Deployment? {
        do {
            return try pipeline.deployment(candidate)
        } catch {
            answer(PlainResponse(error))
            return nil
        }
    }

    /// A placement that waits: a queued engine slot, Redis, or the key pool.
    private func placeOffLoop(_ deployment: Topology.Deployment, tenant: AuthenticatedTenant, tokens: Int, excludingKeys: Set<String>) {
        guard let meter else { return }
        let pipeline = self.pipeline
        trace?.begin(deployment.enginePool != nil ? "queue wait" : "key selection")
        runOffLoop({ () async -> RequestPipeline.PlacementOutcome in
            let outcome = await pipeline.place(deployment, tenant: tenant, tokens: tokens, excludingKeys: excludingKeys, meter: meter)
            if case .other(.unavailable) = outcome, Task.isCancelled { return .other(.cancelled) }
            return outcome
        }) { exchange, outcome in
            exchange.trace?.endPhase()
            switch outcome {
            case .placed(let found):
                if exchange.clientHasLeft {
                    exchange.pipeline.giveBackUnused(found)
                    exchange.record { $0.record(placement: .cancelled) }
                    return
                }
                exchange.placement = found
                exchange.record { $0.record(placement: .placed(key: found.key?.key.id)) }
            case .other(.saturated(let predictedStart)):
                exchange.pipeline.metrics.capacityRefusal(on: deployment, tenant: tenant)
                exchange.record { $0.record(placement: .saturated(predictedStart: predictedStart)) }
            case .other(let outcome):
                exchange.record { $0.record(placement: outcome) }
            }
        }
    }

    /// Waits out a provider's short delay before its rate-limited key is tried again.
    private func waitToRetry(_ delay: Duration) {
        if clientHasLeft {
            record { $0.record(wait: .cancelled) }
            return
        }
        if pipeline.shutdown.isShuttingDown {
            record { $0.record(wait: .shuttingDown) }
            return
        }
        retryTimer = eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(delay.nanoseconds))) { [self] in
            retryTimer = nil
            record { $0.record(wait: pipeline.shutdown.isShuttingDown ? .shuttingDown : .elapsed) }
        }
    }

    /// How the route ended: the answer being relayed, or one this writes now.
    private func finish(_ ending: RoutePlan<OpenAIError>.Ending, model: String) {
        guard let meter else { return }
        switch pipeline.conclude(ending, model: model, meter: meter, requestID: requestID) {
        case .answered:
            break
        case .refused(let response):
            answer(response)
        case .cancelled:
            end()
        }
    }

    // MARK: Off the loop

    /// Runs `operation` as a task and hands its result to `then` on the loop, unless the
    /// exchange has ended by then.
    func runOffLoop<Value: Sendable>(
        _ operation: @escaping @Sendable () async -> Value,
        then: @escaping (InferenceExchange, Value) -> Void
    ) {
        let promise = eventLoop.makePromise(of: Value.self)
        task = Task { promise.succeed(await operation()) }
        promise.futureResult.assumeIsolated().whenSuccess { [self] value in
            task = nil
            guard !isDone else { return }
            then(self, value)
        }
    }

    // MARK: Answering

    /// Writes a whole answer (an error or a refusal) and ends the exchange.
    func answer(_ response: PlainResponse, closing: Bool = false) {
        guard !isDone, !answerStarted else { return }
        answerStarted = true
        if meter == nil {
            // Refused before it was admitted: no usage event will say so.
            pipeline.refusedBeforeAdmission(
                requestID: requestID, tenant: tenant, model: prepared?.head.model, status: response.status,
                errorType: response.errorType, since: startInstant
            )
            trace?.refused(status: response.status, errorType: response.errorType)
        }
        var response = response
        if reservation?.throttled == true { response.headers[.throttled] = "true" }
        if closing { response.headers[.connection] = "close" }
        guard !clientHasLeft, let handler else {
            end()
            return
        }
        writeHead(status: response.status, headers: response.headers, handler: handler)
        if response.body.readableBytes > 0 { handler.writeResponse(.body(response.body)) }
        handler.writeResponse(.end(nil), flush: true)
        end()
    }

    func writeHead(status: Int, headers: HTTPFields, handler: InferenceChannelHandler) {
        var headers = headers
        headers[.requestID] = requestID
        if request.headerFields[.connection]?.lowercased() == "close" { headers[.connection] = "close" }
        pipeline.metrics.response(status: status)
        handler.writeResponse(.head(HTTPResponse(status: HTTPResponse.Status(code: status), headerFields: headers)))
    }

    /// The exchange is over: nothing more is written, and the connection's next request
    /// may go on.
    func end() {
        guard !isDone else { return }
        isDone = true
        task?.cancel()
        task = nil
        retryTimer?.cancel()
        retryTimer = nil
        attempt?.cancelTimers()
        handler?.exchangeEnded(self)
    }

    // MARK: The client

    /// The client closed the connection, or its side of it.
    func clientLeft() {
        guard !clientHasLeft else { return }
        clientHasLeft = true
        guard !isDone else { return }
        if let attempt {
            attemptClientLeft(attempt)
            return
        }
        if let retryTimer {
            retryTimer.cancel()
            self.retryTimer = nil
            record { $0.record(wait: .cancelled) }
            return
        }
        if let task {
            task.cancel()
            // Before admission nothing is held or metered. Admission's own answer is
            // awaited: a reservation it made is settled by the route's cancelled end,
            // which the work off the loop comes to once cancelled.
            if prepared == nil { end() }
            return
        }
        end()
    }

    func clientWritable() {
        attempt?.resumeReading()
    }

    deinit {
        task?.cancel()
    }

    // MARK: For the upstream attempt

    var requestBody: ByteBuffer { body }
    var currentTenant: AuthenticatedTenant? { tenant }
    var clientGone: Bool { clientHasLeft }
    var preparedHead: InferenceRequestHead? { prepared?.head }
    var model: String { prepared?.head.model ?? "" }
    var promptTokenEstimate: Int { meter?.promptTokenEstimate ?? 0 }

    /// A logger naming the request, for what is worth a line.
    var requestLogger: Logger {
        var logger = plane.logger
        logger[metadataKey: "request_id"] = .string(requestID)
        if let tenant { logger[metadataKey: "tenant"] = .string(tenant.tenantID) }
        return logger
    }

    /// Lets the request's body go once no attempt can send it again.
    func releaseRequestBody() {
        body = ByteBuffer()
    }

    /// An engine slot whose replica could not be reached, for the next replica.
    func keepForNextReplica(_ placement: Placement) {
        unreachable = placement
    }

    func meterUse(_ placement: Placement) {
        meter?.use(placement)
    }

    func finishMeter(_ outcome: RequestMeter.Outcome) {
        meter?.finish(outcome)
    }

    var isClientWritable: Bool { handler?.isClientWritable ?? false }

    /// The headers every successful answer carries: the tenant's rate limits, the
    /// engine queue's wait, the throttling of a spent budget.
    func answerHeaders(_ headers: HTTPFields, deployment: Topology.Deployment, placement: Placement) -> HTTPFields {
        var headers = headers
        if let rateLimitHeaders = reservation?.headers { headers.append(rateLimitHeaders: rateLimitHeaders) }
        if deployment.enginePool != nil {
            headers[.queueMilliseconds] = String(placement.queueWait.wholeMilliseconds)
        }
        return headers
    }

    /// Sends a relayed answer's head: its body follows as it comes, chunked (its length
    /// changes with its `model`).
    func startAnswer(upstreamHead: HTTPResponseHead, deployment: Topology.Deployment, placement: Placement) {
        answerStarted = true
        guard !clientHasLeft, let handler, let head = prepared?.head else { return }
        var headers = HTTPFields()
        headers[.contentType] = upstreamHead.headers.first(name: "content-type")
            ?? (head.stream ? "text/event-stream" : "application/json")
        if head.stream { headers[.cacheControl] = "no-cache" }
        headers = answerHeaders(headers, deployment: deployment, placement: placement)
        if reservation?.throttled == true { headers[.throttled] = "true" }
        writeHead(status: 200, headers: headers, handler: handler)
    }

    func writeAnswer(_ part: HTTPResponsePart, flush: Bool = false) {
        guard !clientHasLeft else { return }
        handler?.writeResponse(part, flush: flush)
    }

    func flushAnswer() {
        guard !clientHasLeft else { return }
        handler?.flush()
    }

    /// Ends a whole answer the upstream cut short: the connection closes rather than
    /// carrying fewer bytes than the answer should have had.
    func closeClientAndEnd() {
        handler?.closeClient()
        end()
    }
}

@available(*, unavailable)
extension InferenceExchange: Sendable {}
