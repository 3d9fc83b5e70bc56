// MARK: One key

extension KeyPoolState {
    /// The state of one provider key. Times are milliseconds since 1970.
    struct Key: Sendable, Hashable {
        /// What the provider last said about one of the key's windows, counted down by
        /// each selection until the next report replaces it.
        struct Reported: Sendable, Hashable {
            /// At least 0.
            var remaining: Int
            /// Nil when not reported.
            var limit: Int?
            /// The report holds until this instant.
            var resetAt: Int
        }

        /// Requests started in the current and the previous whole minute (since 1970),
        /// from which the trailing minute is estimated.
        struct MinuteCounter: Sendable, Hashable {
            static let length = 60_000
            var window = 0
            var current = 0
            var previous = 0

            mutating func roll(now: Int) {
                let window = now / Self.length
                guard window > self.window else { return }
                previous = window == self.window + 1 ? current : 0
                current = 0
                self.window = window
            }

            /// The current minute's count plus the part of the previous minute's that falls
            /// inside the trailing minute, as if its requests were spread evenly.
            func estimate(now: Int) -> Int {
                var counter = self
                counter.roll(now: now)
                let elapsed = min(Self.length, max(0, now - counter.window * Self.length))
                return counter.current + counter.previous * (Self.length - elapsed) / Self.length
            }
        }

        var requests: TokenBucket?
        var tokens: TokenBucket?
        var reportedRequests: Reported?
        var reportedTokens: Reported?
        var coolingDownUntil: Int?
        /// Rate limits since the key last served a request (or an operator reset it), at
        /// most `largestRateLimitStreak`: how far a cooldown without a named delay has grown.
        var rateLimitStreak = 0
        var disabledReason: String?
        /// Lease id -> expiry.
        var leases: [UInt64: Int] = [:]
        var lastError: String?
        var lastErrorAt: Int?
        var lastUsedAt: Int?
        var minute = MinuteCounter()
        /// Smooth weighted round-robin credit.
        var credit = 0

        // MARK: Upkeep

        /// Leases expire at their expiry instant: a proxy that died mid-request leaks nothing.
        mutating func expireLeases(now: Int) {
            if leases.values.contains(where: { $0 <= now }) {
                leases = leases.filter { $0.value > now }
            }
        }

        /// The catalogue's limits for the key: a new limit starts full, a changed one keeps
        /// what was used, a removed one is forgotten.
        mutating func apply(_ key: PooledKey, now: Int) {
            requests = Self.bucket(requests, limit: key.requestsPerMinute, now: now)
            tokens = Self.bucket(tokens, limit: key.tokensPerMinute, now: now)
        }

        private static func bucket(_ bucket: TokenBucket?, limit: Int?, now: Int) -> TokenBucket? {
            guard let limit else { return nil }
            let instant = KeyPoolState.instant(now)
            guard let bucket else { return TokenBucket(perMinute: limit, now: instant) }
            return bucket.capacity == limit ? bucket : bucket.resized(capacity: limit, refill: limit, now: instant)
        }

        // MARK: Selection

        /// Milliseconds until the key can take one request and `tokens`, ignoring its disable:
        /// zero when it can now, nil when it never can (a zero limit, or more tokens than an
        /// empty token limit). Every obstacle must clear, so it is the longest of their waits.
        func wait(tokens needed: Int, now: Int) -> Int? {
            let instant = KeyPoolState.instant(now)
            var wait = 0
            if let until = coolingDownUntil, now < until { wait = max(wait, until - now) }
            if let requests {
                guard let refill = requests.timeUntilAvailable(1, now: instant) else { return nil }
                wait = max(wait, KeyPoolState.milliseconds(refill))
            }
            if let tokens {
                // A request larger than the whole window may still go, alone, on a full window.
                let refill = needed <= tokens.capacity
                    ? tokens.timeUntilAvailable(needed, now: instant)
                    : tokens.capacity > 0 ? tokens.timeUntilFull(now: instant) : nil
                guard let refill else { return nil }
                wait = max(wait, KeyPoolState.milliseconds(refill))
            }
            if let reported = reportedRequests, reported.resetAt > now, reported.remaining <= 0 {
                wait = max(wait, reported.resetAt - now)
            }
            if let reported = reportedTokens, reported.resetAt > now, reported.remaining < 1 {
                wait = max(wait, reported.resetAt - now)
            }
            return wait
        }

        /// The fraction left of the key's tightest known window, in thousandths, at least 1:
        /// 1000 when nothing is known.
        func headroom(now: Int) -> Int {
            let instant = KeyPoolState.instant(now)
            var headroom = 1000
            for bucket in [requests, tokens].compactMap({ $0?.refilled(now: instant) }) where bucket.capacity > 0 {
                headroom = min(headroom, bucket.available * 1000 / bucket.capacity)
            }
            for reported in [reportedRequests, reportedTokens].compactMap({ $0 }) where reported.resetAt > now {
                if let limit = reported.limit, limit > 0 {
                    headroom = min(headroom, min(reported.remaining, limit) * 1000 / limit)
                }
            }
            return max(1, headroom)
        }

        /// Takes one request and `tokens` from the key's windows (into debt when the request
        /// is larger than the token window) and counts the lease in flight.
        mutating func reserve(tokens needed: Int, leaseID: UInt64, expiresAt: Int, now: Int) {
            let instant = KeyPoolState.instant(now)
            requests?.take(1, now: instant)
            tokens?.take(needed, now: instant)
            if reportedRequests != nil { reportedRequests!.remaining = max(0, reportedRequests!.remaining - 1) }
            if reportedTokens != nil { reportedTokens!.remaining = max(0, reportedTokens!.remaining - needed) }
            leases[leaseID] = expiresAt
            minute.roll(now: now)
            minute.current += 1
            lastUsedAt = now
        }

