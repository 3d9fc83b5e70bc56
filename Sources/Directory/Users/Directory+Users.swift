import Foundation
import GRDB

extension Directory {
    // MARK: Users

    /// Stores a new user, within the caller's transaction.
    /// - Throws: `DirectoryError` `.duplicateEmail` when a user has that email,
    ///   `.tenantNotFound` for an org user of an unknown tenant.
    public static func insertUser(_ user: User, in db: GRDB.Database) throws {
        if let tenantID = user.tenantID, try !Tenant.exists(db, key: tenantID) { throw DirectoryError.tenantNotFound }
        do {
            try user.insert(db)
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
            throw DirectoryError.duplicateEmail
        }
    }

    public func user(id: String) async throws -> User? {
        try await pool.read { db in try User.fetchOne(db, key: id) }
    }

    /// The user, not removed, who signs in with `email`.
    public func user(email: String) async throws -> User? {
        try await pool.read { db in
            try User.filter(User.Columns.email == User.normalizedEmail(email) && User.Columns.removedAt == nil).fetchOne(db)
        }
    }

    /// The users of a tenant (nil: the global users), not removed, oldest first.
    public func users(tenantID: String?) async throws -> [User] {
        try await pool.read { db in
            try User
                .filter(User.Columns.tenantID == tenantID && User.Columns.removedAt == nil)
                .order(User.Columns.createdAt, User.Columns.id)
                .fetchAll(db)
        }
    }

    /// Removes a user within the caller's transaction: they can sign in no more, and their
    /// sessions, access tokens and tenant keys are revoked on every replica.
    /// - Returns: the removed user, nil when there is none (or they were removed before).
    public static func removeUser(id: String, now: Date, in db: GRDB.Database) throws -> User? {
        guard var user = try User.fetchOne(db, key: id), user.removedAt == nil else { return nil }
        let now = now.wholeMilliseconds
        try user.updateChanges(db) { $0.removedAt = now }
        try Credential
            .filter(Credential.Columns.userID == id && Credential.Columns.revokedAt == nil)
            .updateAll(db, Credential.Columns.revokedAt.set(to: now.millisecondsSince1970))
        try TenantKeyRecord
            .filter(TenantKeyRecord.Columns.userID == id && TenantKeyRecord.Columns.revokedAt == nil)
            .updateAll(db, TenantKeyRecord.Columns.revokedAt.set(to: now.millisecondsSince1970))
        try recordRevocation("user", subject: id, at: now, in: db)
        return user
    }

    // MARK: Sessions and access tokens

    /// Stores a new credential within the caller's transaction.
    public static func insertCredential(_ credential: Credential, in db: GRDB.Database) throws {
        try credential.insert(db)
    }

    /// The credential whose secret hashes to `secretHash`, with its user (not removed), or
    /// nil. It may be revoked or expired: the caller checks `isUsable`, and the hash in
    /// constant time.
    public func credential(secretHash: [UInt8]) async throws -> (credential: Credential, user: User)? {
        try await pool.read { db in
            guard let credential = try Credential.filter(Credential.Columns.secretHash == Data(secretHash)).fetchOne(db),
                  let user = try User.fetchOne(db, key: credential.userID), user.removedAt == nil
            else { return nil }
            return (credential, user)
        }
    }

    /// A user's credentials of one kind, newest first (revoked and expired ones too).
    public func credentials(userID: String, kind: Credential.Kind) async throws -> [Credential] {
        try await pool.read { db in
            try Credential
                .filter(Credential.Columns.userID == userID && Credential.Columns.kind == kind.rawValue)
                .order(Credential.Columns.createdAt.desc, Credential.Columns.id)
                .fetchAll(db)
        }
    }

    /// Revokes a credential within the caller's transaction; revoking twice keeps the
    /// first time. Returns nil for an unknown id.
    public static func revokeCredential(id: String, now: Date, in db: GRDB.Database) throws -> Credential? {
        guard var credential = try Credential.fetchOne(db, key: id) else { return nil }
        if credential.revokedAt == nil {
            try credential.updateChanges(db) { $0.revokedAt = now.wholeMilliseconds }
            try recordRevocation("credential", subject: id, at: now, in: db)
        }
        return credential
    }

