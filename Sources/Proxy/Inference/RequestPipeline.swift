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

/// Carries one inference request one way: parse what routing needs, route to a
/// deployment, send upstream, relay the answer as it comes, meter it.
final class RequestPipeline: Sendable {
    let topology: Topology
    let httpClient: HTTPClient
    let usageWriter: UsageWriter
    let metrics: ProxyMetrics
    let admission: any TenantAdmission
    let keys: ProviderKeys
    let limits: ProxyLimits
    let shutdown: ServerShutdown

    init(
        topology: Topology,
        httpClient: HTTPClient,
        usageWriter: UsageWriter,
        metrics: ProxyMetrics,
        admission: any TenantAdmission,
        keys: ProviderKeys,
        limits: ProxyLimits,
        shutdown: ServerShutdown = ServerShutdown()
    ) {
        self.topology = topology
        self.httpClient = httpClient
        self.usageWriter = usageWriter
        self.metrics = metrics
        self.admission = admission
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
        do {
            body = try await request.collectBody(upTo: limits.maximumRequestBodyBytes)
        } catch is NIOTooManyBytesError {
            throw OpenAIError.bodyTooLarge(limit: limits.maximumRequestBodyBytes)
        }
        let head = try InferenceRequestHead.parse(body, endpoint: endpoint)
        guard let routes = topology.deployments(for: head.model, contract: tenant.contract),
              routes.contains(where: keys.isServable)
        else {
            throw OpenAIError.modelNotFound(head.model)
        }
        let able = try Self.deployments(routes, serving: head)
        // Bounded by the head's limits (choices × output tokens is at most 2^31), so no
        // client-sent number can overflow the reservation.
        let demand = AdmissionRequest(
            promptTokens: TokenUsage.estimateTokens(byteCount: body.readableBytes),
            maximumOutputTokens: head.choices * (head.maxOutputTokens ?? limits.defaultOutputReservation)
        )
        let tokens = demand.reservedTokens
        let candidates = candidates(able, head: head, contract: tenant.contract, demand: demand)
        guard !candidates.isEmpty else { throw OpenAIError.modelNotFound(head.model) }
        let reservation: Reservation?
        switch try await admit(tenant: tenant, demand: demand) {
        case .refused(let response): return response
        case .admitted(let admitted): reservation = admitted
        }
        let meter = RequestMeter(
            facts: .init(
                requestID: context.requestID,
                tenant: tenant,
                model: head.model,
                streamed: head.stream,
                startedAt: startedAt,
                startInstant: startInstant,
                requestBodyBytes: body.readableBytes
            ),
            writer: usageWriter,
            metrics: metrics,
            reservation: reservation.map { ($0, admission) },
            keyPool: keys.pool
        )
        return try await forward(
            head: head, body: body, tokens: tokens, candidates: candidates, meter: meter, context: context,
            rateLimitHeaders: reservation?.headers
        )
    }

    // MARK: Forwarding, with failover before the first byte

    private enum AttemptOutcome {
        /// The client has its answer: the upstream's, or an error the upstream gave.
        case answered(Response)
        /// The request could not be built for this deployment: try the next one.
        case notSent(OpenAIError)
        /// The upstream could not be reached: try the pool's next replica or key.
        case unreachable(OpenAIError)
        /// The provider refused this key (rate limited, overloaded, credentials rejected):
        /// the key's health is recorded; try another key.
        case keyRefused(OpenAIError)
        /// The upstream answered with an error.
        case refused(OpenAIError, retryable: Bool)
        /// The client went away while the upstream was being asked.
        case cancelled
        /// The grace period of a shutdown ran out while the upstream was being asked.
        case shuttingDown
    }

