import Billing
import Foundation
import HTTPTypes
import Hummingbird
import Pools
import Providers

/// How a tenant's quota and budgets become admission demands, and how their refusals read.
enum BudgetAdmission {
    /// The store's name of a tenant's quota.
    static let quotaScope = "quota"

    /// The store's name of a budget: `tenant@<created>` or `key:<id>@<created>`. A budget
    /// cleared and set again is created anew, so the store builds its figures from the
    /// ledger again rather than resume ones that stopped counting while it was cleared.
    static func scope(of budget: Budget) -> String {
        let created = "@" + String(budget.createdAt.ledgerMilliseconds)
        switch budget.scope {
        case .key(let keyID): return "key:" + keyID + created
        default: return "tenant" + created
        }
    }

    /// The quota of the tenant's tier, then the tenant's budget, then the key's, each over
    /// the calendar period that contains `date`: the order they are checked in.
    static func demands(for tenant: AuthenticatedTenant, at date: Date) -> [BudgetDemand] {
        // The instant as the ledger stores the event's start (whole milliseconds), so a
        // request in a period's last half millisecond counts in the same period in both.
        let date = date.roundedToLedgerMilliseconds
        var demands: [BudgetDemand] = []
        if let quota = tenant.contract.quota {
            let period = BudgetPeriod.month.interval(containing: date)
            let whenSpent: BudgetDemand.WhenSpent
            switch quota.whenExhausted {
            case .overage: whenSpent = .serve
            case .throttle: whenSpent = .throttle
            case .block: whenSpent = .refuse
            }
            demands.append(BudgetDemand(
                key: BudgetPeriodKey(scope: quotaScope, periodStart: period.start.ledgerMilliseconds),
                resetsAt: period.end.ledgerMilliseconds, limitTokens: quota.monthlyTokens, whenSpent: whenSpent
            ))
        }
        for budget in tenant.budgets {
            let period = budget.period.interval(containing: date)
            demands.append(BudgetDemand(
                key: BudgetPeriodKey(scope: scope(of: budget), periodStart: period.start.ledgerMilliseconds),
                resetsAt: period.end.ledgerMilliseconds, limitTokens: budget.limitTokens, limitMicros: budget.limitMicros,
                whenSpent: budget.action == .throttle ? .throttle : .refuse
            ))
        }
        return demands
    }

    /// The calendar period a demand is for, as the ledger counts it.
    static func period(of budget: BudgetDemand) -> DateInterval {
        DateInterval(start: Date(ledgerMilliseconds: budget.key.periodStart), end: Date(ledgerMilliseconds: budget.resetsAt))
    }

    /// A budget period's figures: the admission store's when it holds state for the
    /// period, else the ledger's, with nothing reserved.
    static func status(
        tenantID: String, key: BudgetPeriodKey, scope: BudgetScope, period: DateInterval,
        admission: any TenantAdmission, ledger: Ledger
    ) async throws -> BudgetStatus {
        if let status = try? await admission.budgetStatus(tenantID: tenantID, key: key) { return status }
        let used = try await ledger.budgetUsage(scope, period: period)
        return BudgetStatus(used: BudgetAmounts(tokens: used.tokens, micros: used.micros), reserved: .zero)
    }

    /// The ledger's name of a budget the store knows by `scope`.
    static func ledgerScope(_ scope: String, tenantID: String) -> BudgetScope {
        if scope == quotaScope { return .quota(tenantID) }
        if scope.hasPrefix("key:") { return .key(keyID(inScope: scope)) }
        return .tenant(tenantID)
    }

    /// The key id of `key:<id>@<created>`.
    private static func keyID(inScope scope: String) -> String {
        String(scope.dropFirst(4).prefix { $0 != "@" })
    }

    /// The worst-case cost of a request: its prompt estimate and maximum output at the
    /// dearest price among the deployments that may serve it.
    static func maximumCost(
        of deployments: [Topology.Deployment], promptTokens: Int, outputTokens: Int
    ) -> Int64 {
        deployments.map { $0.price.cost(promptTokens: promptTokens, cachedTokens: 0, completionTokens: outputTokens) }.max() ?? 0
    }

    // MARK: Refusals

    /// The 429 of a spent budget or quota, in the shape of OpenAI's quota errors:
    /// `insufficient_quota`, with `retry-after` and `x-switchyard-budget-reset`.
    static func refusal(_ refusal: AdmissionRefusal, budget: BudgetDemand) -> PlainResponse {
        let isQuota = budget.key.scope == quotaScope
        let resetsAt = Date(ledgerMilliseconds: budget.resetsAt)
        let reset = resetsAt.formatted(.iso8601)
        var message = "\(name(of: budget)) is \(isQuota ? "exhausted" : "spent")"
        if refusal.throttled {
            message += "; requests are throttled to \(refusal.limitValue) per minute until it resets at \(reset)."
        } else {
            message += " (\(limits(of: budget))); it resets at \(reset)."
        }
        var response = PlainResponse(OpenAIError(
            status: 429,
            message: message,
            type: "insufficient_quota",
            param: nil,
            code: isQuota ? "quota_exhausted" : "budget_exceeded"
        ))
        if let seconds = refusal.retryAfterSeconds {
            response.headers[.retryAfter] = String(seconds)
        }
        response.headers[.budgetReset] = reset
        response.headers.append(rateLimitHeaders: refusal.headers)
        return response
    }

    /// "The tenant's monthly budget", "The monthly budget of key key_…", "The monthly quota".
    static func name(of budget: BudgetDemand) -> String {
        let period: String
        switch budget.resetsAt - budget.key.periodStart {
        case 86_400_000: period = "daily"
        case 604_800_000: period = "weekly"
        default: period = "monthly"
        }
        if budget.key.scope == quotaScope { return "The \(period) token quota of your tier" }
        if budget.key.scope.hasPrefix("key:") { return "The \(period) budget of key \(keyID(inScope: budget.key.scope))" }
        return "Your organisation's \(period) budget"
    }

    private static func limits(of budget: BudgetDemand) -> String {
        var parts: [String] = []
        if let tokens = budget.limitTokens { parts.append("\(tokens) tokens") }
        if let micros = budget.limitMicros { parts.append("\(AdminResources.UsageGroupBody.decimal(micros: micros)) in cost") }
        return parts.joined(separator: " or ")
    }
}