        // MARK: Outcomes

        mutating func apply(_ effect: Effect, now: Int) {
            switch effect.kind {
            case .succeeded:
                rateLimitStreak = 0
            case .rateLimited:
                coolingDownUntil = now + (effect.cooldown ?? KeyPoolState.defaultCooldown(afterRateLimits: rateLimitStreak))
                rateLimitStreak = min(rateLimitStreak + 1, KeyPoolState.largestRateLimitStreak)
                lastError = "rate limited"
                lastErrorAt = now
            case .rejected:
                disabledReason = effect.reason
                lastError = effect.reason
                lastErrorAt = now
            case .failed:
                lastError = effect.reason
                lastErrorAt = now
            }
            if let report = effect.report {
                reportedRequests = report.requests.map { Reported(remaining: $0.remaining, limit: $0.limit, resetAt: now + $0.resetAfter) }
                reportedTokens = report.tokens.map { Reported(remaining: $0.remaining, limit: $0.limit, resetAt: now + $0.resetAfter) }
            }
        }

        func status(now: Int) -> KeyLiveStatus {
            KeyLiveStatus(
                inFlight: leases.values.count { $0 > now },
                coolingDownUntil: coolingDownUntil.flatMap { now < $0 ? KeyPoolState.date($0) : nil },
                disabledReason: disabledReason,
                lastError: lastError,
                lastErrorAt: lastErrorAt.map(KeyPoolState.date),
                lastUsedAt: lastUsedAt.map(KeyPoolState.date),
                requestsLastMinute: minute.estimate(now: now)
            )
        }
    }
}

// MARK: Outcomes as both implementations apply them

extension KeyPoolState {
    /// A `KeyOutcome` reduced to what changes the key's state, in whole milliseconds and
    /// capped counts: computed once, in Swift, for the state machine and the scripts alike.
    struct Effect: Sendable, Hashable {
        enum Kind: Int, Sendable {
            case succeeded = 0
            case rateLimited = 1
            case rejected = 2
            case failed = 3
        }

        /// One reported window: remaining and limit capped at `largestLimit`, the reset in ms.
        struct Window: Sendable, Hashable {
            var remaining: Int
            var limit: Int?
            var resetAfter: Int
        }

        /// A whole report; it replaces the previous one, so a window it leaves out is forgotten.
        struct Report: Sendable, Hashable {
            var requests: Window?
            var tokens: Window?
        }

        var kind: Kind
        /// For `rateLimited`: milliseconds to cool down, as the provider said; nil when it
        /// named no delay, for the key's default, which grows with each rate limit in a row.
        var cooldown: Int?
        /// For `rejected` and `failed`.
        var reason = ""
        var report: Report?

        init(_ outcome: KeyOutcome) {
            switch outcome {
            case .succeeded(let capacity):
                kind = .succeeded
                report = capacity.map { Self.report($0) }
            case .rateLimited(let retryAfter, let capacity):
                kind = .rateLimited
                cooldown = Self.cooldown(retryAfter: retryAfter, capacity: capacity)
                // An exhausted window with no reset of its own is no longer than the
                // cooldown, which stands for it.
                report = capacity.map { Self.report($0, forgettingExhaustedWithoutReset: true) }
            case .rejected(let reason):
                kind = .rejected
                self.reason = reason
            case .failed(let reason):
                kind = .failed
                self.reason = reason
            }
        }

        /// `retryAfter`, else the later reset of the reported windows that are exhausted,
        /// at most `longestCooldown`; nil when the provider named neither.
        static func cooldown(retryAfter: Duration?, capacity: ReportedCapacity?) -> Int? {
            var exhaustedReset: Duration?
            if let capacity {
                for (remaining, reset) in [(capacity.remainingRequests, capacity.requestsReset), (capacity.remainingTokens, capacity.tokensReset)] {
                    if let remaining, remaining <= 0, let reset { exhaustedReset = max(exhaustedReset ?? reset, reset) }
                }
            }
            guard let cooldown = retryAfter ?? exhaustedReset else { return nil }
            return min(KeyPoolState.milliseconds(cooldown), KeyPoolState.milliseconds(KeyPoolState.longestCooldown))
        }

        /// - Parameter forgettingExhaustedWithoutReset: Whether an exhausted window the
        ///   provider gave no reset for is left out, rather than trusted for
        ///   `defaultReportedReset`.
        static func report(_ capacity: ReportedCapacity, forgettingExhaustedWithoutReset: Bool = false) -> Report {
            func window(_ remaining: Int?, _ limit: Int?, _ reset: Duration?) -> Window? {
                if forgettingExhaustedWithoutReset, reset == nil, let remaining, remaining <= 0 { return nil }
                return remaining.map { remaining in
                    Window(
                        remaining: KeyPoolState.limit(remaining), limit: limit.map(KeyPoolState.limit),
                        resetAfter: min(
                            KeyPoolState.milliseconds(reset ?? KeyPoolState.defaultReportedReset),
                            KeyPoolState.milliseconds(KeyPoolState.longestReportedReset)
                        )
                    )
                }
            }
            return Report(
                requests: window(capacity.remainingRequests, capacity.limitRequests, capacity.requestsReset),
                tokens: window(capacity.remainingTokens, capacity.limitTokens, capacity.tokensReset)
            )
        }
    }
}
