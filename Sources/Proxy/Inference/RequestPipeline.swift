import AsyncHTTPClient
import Billing
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import Pools
import Providers
import Tracing

/// Carries one inference request one way: parse what routing needs, route to a
/// deployment, send upstream, relay the answer as it comes, meter it.
final class RequestPipeline: Sendable {
    let topology: Topology
    let httpClient: HTTPClient
    let usageWriter: UsageWriter
    let metrics: ProxyMetrics
    let admission: any TenantAdmission
    /// Where budgets' used amounts are rebuilt from when the admission store has none.
    let ledger: Ledger
    let keys: ProviderKeys
    let limits: ProxyLimits
    let shutdown: ServerShutdown
    /// One line per request as it is metered; nil when turned off.
    let accessLog: AccessLog?
    /// Where the data plane's request spans go; nil when tracing is off, which costs nothing.
    let tracer: (any Tracer)?
    /// Each tenant's live figures, for the management API.
    let activity: TenantActivity

    init(
        topology: Topology,
        httpClient: HTTPClient,
        usageWriter: UsageWriter,
        metrics: ProxyMetrics,
        admission: any TenantAdmission,
        ledger: Ledger,
        keys: ProviderKeys,
        limits: ProxyLimits,
        shutdown: ServerShutdown = ServerShutdown(),
        accessLog: AccessLog? = nil,
        tracer: (any Tracer)? = nil,
        activity: TenantActivity = TenantActivity()
    ) {
        self.activity = activity
        self.accessLog = accessLog
        self.tracer = tracer
        self.topology = topology
        self.httpClient = httpClient
        self.usageWriter = usageWriter
        self.metrics = metrics
        self.admission = admission
        self.ledger = ledger
        self.keys = keys
        self.limits = limits
        self.shutdown = shutdown
    }

    func handle(_ request: Request, context: SwitchyardRequestContext, endpoint: InferenceEndpoint) async throws -> Response {
        // Until the answer starts, a client that leaves cancels the request, and the
        // upstream request with it: a whole answer can take minutes to generate, and
        // nobody would read it. Running it in a child task also frees its frames when
        // the head is ready, rather than holding them for as long as a stream lasts.
        guard let connection = context.connection else { return try await serve(request, context: context, endpoint: endpoint) }
        return try await connection.cancellingIfClientLeaves { [self] in
            try await serve(request, context: context, endpoint: endpoint)
        }
    }

    /// Everything up to the answer's head: body, routing, admission, upstream.
    private func serve(_ request: Request, context: SwitchyardRequestContext, endpoint: InferenceEndpoint) async throws -> Response {
        guard let tenant = context.tenant else { throw OpenAIError.missingAPIKey }
        let startedAt = Date()
        let startInstant = ContinuousClock.now
        var request = request
        let body: ByteBuffer
        var prepared: PreparedRequest?
        let reservation: Reservation?
        do {
            do {
                body = try await request.collectBody(upTo: limits.maximumRequestBodyBytes)
            } catch is NIOTooManyBytesError {
                throw OpenAIError.bodyTooLarge(limit: limits.maximumRequestBodyBytes)
            }
            let ready = try prepare(body, endpoint: endpoint, tenant: tenant, at: startedAt)
            prepared = ready
            switch try await admit(tenant: tenant, demand: ready.demand) {
            case .refused(let response):
                refusedBeforeAdmission(
                    requestID: context.requestID, tenant: tenant, model: prepared?.head.model, status: response.status,
                    errorType: response.errorType, since: startInstant
                )
                return response.response
            case .admitted(let admitted): reservation = admitted
            }
        } catch let error as OpenAIError {
            refusedBeforeAdmission(
                requestID: context.requestID, tenant: tenant, model: prepared?.head.model, status: error.status,
                errorType: error.type, since: startInstant
            )
            throw error
        }
        guard let prepared else { preconditionFailure("admitted without a prepared request") }
        var context = context
        if reservation?.throttled == true {
            // A spent budget or quota that throttles: served, in the lowest band.
            context.tenant?.contract = tenant.contract.throttled
        }
        let meter = makeMeter(
            prepared, tenant: tenant, requestID: context.requestID, startedAt: startedAt, startInstant: startInstant,
            reservation: reservation
        )
        var response = try await forward(
            head: prepared.head, body: body, tokens: prepared.demand.reservedTokens, plan: prepared.plan, meter: meter,
            context: context, rateLimitHeaders: reservation?.headers
        )
        if reservation?.throttled == true { response.headers[.throttled] = "true" }
        return response
    }