    /// Tries the deployments in order, at most `maximumAttempts` upstream attempts in
    /// all, and only before any byte has reached the client: an engine pool's replicas,
    /// or a provider's keys, before the next deployment. A saturated engine pool waits,
    /// refuses, or lets the request spill over to the providers after it, as the
    /// contract says.
    private func forward(
        head: InferenceRequestHead,
        body: ByteBuffer,
        tokens: Int,
        candidates: [Topology.Deployment],
        meter: RequestMeter,
        context: SwitchyardRequestContext,
        rateLimitHeaders: RateLimitHeaders?
    ) async throws -> Response {
        guard let tenant = context.tenant else { throw OpenAIError.missingAPIKey }
        var failure = OpenAIError.upstreamUnavailable("No deployment of model `\(head.model)` could be reached.")
        var retryAfter: Duration?
        var lastDeployment: Topology.Deployment?
        var attempts = 0
        var order = candidates
        var index = 0
        /// The deployments a saturated engine pool handed the request to.
        var spilledTo: Set<String> = []
        /// Engine deployments the request must wait for now: their spill was tried.
        var mustWait: Set<String> = []
        deployments: while index < order.count {
            let deployment = order[index]
            index += 1
            let isLastDeployment = index == order.count
            var tried = TriedUpstreams()
            if deployment.enginePool != nil, !mustWait.contains(deployment.id) {
                let targets = spillTargets(from: deployment, after: order[index...], contract: tenant.contract)
                if !targets.isEmpty, shouldSpill(from: deployment, tenant: tenant) {
                    // The providers first, then back to this pool's queue if none has room.
                    let moved = Set(targets.map(\.id))
                    let rest = order[index...].filter { !moved.contains($0.id) }
                    order = Array(order[..<(index - 1)]) + targets + [deployment] + rest
                    index -= 1
                    spilledTo.formUnion(moved)
                    mustWait.insert(deployment.id)
                    continue deployments
                }
            }
            meter.spilled(spilledTo.contains(deployment.id))
            while attempts < Self.maximumAttempts {
                let placement: Placement
                switch await place(deployment, tenant: tenant, tokens: tokens, tried: &tried, meter: meter) {
                case .placed(let placed):
                    placement = placed
                case .exhausted:
                    continue deployments
                case .cancelled, .unavailable where Task.isCancelled:
                    // The client left while waiting for a slot or a key.
                    meter.finish(.init(
                        deployment: deployment, status: 499, errorType: "client_closed_request",
                        usage: TokenUsage(promptTokens: 0, completionTokens: 0), clientAborted: true
                    ))
                    throw CancellationError()
                case .unavailable(let error, let after):
                    // An upstream's own error says more than "no key left", except
                    // when no upstream was tried.
                    if attempts == 0 { failure = error }
                    if let after { retryAfter = min(retryAfter ?? after, after) }
                    continue deployments
                case .saturated(let predictedStart):
                    guard let pool = deployment.enginePool else { continue deployments }
                    metrics.capacityRefusal(pool: pool.name, tier: tenant.tier)
                    // Another engine pool of the model may have room; a provider only
                    // through spill-over, which was weighed above.
                    if order[index...].contains(where: { $0.enginePool != nil }) { continue deployments }
                    let error = OpenAIError.capacityExhausted(model: head.model)
                    meter.finish(.unanswered(deployment: deployment, error: error))
                    return Self.capacityExhausted(error, predictedStart: predictedStart)
                }
                attempts += 1
                lastDeployment = deployment
                meter.use(deployment)
                switch await attempt(
                    deployment, placement: placement, head: head, body: body, meter: meter, context: context,
                    rateLimitHeaders: rateLimitHeaders
                ) {
                case .answered(var response):
                    if spilledTo.contains(deployment.id) { metrics.spillover(model: head.model, deployment: deployment.id) }
                    if deployment.enginePool != nil {
                        response.headers[.queueMilliseconds] = String(RequestMeter.milliseconds(placement.queueWait))
                    }
                    return response
                case .notSent(let error):
                    failure = error
                    continue deployments
                case .cancelled:
                    meter.finish(.init(deployment: deployment, status: 499, errorType: "client_closed_request", clientAborted: true))
                    throw CancellationError()
                case .shuttingDown:
                    let error = ServerShutdown.error(requestID: context.requestID)
                    meter.finish(.init(deployment: deployment, status: error.status, errorType: "shutting_down"))
                    return error.response()
                case .keyRefused(let error):
                    // The key, not the provider, is at fault: the provider's next key.
                    failure = error
                case .unreachable(let error):
                    failure = error
                    if deployment.usesKeyPool, !isLastDeployment, tried.serverFailures > 0 { continue deployments }
                    tried.serverFailures += 1
                case .refused(let error, let retryable):
                    if retryable, attempts < Self.maximumAttempts, deployment.usesKeyPool || !isLastDeployment {
                        failure = error
                        // A server error is the provider's more than the key's: one more of
                        // its keys, then the next deployment (the last one keeps trying keys).
                        if deployment.usesKeyPool, isLastDeployment || tried.serverFailures == 0 {
                            tried.serverFailures += 1
                            continue
                        }
                        continue deployments
                    }
                    meter.finish(.unanswered(deployment: deployment, error: error))
                    return error.response()
                }
            }
            break
        }
        meter.finish(.unanswered(deployment: lastDeployment, error: failure))
        var response = failure.response()
        if let retryAfter, failure.status == 429 || failure.status == 503 {
            response.headers[.retryAfter] = Self.retryAfterSeconds(retryAfter)
        }
        return response
    }

