import AsyncHTTPClient
import Foundation
import NIOCore
import Testing

@testable import Proxy

@Suite("Scheduling, live: pinning, queue headers, the pools resource")
struct SchedulingRouteTests {
    @Test func aPinnedModelIsServedByItsDeploymentAloneAndNeverFallsBack() async throws {
        try await LiveHarness.run { harness in
            let tenant = try await harness.makeTenant()
            // Unpinned, chat-fallback steps past its unreachable first route.
            let free = try await harness.send("/v1/chat/completions", body: chatBody(model: "chat-fallback"), bearer: tenant.key)
            #expect(free.status == 200, "\(free.text)")

            let pinned = try await harness.admin(
                .PUT, "/admin/v1/tenants/\(tenant.tenantID)/pinning", body: #"{"chat-fallback":"dead-llama","chat-small":null}"#
            )
            #expect(pinned.status == 200, "\(pinned.text)")
            #expect(try pinned.json()["pinning"] as? [String: String] == ["chat-fallback": "dead-llama"])
            let shown = try await harness.admin(.GET, "/admin/v1/tenants/\(tenant.tenantID)")
            #expect(try shown.json()["pinning"] as? [String: String] == ["chat-fallback": "dead-llama"])

            // Pinned to the dead deployment: no fallback to the live one.
            let refused = try await harness.send("/v1/chat/completions", body: chatBody(model: "chat-fallback"), bearer: tenant.key)
            #expect(refused.status == 503, "\(refused.text)")
            let event = try await harness.usageEvent(requestID: try #require(refused.headers.first(name: "x-request-id")))
            #expect(event.deployment == "dead-llama")
            // The error names neither the deployment nor its engine.
            #expect(!refused.text.contains("dead-llama") && !refused.text.contains("upstream-dead"))

            let cleared = try await harness.admin(.PUT, "/admin/v1/tenants/\(tenant.tenantID)/pinning", body: "null")
            #expect(cleared.status == 200, "\(cleared.text)")
            #expect(try cleared.json()["pinning"] as? [String: String] == [:])
            let again = try await harness.send("/v1/chat/completions", body: chatBody(model: "chat-fallback"), bearer: tenant.key)
            #expect(again.status == 200, "\(again.text)")
        }
    }

    @Test func pinningNamesOnlyAModelsOwnDeployments() async throws {
        try await LiveHarness.run { harness in
            let tenant = try await harness.makeTenant()
            for (body, param) in [
                (#"{"no-such-model":"sim-llama"}"#, "no-such-model"),
                (#"{"no-such-model":null}"#, "no-such-model"),
                (#"{"chat-small":"slow-llama"}"#, "chat-small"),
                (#"{"chat-small":7}"#, nil),
                (#"["chat-small"]"#, nil),
            ] {
                let response = try await harness.admin(.PUT, "/admin/v1/tenants/\(tenant.tenantID)/pinning", body: body)
                #expect(response.status == 400, "\(body): \(response.text)")
                if let param { #expect(try response.error()["param"] as? String == param) }
            }
            let missing = try await harness.admin(.PUT, "/admin/v1/tenants/tn_missing/pinning", body: #"{}"#)
            #expect(missing.status == 404)
            let unauthorised = try await harness.admin(.PUT, "/admin/v1/tenants/\(tenant.tenantID)/pinning", body: #"{}"#, token: "nope")
            #expect(unauthorised.status == 401)
        }
    }

    @Test func answersFromAnEnginePoolCarryTheirQueueWait() async throws {
        try await LiveHarness.run { harness in
            let tenant = try await harness.makeTenant()
            let response = try await harness.send("/v1/chat/completions", body: chatBody(), bearer: tenant.key)
            #expect(response.status == 200)
            #expect(response.headers.first(name: "x-switchyard-queue-ms") == "0")
            let event = try await harness.usageEvent(requestID: try #require(response.headers.first(name: "x-request-id")))
            #expect(event.queueMilliseconds == 0)
            #expect(event.spilled == false)
        }
    }

    @Test func aFullPoolQueuesByBandAndTheQueueIsVisible() async throws {
        try await LiveHarness.run { harness in
            let standard = try await harness.makeTenant(tier: "enterprise")
            let enterprise = try await harness.makeTenant(tier: "enterprise")
            // The slow engine's pool has 4 slots: hold them all with long streams.
            let holders = (0..<4).map { _ in
                Task { try await harness.send("/v1/chat/completions", body: chatBody(model: "chat-slow", maxTokens: 60), bearer: standard.key) }
            }
            try await harness.waitForSlowEngine(running: 4)
            let waiting = Task {
                try await harness.send("/v1/chat/completions", body: chatBody(model: "chat-slow", maxTokens: 2), bearer: enterprise.key)
            }
            // Bounded: the fifth request waits in Switchyard's queue, not the engine's.
            var queued = 0
            for _ in 0..<500 where queued == 0 {
                let pools = try await harness.admin(.GET, "/admin/v1/pools").json()
                let slow = (pools["data"] as? [[String: Any]])?.first { $0["id"] as? String == "slow" }
                queued = slow?["queued"] as? Int ?? 0
                if queued == 0 { try await Task.sleep(for: .milliseconds(10)) }
            }
            #expect(queued == 1)
            let pools = try await harness.admin(.GET, "/admin/v1/pools").json()
            let slow = try #require((pools["data"] as? [[String: Any]])?.first { $0["id"] as? String == "slow" })
            #expect(slow["slots"] as? Int == 4 && slow["in_flight"] as? Int == 4 && slow["scheduling"] as? String == "contract")
            let tiers = try #require(slow["tiers"] as? [[String: Any]])
            #expect(tiers.first?["name"] as? String == "enterprise" && tiers.first?["queued"] as? Int == 1)
            let metrics = try await harness.send(.GET, "/metrics")
            #expect(metrics.text.contains(#"switchyard_queue_depth{pool="slow",tier="enterprise"} 1"#))
            for holder in holders { #expect(try await holder.value.status == 200) }
            let answered = try await waiting.value
            #expect(answered.status == 200)
            let waited = try #require(answered.headers.first(name: "x-switchyard-queue-ms").flatMap(Int.init))
            #expect(waited > 0)
            let event = try await harness.usageEvent(requestID: try #require(answered.headers.first(name: "x-request-id")))
            #expect(event.queueMilliseconds == waited)
        }
    }

    @Test func anUnreachableReplicaHandsItsSlotToTheNextReplicaOfThePool() async throws {
        try await LiveHarness.run { harness in
            let tenant = try await harness.makeTenant()
            // Two replicas of one slot each, the first unreachable: every request keeps the
            // slot it was given and is served by the second, none queues behind itself.
            for _ in 0..<4 {
                let response = try await harness.send("/v1/chat/completions", body: chatBody(model: "chat-half-dead"), bearer: tenant.key)
                #expect(response.status == 200, "\(response.text)")
                let event = try await harness.usageEvent(requestID: try #require(response.headers.first(name: "x-request-id")))
                #expect(event.deployment == "half-dead-llama" && event.status == 200)
            }
            let pool = try #require(harness.server.topology.enginePools["half-dead"])
            #expect(pool.snapshot.inFlight == 0 && pool.snapshot.waiting == 0)
            #expect(pool.inFlight == [0, 0])
        }
    }
}
