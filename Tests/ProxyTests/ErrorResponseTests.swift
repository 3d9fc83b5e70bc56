import AsyncHTTPClient
import Foundation
import NIOCore
import Testing

@testable import Billing
import Providers
@testable import Proxy

@Suite("Errors are OpenAI-shaped, with the right status, never a 500")
struct ErrorResponseTests {
    @Test func authenticationFailuresAre401InvalidAPIKey() async throws {
        try await LiveHarness.run { harness in
            let tenant = try await harness.makeTenant()
            let malformed = "sk-sy-short"
            let unknown = TenantKeySecret.generate().secret
            for bearer in [nil, malformed, unknown, "sk-other-provider-key"] as [String?] {
                let response = try await harness.send("/v1/chat/completions", body: chatBody(), bearer: bearer)
                #expect(response.status == 401, "\(bearer ?? "no key")")
                let error = try response.error()
                #expect(error["code"] as? String == "invalid_api_key")
                #expect(error["type"] as? String == "invalid_request_error")
                #expect(error["message"] is String)
                #expect(response.headers.first(name: "x-request-id") != nil)
            }
            // Revoked through the admin API: refused at once.
            #expect(try await harness.send("/v1/chat/completions", body: chatBody(), bearer: tenant.key).status == 200)
            let revoke = try await harness.admin(.DELETE, "/admin/v1/keys/\(tenant.keyID)")
            #expect(revoke.status == 200)
            #expect(try revoke.json()["status"] as? String == "revoked")
            let revoked = try await harness.send("/v1/chat/completions", body: chatBody(), bearer: tenant.key)
            #expect(revoked.status == 401)
            #expect(try revoked.error()["code"] as? String == "invalid_api_key")

            // Expired: stored with an expiry in the past.
            let secret = TenantKeySecret.generate()
            _ = try await harness.directory.createKey(
                tenantID: tenant.tenantID, name: "old", prefix: secret.prefix, secretHash: secret.hash,
                expiresAt: Date(timeIntervalSinceNow: -60)
            )
            let expired = try await harness.send("/v1/chat/completions", body: chatBody(), bearer: secret.secret)
            #expect(expired.status == 401)
        }
    }

    @Test func tenantScopedRoutesRequireTheKeysOwnTenant() async throws {
        try await LiveHarness.run { harness in
            let mine = try await harness.makeTenant(name: "mine")
            let other = try await harness.makeTenant(name: "other")
            let own = try await harness.send("/tenants/\(mine.tenantID)/v1/chat/completions", body: chatBody(), bearer: mine.key)
            #expect(own.status == 200, "\(own.text)")
            let byName = try await harness.send(.GET, "/tenants/mine/v1/models", bearer: mine.key)
            #expect(byName.status == 200)

            let foreign = try await harness.send("/tenants/\(other.tenantID)/v1/chat/completions", body: chatBody(), bearer: mine.key)
            let missing = try await harness.send("/tenants/ten_doesnotexist/v1/chat/completions", body: chatBody(), bearer: mine.key)
            #expect(foreign.status == 404)
            #expect(missing.status == 404)
            // Same answer whether or not the tenant exists.
            let foreignError = try foreign.error()
            let missingError = try missing.error()
            #expect(foreignError["code"] as? String == missingError["code"] as? String)
            #expect(foreignError["type"] as? String == missingError["type"] as? String)
        }
    }

