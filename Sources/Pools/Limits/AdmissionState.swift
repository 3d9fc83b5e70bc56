/// The admission state machine of one tenant: its requests-per-minute and tokens-per-minute
/// buckets and its open reservations, which are also its concurrency count.
///
/// `admit` is all-or-nothing: it reserves one request, the request's tokens and one
/// concurrency slot, or changes nothing and says which limit refused. `settle` gives back
/// the tokens a request did not use. These are the reference semantics of the Redis
/// scripts; the in-process limiter runs this type as it is.
public struct AdmissionState: Sendable, Hashable {
    /// An admitted request that has not been settled.
    struct OpenReservation: Sendable, Hashable {
        var tokens: Int
        var expiresAt: ContinuousClock.Instant
        /// What it holds in each budget period: the same amounts in each.
        var budgetAmounts: BudgetAmounts = .zero
        var budgets: [BudgetPeriodKey] = []
    }

    public let tenantID: String
    public private(set) var limits: TenantLimits
    /// How long a reservation holds its slot when it is never settled.
    public let reservationTTL: Duration
    /// The `retry-after` suggested when only the concurrency limit refuses.
    public let concurrencyRetryAfter: Duration

    private(set) var requests: TokenBucket?
    private(set) var tokens: TokenBucket?
    /// The throttled rate, while some `throttle` budget is known: one request per admission
    /// made while such a budget is spent.
    private(set) var throttle: TokenBucket?
    /// Budget periods with state: used (from the ledger's seed on) and reserved amounts.
    private(set) var budgets: [BudgetPeriodKey: BudgetStatus] = [:]
    /// When a budget last changed; a tenant is idle only some time after it.
    private var lastBudgetChange: ContinuousClock.Instant?
    private(set) var open: [Reservation.ID: OpenReservation] = [:]
    /// No open reservation expires before this; it may be earlier than the earliest one
    /// (after a settle), which only costs one fruitless scan.
    private var earliestExpiry: ContinuousClock.Instant?

    /// Creates the state of a tenant that has used nothing: its buckets are full.
    /// - Parameters:
    ///   - tenantID: The tenant.
    ///   - limits: The limits of its contract.
    ///   - now: The current instant.
    ///   - reservationTTL: How long an unsettled reservation holds its concurrency slot.
    ///   - concurrencyRetryAfter: The wait suggested when all concurrency slots are taken.
    public init(
        tenantID: String,
        limits: TenantLimits,
        now: ContinuousClock.Instant,
        reservationTTL: Duration = .seconds(600),
        concurrencyRetryAfter: Duration = .seconds(1)
    ) {
        self.tenantID = tenantID
        self.limits = limits
        self.reservationTTL = reservationTTL
        self.concurrencyRetryAfter = concurrencyRetryAfter
        self.requests = limits.requestsPerMinute.map { TokenBucket(perMinute: $0, now: now) }
        self.tokens = limits.tokensPerMinute.map { TokenBucket(perMinute: $0, now: now) }
    }

    // MARK: Admission

