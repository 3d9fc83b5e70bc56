import HTTPTypes
import Hummingbird
import Pools
import Providers

extension RequestPipeline {
    // MARK: Admission

    enum AdmissionOutcome {
        /// Go on; the reservation (nil for a tenant without limits) is settled at the end.
        case admitted(Reservation?)
        case refused(Response)
    }

    /// The model's deployments that can produce as many output tokens as the request asks
    /// for; a 400 naming the parameter when none can.
    static func deployments(_ routes: [Topology.Deployment], serving head: InferenceRequestHead) throws(OpenAIError) -> [Topology.Deployment] {
        guard let requested = head.maxOutputTokens,
              routes.contains(where: { ($0.maxOutputTokens ?? .max) < requested })
        else { return routes }
        let able = routes.filter { ($0.maxOutputTokens ?? .max) >= requested }
        guard able.isEmpty else { return able }
        let most = routes.compactMap(\.maxOutputTokens).max() ?? 0
        let name = head.maxOutputTokensParameter
        throw OpenAIError.invalidRequest(
            "'\(name)' is \(requested), above the most model `\(head.model)` can produce (\(most)).", param: name
        )
    }

    /// The tenant's buckets, all at once, before any upstream is chosen.
    func admit(tenant: AuthenticatedTenant, demand: AdmissionRequest) async throws -> AdmissionOutcome {
        let tenantLimits = tenant.contract.limits
        guard !tenantLimits.isUnlimited else { return .admitted(nil) }
        let decision: AdmissionDecision
        do {
            decision = try await admission.admit(tenantID: tenant.tenantID, limits: tenantLimits, request: demand)
        } catch is CancellationError where Task.isCancelled {
            throw CancellationError()
        } catch {
            throw OpenAIError(
                status: 503,
                message: "Rate limiting is temporarily unavailable; retry shortly.",
                type: "server_error",
                code: "rate_limiter_unavailable"
            )
        }
        switch decision {
        case .refused(let refusal): return .refused(Self.rateLimited(refusal))
        case .admitted(let reservation): return .admitted(reservation)
        }
    }

    /// The 429 for a refused admission, with `retry-after` and the limits as they stand.
    static func rateLimited(_ refusal: AdmissionRefusal) -> Response {
        var response = OpenAIError(
            status: 429,
            message: refusal.message,
            type: refusal.limit == .tokens ? "tokens" : "requests",
            param: nil,
            code: "rate_limit_exceeded"
        ).response()
        if let seconds = refusal.retryAfterSeconds {
            response.headers[.retryAfter] = String(seconds)
        }
        response.headers.append(rateLimitHeaders: refusal.headers)
        return response
    }
}
