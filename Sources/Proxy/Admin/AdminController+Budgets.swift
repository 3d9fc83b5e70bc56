import Billing
import Directory
import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import Pools
import Providers

/// `/admin/v1/tenants/{id}/budget` and `/admin/v1/keys/{id}/budget`: a limit in tokens, in
/// money or both over a calendar period (UTC), which refuses (`block`) or throttles
/// (`throttle`) once spent. `PUT` sets it (a `null` body clears it), `GET` shows it with
/// what the period has used and holds reserved.
extension AdminController {
    func addBudgetRoutes(to admin: ManagementRoutes) {
        admin.put("tenants/:id/budget", .tenant(.manageSettings)) { request, context in
            let tenant = try await requireTenant(context)
            return try await setBudget(request, context: context, scope: .tenant(tenant.id), tenantID: tenant.id)
        }
        admin.get("tenants/:id/budget", .tenant(.viewTenantUsage)) { _, context in
            let tenant = try await requireTenant(context)
            return try await showBudget(.tenant(tenant.id), tenantID: tenant.id)
        }
        admin.get("tenants/:id/quota", .tenant(.viewTenantUsage)) { _, context in
            try await showQuota(try await requireTenant(context))
        }
        // A key's budget is its tenant's to set; the key need not be the actor's own.
        admin.put("keys/:id/budget", .resource(.manageSettings, tenantOfKey)) { request, context in
            let key = try await requireKey(context)
            return try await setBudget(request, context: context, scope: .key(key.id), tenantID: key.tenantID)
        }
        admin.get("keys/:id/budget", .resource(.viewTenantUsage, tenantOfKey)) { _, context in
            let key = try await requireKey(context)
            // An org user sees the usage of their own keys only.
            if context.principal.role == .orgUser, key.userID != context.principal.user?.id {
                throw OpenAIError.permissionDenied(.viewTenantUsage, role: .orgUser)
            }
            return try await showBudget(.key(key.id), tenantID: key.tenantID)
        }
    }

    /// The tenant of the tenant key `:id`, as a whole: what its budget is about.
    var tenantOfKey: @Sendable (Parameters) async throws -> ResourceOwner? {
        { [keyOwner] parameters in try await keyOwner(parameters).map { ResourceOwner(tenantID: $0.tenantID) } }
    }

    private func setBudget(
        _ request: Request, context: ManagementContext, scope: BudgetScope, tenantID: String
    ) async throws -> Response {
        let body: AdminResources.SetBudget? = try await decode(request, context)
        guard let body else {
            _ = try await context.record("budget_cleared", tenant: { _ in tenantID }, target: { _ in scope.id }) { db in
                try Self.recordBudgetRevocation(scope, tenantID: tenantID, in: db)
                return try Ledger.clearBudget(scope, in: db)
            }
            invalidate(scope, tenantID: tenantID)
            return Response(status: .noContent)
        }
        let now = Date()
        let budget: Budget
        do {
            let asked = try body.budget(scope: scope, tenantID: tenantID, now: now)
            budget = try await context.record("budget_changed", tenant: { _ in tenantID }, target: { _ in scope.id }) { db in
                try Self.recordBudgetRevocation(scope, tenantID: tenantID, in: db)
                return try Ledger.setBudget(asked, now: now, in: db)
            }
        } catch let error as LedgerError {
            throw OpenAIError(ledger: error)
        }
        invalidate(scope, tenantID: tenantID)
        return try json(try await budgetBody(budget, now: now))
    }

    private func showBudget(_ scope: BudgetScope, tenantID: String) async throws -> Response {
        guard let budget = try await ledger.budget(scope) else {
            let owner: String
            switch scope {
            case .key(let keyID): owner = "Tenant key '\(keyID)'"
            default: owner = "Tenant '\(tenantID)'"
            }
            throw OpenAIError(status: 404, message: "\(owner) has no budget.", type: "invalid_request_error", code: "not_found")
        }
        return try json(try await budgetBody(budget, now: Date()))
    }

