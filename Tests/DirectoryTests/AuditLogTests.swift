import Foundation
import GRDB
import Testing

@testable import Directory

@Suite("The audit log and revocations")
struct AuditLogTests {
    private struct ChangeFailed: Error {}

    private let admin = AuditEntry.Actor(id: "usr_admin", kind: "user", role: .systemAdmin)
    private let orgAdmin = AuditEntry.Actor(id: "usr_olga", kind: "user", role: .orgAdmin)

    // MARK: Recording

    @Test("recording keeps the change and its entry, with increasing ids")
    func recordingKeepsBoth() async throws {
        try await withDirectory { directory, _ async throws in
            let acme = Tenant(id: "ten_acme", name: "Acme", tier: "enterprise", createdAt: date("2026-01-01T00:00:00Z"))
            let globex = Tenant(id: "ten_globex", name: "Globex", tier: "standard", createdAt: date("2026-01-01T00:00:00Z"))
            let admin = admin
            var ids: [Int64] = []
            for tenant in [acme, globex] {
                let result = try await directory.recording({ db -> String in
                    try tenant.insert(db)
                    return tenant.id
                }, audit: { id in
                    AuditEntry(
                        at: date("2026-01-01T00:00:00Z"), tenantID: id, actor: admin, action: "tenant_created", target: id,
                        payload: #"{"name":"\#(tenant.name)"}"#, requestID: "req_\(id)", sourceAddress: "192.0.2.1"
                    )
                })
                #expect(result == tenant.id)
                let entries = try await directory.auditEntries(AuditQuery(limit: 1))
                let entry = try #require(entries.first)
                #expect(entry.target == tenant.id)
                ids.append(try #require(entry.id))
            }
            #expect(try await directory.tenants() == [acme, globex])
            #expect(ids[0] < ids[1])

            let stored = try await directory.auditEntries(AuditQuery())
            #expect(stored.map(\.id) == [ids[1], ids[0]])
            #expect(stored[1] == AuditEntry(
                id: ids[0], at: date("2026-01-01T00:00:00Z"), tenantID: acme.id, actor: admin, action: "tenant_created",
                target: acme.id, payload: #"{"name":"Acme"}"#, requestID: "req_ten_acme", sourceAddress: "192.0.2.1"
            ))
        }
    }

    @Test("when the change throws, neither the change nor an entry is kept")
    func changeThrows() async throws {
        try await withDirectory { directory, _ async throws in
            let admin = admin
            await #expect(throws: ChangeFailed.self) {
                try await directory.recording({ db -> String in
                    try Tenant(id: "ten_acme", name: "Acme", tier: "enterprise", createdAt: Date()).insert(db)
                    throw ChangeFailed()
                }, audit: { id in
                    AuditEntry(at: Date(), tenantID: id, actor: admin, action: "tenant_created", target: id)
                })
            }
            #expect(try await directory.tenants().isEmpty)
            #expect(try await directory.auditEntries(AuditQuery()).isEmpty)
        }
    }

    @Test("when the entry cannot be appended, the change is not kept either")
    func entryFails() async throws {
        try await withDirectory { directory, _ async throws in
            let existing = try await directory.append(AuditEntry(at: Date(), tenantID: nil, actor: admin, action: "login", target: nil))
            let existingID = try #require(existing.id)
            let admin = admin
            // An entry reusing an id breaks the primary key, so its insert fails after the change ran.
            await #expect(throws: DatabaseError.self) {
                try await directory.recording({ db in
                    try Tenant(id: "ten_acme", name: "Acme", tier: "enterprise", createdAt: Date()).insert(db)
                    return "ten_acme"
                }, audit: { id in
                    AuditEntry(id: existingID, at: Date(), tenantID: id, actor: admin, action: "tenant_created", target: id)
                })
            }
            #expect(try await directory.tenants().isEmpty)
            #expect(try await directory.auditEntries(AuditQuery()) == [existing])
        }
    }

    @Test("an audit closure returning nil keeps the change without an entry")
    func noEntry() async throws {
        try await withDirectory { directory, _ async throws in
            _ = try await directory.recording({ db in
                try Tenant(id: "ten_acme", name: "Acme", tier: "enterprise", createdAt: Date()).insert(db)
            }, audit: { _ in nil })
            #expect(try await directory.tenants().map(\.id) == ["ten_acme"])
            #expect(try await directory.auditEntries(AuditQuery()).isEmpty)
        }
    }

    // MARK: Reading

    @Test("auditEntries filters by tenant, action, actor and time")
    func filters() async throws {
        try await withDirectory { directory, _ async throws in
            let created = try await directory.append(entry("2026-01-01T00:00:00Z", tenant: "ten_acme", actor: admin, action: "tenant_created"))
            let acmeKey = try await directory.append(entry("2026-01-02T00:00:00Z", tenant: "ten_acme", actor: orgAdmin, action: "key_created"))
            let globexKey = try await directory.append(entry("2026-01-03T00:00:00Z", tenant: "ten_globex", actor: admin, action: "key_created"))
            let failed = try await directory.append(entry("2026-01-04T00:00:00Z", tenant: nil, actor: .system, action: "login_failed"))

            #expect(try await directory.auditEntries(AuditQuery()) == [failed, globexKey, acmeKey, created])
            #expect(try await directory.auditEntries(AuditQuery(tenantID: "ten_acme")) == [acmeKey, created])
            #expect(try await directory.auditEntries(AuditQuery(action: "key_created")) == [globexKey, acmeKey])
            #expect(try await directory.auditEntries(AuditQuery(actorID: admin.id)) == [globexKey, created])
            #expect(try await directory.auditEntries(AuditQuery(actorID: "switchyard")) == [failed])
            #expect(try await directory.auditEntries(AuditQuery(tenantID: "ten_acme", action: "key_created", actorID: orgAdmin.id)) == [acmeKey])
            #expect(try await directory.auditEntries(AuditQuery(tenantID: "ten_acme", actorID: "switchyard")).isEmpty)
            // `from` is inclusive, `to` exclusive.
            #expect(try await directory.auditEntries(AuditQuery(from: date("2026-01-02T00:00:00Z"))) == [failed, globexKey, acmeKey])
            #expect(try await directory.auditEntries(AuditQuery(to: date("2026-01-03T00:00:00Z"))) == [acmeKey, created])
            #expect(try await directory.auditEntries(AuditQuery(from: date("2026-01-02T00:00:00Z"), to: date("2026-01-04T00:00:00Z"))) == [globexKey, acmeKey])
            #expect(failed.actor.role == nil)
            #expect(acmeKey.actor.role == .orgAdmin)
        }
    }

    @Test("the before cursor pages newest first, limit entries at a time")
    func paging() async throws {
        try await withDirectory { directory, _ async throws in
            var appended: [AuditEntry] = []
            for day in 1...7 {
                appended.append(try await directory.append(entry("2026-01-0\(day)T00:00:00Z", tenant: "ten_acme", actor: admin, action: "a\(day)")))
            }
            _ = try await directory.append(entry("2026-01-08T00:00:00Z", tenant: "ten_globex", actor: admin, action: "elsewhere"))
            let newestFirst = Array(appended.reversed())

            var pages: [[AuditEntry]] = []
            var cursor: Int64?
            while true {
                let page = try await directory.auditEntries(AuditQuery(tenantID: "ten_acme", before: cursor, limit: 3))
                if page.isEmpty { break }
                pages.append(page)
                cursor = page.last?.id
            }
            #expect(pages.map(\.count) == [3, 3, 1])
            #expect(pages.flatMap { $0 } == newestFirst)
            #expect(try await directory.auditEntries(AuditQuery(before: appended[0].id)).isEmpty)
            #expect(try await directory.auditEntries(AuditQuery(before: appended[3].id, limit: 2)) == [appended[2], appended[1]])
        }
    }

    // MARK: Append-only

    @Test("UPDATE and DELETE on audit_log fail and leave its rows as they were")
    func appendOnly() async throws {
        try await withDirectory { directory, _ async throws in
            let first = try await directory.append(entry("2026-01-01T00:00:00Z", tenant: "ten_acme", actor: admin, action: "tenant_created"))
            let second = try await directory.append(entry("2026-01-02T00:00:00Z", tenant: nil, actor: .system, action: "login_failed"))

            for sql in ["UPDATE audit_log SET action = 'x'", "UPDATE audit_log SET at = 0 WHERE id = \(first.id ?? 0)", "DELETE FROM audit_log", "DELETE FROM audit_log WHERE id = \(second.id ?? 0)"] {
                let error = await #expect(throws: DatabaseError.self, "\(sql)") {
                    try await directory.pool.write { db in try db.execute(sql: sql) }
                }
                #expect(error?.message?.contains("append-only") == true, "\(sql)")
            }
            // Through the record, too.
            await #expect(throws: DatabaseError.self) {
                try await directory.pool.write { db in
                    var changed = first
                    changed.action = "x"
                    try changed.update(db)
                }
            }
            await #expect(throws: DatabaseError.self) {
                try await directory.pool.write { db in _ = try first.delete(db) }
            }

            #expect(try await directory.auditEntries(AuditQuery()) == [second, first])
        }
    }

    // A REPLACE deletes the conflicting row without firing delete triggers (SQLite fires
    // them only with recursive triggers on): without its own trigger it rewrites an entry.
    @Test("INSERT OR REPLACE cannot rewrite an audit entry")
    func replaceRefused() async throws {
        try await withDirectory { directory, _ async throws in
            let first = try await directory.append(entry("2026-01-01T00:00:00Z", tenant: "ten_acme", actor: admin, action: "tenant_created"))
            let firstID = try #require(first.id)

            let error = await #expect(throws: DatabaseError.self) {
                try await directory.pool.write { db in
                    try db.execute(
                        sql: "INSERT OR REPLACE INTO audit_log (id, at, actor_id, actor_kind, action) VALUES (?, 0, 'mallory', 'user', 'nothing_happened')",
                        arguments: [firstID]
                    )
                }
            }
            #expect(error?.message?.contains("append-only") == true)
            #expect(try await directory.auditEntries(AuditQuery()) == [first])
        }
    }

    // MARK: Revocations

    @Test("revoking a key, removing a user and revoking a credential each add a revocation")
    func revocations() async throws {
        try await withDirectory { directory, _ async throws in
            #expect(try await directory.revocationRevision() == 0)
            #expect(try await directory.revocations(after: 0).revision == 0)
            #expect(try await directory.revocations(after: 0).entries.isEmpty)

            let acme = try await directory.createTenant(name: "Acme", tier: "enterprise")
            let bob = User(tenantID: acme.id, email: "bob@acme.test", name: "Bob", role: .orgUser, passwordHash: "h", createdAt: Date())
            let carol = User(tenantID: acme.id, email: "carol@acme.test", name: "Carol", role: .orgUser, passwordHash: "h", createdAt: Date())
            let token = Credential(
                id: "pat_carol", userID: carol.id, kind: .accessToken, name: "ci", prefix: "sy-pat", secretHash: Array(repeating: 1, count: 32),
                createdAt: Date(), expiresAt: nil
            )
            try await directory.pool.write { db in
                try Directory.insertUser(bob, in: db)
                try Directory.insertUser(carol, in: db)
                try Directory.insertCredential(token, in: db)
            }
            let key = try await directory.createKey(tenantID: acme.id, name: "k", prefix: "sk-sy-k", secretHash: Array(repeating: 2, count: 32))
            #expect(try await directory.revocationRevision() == 0)

            _ = try await directory.revokeKey(id: key.id)
            let afterKey = try await directory.revocationRevision()
            #expect(afterKey > 0)
            _ = try await directory.pool.write { db in try Directory.removeUser(id: bob.id, now: Date(), in: db) }
            _ = try await directory.pool.write { db in try Directory.revokeCredential(id: token.id, now: Date(), in: db) }
            // Repeats and unknown ids add nothing.
            _ = try await directory.revokeKey(id: key.id)
            _ = try await directory.revokeKey(id: "key_missing")
            _ = try await directory.pool.write { db in try Directory.revokeCredential(id: token.id, now: Date(), in: db) }

            let all = try await directory.revocations(after: 0)
            #expect(all.entries.map(\.kind) == ["key", "user", "credential"])
            #expect(all.entries.map(\.subject) == [key.id, bob.id, token.id])
            let latest = try await directory.revocationRevision()
            #expect(all.revision == latest)
            #expect(latest > afterKey)

            let later = try await directory.revocations(after: afterKey)
            #expect(later.entries.map(\.kind) == ["user", "credential"])
            #expect(later.entries.map(\.subject) == [bob.id, token.id])
            #expect(later.revision == latest)

            // Nothing new: the revision given comes back.
            let none = try await directory.revocations(after: latest)
            #expect(none.entries.isEmpty)
            #expect(none.revision == latest)
        }
    }

    @Test("a revocation made inside a failed transaction is not kept")
    func revocationRolledBack() async throws {
        try await withDirectory { directory, _ async throws in
            let acme = try await directory.createTenant(name: "Acme", tier: "enterprise")
            let key = try await directory.createKey(tenantID: acme.id, name: "k", prefix: "sk-sy-k", secretHash: Array(repeating: 2, count: 32))
            await #expect(throws: ChangeFailed.self) {
                try await directory.pool.write { db in
                    _ = try Directory.revokeKey(id: key.id, now: Date(), in: db)
                    throw ChangeFailed()
                }
            }
            #expect(try await directory.revocationRevision() == 0)
            #expect(try await directory.key(id: key.id)?.revokedAt == nil)
        }
    }

    // MARK: Helpers

    private func entry(_ at: String, tenant: String?, actor: AuditEntry.Actor, action: String) -> AuditEntry {
        AuditEntry(at: date(at), tenantID: tenant, actor: actor, action: action, target: "t_\(action)")
    }
}
