import Billing
import Directory
import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import Providers

/// Users and invites: `POST /admin/v1/users` (the platform's own users),
/// `/admin/v1/tenants/{id}/invites` and `/admin/v1/tenants/{id}/users`.
extension AdminController {
    func addUserRoutes(to admin: ManagementRoutes) {
        admin.post("users", .platform(.manageTenants)) { request, context in try await createGlobalUser(request, context: context) }
        admin.get("users", .platform(.manageTenants)) { _, _ in
            try json(AdminResources.ListBody(data: try await directory.users(tenantID: nil).map(AdminResources.UserBody.init)))
        }
        admin.delete("users/:user", .platform(.manageTenants)) { _, context in try await removeUser(tenantID: nil, context: context) }
        admin.post("tenants/:id/invites", .tenant(.manageUsers)) { request, context in try await invite(request, context: context) }
        admin.get("tenants/:id/invites", .tenant(.manageUsers)) { _, context in
            let tenant = try await requireTenant(context)
            return try json(AdminResources.ListBody(data: try await directory.openInvites(tenantID: tenant.id).map(AdminResources.InviteBody.init)))
        }
        admin.delete("tenants/:id/invites/:invite", .tenant(.manageUsers)) { _, context in
            let tenant = try await requireTenant(context)
            let id = context.parameters.get("invite") ?? ""
            guard let revoked = try await context.record("invite_revoked", target: { _ in id }, { db in
                try Directory.revokeInvite(id: id, tenantID: tenant.id, now: Date(), in: db)
            }) else {
                throw OpenAIError(
                    status: 404, message: "Tenant '\(tenant.id)' has no open invite '\(id.prefix(DisplayName.longest))'.",
                    type: "invalid_request_error", code: "not_found"
                )
            }
            return try json(AdminResources.InviteBody(revoked))
        }
        admin.get("tenants/:id/users", .tenant(.manageUsers)) { _, context in
            let tenant = try await requireTenant(context)
            return try json(AdminResources.ListBody(data: try await directory.users(tenantID: tenant.id).map(AdminResources.UserBody.init)))
        }
        admin.delete("tenants/:id/users/:user", .tenant(.manageUsers)) { _, context in
            try await removeUser(tenantID: try await requireTenant(context).id, context: context)
        }
    }

    private func createGlobalUser(_ request: Request, context: ManagementContext) async throws -> Response {
        let body: AdminResources.CreateUser = try await decode(request, context)
        guard let role = Role(rawValue: body.role), role.isGlobal else {
            throw OpenAIError.invalidRequest(
                "'role' must be system_admin or analyst here; org users are invited to their tenant.", param: "role"
            )
        }
        let email = try Self.validatedEmail(body.email)
        let name = try DisplayName.validated(body.name, field: "name")
        try Passwords.validate(body.password)
        let user = User(tenantID: nil, email: email, name: name, role: role, passwordHash: try await Passwords.hash(body.password), createdAt: Date())
        do {
            try await context.record("user_created", target: { _ in user.id }) { db in try Directory.insertUser(user, in: db) }
        } catch let error as DirectoryError where error.code == .duplicateEmail {
            throw Self.emailTaken(email)
        }
        return try json(AdminResources.UserBody(user), status: .created)
    }

    /// `POST /admin/v1/tenants/{id}/invites`: a single-use invite for 7 days, mailed when
    /// an SMTP server is configured; its accept link is in the answer either way.
    private func invite(_ request: Request, context: ManagementContext) async throws -> Response {
        let tenant = try await requireTenant(context)
        let body: AdminResources.CreateInvite = try await decode(request, context)
        guard let role = Role(rawValue: body.role), !role.isGlobal else {
            throw OpenAIError.invalidRequest("'role' must be org_admin or org_user.", param: "role")
        }
        let email = try Self.validatedEmail(body.email)
        let secret = ManagementAuthenticator.generate(scheme: "sy-invite-")
        let now = Date()
        let invite = Invite(
            tenantID: tenant.id, email: email, role: role, secretHash: secret.hash, invitedBy: context.principal.actorID,
            createdAt: now, expiresAt: now.addingTimeInterval(accounts.settings.inviteLifetime)
        )
        do {
            try await context.record("user_invited", target: { _ in email }) { db in try Directory.insertInvite(invite, in: db) }
        } catch let error as DirectoryError where error.code == .duplicateEmail {
            throw Self.emailTaken(email)
        }
        var answer = AdminResources.InviteBody(invite)
        answer.acceptUrl = accounts.acceptURL(token: secret.secret, host: request.head.authority)
        answer.token = secret.secret
        if let mailer = accounts.mailer {
            do {
                try await mailer.send(MailMessage(
                    to: email,
                    subject: "You are invited to \(tenant.name) on Switchyard",
                    textBody: """
                        \(context.principal.user?.name ?? "An administrator") invited you to join \(tenant.name) on Switchyard as \(role.rawValue).

                        Accept the invite, and choose your name and password, here:
                        \(answer.acceptUrl ?? "")

                        The link works once, until \(invite.expiresAt.formatted(.iso8601)).
                        """
                ))
                answer.mailed = true
            } catch {
                context.logger.warning("invite mail failed", metadata: ["invite": "\(invite.id)", "error": "\(error)"])
                answer.mailed = false
                answer.mailError = "\(error)"
            }
        }
        return try json(answer, status: .created)
    }