    /// Admits a request if every limit allows it, reserving one request, its tokens and a
    /// concurrency slot; otherwise changes nothing but releasing expired reservations.
    /// - Parameters:
    ///   - request: What the request needs.
    ///   - id: A reservation id that is not open; the caller makes them unique.
    ///   - now: The current instant.
    public mutating func admit(request: AdmissionRequest, id: Reservation.ID, now: ContinuousClock.Instant) -> AdmissionDecision {
        expireReservations(now: now)
        // A period without state is built from the ledger's figure, or asked for.
        let missing = request.budgets.filter { budgets[$0.key] == nil && $0.seed == nil }.map(\.key)
        if !missing.isEmpty { return .needsSeed(missing) }
        for budget in request.budgets where budgets[budget.key] == nil {
            startPeriod(budget, now: now)
        }
        if request.budgets.contains(where: { $0.whenSpent == .throttle }) {
            throttle = Self.bucket(throttle, limit: request.throttledRequestsPerMinute, now: now)
        }

        // Budgets first, in the order given: a spent budget refuses until its reset, longer
        // than any rate limit would.
        var throttledBy: BudgetDemand?
        for budget in request.budgets {
            let status = budgets[budget.key]!
            guard budget.isSpent(used: status.used, reserved: status.reserved) else { continue }
            switch budget.whenSpent {
            case .refuse:
                return .refused(budgetRefusal(budget, request: request, now: now))
            case .throttle:
                if throttledBy == nil { throttledBy = budget }
            case .serve:
                continue
            }
        }
        // Decide on refilled copies so a refusal leaves the buckets as they were.
        var throttle = self.throttle?.refilled(now: now)
        if let throttledBy, let bucket = throttle {
            // nil: a throttled rate of zero, which admits nothing until the reset.
            let wait = bucket.timeUntilAvailable(1, now: now)
            if wait.map({ $0 > .zero }) ?? true {
                return .refused(budgetRefusal(throttledBy, request: request, throttled: true, throttledWait: wait, now: now))
            }
        }
        var requests = self.requests?.refilled(now: now)
        var tokens = self.tokens?.refilled(now: now)
        let needed = request.reservedTokens

        if let refusal = refusal(requests: requests, tokens: tokens, tokensNeeded: needed, now: now) {
            return .refused(refusal)
        }
        _ = requests?.tryTake(1, now: now)
        _ = tokens?.tryTake(needed, now: now)
        self.requests = requests
        self.tokens = tokens
        if throttledBy != nil {
            _ = throttle?.tryTake(1, now: now)
            self.throttle = throttle
        }
        let amounts = request.reservedAmounts
        var seen = Set<BudgetPeriodKey>()
        let keys = request.budgets.map(\.key).filter { seen.insert($0).inserted }
        for key in keys {
            budgets[key]!.reserved = budgets[key]!.reserved.adding(amounts)
        }
        if !keys.isEmpty { lastBudgetChange = now }
        let expiresAt = now + reservationTTL
        assert(open[id] == nil, "reservation \(id) is already open")
        open[id] = OpenReservation(tokens: needed, expiresAt: expiresAt, budgetAmounts: amounts, budgets: keys)
        earliestExpiry = min(earliestExpiry ?? expiresAt, expiresAt)
        var reservation = Reservation(id: id, tenantID: tenantID, tokens: needed, expiresAt: expiresAt, headers: headers(now: now))
        reservation.micros = amounts.micros
        reservation.budgets = keys
        reservation.throttled = throttledBy != nil
        return .admitted(reservation)
    }

    /// Builds the state of a budget's period from the ledger's figure, and forgets the
    /// same budget's other periods that no open reservation holds.
    private mutating func startPeriod(_ budget: BudgetDemand, now: ContinuousClock.Instant) {
        let held = Set(open.values.flatMap(\.budgets))
        for key in budgets.keys where key.scope == budget.key.scope && !held.contains(key) {
            budgets[key] = nil
        }
        budgets[budget.key] = BudgetStatus(used: budget.seed ?? .zero, reserved: .zero)
        lastBudgetChange = now
    }

