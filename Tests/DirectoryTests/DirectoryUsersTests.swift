import Foundation
import GRDB
import Testing

@testable import Directory

@Suite("Directory users, credentials and invites")
struct DirectoryUsersTests {
    private let hashA: [UInt8] = Array(repeating: 0xAA, count: 32)
    private let hashB: [UInt8] = Array(repeating: 0xBB, count: 32)
    private let hashC: [UInt8] = Array(repeating: 0xCC, count: 32)

    // MARK: Users

    @Test("stores a global analyst and an org admin and looks them up by id and by email in any case")
    func usersByIDAndEmail() async throws {
        try await withDirectory { directory, _ async throws in
            let acme = try await directory.createTenant(name: "Acme", tier: "enterprise")
            let analyst = User(
                tenantID: nil, email: User.normalizedEmail("  Ana@Example.COM "), name: "Ana", role: .analyst,
                passwordHash: "$2b$12$analyst", createdAt: date("2026-01-01T00:00:00Z")
            )
            let admin = User(
                tenantID: acme.id, email: User.normalizedEmail("Olga@Acme.test"), name: "Olga", role: .orgAdmin,
                passwordHash: "$2b$12$admin", createdAt: date("2026-01-01T00:00:01Z")
            )
            try await insert(analyst, in: directory)
            try await insert(admin, in: directory)

            #expect(analyst.id.hasPrefix("usr_"))
            #expect(analyst.email == "ana@example.com")
            #expect(try await directory.user(id: analyst.id) == analyst)
            #expect(try await directory.user(id: admin.id) == admin)
            #expect(try await directory.user(id: "usr_missing") == nil)

            #expect(try await directory.user(email: "ANA@EXAMPLE.COM") == analyst)
            #expect(try await directory.user(email: " ana@example.com ") == analyst)
            #expect(try await directory.user(email: "OLGA@acme.TEST") == admin)
            #expect(try await directory.user(email: "nobody@acme.test") == nil)

            #expect(try await directory.users(tenantID: nil) == [analyst])
            #expect(try await directory.users(tenantID: acme.id) == [admin])
        }
    }

