/// What admitting one request costs against its tenant's limits.
public struct AdmissionRequest: Sendable, Hashable {
    /// Tokens in the prompt, as counted or estimated before sending.
    public var promptTokens: Int
    /// The most output tokens the request may produce (`max_tokens` or the model's default).
    public var maximumOutputTokens: Int

    /// The most the request can cost, in micro-units: its tokens at the dearest of its
    /// candidate deployments' prices. What it reserves of money budgets.
    public var maximumCostMicros: Int64
    /// The budgets and quota to reserve in, in the order they are checked; at most one per
    /// scope (a scope's new period forgets its old ones).
    public var budgets: [BudgetDemand]
    /// The wall-clock instant the budgets' periods were chosen at, Unix milliseconds: the
    /// refusal of a spent budget waits from here to its reset.
    public var wallClockMilliseconds: Int64
    /// The rate at which requests are admitted while a `throttle` budget is spent.
    public var throttledRequestsPerMinute: Int

    /// The throttled rate when a tier sets none.
    public static let defaultThrottledRequestsPerMinute = 10

    /// - Parameters:
    ///   - promptTokens: Prompt tokens; negative counts as zero.
    ///   - maximumOutputTokens: Output tokens at most; negative counts as zero.
    ///   - maximumCostMicros: The worst-case cost; negative counts as zero.
    ///   - budgets: Budgets and quota, checked in this order.
    ///   - wallClockMilliseconds: When the budgets' periods were chosen.
    ///   - throttledRequestsPerMinute: Requests per minute while a throttling budget is spent.
    public init(
        promptTokens: Int,
        maximumOutputTokens: Int,
        maximumCostMicros: Int64 = 0,
        budgets: [BudgetDemand] = [],
        wallClockMilliseconds: Int64 = 0,
        throttledRequestsPerMinute: Int = AdmissionRequest.defaultThrottledRequestsPerMinute
    ) {
        self.promptTokens = max(0, promptTokens)
        self.maximumOutputTokens = max(0, maximumOutputTokens)
        self.maximumCostMicros = max(0, maximumCostMicros)
        self.budgets = budgets
        self.wallClockMilliseconds = wallClockMilliseconds
        self.throttledRequestsPerMinute = max(0, throttledRequestsPerMinute)
    }

    /// What the request reserves in each budget.
    public var reservedAmounts: BudgetAmounts {
        BudgetAmounts(tokens: reservedTokens, micros: maximumCostMicros)
    }

    /// The tokens reserved at admission: the prompt plus the most the answer can take.
    public var reservedTokens: Int {
        let (sum, overflow) = promptTokens.addingReportingOverflow(maximumOutputTokens)
        return overflow ? Int.max : sum
    }
}

/// What an admitted request holds until it is settled: one request, its reserved tokens
/// and one concurrency slot of its tenant.
public struct Reservation: Sendable, Hashable {
    /// Identifies a reservation, so settling it twice settles it once.
    public struct ID: Sendable, Hashable, CustomStringConvertible {
        public var rawValue: UInt64

        public init(_ rawValue: UInt64) {
            self.rawValue = rawValue
        }

        public var description: String { String(rawValue) }
    }

    public var id: ID
    public var tenantID: String
    /// Prompt tokens plus the maximum output tokens.
    public var tokens: Int
    /// After this instant the reservation no longer holds its concurrency slot, and
    /// settling it does nothing: a request that never settles leaks nothing for long.
    public var expiresAt: ContinuousClock.Instant
    /// The tenant's limits as they stood right after admission.
    public var headers: RateLimitHeaders
    /// The worst-case cost reserved in money budgets.
    public var micros: Int64 = 0
    /// The budget periods the request reserved in; settling adds its usage to each.
    public var budgets: [BudgetPeriodKey] = []
    /// True when a spent `throttle` budget admitted the request at the throttled rate:
    /// it is served in the lowest band.
    public var throttled = false
}

/// Why a request was not admitted; nothing was reserved.
public struct AdmissionRefusal: Sendable, Hashable, Error {
    /// A limit of the tenant's contract.
    public enum Limit: String, Sendable, Hashable {
        case requests
        case tokens
        case concurrency
        /// A budget or quota is spent (`budget`), or it is spent and throttling, and the
        /// throttled rate has no request left (`throttled`).
        case budget
    }

    /// The limit that keeps the request waiting longest.
    public var limit: Limit
    /// That limit's value: requests or tokens per minute, or concurrent requests.
    public var limitValue: Int
    /// What remains of it now.
    public var remaining: Int
    /// What the request needs of it.
    public var requested: Int
    /// How long until the request would fit under every limit, if nothing else is admitted
    /// meanwhile; nil when it exceeds a limit outright and can never fit. For concurrency
    /// this is a hint: slots free when other requests end, which cannot be foreseen.
    public var retryAfter: Duration?
    /// The tenant's limits as they stand.
    public var headers: RateLimitHeaders
    /// For `.budget`: the budget that is spent.
    public var budget: BudgetDemand? = nil
    /// For `.budget`: true when the budget throttles and the throttled rate refused; the
    /// wait is then the throttled rate's, not the reset's.
    public var throttled = false

    /// The `retry-after` header value: whole seconds, rounded up.
    public var retryAfterSeconds: Int? {
        retryAfter.map { duration in
            let (seconds, attoseconds) = duration.components
            return Int(seconds) + (attoseconds > 0 ? 1 : 0)
        }
    }

    /// A client-facing explanation in the manner of OpenAI's `rate_limit_exceeded` errors.
    public var message: String {
        let what: String
        switch limit {
        case .requests: what = "requests per minute"
        case .tokens: what = "tokens per minute"
        case .concurrency: what = "concurrent requests"
        case .budget: return "The budget is spent."
        }
        let counts = "Limit \(limitValue), remaining \(remaining), requested \(requested)."
        guard let retryAfter else {
            return "Request too large for \(what). \(counts) Reduce the prompt or max_tokens."
        }
        return "Rate limit reached for \(what). \(counts) Please try again in \(RateLimitHeaders.format(retryAfter))."
    }
}

/// The answer to an admission: a reservation to settle later, or a refusal.
public enum AdmissionDecision: Sendable, Hashable {
    case admitted(Reservation)
    case refused(AdmissionRefusal)
    /// The store holds no state for these budget periods: ask again with each one's
    /// `seed`, the used amount the ledger records. Nothing was reserved.
    case needsSeed([BudgetPeriodKey])

    /// The rate-limit headers to send with the response either way.
    public var headers: RateLimitHeaders {
        switch self {
        case .admitted(let reservation): reservation.headers
        case .refused(let refusal): refusal.headers
        case .needsSeed: RateLimitHeaders(requests: nil, tokens: nil)
        }
    }

    public var reservation: Reservation? {
        if case .admitted(let reservation) = self { return reservation }
        return nil
    }

    public var refusal: AdmissionRefusal? {
        if case .refused(let refusal) = self { return refusal }
        return nil
    }
}

/// What settling a reservation did.
public struct Settlement: Sendable, Hashable {
    public var reservedTokens: Int
    public var actualTokens: Int
    /// Reserved but unused tokens given back: `reserved - actual`, never negative. The
    /// bucket never fills past its capacity, so less may actually be returned.
    public var unusedTokens: Int
    /// Tokens used beyond the reservation, taken from the bucket after the fact.
    public var excessTokens: Int
}
