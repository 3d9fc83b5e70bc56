import AsyncHTTPClient
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Pools
import Providers
import ServiceLifecycle

extension RequestPipeline {
    // MARK: One upstream attempt

    /// One upstream attempt on one deployment: one replica of an engine pool, or one
    /// key of a provider.
    func attempt(
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
                head: head, body: body, deployment: deployment, placement: placement, requestID: context.requestID,
                band: context.tenant?.contract.band
            )
        } catch {
            // The tenant's request was at fault, not the key or the upstream.
            giveBackUnused(placement)
            return .other(.notSent(error))
        }
        let response: HTTPClientResponse
        do {
            response = try await httpClient.execute(upstreamRequest, timeout: .nanoseconds(limits.upstreamTimeout.nanoseconds))
        } catch {
            if Task.isCancelled || shutdown.isPastDeadline {
                // Neither the upstream's fault nor the key's.
                giveBackUnused(placement)
                return .other(Task.isCancelled ? .cancelled : .shuttingDown)
            }
            switch unreachable(deployment, placement: placement, model: head.model, error: error, logger: context.logger) {
            case .engine(let failure): return .unreachableEngine(placement, failure)
            case .key(let failure, let report):
                await report()
                return .other(.unreachable(failure))
            }
        }
        let status = Int(response.status.code)
        if (200..<300).contains(status) {
            noteAnswer(status: status, headers: response.headers.fields, deployment: deployment, placement: &placement)
            meter.use(placement)
            return .answered(await relay(
                response, head: head, deployment: deployment, placement: placement, meter: meter,
                requestID: context.requestID, rateLimitHeaders: rateLimitHeaders
            ))
        }
        let errorBody = (try? await response.body.collect(upTo: limits.maximumErrorBodyBytes)) ?? ByteBuffer()
        switch judge(
            status: status, headers: response.headers.fields, body: errorBody, deployment: deployment, placement: &placement,
            model: head.model, logger: context.logger
        ) {
        case .decided(let outcome): return .other(outcome)
        case .reporting(let report): return .other(await report())
        }
    }

    /// Gives back a placement no upstream used: the engine slot, and the key with no
    /// failure counted (the request, the client or the shutdown ended it).
    func giveBackUnused(_ placement: Placement) {
        placement.release(served: false)
        if let choice = placement.key { keys.pool.finish(choice.lease, actualTokens: 0, outcome: .succeeded(nil)) }
    }

    /// An upstream that could not be reached.
    enum Unreachable {
        /// An engine replica: its slot is kept for the next replica.
        case engine(OpenAIError)
        /// A provider: the key's failure is recorded by `report`, then the route moves on.
        case key(OpenAIError, report: @Sendable () async -> Void)
    }

    /// Notes an upstream that could not be reached: the replica backs off, the key's
    /// failure is reported.
    func unreachable(
        _ deployment: Topology.Deployment, placement: Placement, model: String, error: any Error, logger: Logger
    ) -> Unreachable {
        placement.markUnreachable()
        logger.warning("upstream unreachable", metadata: ["deployment": "\(deployment.id)", "error": "\(error)"])
        let failure = OpenAIError.upstreamUnavailable("The upstream of model `\(model)` could not be reached.")
        guard placement.key != nil else { return .engine(failure) }
        return .key(failure) { [self] in await release(placement, failure: "the provider could not be reached") }
    }

    /// Notes what a successful answer's head says of the key's capacity. Engines report
    /// none; external providers do, on every answer (an error answer's signals come with
    /// its mapped failure).
    func noteAnswer(status: Int, headers: @autoclosure () -> HeaderFields, deployment: Topology.Deployment, placement: inout Placement) {
        guard deployment.usesKeyPool else { return }
        let signals = deployment.adapter.rateLimitSignals(status: status, headers: headers(), body: nil)
        metrics.upstreamCapacity(deployment: deployment.id, signals: signals)
        placement.capacity = ReportedCapacity(signals)
    }

    /// What an upstream's error answer means for the route.
    enum ErrorJudgement {
        case decided(RoutePlan<OpenAIError>.Attempt)
        /// Decided once the key's failure or rate limit is recorded (in Redis, perhaps).
        case reporting(@Sendable () async -> RoutePlan<OpenAIError>.Attempt)
    }

    /// Judges an upstream's error answer: who was at fault (the key, the upstream or the
    /// request) and whether another attempt may help. The tenant sees no part of the key,
    /// nor the upstream model or provider behind its endpoint, whatever the status.
    func judge(
        status: Int, headers: HeaderFields, body errorBody: ByteBuffer, deployment: Topology.Deployment,
        placement: inout Placement, model: String, logger: Logger
    ) -> ErrorJudgement {
        var upstreamFailure = deployment.adapter.mapError(status: status, headers: headers, body: errorBody)
        upstreamFailure.error = placement.redaction(naming: model).redact(upstreamFailure.error)
        logger.info("upstream error", metadata: ["deployment": "\(deployment.id)", "status": "\(status)"])
        guard let choice = placement.key else {
            placement.release()
            return .decided(.refused(upstreamFailure.error, retryable: upstreamFailure.retryable))
        }
        metrics.upstreamCapacity(deployment: deployment.id, signals: upstreamFailure.signals)
        let keys = self.keys
        if status == 429 || status == 529 {
            return .reporting { [upstreamFailure] in
                let limit = await keys.reportRateLimit(choice, upstreamStatus: status, failure: upstreamFailure)
                return .rateLimited(upstreamFailure.error, cooldown: limit.cooldown, invitesRetry: limit.invitesRetry)
            }
        }
        if Self.rejectsKey(status: status, failure: upstreamFailure) {
            return .reporting { [upstreamFailure] in
                await keys.reportFailure(choice, upstreamStatus: status, failure: upstreamFailure)
                return .keyRefused(upstreamFailure.error)
            }
        }
        if upstreamFailure.retryable {
            return .reporting { [upstreamFailure] in
                await keys.reportFailure(choice, reason: "the provider answered \(status)")
                return .refused(upstreamFailure.error, retryable: true)
            }
        }
        // The request was at fault, not the key.
        placement.capacity = ReportedCapacity(upstreamFailure.signals)
        keys.pool.finish(choice.lease, actualTokens: 0, outcome: .succeeded(placement.capacity))
        return .decided(.refused(upstreamFailure.error, retryable: upstreamFailure.retryable))
    }

    /// Credentials rejected: the key, not the request, is at fault.
    private static func rejectsKey(status: Int, failure: UpstreamFailure) -> Bool {
        status == 401 || status == 403 || failure.error.code == "upstream_auth_failed"
    }

    /// Gives back an attempt that ended before an answer: the engine replica, or the key
    /// with the failure noted.
    private func release(_ placement: Placement, failure: String) async {
        placement.release()
        if let choice = placement.key { await keys.reportFailure(choice, reason: failure) }
    }

    // MARK: Waiting to retry a rate-limited key

    /// Waits out a provider's short delay before its rate-limited key is tried again;
    /// cut short when the client leaves or the server begins to shut down.
    func waitToRetry(_ delay: Duration) async -> RoutePlan<OpenAIError>.Wait {
        if !Task.isCancelled, !Self.isShuttingDown(shutdown) {
            // Either end of the sleep is an answer: how it ended is read below.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
        }
        if Task.isCancelled { return .cancelled }
        return Self.isShuttingDown(shutdown) ? .shuttingDown : .elapsed
    }

    private static func isShuttingDown(_ shutdown: ServerShutdown) -> Bool {
        Task.isShuttingDownGracefully || shutdown.isPastDeadline
    }

    private func makeUpstreamRequest(
        head: InferenceRequestHead,
        body: ByteBuffer,
        deployment: Topology.Deployment,
        placement: Placement,
        requestID: String,
        band: Int?
    ) throws(OpenAIError) -> HTTPClientRequest {
        let upstream = try upstreamRequest(head: head, body: body, deployment: deployment, placement: placement, band: band)
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

    /// The request to send upstream, in the deployment's format, with the tenant's band
    /// as the engine's priority where the pool takes one.
    func upstreamRequest(
        head: InferenceRequestHead, body: ByteBuffer, deployment: Topology.Deployment, placement: Placement, band: Int?
    ) throws(OpenAIError) -> UpstreamRequest {
        var settings = deployment.settings
        if let pool = deployment.enginePool, pool.forwardsPriority, let band {
            settings.enginePriority = EnginePool.enginePriority(band: band)
        }
        return try deployment.adapter.makeRequest(head: head, body: body, deployment: settings, endpoint: placement.endpoint)
    }
}
