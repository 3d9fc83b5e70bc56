/// Tokens and money together: what a budget has used or holds reserved.
public struct BudgetAmounts: Sendable, Hashable {
    public var tokens: Int
    /// Integer micro-units of the configured currency.
    public var micros: Int64

    public static let zero = BudgetAmounts(tokens: 0, micros: 0)

    /// - Parameters: negative amounts count as zero.
    public init(tokens: Int, micros: Int64) {
        self.tokens = max(0, tokens)
        self.micros = max(0, micros)
    }

    /// The sum, saturating rather than overflowing.
    func adding(_ other: BudgetAmounts) -> BudgetAmounts {
        let (tokens, tokensOverflow) = tokens.addingReportingOverflow(other.tokens)
        let (micros, microsOverflow) = micros.addingReportingOverflow(other.micros)
        return BudgetAmounts(tokens: tokensOverflow ? .max : tokens, micros: microsOverflow ? .max : micros)
    }

    /// The difference, never below zero.
    func subtracting(_ other: BudgetAmounts) -> BudgetAmounts {
        BudgetAmounts(tokens: max(0, tokens - other.tokens), micros: max(0, micros - other.micros))
    }
}

/// One calendar period of one budget of a tenant: what its state is kept under.
public struct BudgetPeriodKey: Sendable, Hashable, CustomStringConvertible {
    /// Names the budget within its tenant: `quota`, `tenant` or `key:<id>`. No spaces or `|`.
    public var scope: String
    /// The period's first instant, Unix milliseconds (UTC).
    public var periodStart: Int64

    public init(scope: String, periodStart: Int64) {
        self.scope = scope
        self.periodStart = periodStart
    }

    public var description: String { "\(scope)|\(periodStart)" }
}

/// A budget or quota a request is admitted against: a limit in tokens, in money or both,
/// over the calendar period that contains the request.
///
/// A budget admits a request while some of it is neither used nor reserved, and then
/// reserves the request's tokens and its worst-case cost. A request may therefore take a
/// budget past its limit by at most its own reservation; after that the budget is spent
/// until its period resets.
public struct BudgetDemand: Sendable, Hashable {
    /// What admission does once the budget is spent.
    public enum WhenSpent: String, Sendable, Hashable {
        /// Refuse every request until the period resets.
        case refuse
        /// Admit at the throttled rate (`AdmissionRequest.throttledRequestsPerMinute`),
        /// in the lowest band.
        case throttle
        /// Admit as usual (the tier's overage is billed): only the usage is counted.
        case serve
    }

    public var key: BudgetPeriodKey
    /// The period's end, Unix milliseconds: when the budget resets.
    public var resetsAt: Int64
    public var limitTokens: Int?
    public var limitMicros: Int64?
    public var whenSpent: WhenSpent
    /// What the ledger records as used in the period. The store asks for it
    /// (`AdmissionDecision.needsSeed`) when it holds no state for the period: after a
    /// restart, a Redis flush, or at the start of a period.
    public var seed: BudgetAmounts?

    public init(
        key: BudgetPeriodKey, resetsAt: Int64, limitTokens: Int? = nil, limitMicros: Int64? = nil,
        whenSpent: WhenSpent, seed: BudgetAmounts? = nil
    ) {
        self.key = key
        self.resetsAt = resetsAt
        self.limitTokens = limitTokens.map { max(0, $0) }
        self.limitMicros = limitMicros.map { max(0, $0) }
        self.whenSpent = whenSpent
        self.seed = seed
    }

    /// Whether a budget with `used` and `reserved` admits nothing more at the limit.
    func isSpent(used: BudgetAmounts, reserved: BudgetAmounts) -> Bool {
        let held = used.adding(reserved)
        if let limitTokens, held.tokens >= limitTokens { return true }
        if let limitMicros, held.micros >= limitMicros { return true }
        return false
    }
}

/// A budget's state for one period, as the admission store holds it.
public struct BudgetStatus: Sendable, Hashable {
    /// Settled usage: the ledger's figure when the period's state was built, plus every
    /// request settled since.
    public var used: BudgetAmounts
    /// What admitted requests hold and have not settled.
    public var reserved: BudgetAmounts

    public init(used: BudgetAmounts, reserved: BudgetAmounts) {
        self.used = used
        self.reserved = reserved
    }
}