    /// A request answered before it was admitted (a malformed body, an unknown model, a
    /// limit), which leaves no usage event: the access log and the tenant's live figures
    /// are told here, on the data plane and the router alike.
    func refusedBeforeAdmission(
        requestID: String, tenant: AuthenticatedTenant?, model: String?, status: Int, errorType: String?,
        since start: ContinuousClock.Instant
    ) {
        accessLog?.refused(
            requestID: requestID, tenant: tenant, model: model, status: status, errorType: errorType,
            duration: ContinuousClock.now - start
        )
        if let tenant, status >= 400 { activity.refused(tenant: tenant.tenantID, errorType: errorType) }
    }

    /// What routing needs of a request, read from its body: the fields that matter, the
    /// tenant's demand on its limits, and the plan of deployments to try.
    struct PreparedRequest {
        var head: InferenceRequestHead
        /// Bytes of the client's request body.
        var bodyBytes: Int
        var demand: AdmissionRequest
        var plan: RoutePlan<OpenAIError>
    }

    /// Reads what routing needs from the body and plans the route; an OpenAI error for a
    /// request no deployment of the tenant's contract can serve.
    func prepare(
        _ body: ByteBuffer, endpoint: InferenceEndpoint, tenant: AuthenticatedTenant, at startedAt: Date
    ) throws(OpenAIError) -> PreparedRequest {
        let head = try InferenceRequestHead.parse(body, endpoint: endpoint)
        guard let routes = topology.deployments(for: head.model, contract: tenant.contract),
              routes.contains(where: keys.isServable)
        else {
            throw OpenAIError.modelNotFound(head.model)
        }
        let able = try Self.deployments(routes, serving: head)
        // Bounded by the head's limits (choices × output tokens is at most 2^31), so no
        // client-sent number can overflow the reservation.
        let promptEstimate = TokenUsage.estimateTokens(byteCount: body.readableBytes)
        let outputReservation = head.choices * (head.maxOutputTokens ?? limits.defaultOutputReservation)
        let budgets = BudgetAdmission.demands(for: tenant, at: startedAt)
        let demand = AdmissionRequest(
            promptTokens: promptEstimate,
            maximumOutputTokens: outputReservation,
            maximumCostMicros: budgets.isEmpty ? 0 : BudgetAdmission.maximumCost(
                of: able.filter { deployment in
                    keys.isServable(deployment) && (tenant.contract.pinning[head.model].map { $0 == deployment.id } ?? true)
                },
                promptTokens: promptEstimate, outputTokens: outputReservation
            ),
            budgets: budgets,
            wallClockMilliseconds: startedAt.ledgerMilliseconds,
            throttledRequestsPerMinute: tenant.contract.throttledRequestsPerMinute
        )
        let plan = RoutePlan(
            model: head.model,
            candidates: able.map { deployment in
                RouteCandidate(
                    id: deployment.id,
                    kind: deployment.enginePool.map { .engine(replicas: $0.replicas.count) } ?? .keyPool,
                    inputPricePerMillion: deployment.price.inputPerMillion,
                    outputPricePerMillion: deployment.price.outputPerMillion,
                    hasKeys: keys.isServable(deployment)
                )
            },
            contract: tenant.contract,
            routing: topology.costRoutedModels.contains(head.model) ? .cost : .ordered,
            promptTokens: demand.promptTokens,
            outputTokens: demand.maximumOutputTokens,
            noRoute: OpenAIError.upstreamUnavailable("No deployment of model `\(head.model)` could be reached."),
            maximumAttempts: Self.maximumAttempts
        )
        // A pinning that names no deployment able to serve the request.
        guard !plan.isEmpty else { throw OpenAIError.modelNotFound(head.model) }
        return PreparedRequest(head: head, bodyBytes: body.readableBytes, demand: demand, plan: plan)
    }

    /// The meter of an admitted request: it records the request's one usage event.
    func makeMeter(
        _ prepared: PreparedRequest, tenant: AuthenticatedTenant, requestID: String, startedAt: Date,
        startInstant: ContinuousClock.Instant, reservation: Reservation?, trace: RequestTrace? = nil
    ) -> RequestMeter {
        RequestMeter(
            facts: .init(
                requestID: requestID,
                tenant: tenant,
                model: prepared.head.model,
                streamed: prepared.head.stream,
                startedAt: startedAt,
                startInstant: startInstant,
                requestBodyBytes: prepared.bodyBytes
            ),
            writer: usageWriter,
            metrics: metrics,
            reservation: reservation.map { ($0, admission) },
            keyPool: keys.pool,
            accessLog: accessLog,
            trace: trace,
            activity: activity
        )
    }

