import Logging
import Synchronization

/// What to do with tenant limits while the shared store (Redis) cannot be reached.
public enum LimitStoreFailurePolicy: String, Sendable, CaseIterable {
    /// Keep serving, holding tenants to the same limits in this process alone.
    case failOpen = "open"
    /// Refuse requests (503) until the store is back.
    case failClosed = "closed"
}

/// The store could not decide and the policy is to fail closed.
public struct LimitStoreUnavailable: Error, Sendable {
    public var underlying: String
}

/// Admission against a shared store, falling back by policy when the store fails: the
/// in-process twin (fail open) or a refusal (fail closed). Settles go back to whichever
/// side admitted. The store is tried on every request, so recovery needs no action.
public final class FailoverAdmission: TenantAdmission {
    private let primary: any TenantAdmission
    private let fallback: InProcessLimiter
    private let policy: LimitStoreFailurePolicy
    private let logger: Logger
    private let onFailure: @Sendable () -> Void
    /// Reservations the fallback made, so their settles go back to it.
    private let fallbackReservations = Mutex<Set<UInt64>>([])
    private let lastWarning = Mutex<ContinuousClock.Instant?>(nil)

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
        self.policy = policy
        self.logger = logger
        self.onFailure = onFailure
    }

    public func admit(tenantID: String, limits: TenantLimits, request: AdmissionRequest) async throws -> AdmissionDecision {
        do {
            return try await primary.admit(tenantID: tenantID, limits: limits, request: request)
        } catch {
            onFailure()
            warn(error)
            guard policy == .failOpen else {
                throw LimitStoreUnavailable(underlying: String(describing: error))
            }
            let decision = fallback.admit(tenantID: tenantID, limits: limits, request: request, now: .now)
            if let reservation = decision.reservation {
                fallbackReservations.withLock { _ = $0.insert(reservation.id.rawValue) }
            }
            return decision
        }
    }

    public func settle(_ reservation: Reservation, actualTokens: Int) {
        let wasFallback = fallbackReservations.withLock { $0.remove(reservation.id.rawValue) != nil }
        if wasFallback {
            fallback.settle(reservation: reservation, actualTokens: actualTokens, now: .now)
        } else {
            primary.settle(reservation, actualTokens: actualTokens)
        }
    }

    /// One warning every ten seconds at most while the store is down.
    private func warn(_ error: any Error) {
        let now = ContinuousClock.now
        let due = lastWarning.withLock { last -> Bool in
            if let last, now - last < .seconds(10) { return false }
            last = now
            return true
        }
        if due {
            logger.warning(
                "tenant-limit store unavailable",
                metadata: ["error": "\(error)", "policy": "fail_\(policy.rawValue)"]
            )
        }
    }
}