    /// The refusal of a spent budget: until its reset, or, when it throttles, until the
    /// throttled rate has room (`throttledWait`; never past the reset).
    private func budgetRefusal(
        _ budget: BudgetDemand, request: AdmissionRequest, throttled: Bool = false, throttledWait: Duration? = nil,
        now: ContinuousClock.Instant
    ) -> AdmissionRefusal {
        let untilReset = Duration.milliseconds(max(0, budget.resetsAt - request.wallClockMilliseconds))
        let held = budgets[budget.key].map { $0.used.adding($0.reserved) } ?? .zero
        // The limit reported: tokens when they are spent, money otherwise.
        let (limitValue, remaining, requested): (Int, Int, Int)
        if throttled, let throttle {
            (limitValue, remaining, requested) = (throttle.capacity, throttle.refilled(now: now).available, 1)
        } else if let limitTokens = budget.limitTokens, held.tokens >= limitTokens || budget.limitMicros == nil {
            (limitValue, remaining, requested) = (limitTokens, max(0, limitTokens - held.tokens), request.reservedTokens)
        } else {
            let limitMicros = budget.limitMicros ?? 0
            (limitValue, remaining, requested) = (
                Int(clamping: limitMicros), Int(clamping: max(0, limitMicros - held.micros)), Int(clamping: request.maximumCostMicros)
            )
        }
        var refusal = AdmissionRefusal(
            limit: .budget, limitValue: limitValue, remaining: remaining, requested: requested,
            retryAfter: throttled ? min(throttledWait ?? untilReset, untilReset) : untilReset,
            headers: headers(now: now)
        )
        refusal.budget = budget
        refusal.throttled = throttled
        return refusal
    }

    /// The refusal of the limit that keeps the request waiting longest, or nil when all fit.
    private func refusal(requests: TokenBucket?, tokens: TokenBucket?, tokensNeeded: Int, now: ContinuousClock.Instant) -> AdmissionRefusal? {
        var worst: (limit: AdmissionRefusal.Limit, value: Int, remaining: Int, requested: Int, wait: Duration?)?
        func consider(_ limit: AdmissionRefusal.Limit, value: Int, remaining: Int, requested: Int, wait: Duration?) {
            if let wait, wait <= .zero { return }
            // nil waits forever, so it is the longest; ties keep the first limit named.
            if let current = worst, current.wait == nil || (wait != nil && wait! <= current.wait!) { return }
            worst = (limit, value, remaining, requested, wait)
        }
        if let requests {
            consider(.requests, value: requests.capacity, remaining: requests.available, requested: 1,
                     wait: requests.timeUntilAvailable(1, now: now))
        }
        if let tokens {
            consider(.tokens, value: tokens.capacity, remaining: tokens.available, requested: tokensNeeded,
                     wait: tokens.timeUntilAvailable(tokensNeeded, now: now))
        }
        if let slots = limits.concurrentRequests, open.count >= slots {
            consider(.concurrency, value: slots, remaining: 0, requested: 1, wait: concurrencyWait(slots: slots, now: now))
        }
        guard let worst else { return nil }
        return AdmissionRefusal(
            limit: worst.limit, limitValue: worst.value, remaining: worst.remaining, requested: worst.requested,
            retryAfter: worst.wait, headers: headers(now: now)
        )
    }

    /// A slot is certain to free only when the earliest reservation expires; requests
    /// usually end much sooner, so the configured hint caps the wait.
    private func concurrencyWait(slots: Int, now: ContinuousClock.Instant) -> Duration? {
        guard slots > 0 else { return nil }
        let firstExpiry = open.values.map(\.expiresAt).min() ?? now
        return min(concurrencyRetryAfter, max(.zero, firstExpiry - now))
    }

    // MARK: Settling

    /// Ends a reservation with the tokens the request actually used: gives back what it did
    /// not use (never past the capacity), takes what it used beyond the reservation (into
    /// debt if need be, so later requests wait), and frees its concurrency slot.
    /// - Returns: What was settled; nil when the reservation was already settled or expired.
    ///
    /// The usage is added to each budget period the reservation names even when the
    /// reservation itself expired or was lost: the request's usage event reaches the ledger
    /// either way, and the budget keeps agreeing with it.
    public mutating func settle(
        reservation: Reservation, actualTokens: Int, actualMicros: Int64 = 0, now: ContinuousClock.Instant
    ) -> Settlement? {
        expireReservations(now: now)
        let held = open.removeValue(forKey: reservation.id)
        let used = BudgetAmounts(tokens: actualTokens, micros: actualMicros)
        for key in reservation.budgets where budgets[key] != nil {
            budgets[key]!.used = budgets[key]!.used.adding(used)
            if let held, held.budgets.contains(key) {
                budgets[key]!.reserved = budgets[key]!.reserved.subtracting(held.budgetAmounts)
            }
            lastBudgetChange = now
        }
        guard let held else { return nil }
        if open.isEmpty { earliestExpiry = nil }
        let actual = max(0, actualTokens)
        let settlement = Settlement(
            reservedTokens: held.tokens,
            actualTokens: actual,
            unusedTokens: max(0, held.tokens - actual),
            excessTokens: max(0, actual - held.tokens)
        )
        tokens?.giveBack(settlement.unusedTokens, now: now)
        tokens?.take(settlement.excessTokens, now: now)
        return settlement
    }