    /// The budget with its period's figures: the admission store's when it has state for
    /// the period, else the ledger's (with nothing reserved).
    func budgetBody(_ budget: Budget, now: Date) async throws -> AdminResources.BudgetBody {
        let period = budget.period.interval(containing: now)
        let status = try await BudgetAdmission.status(
            tenantID: budget.tenantID,
            key: BudgetPeriodKey(scope: BudgetAdmission.scope(of: budget), periodStart: period.start.ledgerMilliseconds),
            scope: budget.scope, period: period, admission: admission, ledger: ledger
        )
        return AdminResources.BudgetBody(budget, period: period, status: status)
    }

    /// `GET /admin/v1/tenants/{id}/quota`: the tokens the tenant's tier bundles this month,
    /// and what the month has used and holds reserved of them.
    private func showQuota(_ tenant: Tenant) async throws -> Response {
        let contract = topology.contract(tier: tenant.tier, overrides: .init(tenant))
        guard let quota = contract.quota else {
            throw OpenAIError(
                status: 404, message: "Tier '\(tenant.tier)' of tenant '\(tenant.id)' bundles no token quota.",
                type: "invalid_request_error", code: "not_found"
            )
        }
        let now = Date()
        let month = BudgetPeriod.month.interval(containing: now)
        let status = try await BudgetAdmission.status(
            tenantID: tenant.id,
            key: BudgetPeriodKey(scope: BudgetAdmission.quotaScope, periodStart: month.start.ledgerMilliseconds),
            scope: .quota(tenant.id), period: month, admission: admission, ledger: ledger
        )
        return try json(AdminResources.QuotaBody(
            tenant: tenant, quota: quota, overagePerMillion: contract.overagePerMillion, period: month, status: status
        ))
    }

    /// Tells every replica to reload the budgets it caches with the key or tenant.
    private static func recordBudgetRevocation(_ scope: BudgetScope, tenantID: String, in db: GRDB.Database) throws {
        switch scope {
        case .key(let keyID): try Directory.recordRevocation("key", subject: keyID, at: Date(), in: db)
        default: try Directory.recordRevocation("tenant", subject: tenantID, at: Date(), in: db)
        }
    }

    private func invalidate(_ scope: BudgetScope, tenantID: String) {
        switch scope {
        case .key(let keyID): tenantAuthenticator.invalidate(keyID: keyID)
        default: tenantAuthenticator.invalidate(tenantID: tenantID)
        }
    }

    func requireKey(_ context: ManagementContext) async throws -> TenantKeyRecord {
        let id = context.parameters.get("id") ?? ""
        guard let key = try await directory.key(id: id) else {
            throw OpenAIError(status: 404, message: "No tenant key has id '\(id)'.", type: "invalid_request_error", code: "not_found")
        }
        return key
    }
}

extension AdminResources {
    /// The body of `PUT …/budget`.
    struct SetBudget: Decodable, Sendable {
        var period: String
        var limitTokens: Int?
        var limitMicros: Int64?
        var softThresholds: [Double]?
        var action: String?

        /// The most either limit may be: far above real budgets, and exact in the Redis
        /// scripts' arithmetic.
        static let largestLimit: Int64 = 1 << 50

        func budget(scope: BudgetScope, tenantID: String, now: Date) throws(OpenAIError) -> Budget {
            guard let period = BudgetPeriod(rawValue: period) else {
                throw OpenAIError.invalidRequest("'period' must be one of day, week, month.", param: "period")
            }
            let action = action ?? BudgetAction.block.rawValue
            guard let parsedAction = BudgetAction(rawValue: action) else {
                throw OpenAIError.invalidRequest("'action' must be one of block, throttle.", param: "action")
            }
            guard limitTokens != nil || limitMicros != nil else {
                throw OpenAIError.invalidRequest("Give 'limit_tokens', 'limit_micros' or both.", param: "limit_tokens")
            }
            for (name, value) in [("limit_tokens", limitTokens.map(Int64.init)), ("limit_micros", limitMicros)] {
                if let value, value < 0 || value > Self.largestLimit {
                    throw OpenAIError.invalidRequest("'\(name)' must be between 0 and \(Self.largestLimit).", param: name)
                }
            }
            let thresholds = softThresholds ?? Self.defaultThresholds
            guard thresholds.count <= 10 else {
                throw OpenAIError.invalidRequest("'soft_thresholds' takes at most 10 values.", param: "soft_thresholds")
            }
            for threshold in thresholds where !(threshold > 0 && threshold < 1) {
                throw OpenAIError.invalidRequest(
                    "'soft_thresholds' must be fractions between 0 and 1 exclusive, such as 0.8; got \(threshold).",
                    param: "soft_thresholds"
                )
            }
            return Budget(
                scope: scope, tenantID: tenantID, period: period, limitTokens: limitTokens, limitMicros: limitMicros,
                softThresholds: Array(Set(thresholds)).sorted(), action: parsedAction, createdAt: now, updatedAt: now
            )
        }