    /// What one request has tried of one deployment.
    private struct TriedUpstreams {
        var keys: Set<String> = []
        var replicas = 0
        /// Attempts that failed on the provider's side (unreachable, 5xx), not the key's.
        var serverFailures = 0
    }

    private enum PlacementOutcome {
        case placed(Placement)
        /// Every replica of the engine pool was tried.
        case exhausted
        /// No key of the provider can take the request (now, or at all).
        case unavailable(OpenAIError, retryAfter: Duration?)
        /// The engine pool has no slot within the contract's longest wait.
        case saturated(predictedStart: Duration?)
        /// The client left while the request waited for a slot.
        case cancelled
    }

    /// The next upstream to try on `deployment`: a provider key not yet tried, chosen by
    /// the key pool, or a slot of the engine pool (waiting for one by contract) on its
    /// least-loaded replica.
    private func place(
        _ deployment: Topology.Deployment, tenant: AuthenticatedTenant, tokens: Int, tried: inout TriedUpstreams,
        meter: RequestMeter
    ) async -> PlacementOutcome {
        if let pool = deployment.enginePool {
            guard tried.replicas < deployment.replicaCount else { return .exhausted }
            tried.replicas += 1
            let waitStarted = ContinuousClock.now
            switch await pool.acquire(EnginePool.Demand(tenant: tenant.tenantID, contract: tenant.contract)) {
            case .leased(let lease):
                meter.queued(for: lease.waited)
                metrics.queueWait(pool: pool.name, tier: tenant.tier, lease.waited)
                if Task.isCancelled {
                    // Granted just as the client left.
                    pool.release(lease)
                    return .cancelled
                }
                return .placed(Placement(deployment, pool: pool, lease: lease))
            case .refused(.capacityExhausted(let predictedStart)):
                meter.queued(for: .now - waitStarted)
                return .saturated(predictedStart: predictedStart)
            case .cancelled:
                meter.queued(for: .now - waitStarted)
                return .cancelled
            }
        }
        switch await keys.select(for: deployment, tenant: tenant, tokens: tokens, excluding: tried.keys) {
        case .chosen(let choice):
            tried.keys.insert(choice.key.id)
            return .placed(Placement(deployment, key: choice))
        case .unavailable(let error, let retryAfter):
            return .unavailable(error, retryAfter: retryAfter)
        }
    }

