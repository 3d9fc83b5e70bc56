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
}