    // MARK: Forwarding, with failover before the first byte

    enum AttemptOutcome {
        /// The client has its answer: the upstream's.
        case answered(Response)
        /// The engine replica could not be reached; its pool slot is kept for the next replica.
        case unreachableEngine(Placement, OpenAIError)
        case other(RoutePlan<OpenAIError>.Attempt)
    }

    /// Carries out the route plan: weighs spill-over, finds an upstream, sends the
    /// request, and answers as the plan ends.
    private func forward(
        head: InferenceRequestHead,
        body: ByteBuffer,
        tokens: Int,
        plan: RoutePlan<OpenAIError>,
        meter: RequestMeter,
        context: SwitchyardRequestContext,
        rateLimitHeaders: RateLimitHeaders?
    ) async throws -> Response {
        guard let tenant = context.tenant else { throw OpenAIError.missingAPIKey }
        var plan = plan
        var action = plan.next()
        var placement: Placement?
        /// An engine slot whose replica could not be reached, kept for the next replica.
        var unreachable: Placement?
        var answer: Response?
        while true {
            switch action {
            case .weighSpillOver(let candidate):
                action = plan.record(saturated: shouldSpill(from: try deployment(candidate), tenant: tenant))
            case .place(let candidate, let excludingKeys, let spilled):
                let deployment = try deployment(candidate)
                meter.spilled(spilled)
                if let moved = Placement.moving(&unreachable, to: deployment) {
                    placement = moved
                    action = plan.record(placement: .placed(key: nil))
                    continue
                }
                let placed = await place(deployment, tenant: tenant, tokens: tokens, excludingKeys: excludingKeys, meter: meter)
                switch placed {
                case .placed(let found):
                    placement = found
                    action = plan.record(placement: .placed(key: found.key?.key.id))
                case .other(.unavailable) where Task.isCancelled:
                    // The client left while a key was being chosen.
                    action = plan.record(placement: .cancelled)
                case .other(.saturated(let predictedStart)):
                    metrics.capacityRefusal(on: deployment, tenant: tenant)
                    action = plan.record(placement: .saturated(predictedStart: predictedStart))
                case .other(let outcome):
                    action = plan.record(placement: outcome)
                }
            case .attempt(let candidate):
                guard let sending = placement.take() else { preconditionFailure("an attempt without a placement") }
                let deployment: Topology.Deployment
                do {
                    deployment = try self.deployment(candidate)
                } catch {
                    sending.release(served: false)
                    throw error
                }
                meter.use(deployment)
                switch await attempt(
                    deployment, placement: sending, head: head, body: body, meter: meter, context: context,
                    rateLimitHeaders: rateLimitHeaders
                ) {
                case .answered(var response):
                    if deployment.enginePool != nil {
                        response.headers[.queueMilliseconds] = String(sending.queueWait.wholeMilliseconds)
                    }
                    answer = response
                    action = plan.record(attempt: .answered)
                case .unreachableEngine(let kept, let error):
                    unreachable = kept
                    action = plan.record(attempt: .unreachable(error))
                case .other(let outcome):
                    action = plan.record(attempt: outcome)
                }
            case .wait(let delay):
                action = plan.record(wait: await waitToRetry(delay))
            case .finish(let ending):
                unreachable?.release(served: false)
                return try finish(ending, answer: answer, head: head, meter: meter, context: context)
            }
        }
    }

    /// The answer a route's end gives the client, with the one usage event it comes to.
    private func finish(
        _ ending: RoutePlan<OpenAIError>.Ending,
        answer: Response?,
        head: InferenceRequestHead,
        meter: RequestMeter,
        context: SwitchyardRequestContext
    ) throws -> Response {
        switch conclude(ending, model: head.model, meter: meter, requestID: context.requestID) {
        case .answered:
            guard let answer else { preconditionFailure("a route answered without an answer") }
            return answer
        case .refused(let response):
            return response.response
        case .cancelled:
            throw CancellationError()
        }
    }

    /// How a route ended, for the client.
    enum Conclusion {
        /// The answer being relayed is the client's.
        case answered
        /// No upstream answered: this is the client's answer.
        case refused(PlainResponse)
        /// The client left.
        case cancelled
    }