    /// One upstream attempt on one deployment: one replica of an engine pool, or one
    /// key of a provider.
    private func attempt(
        _ deployment: Topology.Deployment,
        placement: Placement,
        head: InferenceRequestHead,
        body: ByteBuffer,
        meter: RequestMeter,
        context: SwitchyardRequestContext,
        rateLimitHeaders: RateLimitHeaders?
    ) async -> AttemptOutcome {
        var placement = placement
        let upstreamRequest: HTTPClientRequest
        do {
            upstreamRequest = try makeUpstreamRequest(
                head: head, body: body, deployment: deployment, placement: placement, requestID: context.requestID
            )
        } catch {
            // The tenant's request was at fault, not the key or the upstream.
            placement.release()
            if let choice = placement.key { keys.pool.finish(choice.lease, actualTokens: 0, outcome: .succeeded(nil)) }
            return .notSent(error)
        }
        let response: HTTPClientResponse
        do {
            response = try await httpClient.execute(upstreamRequest, timeout: .nanoseconds(limits.upstreamTimeout.nanoseconds))
        } catch {
            if Task.isCancelled || shutdown.isPastDeadline {
                // Neither the upstream's fault nor the key's.
                placement.release()
                if let choice = placement.key { keys.pool.finish(choice.lease, actualTokens: 0, outcome: .succeeded(nil)) }
                return Task.isCancelled ? .cancelled : .shuttingDown
            }
            placement.markUnreachable()
            await release(placement, failure: "the provider could not be reached")
            context.logger.warning("upstream unreachable", metadata: ["deployment": "\(deployment.id)", "error": "\(error)"])
            return .unreachable(OpenAIError.upstreamUnavailable("The upstream of model `\(head.model)` could not be reached."))
        }
        let status = Int(response.status.code)
        // Engines report no capacity; external providers do, on every answer (an error
        // answer's signals come with its mapped failure below).
        if (200..<300).contains(status) {
            if deployment.usesKeyPool {
                let signals = deployment.adapter.rateLimitSignals(status: status, headers: response.headers.fields, body: nil)
                metrics.upstreamCapacity(deployment: deployment.id, signals: signals)
                placement.capacity = ReportedCapacity(signals)
            }
            meter.use(placement)
            return .answered(await relay(
                response, head: head, deployment: deployment, placement: placement, meter: meter,
                requestID: context.requestID, rateLimitHeaders: rateLimitHeaders
            ))
        }
        let errorBody = (try? await response.body.collect(upTo: limits.maximumErrorBodyBytes)) ?? ByteBuffer()
        var upstreamFailure = deployment.adapter.mapError(status: status, headers: response.headers.fields, body: errorBody)
        // Whatever the status and provider, the tenant sees no part of the key.
        upstreamFailure.error = placement.redaction.redact(upstreamFailure.error)
        context.logger.info("upstream error", metadata: ["deployment": "\(deployment.id)", "status": "\(status)"])
        guard let choice = placement.key else {
            placement.release()
            return .refused(upstreamFailure.error, retryable: upstreamFailure.retryable)
        }
        metrics.upstreamCapacity(deployment: deployment.id, signals: upstreamFailure.signals)
        if Self.refusesKey(status: status, failure: upstreamFailure) {
            await keys.reportFailure(choice, upstreamStatus: status, failure: upstreamFailure)
            return .keyRefused(upstreamFailure.error)
        }
        if upstreamFailure.retryable {
            await keys.reportFailure(choice, reason: "the provider answered \(status)")
        } else {
            // The request was at fault, not the key.
            placement.capacity = ReportedCapacity(upstreamFailure.signals)
            keys.pool.finish(choice.lease, actualTokens: 0, outcome: .succeeded(placement.capacity))
        }
        return .refused(upstreamFailure.error, retryable: upstreamFailure.retryable)
    }

    /// Rate limited, overloaded, or credentials rejected: the key, not the request, is at fault.
    private static func refusesKey(status: Int, failure: UpstreamFailure) -> Bool {
        status == 429 || status == 529 || status == 401 || status == 403 || failure.error.code == "upstream_auth_failed"
    }

    /// Gives back an attempt that ended before an answer: the engine replica, or the key
    /// with the failure noted.
    private func release(_ placement: Placement, failure: String) async {
        placement.release()
        if let choice = placement.key { await keys.reportFailure(choice, reason: failure) }
    }

    /// Upstream attempts one request may make, across replicas and deployments.
    static let maximumAttempts = 4

    private func makeUpstreamRequest(
        head: InferenceRequestHead,
        body: ByteBuffer,
        deployment: Topology.Deployment,
        placement: Placement,
        requestID: String
    ) throws(OpenAIError) -> HTTPClientRequest {
        let upstream = try deployment.adapter.makeRequest(
            head: head, body: body, deployment: deployment.settings, endpoint: placement.endpoint
        )
        var request = HTTPClientRequest(url: upstream.url)
        request.method = .POST
        request.headers.reserveCapacity(upstream.headers.count + 1)
        for header in upstream.headers {
            request.headers.add(name: header.name, value: header.value)
        }
        request.headers.add(name: "x-request-id", value: requestID)
        request.body = .bytes(upstream.body)
        return request
    }
}
