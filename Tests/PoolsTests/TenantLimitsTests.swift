import Foundation
import Testing

@testable import Pools

@Suite("TenantLimits")
struct TenantLimitsTests {
    @Test("decodes the contract's snake_case limits; absent is unlimited, negative admits nothing")
    func decode() throws {
        let json = #"{"requests_per_minute": 600, "concurrent_requests": -3}"#
        let limits = try JSONDecoder().decode(TenantLimits.self, from: Data(json.utf8))
        #expect(limits == TenantLimits(requestsPerMinute: 600, concurrentRequests: 0))
        #expect(limits.tokensPerMinute == nil)
        #expect(!limits.isUnlimited)
        #expect(try JSONDecoder().decode(TenantLimits.self, from: Data("{}".utf8)).isUnlimited)
    }
}
