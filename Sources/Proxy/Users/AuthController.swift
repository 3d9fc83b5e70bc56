import Directory
import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Providers

/// `/auth`: signing in and out, who am I, personal access tokens, accepting an invite.
/// A session's token is the answer's `token` and an `HttpOnly; SameSite=Strict` cookie for
/// the portal; writes made with the cookie must send `x-csrf-token`.
struct AuthController {
    let directory: Directory
    let accounts: Accounts
    let authenticator: ManagementAuthenticator
    let admin: AdminController

    func addRoutes(to router: KnownRoutes) {
        let auth = ManagementRoutes(routes: router, prefix: "auth", authenticator: authenticator)
        auth.unauthenticated(.post, "login") { request, context in try await login(request, context: context) }
        auth.unauthenticated(.post, "invites/:token/accept") { request, context in try await acceptInvite(request, context: context) }
        auth.post("logout", .signedIn) { _, context in try await logout(context: context) }
        auth.get("me", .signedIn) { request, context in try await me(request, context: context) }
        auth.post("tokens", .signedIn) { request, context in try await createToken(request, context: context) }
        auth.get("tokens", .signedIn) { _, context in
            let user = try Self.requireUser(context)
            let tokens = try await directory.credentials(userID: user.id, kind: .accessToken).map { AdminResources.TokenBody($0) }
            return try admin.json(AdminResources.ListBody(data: tokens))
        }
        auth.delete("tokens/:id", .signedIn) { _, context in try await revokeToken(context: context) }
    }

    // MARK: Sign-in

    private func login(_ request: Request, context: SwitchyardRequestContext) async throws -> Response {
        let body: AdminResources.Login = try await decodeUnauthenticated(request)
        let email = User.normalizedEmail(body.email)
        let address = context.remoteAddress
        // What was typed as the email goes in the log only if it is one (people paste passwords there).
        let loggedEmail = (try? AdminController.validatedEmail(email)) ?? "(not an email address)"
        let payload = AuditPayload.redacted(try JSONEncoder().encode(["email": loggedEmail, "password": ""]))
        if let wait = accounts.throttle.attempt(account: email, address: address) {
            var response = OpenAIError(
                status: 429, message: "Too many failed sign-ins; try again in \(wait) seconds.",
                type: "rate_limit_error", code: "too_many_sign_ins"
            ).response()
            response.headers[.retryAfter] = String(wait)
            return response
        }
        let user = try await directory.user(email: email)
        // An unknown email costs a hash check too, so timing tells nothing.
        let valid = try await Passwords.verify(body.password, hash: user?.passwordHash ?? Passwords.decoy) && user != nil
        guard let user, valid else {
            try await directory.append(AuditEntry(
                at: Date(), tenantID: user?.tenantID,
                actor: AuditEntry.Actor(id: user?.id ?? "anonymous", kind: user == nil ? "anonymous" : "user", role: user?.role),
                action: "login_failed", target: loggedEmail, payload: payload, requestID: context.requestID, sourceAddress: address
            ))
            throw ManagementAuthenticator.unauthenticated("The email or password is not right.")
        }
        accounts.throttle.succeeded(account: email, address: address)
        let (session, secret) = try await startSession(for: user, context: context, action: "login", payload: payload)
        return try sessionResponse(session, secret: secret, user: user, status: .ok)
    }

    /// Creates a session for `user` and records `action` in the audit log, in one transaction.
    private func startSession(
        for user: User, context: SwitchyardRequestContext, action: String, payload: String?,
        with change: (@Sendable (GRDB.Database) throws -> Void)? = nil
    ) async throws -> (Credential, String) {
        let secret = ManagementAuthenticator.generate(scheme: ManagementAuthenticator.sessionScheme)
        let now = Date()
        let session = Credential(
            id: Identifier.make(prefix: "ses"), userID: user.id, kind: .session, name: "session", prefix: secret.prefix,
            secretHash: secret.hash, sourceAddress: context.remoteAddress, createdAt: now,
            expiresAt: now.addingTimeInterval(accounts.settings.sessionLifetime)
        )
        let entry = AuditEntry(
            at: now, tenantID: user.tenantID, actor: AuditEntry.Actor(id: user.id, kind: "user", role: user.role),
            action: action, target: user.email, payload: payload, requestID: context.requestID, sourceAddress: context.remoteAddress
        )
        try await directory.recording({ db in
            try change?(db)
            try Directory.insertCredential(session, in: db)
        }, audit: { _ in entry })
        return (session, secret.secret)
    }

    private func sessionResponse(_ session: Credential, secret: String, user: User, status: HTTPResponse.Status) throws -> Response {
        let body = AdminResources.SessionBody(
            id: session.id, token: secret, csrfToken: ManagementAuthenticator.csrfToken(forSession: secret),
            expiresAt: session.expiresAt ?? Date(), user: AdminResources.UserBody(user)
        )
        var response = try admin.json(body, status: status)
        let seconds = Int(accounts.settings.sessionLifetime)
        response.headers[.setCookie] =
            "\(ManagementAuthenticator.sessionCookie)=\(secret); Path=/; Max-Age=\(seconds); HttpOnly; SameSite=Strict\(accounts.cookieSecurity)"
        response.headers[.cacheControl] = "no-store"
        return response
    }

    private func logout(context: ManagementContext) async throws -> Response {
        if case .session(let id, _) = context.principal.credential {
            _ = try await context.record("logout", target: { _ in id }) { db in try Directory.revokeCredential(id: id, now: Date(), in: db) }
        } else {
            try await context.recordUnchanged("logout", target: nil)
        }
        var response = Response(status: .noContent)
        response.headers[.setCookie] = "\(ManagementAuthenticator.sessionCookie)=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict\(accounts.cookieSecurity)"
        return response
    }

