import Foundation
import Testing

@testable import Directory

@Suite("Directory tenants and tenant keys")
struct DirectoryTenantsTests {
    private let hashA: [UInt8] = Array(repeating: 0xAA, count: 32)
    private let hashB: [UInt8] = (0..<32).map { UInt8($0) }

    // MARK: Tenants

    @Test("creates, lists and gets tenants")
    func tenants() async throws {
        try await withDirectory { directory, _ async throws in
            #expect(try await directory.tenants().isEmpty)
            let acme = try await directory.createTenant(name: "Acme", tier: "enterprise", now: date("2026-01-02T00:00:00Z"))
            let globex = try await directory.createTenant(name: "Globex", tier: "standard", now: date("2026-01-01T00:00:00.250Z"))

            #expect(acme.id.hasPrefix("ten_"))
            #expect(acme.id != globex.id)
            #expect(acme.name == "Acme")
            #expect(acme.tier == "enterprise")
            #expect(acme.createdAt == date("2026-01-02T00:00:00Z"))

            // Listed oldest first.
            #expect(try await directory.tenants() == [globex, acme])
            #expect(try await directory.tenant(id: acme.id) == acme)
            #expect(try await directory.tenant(id: "ten_missing") == nil)
        }
    }

    @Test(
        "the tenant createTenant returns equals the one stored",
    )
    func createdEqualsStored() async throws {
        try await withDirectory { directory, _ async throws in
            let created = try await directory.createTenant(name: "Initech", tier: "professional", now: Date(timeIntervalSince1970: 1_772_000_000.123_456))
            #expect(try await directory.tenant(id: created.id) == created)
        }
    }

