/// What a scope has used in one period: tokens (prompt and completion; cached tokens are
/// part of the prompt) and cost in micro-units.
public struct BudgetUsage: Sendable, Equatable, Hashable {
    /// Prompt and completion tokens.
    public var tokens: Int
    /// Cost in micro-units of the price currency.
    public var micros: Int64

    /// A usage of `tokens` tokens costing `micros`.
    public init(tokens: Int, micros: Int64) {
        self.tokens = tokens
        self.micros = micros
    }

    /// Nothing used.
    public static let zero = BudgetUsage(tokens: 0, micros: 0)

    /// The usage with `other` added, saturating rather than trapping on absurd amounts.
    func adding(_ other: BudgetUsage) -> BudgetUsage {
        let (tokens, tokensOverflow) = tokens.addingReportingOverflow(other.tokens)
        let (micros, microsOverflow) = micros.addingReportingOverflow(other.micros)
        return BudgetUsage(tokens: tokensOverflow ? .max : tokens, micros: microsOverflow ? .max : micros)
    }

    /// The usage with `other` taken away (what it was before `other` was added).
    func subtracting(_ other: BudgetUsage) -> BudgetUsage {
        BudgetUsage(tokens: tokens - other.tokens, micros: micros - other.micros)
    }
}
