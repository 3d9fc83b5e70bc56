import Foundation
import GRDB
import Testing

@testable import Directory

@Suite("Directory tenant limit overrides")
struct DirectoryTenantLimitsTests {
    private let hash: [UInt8] = Array(repeating: 0x5A, count: 32)

    @Test("overrides are empty until set")
    func emptyByDefault() async throws {
        try await withDirectory { directory, _ async throws in
            let tenant = try await directory.createTenant(name: "Acme", tier: "enterprise")
            #expect(tenant.limitOverrides == TenantLimitOverrides())
            #expect(tenant.limitOverrides.isEmpty)
            #expect(try await directory.tenant(id: tenant.id)?.limitOverrides.isEmpty == true)
        }
    }

    @Test("isEmpty is false when any limit is set")
    func isEmpty() {
        #expect(TenantLimitOverrides().isEmpty)
        #expect(!TenantLimitOverrides(requestsPerMinute: 10).isEmpty)
        #expect(!TenantLimitOverrides(tokensPerMinute: 0).isEmpty)
        #expect(!TenantLimitOverrides(concurrentRequests: 2).isEmpty)
    }

    @Test("overrides round-trip and are returned everywhere a tenant is read")
    func roundTrip() async throws {
        try await withDirectory { directory, _ async throws in
            let tenant = try await directory.createTenant(name: "Acme", tier: "enterprise")
            let other = try await directory.createTenant(name: "Globex", tier: "standard")
            _ = try await directory.createKey(tenantID: tenant.id, name: "a", prefix: "sk-sy-a", secretHash: hash)
            let overrides = TenantLimitOverrides(requestsPerMinute: 120, tokensPerMinute: nil, concurrentRequests: 4)

            let updated = try #require(try await directory.setTenantLimits(id: tenant.id, overrides))
            #expect(updated.limitOverrides == overrides)
            #expect(updated.id == tenant.id && updated.name == tenant.name && updated.tier == tenant.tier)
            #expect(updated.createdAt == tenant.createdAt)

            #expect(try await directory.tenant(id: tenant.id) == updated)
            #expect(try await directory.tenants() == [updated, other])
            #expect(try await directory.lookUpKey(secretHash: hash)?.tenant == updated)

            let replaced = TenantLimitOverrides(tokensPerMinute: 50_000)
            #expect(try await directory.setTenantLimits(id: tenant.id, replaced)?.limitOverrides == replaced)
            #expect(try await directory.lookUpKey(secretHash: hash)?.tenant.limitOverrides == replaced)

            // Clearing restores the tier's limits.
            #expect(try await directory.setTenantLimits(id: tenant.id, TenantLimitOverrides())?.limitOverrides.isEmpty == true)
            #expect(try await directory.tenant(id: tenant.id) == tenant)
            #expect(try await directory.tenant(id: other.id) == other)
        }
    }

    @Test("setting limits on an unknown tenant returns nil")
    func unknownTenant() async throws {
        try await withDirectory { directory, _ async throws in
            #expect(try await directory.setTenantLimits(id: "ten_missing", TenantLimitOverrides(requestsPerMinute: 1)) == nil)
            #expect(try await directory.tenants().isEmpty)
        }
    }
}
