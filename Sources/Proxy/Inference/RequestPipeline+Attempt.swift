import AsyncHTTPClient
import HTTPTypes
import Hummingbird
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
            placement.release(served: false)
            if let choice = placement.key { keys.pool.finish(choice.lease, actualTokens: 0, outcome: .succeeded(nil)) }
            return .other(.notSent(error))
        }
        let response: HTTPClientResponse
        do {
            response = try await httpClient.execute(upstreamRequest, timeout: .nanoseconds(limits.upstreamTimeout.nanoseconds))
        } catch {
            if Task.isCancelled || shutdown.isPastDeadline {
                // Neither the upstream's fault nor the key's.
                placement.release(served: false)
                if let choice = placement.key { keys.pool.finish(choice.lease, actualTokens: 0, outcome: .succeeded(nil)) }
                return .other(Task.isCancelled ? .cancelled : .shuttingDown)
            }
            placement.markUnreachable()
            context.logger.warning("upstream unreachable", metadata: ["deployment": "\(deployment.id)", "error": "\(error)"])
            let failure = OpenAIError.upstreamUnavailable("The upstream of model `\(head.model)` could not be reached.")
            if placement.key == nil { return .unreachableEngine(placement, failure) }
            await release(placement, failure: "the provider could not be reached")
            return .other(.unreachable(failure))
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
        // Whatever the status and provider, the tenant sees no part of the key, nor the
        // upstream model or provider behind its endpoint.
        upstreamFailure.error = placement.redaction(naming: head.model).redact(upstreamFailure.error)
        context.logger.info("upstream error", metadata: ["deployment": "\(deployment.id)", "status": "\(status)"])
        guard let choice = placement.key else {
            placement.release()
            return .other(.refused(upstreamFailure.error, retryable: upstreamFailure.retryable))
        }
        metrics.upstreamCapacity(deployment: deployment.id, signals: upstreamFailure.signals)
        if status == 429 || status == 529 {
            let limit = await keys.reportRateLimit(choice, upstreamStatus: status, failure: upstreamFailure)
            return .other(.rateLimited(upstreamFailure.error, cooldown: limit.cooldown, invitesRetry: limit.invitesRetry))
        }
        if Self.rejectsKey(status: status, failure: upstreamFailure) {
            await keys.reportFailure(choice, upstreamStatus: status, failure: upstreamFailure)
            return .other(.keyRefused(upstreamFailure.error))
        }
        if upstreamFailure.retryable {
            await keys.reportFailure(choice, reason: "the provider answered \(status)")
        } else {
            // The request was at fault, not the key.
            placement.capacity = ReportedCapacity(upstreamFailure.signals)
            keys.pool.finish(choice.lease, actualTokens: 0, outcome: .succeeded(placement.capacity))
        }
        return .other(.refused(upstreamFailure.error, retryable: upstreamFailure.retryable))
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
        var settings = deployment.settings
        if let pool = deployment.enginePool, pool.forwardsPriority, let band {
            settings.enginePriority = EnginePool.enginePriority(band: band)
        }
        let upstream = try deployment.adapter.makeRequest(head: head, body: body, deployment: settings, endpoint: placement.endpoint)
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