    @Test("a second tenant with the same name is refused")
    func duplicateName() async throws {
        try await withDirectory { directory, _ async throws in
            _ = try await directory.createTenant(name: "Acme", tier: "enterprise")
            await #expect(throws: DirectoryError.duplicateName) {
                try await directory.createTenant(name: "Acme", tier: "standard")
            }
            #expect(try await directory.tenants().count == 1)
            // Names are compared exactly.
            _ = try await directory.createTenant(name: "acme", tier: "standard")
            #expect(try await directory.tenants().count == 2)
        }
    }

    // MARK: Tenant keys

    @Test("creates keys for a tenant and reads them back")
    func keys() async throws {
        try await withDirectory { directory, _ async throws in
            let tenant = try await directory.createTenant(name: "Acme", tier: "enterprise")
            let expires = date("2027-01-01T00:00:00Z")
            let first = try await directory.createKey(
                tenantID: tenant.id, name: "ci", prefix: "sk-sy-abc", secretHash: hashA, now: date("2026-01-01T00:00:00Z")
            )
            let second = try await directory.createKey(
                tenantID: tenant.id, name: "prod", prefix: "sk-sy-def", secretHash: hashB, expiresAt: expires,
                now: date("2026-01-02T00:00:00Z")
            )

            #expect(first.id.hasPrefix("key_"))
            #expect(first.tenantID == tenant.id)
            #expect(first.secretHash == hashA)
            #expect(first.revokedAt == nil && first.lastUsedAt == nil && first.expiresAt == nil)
            #expect(second.expiresAt == expires)
            #expect(try await directory.keys(tenantID: tenant.id) == [first, second])
            #expect(try await directory.key(id: second.id) == second)
            #expect(try await directory.key(id: "key_missing") == nil)
            #expect(try await directory.keys(tenantID: "ten_other").isEmpty)
        }
    }

    @Test("a key for an unknown tenant is refused and not stored")
    func keyForUnknownTenant() async throws {
        try await withDirectory { directory, _ async throws in
            await #expect(throws: DirectoryError.tenantNotFound) {
                try await directory.createKey(tenantID: "ten_missing", name: "x", prefix: "sk-sy-x", secretHash: hashA)
            }
            #expect(try await directory.lookUpKey(secretHash: hashA) == nil)
        }
    }

    @Test("looks a key and its tenant up by the secret's hash")
    func lookUp() async throws {
        try await withDirectory { directory, _ async throws in
            let acme = try await directory.createTenant(name: "Acme", tier: "enterprise", now: date("2026-01-01T00:00:00Z"))
            let globex = try await directory.createTenant(name: "Globex", tier: "standard", now: date("2026-01-01T00:00:01Z"))
            let keyA = try await directory.createKey(tenantID: acme.id, name: "a", prefix: "sk-sy-a", secretHash: hashA, now: date("2026-01-03T00:00:00Z"))
            let keyB = try await directory.createKey(tenantID: globex.id, name: "b", prefix: "sk-sy-b", secretHash: hashB, now: date("2026-01-03T00:00:00Z"))

            let foundA = try #require(try await directory.lookUpKey(secretHash: hashA))
            #expect(foundA.key == keyA)
            #expect(foundA.tenant == acme)
            let foundB = try #require(try await directory.lookUpKey(secretHash: hashB))
            #expect(foundB.key == keyB)
            #expect(foundB.tenant == globex)
            #expect(try await directory.lookUpKey(secretHash: Array(hashA.dropLast())) == nil)
            #expect(try await directory.lookUpKey(secretHash: []) == nil)
        }
    }

    @Test("revoking is idempotent and keeps the first time")
    func revoke() async throws {
        try await withDirectory { directory, _ async throws in
            let tenant = try await directory.createTenant(name: "Acme", tier: "enterprise")
            let key = try await directory.createKey(tenantID: tenant.id, name: "a", prefix: "sk-sy-a", secretHash: hashA)
            let first = date("2026-02-01T00:00:00Z")

            let revoked = try #require(try await directory.revokeKey(id: key.id, now: first))
            #expect(revoked.revokedAt == first)
            #expect(!revoked.isUsable(at: first))
            #expect(!revoked.isUsable(at: date("2020-01-01T00:00:00Z")))

            let again = try await directory.revokeKey(id: key.id, now: date("2026-03-01T00:00:00Z"))
            #expect(again?.revokedAt == first)
            #expect(try await directory.key(id: key.id)?.revokedAt == first)
            #expect(try await directory.lookUpKey(secretHash: hashA)?.key.revokedAt == first)

            #expect(try await directory.revokeKey(id: "key_missing") == nil)
        }
    }

    @Test("a key is usable until it expires")
    func expiry() async throws {
        try await withDirectory { directory, _ async throws in
            let tenant = try await directory.createTenant(name: "Acme", tier: "enterprise")
            let expires = date("2026-06-01T00:00:00Z")
            _ = try await directory.createKey(tenantID: tenant.id, name: "a", prefix: "sk-sy-a", secretHash: hashA, expiresAt: expires)
            let stored = try #require(try await directory.lookUpKey(secretHash: hashA)).key
            #expect(stored.isUsable(at: expires.addingTimeInterval(-0.001)))
            #expect(!stored.isUsable(at: expires))
            #expect(!stored.isUsable(at: expires.addingTimeInterval(86_400)))

            _ = try await directory.createKey(tenantID: tenant.id, name: "b", prefix: "sk-sy-b", secretHash: hashB)
            let forever = try #require(try await directory.lookUpKey(secretHash: hashB)).key
            #expect(forever.isUsable(at: date("2100-01-01T00:00:00Z")))
        }
    }

    @Test("two keys cannot share a secret hash")
    func uniqueHash() async throws {
        try await withDirectory { directory, _ async throws in
            let tenant = try await directory.createTenant(name: "Acme", tier: "enterprise")
            _ = try await directory.createKey(tenantID: tenant.id, name: "a", prefix: "sk-sy-a", secretHash: hashA)
            await #expect(throws: (any Error).self) {
                try await directory.createKey(tenantID: tenant.id, name: "b", prefix: "sk-sy-b", secretHash: hashA)
            }
            #expect(try await directory.keys(tenantID: tenant.id).count == 1)
        }
    }

    @Test("key uses move last_used_at forward only")
    func touchKeys() async throws {
        try await withDirectory { directory, _ async throws in
            let tenant = try await directory.createTenant(name: "Acme", tier: "enterprise")
            let key = try await directory.createKey(tenantID: tenant.id, name: "a", prefix: "sk-sy-a", secretHash: hashA)
            let other = try await directory.createKey(tenantID: tenant.id, name: "b", prefix: "sk-sy-b", secretHash: hashB)
            let t1 = date("2026-03-01T10:00:00Z")
            let t2 = date("2026-03-01T11:00:00Z")
            let t3 = date("2026-03-01T12:00:00.5Z")

            try await directory.touchKeys([key.id: t2])
            #expect(try await directory.key(id: key.id)?.lastUsedAt == t2)
            #expect(try await directory.key(id: other.id)?.lastUsedAt == nil)

            try await directory.touchKeys([key.id: t1])
            #expect(try await directory.key(id: key.id)?.lastUsedAt == t2)

            try directory.touchKeysBlocking([key.id: t3, other.id: t1, "key_missing": t3])
            #expect(try await directory.key(id: key.id)?.lastUsedAt == t3)
            #expect(try await directory.key(id: other.id)?.lastUsedAt == t1)
        }
    }
}