    private func me(_ request: Request, context: ManagementContext) async throws -> Response {
        let principal = context.principal
        var csrf: String?
        let credential: String
        switch principal.credential {
        case .adminToken: credential = "admin_token"
        case .accessToken: credential = "access_token"
        case .session(_, let viaCookie):
            credential = "session"
            if viaCookie, let secret = ManagementAuthenticator.cookie(ManagementAuthenticator.sessionCookie, in: request.headers) {
                csrf = ManagementAuthenticator.csrfToken(forSession: secret)
            }
        }
        return try admin.json(AdminResources.MeBody(
            role: principal.role.rawValue, tenantId: principal.tenantID, credential: credential,
            user: principal.user.map(AdminResources.UserBody.init), csrfToken: csrf
        ))
    }

    // MARK: Personal access tokens

    private func createToken(_ request: Request, context: ManagementContext) async throws -> Response {
        let user = try Self.requireUser(context)
        let body: AdminResources.CreateToken = try await admin.decode(request, context)
        let name = try DisplayName.validated(body.name, field: "name")
        if let expiresAt = body.expiresAt, expiresAt <= Date() {
            throw OpenAIError.invalidRequest("'expires_at' must be in the future.", param: "expires_at")
        }
        let secret = ManagementAuthenticator.generate(scheme: ManagementAuthenticator.accessTokenScheme)
        let token = Credential(
            id: Identifier.make(prefix: "pat"), userID: user.id, kind: .accessToken, name: name, prefix: secret.prefix,
            secretHash: secret.hash, sourceAddress: context.sourceAddress, createdAt: Date(), expiresAt: body.expiresAt
        )
        try await context.record("access_token_created", target: { _ in token.id }) { db in try Directory.insertCredential(token, in: db) }
        return try admin.json(AdminResources.TokenBody(token, token: secret.secret), status: .created)
    }

    private func revokeToken(context: ManagementContext) async throws -> Response {
        let user = try Self.requireUser(context)
        let id = context.parameters.get("id") ?? ""
        let tokens = try await directory.credentials(userID: user.id, kind: .accessToken)
        guard tokens.contains(where: { $0.id == id }) else {
            throw OpenAIError(status: 404, message: "You have no access token '\(id.prefix(DisplayName.longest))'.", type: "invalid_request_error", code: "not_found")
        }
        let revoked = try await context.record("access_token_revoked", target: { _ in id }) { db in
            try Directory.revokeCredential(id: id, now: Date(), in: db)
        }
        return try admin.json(AdminResources.TokenBody(try revoked.orThrow()))
    }

    // MARK: Invites

    /// `POST /auth/invites/{token}/accept`: creates the invited user and signs them in.
    private func acceptInvite(_ request: Request, context: SwitchyardRequestContext) async throws -> Response {
        let body: AdminResources.AcceptInvite = try await decodeUnauthenticated(request)
        let token = context.parameters.get("token") ?? ""
        let name = try DisplayName.validated(body.name, field: "name")
        try Passwords.validate(body.password)
        guard token.hasPrefix("sy-invite-"), let invite = try await directory.invite(secretHash: TenantKeySecret.hash(token)),
              invite.isOpen(at: Date())
        else {
            throw OpenAIError(status: 404, message: "The invite does not exist, was used, or has expired.", type: "invalid_request_error", code: "invite_not_found")
        }
        let user = User(
            tenantID: invite.tenantID, email: invite.email, name: name, role: invite.role,
            passwordHash: try await Passwords.hash(body.password), createdAt: Date()
        )
        let payload = AuditPayload.redacted(try JSONEncoder().encode(["name": name, "password": ""]))
        do {
            let (session, secret) = try await startSession(for: user, context: context, action: "invite_accepted", payload: payload) { db in
                try Directory.acceptInvite(id: invite.id, user: user, now: Date(), in: db)
            }
            return try sessionResponse(session, secret: secret, user: user, status: .created)
        } catch let error as DirectoryError {
            switch error.code {
            case .duplicateEmail: throw AdminController.emailTaken(invite.email)
            default:
                throw OpenAIError(status: 404, message: "The invite does not exist, was used, or has expired.", type: "invalid_request_error", code: "invite_not_found")
            }
        }
    }

    // MARK: Plumbing

    /// Decodes the JSON body of a route that takes no credentials. It must be sent as
    /// `application/json`: a cross-site form cannot, so it cannot sign a browser in.
    private func decodeUnauthenticated<T: Decodable>(_ request: Request) async throws -> T {
        guard let type = request.headers[.contentType], type.lowercased().hasPrefix("application/json") else {
            throw OpenAIError(
                status: 415, message: "Send the body as JSON with 'Content-Type: application/json'.",
                type: "invalid_request_error", code: "unsupported_media_type"
            )
        }
        return try await admin.decodeBody(request, limit: 16 << 10).0
    }

    private static func requireUser(_ context: ManagementContext) throws(OpenAIError) -> User {
        guard let user = context.principal.user else {
            throw OpenAIError(
                status: 403, message: "The admin token has no account of its own; sign in as a user.",
                type: "permission_error", code: "permission_denied"
            )
        }
        return user
    }
}

extension Optional {
    /// The value, or the management API's 404.
    func orThrow() throws -> Wrapped {
        guard let self else { throw OpenAIError.managementNotFound }
        return self
    }
}
