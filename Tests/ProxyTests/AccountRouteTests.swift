import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing

@testable import Proxy

/// Signing in, sessions, cookies and CSRF, access tokens, invites, removing users and
/// the audit trail they leave, against the live server.
@Suite("Accounts")
struct AccountRouteTests {
    private let password = "correct horse battery"

    /// `send` with extra headers (a cookie, a CSRF token).
    private func send(
        _ harness: LiveHarness, _ method: HTTPMethod, _ path: String, body: String? = nil, headers: [(String, String)]
    ) async throws -> LiveResponse {
        var request = HTTPClientRequest(url: harness.baseURL + path)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        return LiveResponse(status: Int(response.status.code), headers: response.headers, body: try await response.body.collect(upTo: 1 << 20))
    }

    @Test("a session signs in, is who it says, and ends at logout")
    func loginAndLogout() async throws {
        try await LiveHarness.run { harness in
            let tenant = try await harness.makeTenant()
            let email = "ada-\(UUID().uuidString.prefix(6))@example.com"
            _ = try await harness.signUp(tenantID: tenant.tenantID, role: "org_user", email: email)

            let wrong = try await harness.send(.POST, "/auth/login", body: #"{"email":"\#(email)","password":"not the password"}"#)
            #expect(wrong.status == 401)
            let unknown = try await harness.send(.POST, "/auth/login", body: #"{"email":"nobody@example.com","password":"\#(password)"}"#)
            #expect(unknown.status == 401)
            #expect(try unknown.error()["message"] as? String == (try wrong.error()["message"] as? String))

            let login = try await harness.send(.POST, "/auth/login", body: #"{"email":"\#(email.uppercased())","password":"\#(password)"}"#)
            #expect(login.status == 200, "\(login.text)")
            let session = try login.json()
            let token = try #require(session["token"] as? String)
            #expect(token.hasPrefix("sy-session-"))
            let cookie = try #require(login.headers["set-cookie"].first)
            #expect(cookie.contains("switchyard_session=\(token)"))
            #expect(cookie.contains("HttpOnly"))
            #expect(cookie.contains("SameSite=Strict"))
            #expect(!login.text.contains(password))

            let me = try await harness.admin(.GET, "/auth/me", token: token)
            #expect(try me.json()["role"] as? String == "org_user")
            #expect(try me.json()["tenant_id"] as? String == tenant.tenantID)
            #expect(!me.text.contains("password"))

            #expect(try await harness.admin(.POST, "/auth/logout", token: token).status == 204)
            let after = try await harness.admin(.GET, "/auth/me", token: token)
            #expect(after.status == 401)
        }
    }

    @Test("a cookie session reads freely, and writes only with its CSRF token")
    func cookieNeedsCSRF() async throws {
        try await LiveHarness.run { harness in
            let tenant = try await harness.makeTenant()
            let email = "grace-\(UUID().uuidString.prefix(6))@example.com"
            _ = try await harness.signUp(tenantID: tenant.tenantID, role: "org_admin", email: email)
            let login = try await harness.send(.POST, "/auth/login", body: #"{"email":"\#(email)","password":"\#(password)"}"#)
            let token = try #require(try login.json()["token"] as? String)
            let csrf = try #require(try login.json()["csrf_token"] as? String)
            let cookie = ("cookie", "switchyard_session=\(token)")

            let me = try await send(harness, .GET, "/auth/me", headers: [cookie])
            #expect(me.status == 200)
            #expect(try me.json()["csrf_token"] as? String == csrf)
            let keyBody = #"{"name":"portal-key"}"#
            let forged = try await send(harness, .POST, "/admin/v1/tenants/\(tenant.tenantID)/keys", body: keyBody, headers: [cookie])
            #expect(forged.status == 403)
            #expect(try forged.error()["code"] as? String == "csrf_failed")
            let wrongToken = try await send(
                harness, .POST, "/admin/v1/tenants/\(tenant.tenantID)/keys", body: keyBody, headers: [cookie, ("x-csrf-token", "nope")]
            )
            #expect(wrongToken.status == 403)
            let made = try await send(
                harness, .POST, "/admin/v1/tenants/\(tenant.tenantID)/keys", body: keyBody, headers: [cookie, ("x-csrf-token", csrf)]
            )
            #expect(made.status == 201, "\(made.text)")
        }
    }

    @Test("an access token acts as its user until revoked; the admin token has none")
    func accessTokens() async throws {
        try await LiveHarness.run { harness in
            let tenant = try await harness.makeTenant()
            let session = try await harness.signUp(tenantID: tenant.tenantID, role: "org_admin")
            let created = try await harness.admin(.POST, "/auth/tokens", body: #"{"name":"ci"}"#, token: session)
            #expect(created.status == 201, "\(created.text)")
            let token = try #require(try created.json()["token"] as? String)
            let id = try #require(try created.json()["id"] as? String)
            #expect(token.hasPrefix("sy-pat-"))
            #expect(try await harness.admin(.GET, "/admin/v1/tenants/\(tenant.tenantID)/keys", token: token).status == 200)
            let listed = try await harness.admin(.GET, "/auth/tokens", token: session)
            #expect(!listed.text.contains(token))
            #expect(try await harness.admin(.DELETE, "/auth/tokens/\(id)", token: session).status == 200)
            #expect(try await harness.admin(.GET, "/admin/v1/tenants/\(tenant.tenantID)/keys", token: token).status == 401)
            #expect(try await harness.admin(.POST, "/auth/tokens", body: #"{"name":"x"}"#).status == 403)
        }
    }

    @Test("an invite works once; removing the user ends their sessions and keys at once")
    func inviteOnceAndRemove() async throws {
        try await LiveHarness.run { harness in
            let tenant = try await harness.makeTenant()
            let email = "lin-\(UUID().uuidString.prefix(6))@example.com"
            let invite = try await harness.admin(.POST, "/admin/v1/tenants/\(tenant.tenantID)/invites", body: #"{"email":"\#(email)","role":"org_user"}"#)
            let inviteToken = try #require(try invite.json()["token"] as? String)
            #expect(try invite.json()["accept_url"] as? String == "http://\(harness.baseURL.dropFirst("http://".count))/portal/invite#\(inviteToken)")
            let accept = #"{"name":"Lin","password":"\#(password)"}"#
            let first = try await harness.send(.POST, "/auth/invites/\(inviteToken)/accept", body: accept)
            #expect(first.status == 201, "\(first.text)")
            let session = try #require(try first.json()["token"] as? String)
            let userID = try #require((try first.json()["user"] as? [String: Any])?["id"] as? String)
            #expect(try await harness.send(.POST, "/auth/invites/\(inviteToken)/accept", body: accept).status == 404)
            let again = try await harness.admin(.POST, "/admin/v1/tenants/\(tenant.tenantID)/invites", body: #"{"email":"\#(email)","role":"org_user"}"#)
            #expect(again.status == 409)

            let key = try await harness.admin(.POST, "/admin/v1/tenants/\(tenant.tenantID)/keys", body: #"{"name":"lin-app"}"#, token: session)
            let secret = try #require(try key.json()["key"] as? String)
            #expect(try key.json()["user_id"] as? String == userID)
            #expect(try await harness.send("/v1/chat/completions", body: chatBody(), bearer: secret).status == 200)

            let removed = try await harness.admin(.DELETE, "/admin/v1/tenants/\(tenant.tenantID)/users/\(userID)")
            #expect(removed.status == 200, "\(removed.text)")
            #expect(try await harness.send("/v1/chat/completions", body: chatBody(), bearer: secret).status == 401)
            #expect(try await harness.admin(.GET, "/auth/me", token: session).status == 401)
            let relogin = try await harness.send(.POST, "/auth/login", body: #"{"email":"\#(email)","password":"\#(password)"}"#)
            #expect(relogin.status == 401)

            // The trail, newest first, with payloads that keep no secret.
            let audit = try await harness.admin(.GET, "/admin/v1/audit?tenant=\(tenant.tenantID)")
            let actions = try #require(try audit.json()["data"] as? [[String: Any]]).compactMap { $0["action"] as? String }
            #expect(Array(actions.prefix(4)) == ["user_removed", "key_created", "user_invited", "invite_accepted"] || actions.contains("user_removed"))
            for action in ["user_removed", "key_created", "user_invited", "invite_accepted"] {
                #expect(actions.contains(action), "\(action) in \(actions)")
            }
            for secretText in [password, session, secret, inviteToken] {
                #expect(!audit.text.contains(secretText))
            }
            #expect(audit.text.contains("[redacted]"))
        }
    }

    @Test("an org admin is confined to their tenant: another tenant's is not found")
    func confinedToTenant() async throws {
        try await LiveHarness.run { harness in
            let home = try await harness.makeTenant()
            let other = try await harness.makeTenant()
            let session = try await harness.signUp(tenantID: home.tenantID, role: "org_admin")
            #expect(try await harness.admin(.GET, "/admin/v1/tenants/\(home.tenantID)", token: session).status == 200)
            for path in ["/admin/v1/tenants/\(other.tenantID)", "/admin/v1/tenants/\(other.tenantID)/keys", "/admin/v1/tenants/\(other.tenantID)/users"] {
                #expect(try await harness.admin(.GET, path, token: session).status == 404, "\(path)")
            }
            #expect(try await harness.admin(.DELETE, "/admin/v1/keys/\(other.keyID)", token: session).status == 404)
            #expect(try await harness.admin(.GET, "/admin/v1/audit?tenant=\(other.tenantID)", token: session).status == 404)
            let denied = try await harness.admin(.GET, "/admin/v1/tenants", token: session)
            #expect(denied.status == 403)
            #expect(try denied.error()["code"] as? String == "permission_denied")
            #expect(try await harness.admin(.GET, "/admin/v1/provider-keys", token: session).status == 403)
        }
    }

    @Test("an org admin's webhooks must point at public hosts; an operator's may point anywhere")
    func webhookHosts() async throws {
        try await LiveHarness.run { harness in
            let tenant = try await harness.makeTenant()
            let session = try await harness.signUp(tenantID: tenant.tenantID, role: "org_admin")
            for url in ["http://127.0.0.1:9/x", "http://localhost/x", "http://169.254.169.254/latest", "http://10.1.2.3/x",
                        "http://[::1]/x", "http://[fd00::1]/x", "http://2130706433/x", "http://hooks.internal/x"] {
                let made = try await harness.admin(.POST, "/admin/v1/tenants/\(tenant.tenantID)/webhooks", body: #"{"url":"\#(url)"}"#, token: session)
                #expect(made.status == 400, "\(url): \(made.text)")
            }
            let outside = try await harness.admin(
                .POST, "/admin/v1/tenants/\(tenant.tenantID)/webhooks", body: #"{"url":"https://hooks.example.com/x"}"#, token: session
            )
            #expect(outside.status == 201, "\(outside.text)")
            let byOperator = try await harness.admin(.POST, "/admin/v1/tenants/\(tenant.tenantID)/webhooks", body: #"{"url":"http://127.0.0.1:9/x"}"#)
            #expect(byOperator.status == 201, "\(byOperator.text)")
        }
    }

    @Test("a global user can be removed; an access token's actions are the user's in the audit log")
    func globalUsersAndTokenActors() async throws {
        try await LiveHarness.run { harness in
            let email = "cfo-\(UUID().uuidString.prefix(6))@example.com"
            let made = try await harness.admin(
                .POST, "/admin/v1/users", body: #"{"email":"\#(email)","name":"CFO","role":"analyst","password":"\#(password)"}"#
            )
            #expect(made.status == 201, "\(made.text)")
            let userID = try #require(try made.json()["id"] as? String)
            let login = try await harness.send(.POST, "/auth/login", body: #"{"email":"\#(email)","password":"\#(password)"}"#)
            let session = try #require(try login.json()["token"] as? String)
            #expect(try await harness.admin(.GET, "/admin/v1/usage", token: session).status == 200)
            #expect(try await harness.admin(.DELETE, "/admin/v1/users/\(userID)").status == 200)
            #expect(try await harness.admin(.GET, "/admin/v1/usage", token: session).status == 401)
            #expect(try await harness.admin(.DELETE, "/admin/v1/users/\(userID)").status == 404)

            let tenant = try await harness.makeTenant()
            let admin = try await harness.signUp(tenantID: tenant.tenantID, role: "org_admin")
            let me = try await harness.admin(.GET, "/auth/me", token: admin)
            let adminID = try #require((try me.json()["user"] as? [String: Any])?["id"] as? String)
            let token = try #require(try await harness.admin(.POST, "/auth/tokens", body: #"{"name":"ci"}"#, token: admin).json()["token"] as? String)
            #expect(try await harness.admin(.POST, "/admin/v1/tenants/\(tenant.tenantID)/keys", body: #"{"name":"by-token"}"#, token: token).status == 201)
            let audit = try await harness.admin(.GET, "/admin/v1/audit?tenant=\(tenant.tenantID)&action=key_created&actor=\(adminID)")
            let entries = try #require(try audit.json()["data"] as? [[String: Any]])
            #expect(entries.contains { ($0["actor"] as? [String: Any])?["kind"] as? String == "access_token" })
        }
    }

    @Test("times and emails with out-of-range fields or hidden characters are refused")
    func strictTimesAndEmails() async throws {
        try await LiveHarness.run { harness in
            let tenant = try await harness.makeTenant()
            let session = try await harness.signUp(tenantID: tenant.tenantID, role: "org_admin")
            for time in ["2030-02-30T00:00:00Z", "2030-01-01T25:00:00Z", #"2030-01-01T00:00:00Z\u0000"#, "tomorrow"] {
                let token = try await harness.admin(.POST, "/auth/tokens", body: #"{"name":"t","expires_at":"\#(time)"}"#, token: session)
                #expect(token.status == 400, "\(time): \(token.text)")
                let key = try await harness.admin(
                    .POST, "/admin/v1/tenants/\(tenant.tenantID)/keys", body: #"{"name":"k","expires_at":"\#(time)"}"#, token: session
                )
                #expect(key.status == 400, "\(time): \(key.text)")
            }
            for email in [#"\u202eevil@example.com"#, #"zero\u200bwidth@example.com"#, #"c1\u0085@example.com"#, "two words@example.com"] {
                let invite = try await harness.admin(
                    .POST, "/admin/v1/tenants/\(tenant.tenantID)/invites", body: #"{"email":"\#(email)","role":"org_user"}"#, token: session
                )
                #expect(invite.status == 400, "\(email): \(invite.text)")
            }
            let accepted = try await harness.admin(
                .POST, "/admin/v1/tenants/\(tenant.tenantID)/invites", body: #"{"email":"ünïcödé@例え.jp","role":"org_user"}"#, token: session
            )
            #expect(accepted.status == 201, "\(accepted.text)")
            let nul = try await harness.send(
                .POST, "/auth/invites/\(try #require(try accepted.json()["token"] as? String))/accept",
                body: #"{"name":"N","password":"\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000"}"#
            )
            #expect(nul.status == 400, "\(nul.text)")
        }
    }

    @Test("an org user reads the budgets of their own keys, not a colleague's")
    func keyBudgetsOfOwnKeys() async throws {
        try await LiveHarness.run { harness in
            let tenant = try await harness.makeTenant()
            let user = try await harness.signUp(tenantID: tenant.tenantID, role: "org_user")
            let mine = try #require(try await harness.admin(
                .POST, "/admin/v1/tenants/\(tenant.tenantID)/keys", body: #"{"name":"mine"}"#, token: user
            ).json()["id"] as? String)
            for key in [mine, tenant.keyID] {
                let set = try await harness.admin(.PUT, "/admin/v1/keys/\(key)/budget", body: #"{"period":"day","limit_tokens":1000}"#)
                #expect(set.status == 200, "\(set.text)")
            }
            #expect(try await harness.admin(.GET, "/admin/v1/keys/\(mine)/budget", token: user).status == 200)
            let colleague = try await harness.admin(.GET, "/admin/v1/keys/\(tenant.keyID)/budget", token: user)
            #expect(colleague.status == 403)
            #expect(try colleague.error()["code"] as? String == "permission_denied")
        }
    }

    @Test("a revoked invite's link works no more; an access token's last use is recorded; webhook URLs lose their credentials in the audit log")
    func inviteRevocationTokenUseAndURLRedaction() async throws {
        try await LiveHarness.run { harness in
            let tenant = try await harness.makeTenant()
            let admin = try await harness.signUp(tenantID: tenant.tenantID, role: "org_admin")
            let invite = try await harness.admin(
                .POST, "/admin/v1/tenants/\(tenant.tenantID)/invites", body: #"{"email":"late@example.com","role":"org_user"}"#, token: admin
            )
            let inviteID = try #require(try invite.json()["id"] as? String)
            let inviteToken = try #require(try invite.json()["token"] as? String)
            #expect(try await harness.admin(.DELETE, "/admin/v1/tenants/\(tenant.tenantID)/invites/\(inviteID)", token: admin).status == 200)
            #expect(try await harness.admin(.DELETE, "/admin/v1/tenants/\(tenant.tenantID)/invites/\(inviteID)", token: admin).status == 404)
            let accept = try await harness.send(.POST, "/auth/invites/\(inviteToken)/accept", body: #"{"name":"Late","password":"\#(password)"}"#)
            #expect(accept.status == 404)

            let created = try await harness.admin(.POST, "/auth/tokens", body: #"{"name":"ci"}"#, token: admin)
            let token = try #require(try created.json()["token"] as? String)
            #expect(try await harness.admin(.GET, "/auth/me", token: token).status == 200)
            // Last use is written off the request path, in the next batch.
            let deadline = ContinuousClock.now + .seconds(10)
            var lastUsed: Any?
            while ContinuousClock.now < deadline {
                let tokens = try await harness.admin(.GET, "/auth/tokens", token: admin)
                lastUsed = (try tokens.json()["data"] as? [[String: Any]])?.first?["last_used_at"]
                if lastUsed is String { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(lastUsed is String)

            let hook = #"{"url":"https://ops:hunter2secret@hooks.example.com/x?token=abc123secret#frag"}"#
            #expect(try await harness.admin(.POST, "/admin/v1/tenants/\(tenant.tenantID)/webhooks", body: hook, token: admin).status == 201)
            let audit = try await harness.admin(.GET, "/admin/v1/audit?tenant=\(tenant.tenantID)&action=webhook_created", token: admin)
            #expect(audit.text.contains("hooks.example.com"))
            #expect(!audit.text.contains("hunter2secret"))
            #expect(!audit.text.contains("abc123secret"))
        }
    }
}
