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
    }

    public let tenantID: String
    public private(set) var limits: TenantLimits
    /// How long a reservation holds its slot when it is never settled.
    public let reservationTTL: Duration
    /// The `retry-after` suggested when only the concurrency limit refuses.
    public let concurrencyRetryAfter: Duration

    private(set) var requests: TokenBucket?
    private(set) var tokens: TokenBucket?
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
        // Decide on refilled copies so a refusal leaves the buckets as they were.
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
        let expiresAt = now + reservationTTL
        assert(open[id] == nil, "reservation \(id) is already open")
        open[id] = OpenReservation(tokens: needed, expiresAt: expiresAt)
        earliestExpiry = min(earliestExpiry ?? expiresAt, expiresAt)
        return .admitted(
            Reservation(id: id, tenantID: tenantID, tokens: needed, expiresAt: expiresAt, headers: headers(now: now))
        )
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
    public mutating func settle(reservation: Reservation, actualTokens: Int, now: ContinuousClock.Instant) -> Settlement? {
        expireReservations(now: now)
        guard let held = open.removeValue(forKey: reservation.id) else { return nil }
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
        open = open.filter { $0.value.expiresAt > now }
        earliestExpiry = open.values.map(\.expiresAt).min()
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

    /// Requests admitted and neither settled nor expired by `now`.
    public func inFlight(now: ContinuousClock.Instant) -> Int {
        open.values.count { $0.expiresAt > now }
    }

    /// True when the tenant holds nothing at `now`: no request in flight and full buckets.
    /// Forgetting an idle tenant loses nothing, since a fresh state is the same.
    public func isIdle(now: ContinuousClock.Instant) -> Bool {
        inFlight(now: now) == 0
            && (requests?.timeUntilFull(now: now) ?? .zero) == .zero
            && (tokens?.timeUntilFull(now: now) ?? .zero) == .zero
    }
}
