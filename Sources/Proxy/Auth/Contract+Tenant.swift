import Directory
import Billing
import Pools

extension Contract.Overrides {
    /// The overrides a tenant's record holds.
    init(_ tenant: Tenant) {
        self.init(
            requestsPerMinute: tenant.limitOverrides.requestsPerMinute,
            tokensPerMinute: tenant.limitOverrides.tokensPerMinute,
            concurrentRequests: tenant.limitOverrides.concurrentRequests,
            pinning: tenant.pinning
        )
    }
}