    /// What a route's end comes to, with the one usage event of a request no upstream
    /// answered.
    func conclude(
        _ ending: RoutePlan<OpenAIError>.Ending, model: String, meter: RequestMeter, requestID: String
    ) -> Conclusion {
        switch ending {
        case .answered(let candidate, let spilled):
            if spilled { metrics.spillover(model: model, deployment: candidate.id) }
            return .answered
        case .relayError(let error, let candidate):
            meter.finish(.unanswered(deployment: topology.deployments[candidate.id], error: error))
            return .refused(Self.withRetryAfter(PlainResponse(error), error: error, retryAfter: nil))
        case .capacityExhausted(let candidate, let predictedStart):
            let error = OpenAIError.capacityExhausted(model: model)
            meter.finish(.unanswered(deployment: topology.deployments[candidate.id], error: error))
            return .refused(Self.capacityExhausted(error, predictedStart: predictedStart))
        case .failed(let failure, let retryAfter, let last):
            meter.finish(.unanswered(deployment: last.flatMap { topology.deployments[$0.id] }, error: failure))
            return .refused(Self.withRetryAfter(PlainResponse(failure), error: failure, retryAfter: retryAfter))
        case .cancelled(let candidate, let sent):
            // Once sent, the upstream may have read the prompt: it is estimated.
            meter.finish(.init(
                deployment: topology.deployments[candidate.id], status: 499, errorType: "client_closed_request",
                usage: sent ? nil : TokenUsage(promptTokens: 0, completionTokens: 0), clientAborted: true
            ))
            return .cancelled
        case .shuttingDown(let candidate):
            let error = ServerShutdown.error(requestID: requestID)
            meter.finish(.init(deployment: topology.deployments[candidate.id], status: error.status, errorType: "shutting_down"))
            return .refused(PlainResponse(error))
        }
    }

    func deployment(_ candidate: RouteCandidate) throws(OpenAIError) -> Topology.Deployment {
        guard let deployment = topology.deployments[candidate.id] else {
            throw OpenAIError.upstreamUnavailable("No deployment of this model could be reached.")
        }
        return deployment
    }

    enum PlacementOutcome {
        case placed(Placement)
        case other(RoutePlan<OpenAIError>.Placement)
    }

    /// An upstream on `deployment`: a provider key not yet tried, chosen by the key pool,
    /// or a slot of the engine pool (waiting for one by contract) on its least-loaded
    /// replica.
    /// A placement made without waiting, when one can be: a free slot of an engine pool
    /// whose slots are kept in process. nil when placing needs to wait (a queue, Redis, or
    /// a key pool).
    func placeAtOnce(_ deployment: Topology.Deployment, tenant: AuthenticatedTenant, meter: RequestMeter) -> Placement? {
        guard let pool = deployment.enginePool,
              let lease = pool.tryAcquire(EnginePool.Demand(tenant: tenant.tenantID, contract: tenant.contract))
        else { return nil }
        meter.queued(for: lease.waited)
        metrics.queueWait(pool: pool.name, tenant: tenant, lease.waited)
        return Placement(deployment, pool: pool, lease: lease)
    }

    func place(
        _ deployment: Topology.Deployment, tenant: AuthenticatedTenant, tokens: Int, excludingKeys: Set<String>,
        meter: RequestMeter
    ) async -> PlacementOutcome {
        if let pool = deployment.enginePool {
            let waitStarted = ContinuousClock.now
            switch await pool.acquire(EnginePool.Demand(tenant: tenant.tenantID, contract: tenant.contract)) {
            case .leased(let lease):
                meter.queued(for: lease.waited)
                metrics.queueWait(pool: pool.name, tenant: tenant, lease.waited)
                if Task.isCancelled {
                    // Granted just as the client left.
                    pool.release(lease, served: false)
                    return .other(.cancelled)
                }
                return .placed(Placement(deployment, pool: pool, lease: lease))
            case .refused(.capacityExhausted(let predictedStart)):
                meter.queued(for: .now - waitStarted)
                return .other(.saturated(predictedStart: predictedStart))
            case .cancelled:
                meter.queued(for: .now - waitStarted)
                return .other(.cancelled)
            }
        }
        switch await keys.select(for: deployment, tenant: tenant, tokens: tokens, excluding: excludingKeys) {
        case .chosen(let choice):
            return .placed(Placement(deployment, key: choice))
        case .unavailable(let error, let retryAfter):
            return .other(.unavailable(error, retryAfter: retryAfter))
        }
    }

    /// Upstream attempts one request may make, across replicas and deployments.
    static let maximumAttempts = 4
}
