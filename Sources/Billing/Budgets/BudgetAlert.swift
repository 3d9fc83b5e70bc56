/// The events a webhook can subscribe to, named as they appear in its payloads' `type`.
public enum BudgetAlert: String, Sendable, Codable, CaseIterable {
    /// Usage passed one of a budget's soft thresholds.
    case thresholdReached = "budget.threshold_reached"
    /// Usage reached a budget's limit.
    case exceeded = "budget.exceeded"
    /// Usage reached the tokens the tenant's tier bundles for the month.
    case quotaExhausted = "quota.exhausted"
    /// A budget's new period began, with nothing used yet.
    case reset = "budget.reset"
}
