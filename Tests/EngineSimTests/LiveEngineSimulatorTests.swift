import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

@testable import EngineSim

/// Tests against the real server on an ephemeral port.
@Suite struct LiveEngineSimulatorTests {
    @Test func reportsTheBoundPortAndServes() async throws {
        let reported = PortBox()
        let app = makeUnpacedSimulator().makeApplication { port in
            await reported.set(port)
        }
        try await app.test(.live) { client in
            let port = await reported.port
            #expect(port != nil && port == client.port)
            let request = #"{"model":"m","messages":[{"role":"user","content":"hello"}],"stream":true}"#
            try await client.execute(uri: "/v1/chat/completions", method: .post, body: body(request)) { response in
                #expect(response.status == .ok)
                let events = try sseData(response.body)
                #expect(events.last == "[DONE]")
            }
        }
    }

    @Test func queuedRequestRunsWhenAClientThatGoesAwayFreesItsSlot() async throws {
        // Paced slowly enough that the stream would hold the only slot for minutes if the
        // disconnect went unnoticed; the test waits on the metrics, not on the clock.
        let simulator = EngineSimulator(
            configuration: .init(port: 0, timeToFirstToken: .zero, tokensPerSecond: 20, slots: 1),
            logger: Logger(label: "EngineSimTests")
        )
        try await simulator.makeApplication().test(.live) { client in
            let port = try #require(client.port)
            let leaving = TestClient(host: "localhost", port: port)
            leaving.connect()
            let long = #"{"model":"m","messages":[{"role":"user","content":"long"}],"max_tokens":4000,"stream":true}"#
            try await leaving.executeAndDontWaitForResponse(.init("/v1/chat/completions", method: .post, body: body(long)))
            #expect(try await waitForMetric("vllm:num_requests_running", 1, client))

            let queued = TestClient(host: "localhost", port: port)
            queued.connect()
            let short = #"{"model":"m","messages":[{"role":"user","content":"next"}],"max_tokens":1}"#
            async let queuedResponse = queued.execute(.init("/v1/chat/completions", method: .post, body: body(short)))
            #expect(try await waitForMetric("vllm:num_requests_waiting", 1, client))

            try await leaving.shutdown()
            let response = try await queuedResponse
            #expect(response.status == .ok)
            #expect(try await waitForMetric("vllm:num_requests_running", 0, client))
            #expect(try await waitForMetric("vllm:num_requests_waiting", 0, client))
            try await queued.shutdown()
        }
    }

    /// Polls `/metrics` until the gauge `name` reads `value`; false if it never does.
    private func waitForMetric(_ name: String, _ value: Int, _ client: some TestClientProtocol) async throws -> Bool {
        let line = "\(name){model_name=\"\(EngineSimulator.servedModelName)\"} \(Double(value))\n"
        for _ in 0..<400 {
            let text = try await client.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
            if text.contains(line) {
                return true
            }
            try await Task.sleep(for: .milliseconds(25))
        }
        return false
    }
}

private actor PortBox {
    private(set) var port: Int?

    func set(_ port: Int) {
        self.port = port
    }
}
