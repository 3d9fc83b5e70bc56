import Logging
import Synchronization

/// Admission against a shared store, falling back by policy when the store fails: the
/// in-process twin (fail open) or a refusal (fail closed). Settles go back to whichever
/// side admitted. The store is tried on every request, so recovery needs no action.
public final class FailoverAdmission: TenantAdmission {
    private let primary: any TenantAdmission
    private let fallback: InProcessLimiter
    private let failover: LimitStoreFailover
    /// Reservations the fallback made, so their settles go back to it.
    private let fallbackReservations = Mutex<Set<UInt64>>([])

    /// - Parameter onFailure: called on every store failure (for a metric).
    public init(
        primary: any TenantAdmission,
        fallback: InProcessLimiter = InProcessLimiter(),
        policy: LimitStoreFailurePolicy,
        logger: Logger,
        onFailure: @escaping @Sendable () -> Void = {}
    ) {
        self.primary = primary
        self.fallback = fallback
        self.failover = LimitStoreFailover(policy: policy, logger: logger, store: "tenant-limit store", onFailure: onFailure)
    }

    public func admit(tenantID: String, limits: TenantLimits, request: AdmissionRequest) async throws -> AdmissionDecision {
        do {
            return try await primary.admit(tenantID: tenantID, limits: limits, request: request)
        } catch is CancellationError where Task.isCancelled {
            // The request was given up (its client left): no store failure.
            throw CancellationError()
        } catch {
            try failover.failed(error)
            let decision = fallback.admit(tenantID: tenantID, limits: limits, request: request, now: .now)
            if let reservation = decision.reservation {
                fallbackReservations.withLock { _ = $0.insert(reservation.id.rawValue) }
            }
            return decision
        }
    }

    public func settle(_ reservation: Reservation, actualTokens: Int, actualMicros: Int64) {
        let wasFallback = fallbackReservations.withLock { $0.remove(reservation.id.rawValue) != nil }
        if wasFallback {
            fallback.settle(reservation: reservation, actualTokens: actualTokens, actualMicros: actualMicros, now: .now)
        } else {
            primary.settle(reservation, actualTokens: actualTokens, actualMicros: actualMicros)
        }
    }

    /// The store's state, or the fallback's while the store cannot be reached.
    public func budgetStatus(tenantID: String, key: BudgetPeriodKey) async throws -> BudgetStatus? {
        do {
            return try await primary.budgetStatus(tenantID: tenantID, key: key)
        } catch is CancellationError where Task.isCancelled {
            throw CancellationError()
        } catch {
            try failover.failed(error)
            return fallback.budgetStatus(tenantID: tenantID, key: key, now: .now)
        }
    }
}
