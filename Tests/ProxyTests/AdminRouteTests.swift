import Foundation
import Testing

@testable import Proxy

@Suite("Management API")
struct AdminRouteTests {
    @Test func tenantsAndKeys() async throws {
        try await LiveHarness.run { harness in
            let created = try await harness.admin(.POST, "/admin/v1/tenants", body: #"{"name":"Globex","tier":"enterprise"}"#)
            #expect(created.status == 201)
            let tenant = try created.json()
            let id = try #require(tenant["id"] as? String)
            #expect(tenant["name"] as? String == "Globex")
            #expect(tenant["tier"] as? String == "enterprise")
            #expect(tenant["created_at"] is String)

            #expect(try await harness.admin(.POST, "/admin/v1/tenants", body: #"{"name":"Globex","tier":"enterprise"}"#).status == 409)
            let badTier = try await harness.admin(.POST, "/admin/v1/tenants", body: #"{"name":"Initech","tier":"platinum"}"#)
            #expect(badTier.status == 400)
            #expect(try badTier.error()["param"] as? String == "tier")
            let noName = try await harness.admin(.POST, "/admin/v1/tenants", body: #"{"tier":"enterprise"}"#)
            #expect(noName.status == 400)
            #expect(try noName.error()["param"] as? String == "name")

            let list = try await harness.admin(.GET, "/admin/v1/tenants")
            #expect(try (list.json()["data"] as? [[String: Any]])?.map { $0["id"] as? String } == [id])
            #expect(try await harness.admin(.GET, "/admin/v1/tenants/\(id)").json()["name"] as? String == "Globex")
            #expect(try await harness.admin(.GET, "/admin/v1/tenants/ten_nope").status == 404)

            // The admin token makes no tenant keys: a user of the tenant does, and owns them.
            let refused = try await harness.admin(.POST, "/admin/v1/tenants/\(id)/keys", body: #"{"name":"billing-app"}"#)
            #expect(refused.status == 403)
            #expect(try refused.error()["code"] as? String == "permission_denied")
            let session = try await harness.signUp(tenantID: id)
            let key = try await harness.admin(.POST, "/admin/v1/tenants/\(id)/keys", body: #"{"name":"billing-app"}"#, token: session)
            #expect(key.status == 201)
            let keyJSON = try key.json()
            let secret = try #require(keyJSON["key"] as? String)
            #expect(secret.hasPrefix("sk-sy-"))
            #expect(secret.count >= 6 + 43)
            #expect(secret.hasPrefix(try #require(keyJSON["prefix"] as? String)))

            let keys = try await harness.admin(.GET, "/admin/v1/tenants/\(id)/keys")
            #expect(!keys.text.contains(secret), "a key list must never carry secrets")
            let listed = try #require(try keys.json()["data"] as? [[String: Any]])
            #expect(listed.count == 1)
            #expect(listed[0]["key"] == nil)
            #expect(listed[0]["status"] as? String == "active")
            #expect(listed[0].keys.contains("last_used_at") || listed[0]["last_used_at"] == nil)

            #expect(try await harness.admin(.DELETE, "/admin/v1/keys/key_nope").status == 404)
            // Another tenant's, or one that does not exist, is the same 404 to an org admin.
            #expect(try await harness.admin(.POST, "/admin/v1/tenants/ten_nope/keys", body: #"{"name":"x"}"#, token: session).status == 404)
            #expect(try await harness.admin(.GET, "/admin/v1/tenants/ten_nope", token: session).status == 404)
        }
    }

    @Test func adminTokenIsRequired() async throws {
        try await LiveHarness.run { harness in
            let wrong = try await harness.admin(.GET, "/admin/v1/tenants", token: "not-the-token")
            #expect(wrong.status == 401)
            #expect(try wrong.error()["code"] as? String == "unauthenticated")
            let none = try await harness.send(.GET, "/admin/v1/tenants")
            #expect(none.status == 401)
            // A tenant key is not an admin token.
            let tenant = try await harness.makeTenant()
            #expect(try await harness.admin(.GET, "/admin/v1/tenants", token: tenant.key).status == 401)
        }
    }

    @Test func usageIsGroupedByModelDayAndKey() async throws {
        try await LiveHarness.run { harness in
            let tenant = try await harness.makeTenant()
            let other = try await harness.makeTenant()
            var lastRequest = ""
            for _ in 0..<3 {
                let response = try await harness.send("/v1/chat/completions", body: chatBody(), bearer: tenant.key)
                lastRequest = try #require(response.headers.first(name: "x-request-id"))
            }
            let embed = try await harness.send("/v1/embeddings", body: #"{"model":"embed-small","input":"hello"}"#, bearer: tenant.key)
            let otherResponse = try await harness.send("/v1/chat/completions", body: chatBody(), bearer: other.key)
            _ = try await harness.usageEvent(requestID: lastRequest)
            _ = try await harness.usageEvent(requestID: try #require(embed.headers.first(name: "x-request-id")))
            _ = try await harness.usageEvent(requestID: try #require(otherResponse.headers.first(name: "x-request-id")))

            let byModel = try await harness.admin(.GET, "/admin/v1/usage?tenant=\(tenant.tenantID)&group_by=model")
            #expect(byModel.status == 200)
            let rows = try #require(try byModel.json()["data"] as? [[String: Any]])
            #expect(rows.map { $0["group"] as? String } == ["chat-small", "embed-small"])
            #expect(rows[0]["requests"] as? Int == 3)
            #expect((rows[0]["prompt_tokens"] as? Int ?? 0) > 0)
            #expect(rows[0]["cost_micros"] is Int)
            #expect(rows[0]["cost"] is String)

            let byKey = try await harness.admin(.GET, "/admin/v1/usage?tenant=\(tenant.tenantID)&group_by=key")
            let keyRows = try #require(try byKey.json()["data"] as? [[String: Any]])
            #expect(keyRows.map { $0["group"] as? String } == [tenant.keyID])
            #expect(keyRows[0]["requests"] as? Int == 4)

            let today = String(ISO8601DateFormatter().string(from: Date()).prefix(10))
            let byDay = try await harness.admin(.GET, "/admin/v1/usage?group_by=day&from=\(today)")
            let dayRows = try #require(try byDay.json()["data"] as? [[String: Any]])
            #expect(dayRows.map { $0["group"] as? String } == [today])
            #expect(dayRows[0]["requests"] as? Int == 5)

            let future = try await harness.admin(.GET, "/admin/v1/usage?from=2999-01-01")
            #expect(try (future.json()["data"] as? [Any])?.isEmpty == true)
            #expect(try await harness.admin(.GET, "/admin/v1/usage?group_by=planet").status == 400)
            #expect(try await harness.admin(.GET, "/admin/v1/usage?from=yesterday").status == 400)
            #expect(try await harness.admin(.GET, "/admin/v1/usage?from=2026-02-01&to=2026-01-01").status == 400)

            // last_used_at is recorded off the hot path, and shows in the key list.
            let deadline = ContinuousClock.now + .seconds(10)
            var lastUsed: Any?
            while ContinuousClock.now < deadline {
                let keys = try await harness.admin(.GET, "/admin/v1/tenants/\(tenant.tenantID)/keys")
                lastUsed = (try keys.json()["data"] as? [[String: Any]])?.first?["last_used_at"]
                if lastUsed is String { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(lastUsed is String)
        }
    }

    @Test func namesWithControlCharactersOrSeparatorsAreRefused() async throws {
        try await LiveHarness.run { harness in
            let tenant = try await harness.makeTenant()
            let session = try await harness.signUp(tenantID: tenant.tenantID)
            let names = [#"a\u0000b"#, #"\u0000"#, #"x\u001b[31mred"#, #"line\nbreak"#, "a/b", #"a\\b"#, #"bidi\u202Eevil"#, #"zero\u200Bwidth"#]
            for name in names {
                let tenantResponse = try await harness.admin(.POST, "/admin/v1/tenants", body: #"{"name":"\#(name)","tier":"enterprise"}"#)
                #expect(tenantResponse.status == 400, "tenant \(name): \(tenantResponse.text)")
                #expect(try tenantResponse.error()["param"] as? String == "name")
                let key = try await harness.admin(
                    .POST, "/admin/v1/tenants/\(tenant.tenantID)/keys", body: #"{"name":"\#(name)"}"#, token: session
                )
                #expect(key.status == 400, "key \(name): \(key.text)")
                let providerKey = try await harness.admin(
                    .POST, "/admin/v1/provider-keys", body: #"{"provider":"sim","key":"sk-x","label":"\#(name)"}"#
                )
                #expect(providerKey.status == 400, "label \(name): \(providerKey.text)")
                #expect(try providerKey.error()["param"] as? String == "label")
            }
            // Ordinary names, including non-Latin ones, are kept (in NFC).
            let accented = try await harness.admin(.POST, "/admin/v1/tenants", body: #"{"name":"Caf\u0065\u0301 Zürich 東京","tier":"enterprise"}"#)
            #expect(accented.status == 201, "\(accented.text)")
            #expect(try accented.json()["name"] as? String == "Caf\u{e9} Zürich 東京")
        }
    }

    @Test func invalidUTF8AndImpossibleDatesAreNamed() async throws {
        try await LiveHarness.run { harness in
            let bytes = Array(#"{"name":"caf"#.utf8) + [0xE9] + Array(#"","tier":"enterprise"}"#.utf8)
            let utf8 = try await harness.send(.POST, "/admin/v1/tenants", bytes: bytes, bearer: LiveHarness.adminToken)
            #expect(utf8.status == 400)
            #expect(try utf8.error()["code"] as? String == "invalid_utf8")
            for to in ["2026-11-01T25:00:00Z", "2026-02-30", "2026-13-01", "2026-11-01T10:60:00Z"] {
                let usage = try await harness.admin(.GET, "/admin/v1/usage?to=\(to)")
                #expect(usage.status == 400, "\(to): \(usage.text)")
                #expect(try usage.error()["param"] as? String == "to")
            }
            #expect(try await harness.admin(.GET, "/admin/v1/usage?to=2028-02-29T23:59:59Z").status == 200)
        }
    }
}