    @Test("a second user with the same email is refused, whatever their tenant")
    func duplicateEmail() async throws {
        try await withDirectory { directory, _ async throws in
            let acme = try await directory.createTenant(name: "Acme", tier: "enterprise")
            let globex = try await directory.createTenant(name: "Globex", tier: "standard")
            try await insert(orgUser(acme.id, "bob@example.com"), in: directory)

            await #expect(throws: DirectoryError.duplicateEmail) {
                try await insert(orgUser(globex.id, "bob@example.com"), in: directory)
            }
            await #expect(throws: DirectoryError.duplicateEmail) {
                try await insert(globalUser("bob@example.com", role: .systemAdmin), in: directory)
            }
            #expect(try await directory.users(tenantID: globex.id).isEmpty)
            #expect(try await directory.users(tenantID: nil).isEmpty)
        }
    }

    @Test("the CHECK constraint refuses an org role without a tenant and a global role with one")
    func roleAndTenantMustAgree() async throws {
        try await withDirectory { directory, _ async throws in
            let acme = try await directory.createTenant(name: "Acme", tier: "enterprise")
            for role in [Role.orgAdmin, .orgUser] {
                let error = await #expect(throws: DatabaseError.self) {
                    try await insert(User(tenantID: nil, email: "\(role.rawValue)@example.com", name: "x", role: role, passwordHash: "h", createdAt: Date()), in: directory)
                }
                #expect(error?.extendedResultCode == .SQLITE_CONSTRAINT_CHECK)
            }
            for role in [Role.systemAdmin, .analyst] {
                let error = await #expect(throws: DatabaseError.self) {
                    try await insert(User(tenantID: acme.id, email: "\(role.rawValue)@example.com", name: "x", role: role, passwordHash: "h", createdAt: Date()), in: directory)
                }
                #expect(error?.extendedResultCode == .SQLITE_CONSTRAINT_CHECK)
            }
            #expect(try await directory.users(tenantID: nil).isEmpty)
            #expect(try await directory.users(tenantID: acme.id).isEmpty)
        }
    }

    @Test("an org user of an unknown tenant is refused")
    func unknownTenant() async throws {
        try await withDirectory { directory, _ async throws in
            await #expect(throws: DirectoryError.tenantNotFound) {
                try await insert(orgUser("ten_missing", "bob@example.com"), in: directory)
            }
            #expect(try await directory.user(email: "bob@example.com") == nil)
        }
    }

    @Test("users(tenantID:) lists that tenant's users not removed, oldest first")
    func usersOfTenant() async throws {
        try await withDirectory { directory, _ async throws in
            let acme = try await directory.createTenant(name: "Acme", tier: "enterprise")
            let globex = try await directory.createTenant(name: "Globex", tier: "standard")
            let later = orgUser(acme.id, "later@acme.test", at: date("2026-01-03T00:00:00Z"))
            let earlier = orgUser(acme.id, "earlier@acme.test", role: .orgAdmin, at: date("2026-01-01T00:00:00Z"))
            let removed = orgUser(acme.id, "gone@acme.test", at: date("2026-01-02T00:00:00Z"))
            let other = orgUser(globex.id, "other@globex.test")
            for user in [later, earlier, removed, other] { try await insert(user, in: directory) }
            try await directory.pool.write { db in _ = try Directory.removeUser(id: removed.id, now: date("2026-02-01T00:00:00Z"), in: db) }

            #expect(try await directory.users(tenantID: acme.id) == [earlier, later])
            #expect(try await directory.users(tenantID: globex.id) == [other])
            #expect(try await directory.users(tenantID: nil).isEmpty)
            #expect(try await directory.users(tenantID: "ten_missing").isEmpty)
        }
    }

    // MARK: Removing users

    @Test("removing a user revokes their credentials and keys, records a revocation and frees the email")
    func removeUser() async throws {
        try await withDirectory { directory, _ async throws in
            let acme = try await directory.createTenant(name: "Acme", tier: "enterprise")
            let bob = orgUser(acme.id, "bob@acme.test")
            let carol = orgUser(acme.id, "carol@acme.test")
            try await insert(bob, in: directory)
            try await insert(carol, in: directory)
            let bobsSession = session(bob.id, hashA)
            let bobsToken = accessToken(bob.id, hashB)
            let carolsSession = session(carol.id, hashC)
            let alreadyRevoked = date("2026-01-15T00:00:00Z")
            try await directory.pool.write { db in
                try Directory.insertCredential(bobsSession, in: db)
                try Directory.insertCredential(bobsToken, in: db)
                try Directory.insertCredential(carolsSession, in: db)
            }
            let bobsKey = try await directory.createKey(tenantID: acme.id, name: "bob", prefix: "sk-sy-b", secretHash: hashA, userID: bob.id)
            let bobsOldKey = try await directory.createKey(tenantID: acme.id, name: "old", prefix: "sk-sy-o", secretHash: hashB, userID: bob.id)
            _ = try await directory.revokeKey(id: bobsOldKey.id, now: alreadyRevoked)
            let carolsKey = try await directory.createKey(tenantID: acme.id, name: "carol", prefix: "sk-sy-c", secretHash: hashC, userID: carol.id)
            let unownedKey = try await directory.createKey(
                tenantID: acme.id, name: "legacy", prefix: "sk-sy-l", secretHash: Array(repeating: 0xDD, count: 32)
            )
            let revisionBefore = try await directory.revocationRevision()

            let now = date("2026-02-01T00:00:00.123Z")
            let removed = try await directory.pool.write { db in try Directory.removeUser(id: bob.id, now: now, in: db) }
            #expect(removed?.id == bob.id)
            #expect(removed?.removedAt == now)
            #expect(try await directory.user(id: bob.id)?.removedAt == now)
            #expect(try await directory.user(email: "bob@acme.test") == nil)

            let bobsCredentials = try await directory.credentials(userID: bob.id, kind: .session)
                + directory.credentials(userID: bob.id, kind: .accessToken)
            #expect(bobsCredentials.count == 2)
            #expect(bobsCredentials.allSatisfy { $0.revokedAt == now })
            #expect(try await directory.credentials(userID: carol.id, kind: .session).map(\.revokedAt) == [nil])
            #expect(try await directory.credential(secretHash: hashA) == nil)
            #expect(try await directory.credential(secretHash: hashB) == nil)
            #expect(try await directory.credential(secretHash: hashC)?.user == carol)

            #expect(try await directory.key(id: bobsKey.id)?.revokedAt == now)
            #expect(try await directory.key(id: bobsOldKey.id)?.revokedAt == alreadyRevoked)
            #expect(try await directory.key(id: carolsKey.id)?.revokedAt == nil)
            #expect(try await directory.key(id: unownedKey.id)?.revokedAt == nil)
            #expect(try await directory.keys(tenantID: acme.id, userID: bob.id).map(\.id) == [bobsKey.id, bobsOldKey.id])

            let revocations = try await directory.revocations(after: revisionBefore)
            #expect(revocations.entries.map(\.kind) == ["user"])
            #expect(revocations.entries.map(\.subject) == [bob.id])
            #expect(revocations.revision == revisionBefore + 1)

            // The email is free again, for a new user with a new id.
            let newBob = orgUser(acme.id, "bob@acme.test")
            try await insert(newBob, in: directory)
            #expect(try await directory.user(email: "BOB@acme.test") == newBob)
            #expect(try await directory.users(tenantID: acme.id).map(\.id).sorted() == [carol.id, newBob.id].sorted())

            // Removing again changes nothing and records nothing.
            let again = try await directory.pool.write { db in try Directory.removeUser(id: bob.id, now: date("2026-03-01T00:00:00Z"), in: db) }
            #expect(again == nil)
            #expect(try await directory.user(id: bob.id)?.removedAt == now)
            #expect(try await directory.pool.write { db in try Directory.removeUser(id: "usr_missing", now: now, in: db) } == nil)
            #expect(try await directory.revocationRevision() == revisionBefore + 1)
        }
    }

    // MARK: Credentials

    @Test("stores a session and an access token and finds each with its user by the secret's hash")
    func credentials() async throws {
        try await withDirectory { directory, _ async throws in
            let acme = try await directory.createTenant(name: "Acme", tier: "enterprise")
            let bob = orgUser(acme.id, "bob@acme.test")
            try await insert(bob, in: directory)
            let session = Credential(
                id: "ses_1", userID: bob.id, kind: .session, name: "Firefox", prefix: "sy-ses-ab", secretHash: hashA,
                sourceAddress: "192.0.2.7", createdAt: date("2026-01-01T00:00:00Z"), expiresAt: date("2026-01-02T00:00:00Z")
            )
            let olderToken = accessToken(bob.id, hashB, id: "pat_1", at: date("2026-01-01T00:00:00Z"))
            let newerToken = accessToken(bob.id, hashC, id: "pat_2", at: date("2026-01-05T00:00:00Z"))
            try await directory.pool.write { db in
                for credential in [session, olderToken, newerToken] { try Directory.insertCredential(credential, in: db) }
            }

            let found = try #require(try await directory.credential(secretHash: hashA))
            #expect(found.credential == session)
            #expect(found.user == bob)
            #expect(try await directory.credential(secretHash: hashB)?.credential == olderToken)
            #expect(try await directory.credential(secretHash: Array(hashA.dropLast())) == nil)

            #expect(try await directory.credentials(userID: bob.id, kind: .session) == [session])
            // Newest first.
            #expect(try await directory.credentials(userID: bob.id, kind: .accessToken) == [newerToken, olderToken])
            #expect(try await directory.credentials(userID: "usr_other", kind: .session).isEmpty)
        }
    }

    @Test("revoking a credential keeps the first time and records one revocation")
    func revokeCredential() async throws {
        try await withDirectory { directory, _ async throws in
            let acme = try await directory.createTenant(name: "Acme", tier: "enterprise")
            let bob = orgUser(acme.id, "bob@acme.test")
            try await insert(bob, in: directory)
            let token = accessToken(bob.id, hashA)
            try await directory.pool.write { db in try Directory.insertCredential(token, in: db) }
            #expect(try await directory.revocationRevision() == 0)

            let first = date("2026-02-01T00:00:00.5Z")
            let revoked = try await directory.pool.write { db in try Directory.revokeCredential(id: token.id, now: first, in: db) }
            #expect(revoked?.revokedAt == first)
            let again = try await directory.pool.write { db in
                try Directory.revokeCredential(id: token.id, now: date("2026-03-01T00:00:00Z"), in: db)
            }
            #expect(again?.revokedAt == first)
            #expect(try await directory.credential(secretHash: hashA)?.credential.revokedAt == first)
            #expect(try await directory.pool.write { db in try Directory.revokeCredential(id: "pat_missing", now: first, in: db) } == nil)

            let revocations = try await directory.revocations(after: 0)
            #expect(revocations.entries.map(\.kind) == ["credential"])
            #expect(revocations.entries.map(\.subject) == [token.id])
            #expect(revocations.revision == 1)
        }
    }

    @Test("a credential is usable until it expires or is revoked")
    func isUsable() {
        let expires = date("2026-01-02T00:00:00Z")
        let credential = Credential(
            id: "ses_1", userID: "usr_1", kind: .session, name: "s", prefix: "p", secretHash: hashA,
            createdAt: date("2026-01-01T00:00:00Z"), expiresAt: expires
        )
        #expect(credential.isUsable(at: date("2026-01-01T12:00:00Z")))
        #expect(credential.isUsable(at: expires.addingTimeInterval(-0.001)))
        #expect(!credential.isUsable(at: expires))
        #expect(!credential.isUsable(at: date("2026-01-03T00:00:00Z")))

        var forever = credential
        forever.expiresAt = nil
        #expect(forever.isUsable(at: date("2100-01-01T00:00:00Z")))

        var revoked = forever
        revoked.revokedAt = date("2026-01-01T06:00:00Z")
        #expect(!revoked.isUsable(at: date("2026-01-01T01:00:00Z")))
        #expect(!revoked.isUsable(at: date("2026-01-01T12:00:00Z")))
    }

    @Test("touchCredentials only moves the last use forward")
    func touchCredentials() async throws {
        try await withDirectory { directory, _ async throws in
            let acme = try await directory.createTenant(name: "Acme", tier: "enterprise")
            let bob = orgUser(acme.id, "bob@acme.test")
            try await insert(bob, in: directory)
            let first = session(bob.id, hashA)
            let second = accessToken(bob.id, hashB)
            try await directory.pool.write { db in
                try Directory.insertCredential(first, in: db)
                try Directory.insertCredential(second, in: db)
            }
            func lastUse(_ hash: [UInt8]) async throws -> Date? {
                try await directory.credential(secretHash: hash)?.credential.lastUsedAt
            }

            try await directory.touchCredentials([:])
            #expect(try await lastUse(hashA) == nil)

            let noon = date("2026-01-01T12:00:00.250Z")
            try await directory.touchCredentials([first.id: noon])
            #expect(try await lastUse(hashA) == noon)
            #expect(try await lastUse(hashB) == nil)

            try await directory.touchCredentials([first.id: date("2026-01-01T08:00:00Z"), second.id: noon])
            #expect(try await lastUse(hashA) == noon)
            #expect(try await lastUse(hashB) == noon)

            let evening = date("2026-01-01T20:00:00Z")
            try await directory.touchCredentials([first.id: evening, "ses_missing": evening])
            #expect(try await lastUse(hashA) == evening)
        }
    }

    // MARK: Invites

    @Test("an invite for an email a user of the tenant has, or to an unknown tenant, is refused; other tenants' users are not looked at")
    func inviteRefused() async throws {
        try await withDirectory { directory, _ async throws in
            let acme = try await directory.createTenant(name: "Acme", tier: "enterprise")
            let globex = try await directory.createTenant(name: "Globex", tier: "enterprise")
            try await insert(orgUser(acme.id, "bob@acme.test"), in: directory)
            // Globex's admin learns nothing of Acme's users: the invite is made (and accepting it fails).
            try await directory.pool.write { db in try Directory.insertInvite(invite(globex.id, "bob@acme.test", hashB), in: db) }

            await #expect(throws: DirectoryError.duplicateEmail) {
                try await directory.pool.write { db in try Directory.insertInvite(invite(acme.id, "bob@acme.test", hashA), in: db) }
            }
            await #expect(throws: DirectoryError.tenantNotFound) {
                try await directory.pool.write { db in try Directory.insertInvite(invite("ten_missing", "new@acme.test", hashA), in: db) }
            }
            #expect(try await directory.invite(secretHash: hashA) == nil)
            #expect(try await directory.openInvites(tenantID: acme.id, now: date("2026-01-01T00:00:00Z")).isEmpty)
        }
    }

    @Test("accepting an invite creates the user and works only once")
    func acceptInvite() async throws {
        try await withDirectory { directory, _ async throws in
            let acme = try await directory.createTenant(name: "Acme", tier: "enterprise")
            let sent = invite(acme.id, "dan@acme.test", hashA, role: .orgAdmin)
            try await directory.pool.write { db in try Directory.insertInvite(sent, in: db) }
            #expect(try await directory.invite(secretHash: hashA) == sent)

            let now = date("2026-01-03T00:00:00Z")
            let dan = orgUser(acme.id, sent.email, role: sent.role, at: now)
            try await directory.pool.write { db in try Directory.acceptInvite(id: sent.id, user: dan, now: now, in: db) }

            #expect(try await directory.user(email: "dan@acme.test") == dan)
            let accepted = try #require(try await directory.invite(secretHash: hashA))
            #expect(accepted.acceptedAt == now)
            #expect(accepted.acceptedBy == dan.id)
            #expect(!accepted.isOpen(at: now))

            let again = orgUser(acme.id, "dan2@acme.test", at: now)
            await #expect(throws: DirectoryError.inviteNotOpen) {
                try await directory.pool.write { db in try Directory.acceptInvite(id: sent.id, user: again, now: now, in: db) }
            }
            #expect(try await directory.user(id: again.id) == nil)
            #expect(try await directory.invite(secretHash: hashA)?.acceptedBy == dan.id)
            await #expect(throws: DirectoryError.inviteNotOpen) {
                try await directory.pool.write { db in try Directory.acceptInvite(id: "inv_missing", user: again, now: now, in: db) }
            }
        }
    }

    @Test("an expired invite cannot be accepted")
    func expiredInvite() async throws {
        try await withDirectory { directory, _ async throws in
            let acme = try await directory.createTenant(name: "Acme", tier: "enterprise")
            let sent = invite(acme.id, "eve@acme.test", hashA)
            try await directory.pool.write { db in try Directory.insertInvite(sent, in: db) }

            let eve = orgUser(acme.id, sent.email)
            await #expect(throws: DirectoryError.inviteNotOpen) {
                try await directory.pool.write { db in try Directory.acceptInvite(id: sent.id, user: eve, now: sent.expiresAt, in: db) }
            }
            #expect(try await directory.user(email: sent.email) == nil)
            #expect(try await directory.invite(secretHash: hashA)?.acceptedAt == nil)
        }
    }

    @Test("openInvites leaves out accepted, revoked and expired invites and other tenants'")
    func openInvites() async throws {
        try await withDirectory { directory, _ async throws in
            let acme = try await directory.createTenant(name: "Acme", tier: "enterprise")
            let globex = try await directory.createTenant(name: "Globex", tier: "standard")
            let now = date("2026-01-03T00:00:00Z")
            let open = invite(acme.id, "open@acme.test", hashA, at: date("2026-01-01T00:00:00Z"))
            let openLater = invite(acme.id, "later@acme.test", hashB, at: date("2026-01-02T00:00:00Z"))
            let toAccept = invite(acme.id, "accepted@acme.test", hashC, at: date("2026-01-01T00:00:00Z"))
            let expired = Invite(
                tenantID: acme.id, email: "expired@acme.test", role: .orgUser, secretHash: Array(repeating: 1, count: 32),
                invitedBy: "usr_admin", createdAt: date("2025-12-01T00:00:00Z"), expiresAt: now
            )
            let revoked = Invite(
                tenantID: acme.id, email: "revoked@acme.test", role: .orgUser, secretHash: Array(repeating: 2, count: 32),
                invitedBy: "usr_admin", createdAt: date("2026-01-01T00:00:00Z"), expiresAt: date("2026-01-08T00:00:00Z"),
                revokedAt: date("2026-01-02T00:00:00Z")
            )
            let elsewhere = invite(globex.id, "other@globex.test", Array(repeating: 3, count: 32))
            try await directory.pool.write { db in
                for invite in [openLater, open, toAccept, expired, revoked, elsewhere] { try Directory.insertInvite(invite, in: db) }
                try Directory.acceptInvite(id: toAccept.id, user: orgUser(acme.id, toAccept.email), now: now, in: db)
            }

            #expect(try await directory.openInvites(tenantID: acme.id, now: now) == [open, openLater])
            #expect(try await directory.openInvites(tenantID: globex.id, now: now) == [elsewhere])
            // Before its expiry the expired one was open.
            #expect(try await directory.openInvites(tenantID: acme.id, now: date("2026-01-02T12:00:00Z")).map(\.id) == [expired.id, open.id, openLater.id])
        }
    }

    // MARK: Helpers

    private func insert(_ user: User, in directory: Directory) async throws {
        try await directory.pool.write { db in try Directory.insertUser(user, in: db) }
    }

    private func orgUser(_ tenantID: String, _ email: String, role: Role = .orgUser, at createdAt: Date = date("2026-01-01T00:00:00Z")) -> User {
        User(tenantID: tenantID, email: email, name: email, role: role, passwordHash: "$2b$12$hash", createdAt: createdAt)
    }

    private func globalUser(_ email: String, role: Role) -> User {
        User(tenantID: nil, email: email, name: email, role: role, passwordHash: "$2b$12$hash", createdAt: date("2026-01-01T00:00:00Z"))
    }

    private func session(_ userID: String, _ hash: [UInt8]) -> Credential {
        Credential(
            id: Identifier.make(prefix: "ses"), userID: userID, kind: .session, name: "browser", prefix: "sy-ses",
            secretHash: hash, createdAt: date("2026-01-01T00:00:00Z"), expiresAt: date("2026-01-02T00:00:00Z")
        )
    }

    private func accessToken(_ userID: String, _ hash: [UInt8], id: String = Identifier.make(prefix: "pat"), at createdAt: Date = date("2026-01-01T00:00:00Z")) -> Credential {
        Credential(
            id: id, userID: userID, kind: .accessToken, name: "ci", prefix: "sy-pat", secretHash: hash, createdAt: createdAt,
            expiresAt: nil
        )
    }

    private func invite(_ tenantID: String, _ email: String, _ hash: [UInt8], role: Role = .orgUser, at createdAt: Date = date("2026-01-01T00:00:00Z")) -> Invite {
        Invite(
            tenantID: tenantID, email: email, role: role, secretHash: hash, invitedBy: "usr_admin", createdAt: createdAt,
            expiresAt: createdAt.addingTimeInterval(7 * 24 * 3600)
        )
    }
}
