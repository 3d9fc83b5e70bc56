/// Where admissions are decided: in this process, or in Redis so that every replica
/// holds a tenant to the same limits.
public protocol TenantAdmission: Sendable {
    /// Reserves one request, its tokens and a concurrency slot, or refuses, all at once.
    func admit(tenantID: String, limits: TenantLimits, request: AdmissionRequest) async throws -> AdmissionDecision

    /// Settles a reservation with the tokens the request really used and what they cost,
    /// adding both to every budget period it reserved in. Never blocks the caller: a shared
    /// store settles in the background.
    func settle(_ reservation: Reservation, actualTokens: Int, actualMicros: Int64)

    /// A budget period's used and reserved amounts; nil when the store holds no state for
    /// it, so the ledger's figure stands and nothing is reserved.
    func budgetStatus(tenantID: String, key: BudgetPeriodKey) async throws -> BudgetStatus?
}

extension InProcessLimiter: TenantAdmission {
    public func admit(tenantID: String, limits: TenantLimits, request: AdmissionRequest) async throws -> AdmissionDecision {
        admit(tenantID: tenantID, limits: limits, request: request, now: .now)
    }

    public func settle(_ reservation: Reservation, actualTokens: Int, actualMicros: Int64) {
        settle(reservation: reservation, actualTokens: actualTokens, actualMicros: actualMicros, now: .now)
    }

    public func budgetStatus(tenantID: String, key: BudgetPeriodKey) async throws -> BudgetStatus? {
        budgetStatus(tenantID: tenantID, key: key, now: .now)
    }
}

extension TenantAdmission {
    /// Settles a reservation of a request that cost nothing, or whose cost no budget counts.
    public func settle(_ reservation: Reservation, actualTokens: Int) {
        settle(reservation, actualTokens: actualTokens, actualMicros: 0)
    }
}