    @Test func badRequestsGetTheRightStatus() async throws {
        try await LiveHarness.run(maximumRequestBodyBytes: 64 << 10) { harness in
            let tenant = try await harness.makeTenant()
            let cases: [(String, String?, Int, String?)] = [
                ("/v1/chat/completions", "{not json", 400, nil),
                ("/v1/chat/completions", "", 400, nil),
                ("/v1/chat/completions", "[1,2]", 400, nil),
                ("/v1/chat/completions", #"{"messages":[]}"#, 400, nil),
                ("/v1/chat/completions", #"{"model":42}"#, 400, nil),
                ("/v1/chat/completions", #"{"model":"chat-small","stream":"yes"}"#, 400, nil),
                ("/v1/chat/completions", #"{"model":"chat-small","max_tokens":-1}"#, 400, nil),
                ("/v1/embeddings", #"{"model":"embed-small","input":"x","stream":true}"#, 400, nil),
                ("/v1/chat/completions", chatBody(model: "no-such-model"), 404, "model_not_found"),
                ("/v1/no-such-route", "{}", 404, "unknown_url"),
            ]
            for (path, body, status, code) in cases {
                let response = try await harness.send(path, body: body, bearer: tenant.key)
                #expect(response.status == status, "\(path) \(body ?? "")")
                let error = try response.error()
                #expect(error["message"] is String)
                #expect(error["type"] is String)
                if let code { #expect(error["code"] as? String == code) }
            }
            let huge = #"{"model":"chat-small","messages":[{"role":"user","content":""# + String(repeating: "x", count: 100_000) + #""}]}"#
            let tooLarge = try await harness.send("/v1/chat/completions", body: huge, bearer: tenant.key)
            #expect(tooLarge.status == 413)
            #expect(try tooLarge.error()["code"] as? String == "request_too_large")

            let wrongMethod = try await harness.send(.GET, "/v1/chat/completions", bearer: tenant.key)
            #expect(wrongMethod.status == 405)
            #expect(try wrongMethod.error()["code"] as? String == "method_not_allowed")
        }
    }

    @Test func nothingAClientSendsYieldsA500() async throws {
        try await LiveHarness.run { harness in
            let tenant = try await harness.makeTenant()
            let deep = String(repeating: "[", count: 100_000)
            let bodies: [[UInt8]] = [
                Array("null".utf8), Array("{}".utf8), Array("\"model\"".utf8), Array(deep.utf8),
                Array(#"{"model":"chat-small","messages":"#.utf8) + Array(deep.utf8),
                [0x7B, 0x22, 0x6D, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D],
                Array(#"{"model":"chat-small","messages":"not a list"}"#.utf8),
                Array(#"{"model":"chat-small","stream_options":5,"stream":true}"#.utf8),
                Array(#"{"model":"chat-small","max_tokens":1e400}"#.utf8),
                Array(#"{"model":"chat\u0000small"}"#.utf8),
                Array(#"{"model":"chat-small","messages":[{"role":"user","content":"hi"}],"max_tokens":99999999999999999999}"#.utf8),
            ]
            for body in bodies {
                for path in ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/admin/v1/tenants"] {
                    let bearer = path.hasPrefix("/admin") ? LiveHarness.adminToken : tenant.key
                    let response = try await harness.send(path, bytes: body, bearer: bearer)
                    #expect(response.status < 500, "\(path) \(String(decoding: body.prefix(60), as: UTF8.self)) -> \(response.status) \(response.text)")
                    #expect(try response.json()["error"] != nil || response.status < 300)
                }
            }
            // Still serving afterwards.
            #expect(try await harness.send("/v1/chat/completions", body: chatBody(), bearer: tenant.key).status == 200)
        }
    }

    @Test func outputTokenLimitsBeyondAnyModelAreA400NotACrash() async throws {
        try await LiveHarness.run { harness in
            let unlimited = try await harness.makeTenant()
            let limited = try await harness.makeTenant(tier: "two-hundred-tokens")
            for tenant in [unlimited, limited] {
                for name in ["max_tokens", "max_completion_tokens"] {
                    for value in ["9223372036854775807", "9223372036854775806", "16777217"] {
                        let paths = [
                            ("/v1/chat/completions", #""messages":[{"role":"user","content":"hi"}]"#),
                            ("/v1/completions", #""prompt":"hi""#),
                            ("/tenants/\(tenant.tenantID)/v1/chat/completions", #""messages":[{"role":"user","content":"hi"}]"#),
                            ("/tenants/\(tenant.tenantID)/v1/completions", #""prompt":"hi""#),
                        ]
                        for (path, rest) in paths {
                            let body = #"{"model":"chat-small",\#(rest),"\#(name)":\#(value)}"#
                            let response = try await harness.send(path, body: body, bearer: tenant.key)
                            #expect(response.status == 400, "\(path) \(name)=\(value): \(response.status) \(response.text)")
                            #expect(try response.error()["param"] as? String == name)
                        }
                    }
                }
            }
            // Still serving, and the largest accepted value is admitted like any other.
            #expect(try await harness.send("/v1/chat/completions", body: chatBody(), bearer: limited.key).status == 200)
            let ceiling = chatBody(maxTokens: InferenceRequestHead.largestOutputTokens)
            let refused = try await harness.send("/v1/chat/completions", body: ceiling, bearer: limited.key)
            #expect(refused.status == 429, "more than the tier's tokens per minute: \(refused.text)")
        }
    }

    @Test func aDeploymentsOutputCeilingRoutesAroundItOrIsA400() async throws {
        try await LiveHarness.run { harness in
            let tenant = try await harness.makeTenant()
            let within = try await harness.send("/v1/chat/completions", body: chatBody(model: "chat-capped", maxTokens: 100), bearer: tenant.key)
            #expect(within.status == 200)
            let withinEvent = try await harness.usageEvent(requestID: try #require(within.headers.first(name: "x-request-id")))
            #expect(withinEvent.deployment == "capped-llama")

            let beyond = try await harness.send("/v1/chat/completions", body: chatBody(model: "chat-capped", maxTokens: 101), bearer: tenant.key)
            #expect(beyond.status == 200)
            let beyondEvent = try await harness.usageEvent(requestID: try #require(beyond.headers.first(name: "x-request-id")))
            #expect(beyondEvent.deployment == "sim-llama", "the capped deployment is skipped")

            let body = #"{"model":"chat-capped-only","messages":[{"role":"user","content":"hi"}],"max_completion_tokens":101}"#
            let refused = try await harness.send("/v1/chat/completions", body: body, bearer: tenant.key)
            #expect(refused.status == 400)
            let error = try refused.error()
            #expect(error["param"] as? String == "max_completion_tokens")
            #expect((error["message"] as? String)?.contains("100") == true)
        }
    }
}
