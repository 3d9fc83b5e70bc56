/// The terms a usage event is billed under: the tier's contract at request time, carried by
/// the event and applied by the ledger when it stores it (they are not stored themselves).
public struct BillingTerms: Sendable, Equatable, Hashable {
    /// Tokens bundled per calendar month (UTC); nil when the tier has no quota (then none
    /// are bundled, and with `overagePerMillion` set every token is billed).
    public var monthlyQuotaTokens: Int?
    /// Price in micro-units per million tokens beyond the quota; nil when tokens beyond it
    /// are not billed (the quota policy blocks or throttles instead).
    public var overagePerMillion: Int64?

    /// Terms with a monthly quota and an overage price, either absent.
    public init(monthlyQuotaTokens: Int?, overagePerMillion: Int64?) {
        self.monthlyQuotaTokens = monthlyQuotaTokens
        self.overagePerMillion = overagePerMillion
    }

    /// What a request of `tokens` is billed when the tenant had used `before` tokens of the
    /// month: the part beyond the quota at the overage price, rounded half up; 0 without one.
    func billedMicros(tokens: Int, before: Int, currency: String) -> Int64 {
        guard let overagePerMillion else { return 0 }
        let bundled = max(0, monthlyQuotaTokens ?? 0)
        let after = before.addingReportingOverflow(tokens)
        let overage = max(0, (after.overflow ? .max : after.partialValue) - max(bundled, before))
        let price = Price(currency: currency, inputPerMillion: overagePerMillion, cachedInputPerMillion: 0, outputPerMillion: 0)
        return price.cost(promptTokens: overage, cachedTokens: 0, completionTokens: 0)
    }
}
