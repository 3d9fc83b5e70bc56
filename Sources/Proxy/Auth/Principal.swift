import Directory

/// Who is acting on a management request, once authenticated: a user by a session or a
/// personal access token, or the bootstrap admin token.
public struct Principal: Sendable, Equatable {
    public enum Credential: Sendable, Equatable {
        /// The bootstrap admin token: a `system_admin` for first start and break-glass use.
        case adminToken
        /// A user's session, from `POST /auth/login`; `viaCookie` when it came as the
        /// portal's cookie rather than a bearer token (writes then need the CSRF token).
        case session(id: String, viaCookie: Bool)
        /// A user's personal access token, from `POST /auth/tokens`.
        case accessToken(id: String)
    }

    public var credential: Credential
    public var role: Role
    /// The user acting; nil for the admin token.
    public var user: User?
    /// The tenant of an org role; nil for a global one.
    public var tenantID: String?

    /// The id the audit log names as the actor.
    public var actorID: String { user?.id ?? Self.adminTokenID }

    public static let adminTokenID = "admin-token"

    public static let adminToken = Principal(credential: .adminToken, role: .systemAdmin, user: nil, tenantID: nil)

    /// The audit log's view of the actor.
    var auditActor: AuditEntry.Actor {
        switch credential {
        case .adminToken: AuditEntry.Actor(id: actorID, kind: "admin_token", role: role)
        case .session: AuditEntry.Actor(id: actorID, kind: "user", role: role)
        case .accessToken: AuditEntry.Actor(id: actorID, kind: "access_token", role: role)
        }
    }
}
