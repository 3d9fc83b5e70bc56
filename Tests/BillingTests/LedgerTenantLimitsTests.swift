import Foundation
import GRDB
import Testing

@testable import Billing

@Suite("Ledger tenant limit overrides")
struct LedgerTenantLimitsTests {
    private let hash: [UInt8] = Array(repeating: 0x5A, count: 32)

    @Test("overrides are empty until set")
    func emptyByDefault() async throws {
        try await withLedger { ledger, _ async throws in
            let tenant = try await ledger.createTenant(name: "Acme", tier: "enterprise")
            #expect(tenant.limitOverrides == TenantLimitOverrides())
            #expect(tenant.limitOverrides.isEmpty)
            #expect(try await ledger.tenant(id: tenant.id)?.limitOverrides.isEmpty == true)
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
        try await withLedger { ledger, _ async throws in
            let tenant = try await ledger.createTenant(name: "Acme", tier: "enterprise")
            let other = try await ledger.createTenant(name: "Globex", tier: "standard")
            _ = try await ledger.createKey(tenantID: tenant.id, name: "a", prefix: "sk-sy-a", secretHash: hash)
            let overrides = TenantLimitOverrides(requestsPerMinute: 120, tokensPerMinute: nil, concurrentRequests: 4)

            let updated = try #require(try await ledger.setTenantLimits(id: tenant.id, overrides))
            #expect(updated.limitOverrides == overrides)
            #expect(updated.id == tenant.id && updated.name == tenant.name && updated.tier == tenant.tier)
            #expect(updated.createdAt == tenant.createdAt)

            #expect(try await ledger.tenant(id: tenant.id) == updated)
            #expect(try await ledger.tenants() == [updated, other])
            #expect(try await ledger.lookUpKey(secretHash: hash)?.tenant == updated)

            let replaced = TenantLimitOverrides(tokensPerMinute: 50_000)
            #expect(try await ledger.setTenantLimits(id: tenant.id, replaced)?.limitOverrides == replaced)
            #expect(try await ledger.lookUpKey(secretHash: hash)?.tenant.limitOverrides == replaced)

            // Clearing restores the tier's limits.
            #expect(try await ledger.setTenantLimits(id: tenant.id, TenantLimitOverrides())?.limitOverrides.isEmpty == true)
            #expect(try await ledger.tenant(id: tenant.id) == tenant)
            #expect(try await ledger.tenant(id: other.id) == other)
        }
    }

    @Test("setting limits on an unknown tenant returns nil")
    func unknownTenant() async throws {
        try await withLedger { ledger, _ async throws in
            #expect(try await ledger.setTenantLimits(id: "ten_missing", TenantLimitOverrides(requestsPerMinute: 1)) == nil)
            #expect(try await ledger.tenants().isEmpty)
        }
    }

    @Test("a v1 database migrates: old tenants get empty overrides, the catalogue is empty")
    func migratesV1() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        do {
            let queue = try DatabaseQueue(path: folder.ledgerPath)
            try Ledger.migrator.migrate(queue, upTo: "v1: tenants, tenant keys, usage events")
            try await queue.write { db in
                try db.execute(
                    sql: "INSERT INTO tenants (id, name, tier, created_at) VALUES ('ten_old', 'Old', 'standard', 1772000000000)"
                )
                try db.execute(
                    sql: """
                        INSERT INTO tenant_keys (id, tenant_id, name, prefix, secret_hash, created_at)
                        VALUES ('key_old', 'ten_old', 'a', 'sk-sy-a', ?, 1772000000000)
                        """,
                    arguments: [Data(hash)]
                )
            }
            let applied = try await queue.read { db in try Ledger.migrator.appliedIdentifiers(db) }
            #expect(applied == ["v1: tenants, tenant keys, usage events"])
        }

        let ledger = try Ledger(path: folder.ledgerPath)
        let old = try #require(try await ledger.tenant(id: "ten_old"))
        #expect(old.name == "Old")
        #expect(old.createdAt == Date(ledgerMilliseconds: 1_772_000_000_000))
        #expect(old.limitOverrides.isEmpty)
        #expect(try await ledger.lookUpKey(secretHash: hash)?.tenant == old)
        #expect(try await ledger.providerKeys(includeRetired: true).isEmpty)
        #expect(try await ledger.providerKeyRevision() == 0)

        let limited = try #require(try await ledger.setTenantLimits(id: "ten_old", TenantLimitOverrides(concurrentRequests: 1)))
        #expect(limited.limitOverrides.concurrentRequests == 1)
    }
}
