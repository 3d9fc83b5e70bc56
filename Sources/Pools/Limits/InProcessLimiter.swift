import Synchronization

/// Tenant rate limits for a single proxy instance: the in-process twin of the Redis
/// limiter, used when Switchyard runs without Redis or has lost it and fails open.
///
/// Each tenant's state is an `AdmissionState` behind one lock, so admissions are atomic
/// exactly as the Redis scripts are. Tenants are forgotten when the map outgrows its bound,
/// idle ones first.
public final class InProcessLimiter: Sendable {
    /// The most tenants kept before forgetting some.
    public let maximumTenants: Int
    public let reservationTTL: Duration
    public let concurrencyRetryAfter: Duration
    private let state: Mutex<TenantTable>

    /// - Parameters:
    ///   - maximumTenants: The most tenants whose state is kept; at least 1.
    ///   - reservationTTL: How long an unsettled reservation holds its concurrency slot.
    ///   - concurrencyRetryAfter: The wait suggested when all concurrency slots are taken.
    public init(maximumTenants: Int = 100_000, reservationTTL: Duration = .seconds(600), concurrencyRetryAfter: Duration = .seconds(1)) {
        self.maximumTenants = max(1, maximumTenants)
        self.reservationTTL = reservationTTL
        self.concurrencyRetryAfter = concurrencyRetryAfter
        self.state = Mutex(TenantTable())
    }

    /// Admits a request of `tenantID` under `limits` (the tenant's contract as it stands
    /// now; a change applies from this call on), or refuses it and changes nothing.
    public func admit(
        tenantID: String,
        limits: TenantLimits,
        request: AdmissionRequest,
        now: ContinuousClock.Instant = .now
    ) -> AdmissionDecision {
        state.withLock { table in
            if table.tenants[tenantID] == nil {
                table.makeRoom(below: maximumTenants, now: now)
                table.tenants[tenantID] = TenantTable.Entry(
                    admission: AdmissionState(
                        tenantID: tenantID, limits: limits, now: now,
                        reservationTTL: reservationTTL, concurrencyRetryAfter: concurrencyRetryAfter
                    ),
                    lastUsed: now
                )
            }
            table.nextID &+= 1
            let id = Reservation.ID(table.nextID)
            // Mutating through the subscript keeps the state uniquely referenced: no copy.
            table.tenants[tenantID]!.lastUsed = max(table.tenants[tenantID]!.lastUsed, now)
            table.tenants[tenantID]!.admission.apply(limits, now: now)
            return table.tenants[tenantID]!.admission.admit(request: request, id: id, now: now)
        }
    }

    /// Settles a reservation with the tokens the request actually used.
    /// - Returns: What was settled; nil when it was already settled, had expired, or its
    ///   tenant was forgotten.
    @discardableResult
    public func settle(
        reservation: Reservation, actualTokens: Int, actualMicros: Int64 = 0, now: ContinuousClock.Instant = .now
    ) -> Settlement? {
        state.withLock { table in
            guard table.tenants[reservation.tenantID] != nil else { return nil }
            table.tenants[reservation.tenantID]!.lastUsed = max(table.tenants[reservation.tenantID]!.lastUsed, now)
            return table.tenants[reservation.tenantID]!.admission.settle(
                reservation: reservation, actualTokens: actualTokens, actualMicros: actualMicros, now: now
            )
        }
    }

    /// A budget period's state; nil when this process holds none for it.
    public func budgetStatus(tenantID: String, key: BudgetPeriodKey, now: ContinuousClock.Instant = .now) -> BudgetStatus? {
        state.withLock { $0.tenants[tenantID]?.admission.budget(key, now: now) }
    }

    /// The rate-limit header values of a tenant at `now`, without admitting anything; nil
    /// for a tenant with no state, which is as good as full buckets.
    public func headers(tenantID: String, now: ContinuousClock.Instant = .now) -> RateLimitHeaders? {
        state.withLock { $0.tenants[tenantID]?.admission.headers(now: now) }
    }

    /// Requests of a tenant admitted and neither settled nor expired by `now`.
    public func inFlight(tenantID: String, now: ContinuousClock.Instant = .now) -> Int {
        state.withLock { $0.tenants[tenantID]?.admission.inFlight(now: now) ?? 0 }
    }

    /// Tenants whose state is kept.
    public var tenantCount: Int {
        state.withLock { $0.tenants.count }
    }
}

/// The tenants' states of an in-process limiter, and which to forget when there are too many.
struct TenantTable: Sendable {
    struct Entry: Sendable {
        var admission: AdmissionState
        var lastUsed: ContinuousClock.Instant
    }

    var tenants: [String: Entry] = [:]
    /// Reservation ids are unique across tenants and over the process's life, so a late
    /// settle for a forgotten tenant can never settle another request.
    var nextID: UInt64 = 0

    /// Makes room for one more tenant. Idle tenants go first: forgetting them loses
    /// nothing. If that leaves more than 90 % of the bound, the least recently used go
    /// too, down to 90 %, so each sweep frees enough that it is not repeated for every
    /// new tenant; a busy tenant forgotten this way starts afresh when it returns, which
    /// forgives what it had used. A bound that large means it is set too low.
    mutating func makeRoom(below maximum: Int, now: ContinuousClock.Instant) {
        guard tenants.count >= maximum else { return }
        tenants = tenants.filter { !$0.value.admission.isIdle(now: now) }
        let keep = maximum - maximum / 10 - 1
        guard tenants.count > keep else { return }
        let oldest = tenants.sorted { $0.value.lastUsed < $1.value.lastUsed }.prefix(tenants.count - max(0, keep))
        for (tenantID, _) in oldest {
            tenants.removeValue(forKey: tenantID)
        }
    }
}