    /// `DELETE /admin/v1/tenants/{id}/users/{user}` (and `/admin/v1/users/{user}` for a
    /// global user): the user signs in no more; their sessions, access tokens and tenant
    /// keys are revoked on every replica.
    private func removeUser(tenantID: String?, context: ManagementContext) async throws -> Response {
        let id = context.parameters.get("user") ?? ""
        let notFound = OpenAIError(
            status: 404, message: "No user '\(id.prefix(DisplayName.longest))' is there to remove.",
            type: "invalid_request_error", code: "not_found"
        )
        guard let user = try await directory.user(id: id), user.tenantID == tenantID, user.removedAt == nil else { throw notFound }
        guard let removed = try await context.record("user_removed", target: { _ in id }, { db in
            try Directory.removeUser(id: id, now: Date(), in: db)
        }) else { throw notFound }
        tenantAuthenticator.invalidate(userID: removed.id)
        return try json(AdminResources.UserBody(removed))
    }

    /// `GET /admin/v1/audit`: newest first, filtered by `tenant`, `action`, `actor`,
    /// `from` and `to`, paged by `cursor`; an org admin sees their tenant's only.
    func addAuditRoutes(to admin: ManagementRoutes) {
        admin.get("audit", .tenantQuery(.viewAudit, platform: .viewAudit)) { request, context in
            let parameters = request.uri.queryParameters
            func text(_ name: String) -> String? { parameters[Substring(name)].map(String.init).flatMap { $0.isEmpty ? nil : $0 } }
            let from = try text("from").map { try Self.parseTime($0, param: "from") }
            let to = try text("to").map { try Self.parseTime($0, param: "to") }
            let limit = try Self.limit(text("limit"))
            var before: Int64?
            if let cursor = text("cursor") {
                guard let value = Int64(cursor), value > 0 else {
                    throw OpenAIError.invalidRequest("'cursor' must be the next_cursor of a previous page.", param: "cursor")
                }
                before = value
            }
            let entries = try await directory.auditEntries(AuditQuery(
                tenantID: context.tenantID, action: text("action"), actorID: text("actor"), from: from, to: to,
                before: before, limit: limit + 1
            ))
            let page = entries.prefix(limit)
            let next: Any = entries.count > limit ? (page.last?.id.map(String.init) ?? "") : NSNull()
            let body: [String: Any] = ["object": "list", "data": page.map(AdminResources.auditEntryJSON), "next_cursor": next]
            let data = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
    }

    static func validatedEmail(_ email: String) throws(OpenAIError) -> String {
        let normalized = User.normalizedEmail(email)
        let parts = normalized.split(separator: "@", omittingEmptySubsequences: false)
        // Letters of any script are allowed; no space, control, invisible formatting
        // (bidi overrides, zero-width) or separator character is.
        let refused: Set<Unicode.GeneralCategory> = [
            .control, .format, .spaceSeparator, .lineSeparator, .paragraphSeparator, .privateUse, .surrogate, .unassigned,
        ]
        guard normalized.utf8.count <= 254, parts.count == 2, !parts[0].isEmpty, parts[1].contains("."),
              !parts[1].hasPrefix("."), !parts[1].hasSuffix("."),
              normalized.unicodeScalars.allSatisfy({
                  !refused.contains($0.properties.generalCategory) && $0 != "<" && $0 != ">" && $0 != "," && $0 != "\"" && $0 != ";"
              })
        else {
            throw OpenAIError.invalidRequest("'email' must be an email address (name@example.com).", param: "email")
        }
        return normalized
    }

    static func emailTaken(_ email: String) -> OpenAIError {
        OpenAIError(status: 409, message: "A user with email '\(email)' exists.", type: "invalid_request_error", param: "email", code: "conflict")
    }
}
