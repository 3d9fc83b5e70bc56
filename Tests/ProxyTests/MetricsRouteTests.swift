import Foundation
import Testing

@testable import Proxy

@Suite("Prometheus /metrics")
struct MetricsRouteTests {
    @Test func metricsCountRequestsTokensAndRefusals() async throws {
        try await LiveHarness.run { harness in
            let tenant = try await harness.makeTenant()
            let response = try await harness.send("/v1/chat/completions", body: chatBody(), bearer: tenant.key)
            let usage = try #require(try response.json()["usage"] as? [String: Any])
            _ = try await harness.usageEvent(requestID: try #require(response.headers.first(name: "x-request-id")))
            _ = try await harness.send("/v1/chat/completions", body: chatBody(), bearer: "sk-sy-wrong")

            let metrics = try await harness.send(.GET, "/metrics")
            #expect(metrics.status == 200)
            let text = metrics.text
            #expect(text.contains(#"switchyard_upstream_requests_total{model="chat-small",deployment="sim-llama",status="200"} 1"#), "\(text)")
            let completion = try #require(usage["completion_tokens"] as? Int)
            #expect(text.contains(#"switchyard_tokens_total{model="chat-small",deployment="sim-llama",kind="completion",tier="enterprise"} \#(completion)"#), "\(text)")
            let event = try await harness.usageEvent(requestID: try #require(response.headers.first(name: "x-request-id")))
            #expect(event.costMicros > 0)
            #expect(text.contains(#"switchyard_cost_micros_total{model="chat-small",deployment="sim-llama",tier="enterprise",currency="\#(event.currency)"} \#(event.costMicros)"#))
            #expect(text.contains(#"switchyard_engine_slots{pool="fast",replica=""#))
            #expect(text.contains(#"switchyard_http_responses_total{status="401"} 1"#))
            #expect(text.contains("switchyard_request_duration_seconds_bucket"))
            #expect(text.contains("switchyard_engine_in_flight"))
            #expect(!text.contains(tenant.tenantID), "metrics never name tenants")
        }
    }

    @Test("a tenant's live figures count its answers and its refusals before admission, on the data plane and the router",
          arguments: [true, false])
    func tenantFiguresCountRefusals(dataPlane: Bool) async throws {
        try await LiveHarness.run(dataPlane: dataPlane) { harness in
            let tenant = try await harness.makeTenant()
            let answered = try await harness.send("/v1/chat/completions", body: chatBody(), bearer: tenant.key)
            #expect(answered.status == 200)
            let usage = try #require(try answered.json()["usage"] as? [String: Any])
            let refused = try await harness.send("/v1/chat/completions", body: chatBody(model: "no-such-model"), bearer: tenant.key)
            #expect(refused.status == 404)
            let errorType = try #require((try refused.json()["error"] as? [String: Any])?["type"] as? String)

            var figures: [String: Any] = [:]
            let deadline = ContinuousClock.now + .seconds(10)
            repeat {
                let response = try await harness.admin(.GET, "/admin/v1/tenants/\(tenant.tenantID)/metrics")
                #expect(response.status == 200, "\(response.text)")
                figures = try response.json()
                if (figures["last_minute"] as? [String: Any])?["requests"] as? Int == 2 { break }
                try await Task.sleep(for: .milliseconds(20))
            } while ContinuousClock.now < deadline
            let minute = try #require(figures["last_minute"] as? [String: Any])
            #expect(minute["requests"] as? Int == 2)
            #expect(minute["completion_tokens"] as? Int == usage["completion_tokens"] as? Int)
            #expect(minute["errors"] as? [String: Int] == [errorType: 1])
            #expect(figures["in_flight"] as? Int == 0 && figures["queued"] as? Int == 0)
            #expect(figures["queue_position"] is NSNull)
        }
    }
}