        /// The alert sent when `soft_thresholds` is not given: at 80 %.
        static let defaultThresholds: [Double] = [0.8]
    }

    /// A tenant's monthly token quota and this month's figures.
    struct QuotaBody: Encodable, Sendable {
        var object = "quota"
        var tenantId: String
        var tier: String
        var monthlyQuotaTokens: Int
        var onQuotaExhausted: String
        /// The price of tokens beyond the quota, when they are billed.
        @NullEncoded var overagePerMillion: Int64?
        var usedTokens: Int
        var reservedTokens: Int
        var remainingTokens: Int
        var periodStart: Date
        var resetsAt: Date

        init(tenant: Tenant, quota: Contract.Quota, overagePerMillion: Int64?, period: DateInterval, status: BudgetStatus) {
            tenantId = tenant.id
            tier = tenant.tier
            monthlyQuotaTokens = quota.monthlyTokens
            onQuotaExhausted = quota.whenExhausted.rawValue
            self.overagePerMillion = overagePerMillion
            usedTokens = status.used.tokens
            reservedTokens = status.reserved.tokens
            remainingTokens = max(0, quota.monthlyTokens - status.used.tokens - status.reserved.tokens)
            periodStart = period.start
            resetsAt = period.end
        }
    }

    /// A budget as `GET …/budget` shows it: its terms and its current period's figures.
    struct BudgetBody: Encodable, Sendable {
        var object = "budget"
        var scope: String
        var tenantId: String
        @NullEncoded var keyId: String?
        var period: String
        @NullEncoded var limitTokens: Int?
        @NullEncoded var limitMicros: Int64?
        var softThresholds: [Double]
        var action: String
        var usedTokens: Int
        var usedMicros: Int64
        var reservedTokens: Int
        var reservedMicros: Int64
        /// What is neither used nor reserved; null for a limit not set.
        @NullEncoded var remainingTokens: Int?
        @NullEncoded var remainingMicros: Int64?
        var periodStart: Date
        var resetsAt: Date
        var createdAt: Date
        var updatedAt: Date

        init(_ budget: Budget, period: DateInterval, status: BudgetStatus) {
            switch budget.scope {
            case .key(let keyID):
                scope = "key"
                keyId = keyID
            default:
                scope = "tenant"
                keyId = nil
            }
            tenantId = budget.tenantID
            self.period = budget.period.rawValue
            limitTokens = budget.limitTokens
            limitMicros = budget.limitMicros
            softThresholds = budget.softThresholds
            action = budget.action.rawValue
            usedTokens = status.used.tokens
            usedMicros = status.used.micros
            reservedTokens = status.reserved.tokens
            reservedMicros = status.reserved.micros
            remainingTokens = budget.limitTokens.map { max(0, $0 - status.used.tokens - status.reserved.tokens) }
            remainingMicros = budget.limitMicros.map { max(0, $0 - status.used.micros - status.reserved.micros) }
            periodStart = period.start
            resetsAt = period.end
            createdAt = budget.createdAt
            updatedAt = budget.updatedAt
        }
    }
}

extension OpenAIError {
    /// A write the ledger refused: the tenant written to is gone (404), or the write is
    /// not one it takes (400).
    init(ledger error: LedgerError) {
        switch error.code {
        case .tenantNotFound:
            self.init(status: 404, message: "Not found: \(error.description).", type: "invalid_request_error", code: "not_found")
        default:
            self.init(status: 400, message: "The request was refused: \(error.description).", type: "invalid_request_error")
        }
    }
}
