import Foundation
import HTTPTypes
import Hummingbird
import Pools
import Providers

extension RequestPipeline {
    // MARK: Admission

    enum AdmissionOutcome {
        /// Go on; the reservation (nil for a tenant without limits) is settled at the end.
        case admitted(Reservation?)
        case refused(PlainResponse)
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

    /// Whether the tenant has limits, a quota or budgets to admit the request against.
    static func needsAdmission(_ tenant: AuthenticatedTenant, demand: AdmissionRequest) -> Bool {
        !tenant.contract.limits.isUnlimited || !demand.budgets.isEmpty
    }

    /// The tenant's buckets, quota and budgets, all at once, before any upstream is chosen.
    func admit(tenant: AuthenticatedTenant, demand: AdmissionRequest) async throws -> AdmissionOutcome {
        let tenantLimits = tenant.contract.limits
        guard Self.needsAdmission(tenant, demand: demand) else { return .admitted(nil) }
        var demand = demand
        do {
            // A period the store holds no state for is built from the ledger's figure: at
            // most once per budget, since the next answer has its seed.
            for _ in 0...demand.budgets.count {
                switch try await admission.admit(tenantID: tenant.tenantID, limits: tenantLimits, request: demand) {
                case .admitted(let reservation):
                    if reservation.throttled { metrics.throttledAdmission(tier: tenant.tier) }
                    return .admitted(reservation)
                case .refused(let refusal):
                    if refusal.limit == .budget, let budget = refusal.budget {
                        metrics.budgetRefusal(
                            tier: tenant.tier,
                            code: budget.key.scope == BudgetAdmission.quotaScope ? "quota_exhausted" : "budget_exceeded",
                            throttled: refusal.throttled
                        )
                    }
                    return .refused(Self.refused(refusal))
                case .needsSeed(let keys):
                    for index in demand.budgets.indices where keys.contains(demand.budgets[index].key) {
                        demand.budgets[index].seed = try await budgetSeed(tenant: tenant, budget: demand.budgets[index])
                    }
                }
            }
            throw OpenAIError.upstreamUnavailable("The budget store kept asking for the ledger's figures.")
        } catch is CancellationError where Task.isCancelled {
            throw CancellationError()
        } catch let error as OpenAIError {
            throw error
        } catch {
            throw OpenAIError(
                status: 503,
                message: "Rate limiting is temporarily unavailable; retry shortly.",
                type: "server_error",
                code: "rate_limiter_unavailable"
            )
        }
    }

    /// What the ledger records as used in a budget's period.
    private func budgetSeed(tenant: AuthenticatedTenant, budget: BudgetDemand) async throws -> BudgetAmounts {
        let scope = BudgetAdmission.ledgerScope(budget.key.scope, tenantID: tenant.tenantID)
        let used = try await ledger.budgetUsage(scope, period: BudgetAdmission.period(of: budget))
        return BudgetAmounts(tokens: used.tokens, micros: used.micros)
    }

    /// The 429 for a refused admission: a spent budget or quota, or a rate limit.
    static func refused(_ refusal: AdmissionRefusal) -> PlainResponse {
        guard refusal.limit == .budget, let budget = refusal.budget else { return rateLimited(refusal) }
        return BudgetAdmission.refusal(refusal, budget: budget)
    }

    /// The 429 for a refused admission, with `retry-after` and the limits as they stand.
    static func rateLimited(_ refusal: AdmissionRefusal) -> PlainResponse {
        var response = PlainResponse(OpenAIError(
            status: 429,
            message: refusal.message,
            type: refusal.limit == .tokens ? "tokens" : "requests",
            param: nil,
            code: "rate_limit_exceeded"
        ))
        if let seconds = refusal.retryAfterSeconds {
            response.headers[.retryAfter] = String(seconds)
        }
        response.headers.append(rateLimitHeaders: refusal.headers)
        return response
    }
}