    /// Releases the concurrency slots of reservations that expired by `now`. Their tokens
    /// stay taken: a request that never reported is assumed to have used its reservation.
    public mutating func expireReservations(now: ContinuousClock.Instant) {
        guard let earliest = earliestExpiry, earliest <= now else { return }
        for (_, expired) in open where expired.expiresAt <= now {
            // What it held in budgets is given back: its usage, if any, is settled apart.
            for key in expired.budgets where budgets[key] != nil {
                budgets[key]!.reserved = budgets[key]!.reserved.subtracting(expired.budgetAmounts)
            }
        }
        open = open.filter { $0.value.expiresAt > now }
        earliestExpiry = open.values.map(\.expiresAt).min()
    }

    /// A budget period's state; nil when there is none (the ledger's figure stands).
    public func budget(_ key: BudgetPeriodKey, now: ContinuousClock.Instant) -> BudgetStatus? {
        var copy = self
        copy.expireReservations(now: now)
        return copy.budgets[key]
    }

    // MARK: Limits and state

    /// Applies changed limits, keeping what has been used: raising a limit grants the
    /// difference at once, lowering it takes it away; a new limit starts full.
    public mutating func apply(_ newLimits: TenantLimits, now: ContinuousClock.Instant) {
        guard newLimits != limits else { return }
        requests = Self.bucket(requests, limit: newLimits.requestsPerMinute, now: now)
        tokens = Self.bucket(tokens, limit: newLimits.tokensPerMinute, now: now)
        limits = newLimits
    }

    private static func bucket(_ bucket: TokenBucket?, limit: Int?, now: ContinuousClock.Instant) -> TokenBucket? {
        guard let limit else { return nil }
        guard let bucket else { return TokenBucket(perMinute: limit, now: now) }
        return bucket.capacity == limit ? bucket : bucket.resized(capacity: limit, refill: limit, now: now)
    }

    /// The rate-limit header values at `now`.
    public func headers(now: ContinuousClock.Instant) -> RateLimitHeaders {
        RateLimitHeaders(
            requests: requests.map { RateLimitHeaders.Window($0, now: now) },
            tokens: tokens.map { RateLimitHeaders.Window($0, now: now) }
        )
    }

    /// How long after a budget's last change its usage is surely in the ledger.
    static let budgetSettleTime: Duration = .seconds(60)

    /// Requests admitted and neither settled nor expired by `now`.
    public func inFlight(now: ContinuousClock.Instant) -> Int {
        open.values.count { $0.expiresAt > now }
    }

    /// True when the tenant holds nothing at `now`: no request in flight and full buckets.
    /// Forgetting an idle tenant loses nothing, since a fresh state is the same.
    ///
    /// Budget state is rebuilt from the ledger, so it does not keep a tenant from being
    /// idle, but only once the ledger has had time to write what was last settled.
    public func isIdle(now: ContinuousClock.Instant) -> Bool {
        inFlight(now: now) == 0
            && (lastBudgetChange.map { now - $0 >= Self.budgetSettleTime } ?? true)
            && (throttle?.timeUntilFull(now: now) ?? .zero) == .zero
            && (requests?.timeUntilFull(now: now) ?? .zero) == .zero
            && (tokens?.timeUntilFull(now: now) ?? .zero) == .zero
    }
}
