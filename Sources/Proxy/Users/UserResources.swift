import Directory
import Foundation

/// The JSON shapes of users, sessions, invites and the audit log.
extension AdminResources {
    struct UserBody: Codable, Sendable {
        var object = "user"
        var id: String
        var email: String
        var name: String
        var role: String
        var tenantId: String?
        var createdAt: Date

        init(_ user: User) {
            self.id = user.id
            self.email = user.email
            self.name = user.name
            self.role = user.role.rawValue
            self.tenantId = user.tenantID
            self.createdAt = user.createdAt
        }
    }

    struct Login: Decodable, Sendable {
        var email: String
        var password: String
    }

    /// A new session: its token shown once, and the CSRF token its cookie's writes send.
    struct SessionBody: Codable, Sendable {
        var object = "session"
        var id: String
        var token: String
        var csrfToken: String
        var expiresAt: Date
        var user: UserBody
    }

    /// `GET /auth/me`: who the credentials are.
    struct MeBody: Codable, Sendable {
        var object = "principal"
        var role: String
        var tenantId: String?
        /// `session`, `access_token` or `admin_token`.
        var credential: String
        var user: UserBody?
        /// The session's CSRF token, when signed in with the portal's cookie.
        var csrfToken: String?
    }

    struct CreateToken: Decodable, Sendable {
        var name: String
        var expiresAt: Date?
    }

    struct TokenBody: Codable, Sendable {
        var object = "access_token"
        var id: String
        var name: String
        var prefix: String
        var createdAt: Date
        var expiresAt: Date?
        var revokedAt: Date?
        var lastUsedAt: Date?
        /// The secret, in the answer to its creation only.
        var token: String?

        init(_ credential: Credential, token: String? = nil) {
            self.id = credential.id
            self.name = credential.name
            self.prefix = credential.prefix
            self.createdAt = credential.createdAt
            self.expiresAt = credential.expiresAt
            self.revokedAt = credential.revokedAt
            self.lastUsedAt = credential.lastUsedAt
            self.token = token
        }
    }

    struct CreateInvite: Decodable, Sendable {
        var email: String
        var role: String
    }

    struct InviteBody: Codable, Sendable {
        var object = "invite"
        var id: String
        var tenantId: String
        var email: String
        var role: String
        var createdAt: Date
        var expiresAt: Date
        /// The link to accept it: in the answer to its creation only.
        var acceptUrl: String?
        /// The invite's secret, in the answer to its creation only (the link carries it).
        var token: String?
        /// Whether it was mailed: null when no SMTP server is configured.
        var mailed: Bool?
        /// Why mailing it failed, when it did.
        var mailError: String?

        init(_ invite: Invite) {
            self.id = invite.id
            self.tenantId = invite.tenantID
            self.email = invite.email
            self.role = invite.role.rawValue
            self.createdAt = invite.createdAt
            self.expiresAt = invite.expiresAt
        }
    }

    struct AcceptInvite: Decodable, Sendable {
        var name: String
        var password: String
    }

    struct CreateUser: Decodable, Sendable {
        var email: String
        var name: String
        var role: String
        var password: String
    }

    /// One audit entry as JSON. Built with `JSONSerialization` so that the payload stays
    /// the JSON object it was, its member names untouched by the API's key conversion.
    static func auditEntryJSON(_ entry: AuditEntry) -> [String: Any] {
        var actor: [String: Any] = ["id": entry.actor.id, "kind": entry.actor.kind]
        actor["role"] = entry.actor.role?.rawValue ?? NSNull()
        let payload = entry.payload.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8), options: [.fragmentsAllowed]) }
        return [
            "object": "audit_entry",
            "id": entry.id ?? 0,
            "at": entry.at.formatted(.iso8601),
            "tenant_id": entry.tenantID ?? NSNull(),
            "actor": actor,
            "action": entry.action,
            "target": entry.target ?? NSNull(),
            "payload": payload ?? NSNull(),
            "request_id": entry.requestID ?? NSNull(),
            "source_address": entry.sourceAddress ?? NSNull(),
        ]
    }
}
