/// Where admissions are decided: in this process, or in Redis so that every replica
/// holds a tenant to the same limits.
public protocol TenantAdmission: Sendable {
    /// Reserves one request, its tokens and a concurrency slot, or refuses, all at once.
    func admit(tenantID: String, limits: TenantLimits, request: AdmissionRequest) async throws -> AdmissionDecision

    /// Settles a reservation with the tokens the request really used. Never blocks the
    /// caller: a shared store settles in the background.
    func settle(_ reservation: Reservation, actualTokens: Int)
}

extension InProcessLimiter: TenantAdmission {
    public func admit(tenantID: String, limits: TenantLimits, request: AdmissionRequest) async throws -> AdmissionDecision {
        admit(tenantID: tenantID, limits: limits, request: request, now: .now)
    }

    public func settle(_ reservation: Reservation, actualTokens: Int) {
        settle(reservation: reservation, actualTokens: actualTokens, now: .now)
    }
}