    /// Records when credentials were last used (only moving the time forward).
    public func touchCredentials(_ lastUse: [String: Date]) async throws {
        guard !lastUse.isEmpty else { return }
        try await pool.write { db in try Self.touchCredentials(lastUse, in: db) }
    }

    /// `touchCredentials(_:)` blocking the caller: for the last flush at shutdown.
    public func touchCredentialsBlocking(_ lastUse: [String: Date]) throws {
        guard !lastUse.isEmpty else { return }
        try pool.write { db in try Self.touchCredentials(lastUse, in: db) }
    }

    private static func touchCredentials(_ lastUse: [String: Date], in db: GRDB.Database) throws {
        let statement = try db.cachedStatement(
            sql: "UPDATE credentials SET last_used_at = max(coalesce(last_used_at, 0), ?) WHERE id = ?"
        )
        for (id, date) in lastUse {
            try statement.execute(arguments: [date.millisecondsSince1970, id])
        }
    }

    // MARK: Invites

    /// Stores a new invite within the caller's transaction.
    /// - Throws: `DirectoryError` `.tenantNotFound`, or `.duplicateEmail` when a user of the
    ///   same tenant has the email. Users of other tenants are not looked at: an inviter
    ///   must not learn who has an account elsewhere (accepting fails for them instead).
    public static func insertInvite(_ invite: Invite, in db: GRDB.Database) throws {
        guard try Tenant.exists(db, key: invite.tenantID) else { throw DirectoryError.tenantNotFound }
        let taken = User.filter(
            User.Columns.email == invite.email && User.Columns.removedAt == nil && User.Columns.tenantID == invite.tenantID
        )
        guard try taken.fetchCount(db) == 0 else { throw DirectoryError.duplicateEmail }
        try invite.insert(db)
    }

    /// The invite whose secret hashes to `secretHash`, accepted, expired or not.
    public func invite(secretHash: [UInt8]) async throws -> Invite? {
        try await pool.read { db in try Invite.filter(Invite.Columns.secretHash == Data(secretHash)).fetchOne(db) }
    }

    /// Revokes an open invite of `tenantID` within the caller's transaction, so its link
    /// works no more. Returns nil when the tenant has no such invite still open.
    public static func revokeInvite(id: String, tenantID: String, now: Date, in db: GRDB.Database) throws -> Invite? {
        guard var invite = try Invite.fetchOne(db, key: id), invite.tenantID == tenantID, invite.isOpen(at: now) else { return nil }
        try invite.updateChanges(db) { $0.revokedAt = now.wholeMilliseconds }
        return invite
    }

    /// A tenant's invites not yet accepted, revoked or expired, oldest first.
    public func openInvites(tenantID: String, now: Date = Date()) async throws -> [Invite] {
        try await pool.read { db in
            try Invite
                .filter(Invite.Columns.tenantID == tenantID && Invite.Columns.acceptedAt == nil && Invite.Columns.revokedAt == nil)
                .filter(Invite.Columns.expiresAt > now.millisecondsSince1970)
                .order(Invite.Columns.createdAt, Invite.Columns.id)
                .fetchAll(db)
        }
    }

    /// Accepts an open invite within the caller's transaction: stores `user` and marks the
    /// invite used, so it works once.
    /// - Throws: `DirectoryError` `.inviteNotOpen` when it was used, revoked or has
    ///   expired, or when `user` is not of the invite's tenant, email and role;
    ///   `.duplicateEmail` when a user took the email meanwhile.
    public static func acceptInvite(id: String, user: User, now: Date, in db: GRDB.Database) throws {
        guard var invite = try Invite.fetchOne(db, key: id), invite.isOpen(at: now),
              user.tenantID == invite.tenantID, user.email == invite.email, user.role == invite.role
        else { throw DirectoryError.inviteNotOpen }
        try insertUser(user, in: db)
        try invite.updateChanges(db) { invite in
            invite.acceptedAt = now.wholeMilliseconds
            invite.acceptedBy = user.id
        }
    }
}
