import Billing
import Pools

extension TenantLimits {
    /// The limits of a contract: the tier's, with each limit the tenant overrides replaced.
    func overridden(by overrides: TenantLimitOverrides) -> TenantLimits {
        guard !overrides.isEmpty else { return self }
        return TenantLimits(
            requestsPerMinute: overrides.requestsPerMinute ?? requestsPerMinute,
            tokensPerMinute: overrides.tokensPerMinute ?? tokensPerMinute,
            concurrentRequests: overrides.concurrentRequests ?? concurrentRequests
        )
    }
}
