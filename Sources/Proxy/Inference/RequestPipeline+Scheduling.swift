import HTTPTypes
import Hummingbird
import Pools
import Providers

extension RequestPipeline {
    // MARK: Candidates

    /// The deployments a request may try, in the order to try them: only the pinned one
    /// when the contract pins the model, ranked by expected price for a model routed by
    /// cost, else as configured.
    func candidates(
        _ deployments: [Topology.Deployment], head: InferenceRequestHead, contract: Contract, demand: AdmissionRequest
    ) -> [Topology.Deployment] {
        if let pinned = contract.pinning[head.model] {
            return deployments.filter { $0.id == pinned }
        }
        guard topology.costRoutedModels.contains(head.model), deployments.count > 1 else { return deployments }
        // A stable ranking: equal prices keep their configured order.
        return deployments.enumerated().sorted { lhs, rhs in
            let left = lhs.element.expectedCost(promptTokens: demand.promptTokens, outputTokens: demand.maximumOutputTokens)
            let right = rhs.element.expectedCost(promptTokens: demand.promptTokens, outputTokens: demand.maximumOutputTokens)
            return left != right ? left < right : lhs.offset < rhs.offset
        }.map(\.element)
    }

    // MARK: Spill-over

    /// The providers after an engine deployment that a request of `contract` may spill
    /// over to: those with key pools, within the contract's spill price.
    func spillTargets(
        from deployment: Topology.Deployment, after rest: ArraySlice<Topology.Deployment>, contract: Contract
    ) -> [Topology.Deployment] {
        // A pinned model has one candidate: it never spills.
        guard contract.spillOver == .whenSaturated else { return [] }
        return rest.filter { candidate in
            guard candidate.usesKeyPool, keys.isServable(candidate) else { return false }
            guard let ceiling = contract.maximumSpillPricePerMillion else { return true }
            return candidate.blendedPricePerMillion <= Int64(ceiling)
        }
    }

    /// Whether the engine pool is saturated for this request: no slot is free and its
    /// predicted start is later than the contract's `spill_after_ms` (or not yet known).
    func shouldSpill(from deployment: Topology.Deployment, tenant: AuthenticatedTenant) -> Bool {
        guard let pool = deployment.enginePool else { return false }
        let demand = EnginePool.Demand(tenant: tenant.tenantID, contract: tenant.contract)
        guard let predicted = pool.predictedStart(for: demand) else { return true }
        return predicted > .zero && predicted > tenant.contract.spillAfter
    }

    // MARK: Capacity refusals

    /// The 503 for a request no engine slot can take within its contract's wait:
    /// `retry-after` in whole seconds and the predicted start in milliseconds.
    static func capacityExhausted(_ error: OpenAIError, predictedStart: Duration?) -> Response {
        var response = error.response()
        response.headers[.retryAfter] = retryAfterSeconds(predictedStart ?? .seconds(1))
        if let predictedStart {
            response.headers[.predictedStartMilliseconds] = String(RequestMeter.milliseconds(predictedStart))
        }
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
