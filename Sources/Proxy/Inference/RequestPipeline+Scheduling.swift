import HTTPTypes
import Hummingbird
import Pools
import Providers

extension RequestPipeline {
    // MARK: Spill-over

    /// Whether the engine pool is saturated for this request, past the contract's
    /// `spill_after_ms`.
    func shouldSpill(from deployment: Topology.Deployment, tenant: AuthenticatedTenant) -> Bool {
        guard let pool = deployment.enginePool else { return false }
        return pool.isSaturated(for: EnginePool.Demand(tenant: tenant.tenantID, contract: tenant.contract), spillAfter: tenant.contract.spillAfter)
    }

    // MARK: Capacity refusals and rate limits

    /// The 503 for a request no engine slot can take within its contract's wait:
    /// `retry-after` in whole seconds and the predicted start in milliseconds.
    static func capacityExhausted(_ error: OpenAIError, predictedStart: Duration?) -> PlainResponse {
        var response = PlainResponse(error)
        response.headers[.retryAfter] = retryAfterSeconds(predictedStart ?? .seconds(1))
        if let predictedStart {
            response.headers[.predictedStartMilliseconds] = String(predictedStart.wholeMilliseconds)
        }
        return response
    }

    /// `retry-after` on a 429 always (SDKs retry after it; 1 s when no time is known) and
    /// on a 503 when a time is known.
    static func withRetryAfter(_ response: PlainResponse, error: OpenAIError, retryAfter: Duration?) -> PlainResponse {
        guard error.status == 429 || error.status == 503 else { return response }
        guard let after = retryAfter ?? (error.status == 429 ? .seconds(1) : nil) else { return response }
        var response = response
        response.headers[.retryAfter] = retryAfterSeconds(after)
        return response
    }

    /// Whole seconds, rounded up, at least 1.
    static func retryAfterSeconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        return String(max(1, seconds + (attoseconds > 0 ? 1 : 0)))
    }
}

extension OpenAIError {
    /// No engine slot can take the request within its contract's wait. Names the public
    /// model only: tenants never learn which pool or provider serves them.
    static func capacityExhausted(model: String) -> OpenAIError {
        OpenAIError(
            status: 503,
            message: "Model `\(model)` is at capacity for your contract; retry after the time in retry-after.",
            type: "server_error",
            code: "capacity_exhausted"
        )
    }
}
