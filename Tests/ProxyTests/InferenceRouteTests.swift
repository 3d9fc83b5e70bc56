import AsyncHTTPClient
import Foundation
import NIOCore
import Testing

@testable import Proxy

@Suite("Inference routes, live against the engine simulator")
struct InferenceRouteTests {
    @Test func nonStreamingChatIsRelayedAndMeteredExactly() async throws {
        try await LiveHarness.run { harness in
            let tenant = try await harness.makeTenant()
            let response = try await harness.send("/v1/chat/completions", body: chatBody(), bearer: tenant.key)
            #expect(response.status == 200, "\(response.text)")
            let requestID = try #require(response.headers.first(name: "x-request-id"))
            let json = try response.json()
            let choices = try #require(json["choices"] as? [[String: Any]])
            let content = try #require((choices.first?["message"] as? [String: Any])?["content"] as? String)
            #expect(!content.isEmpty)
            #expect(json["model"] as? String == "chat-small", "the answer names the public model, not the deployment's")
            let usage = try #require(json["usage"] as? [String: Any])
            let prompt = try #require(usage["prompt_tokens"] as? Int)
            let completion = try #require(usage["completion_tokens"] as? Int)

            let event = try await harness.usageEvent(requestID: requestID)
            #expect(event.tenantID == tenant.tenantID)
            #expect(event.tenantKeyID == tenant.keyID)
            #expect(event.model == "chat-small")
            #expect(event.deployment == "sim-llama")
            #expect(event.provider == "sim")
            #expect(event.promptTokens == prompt)
            #expect(event.completionTokens == completion)
            #expect(!event.tokensEstimated)
            #expect(event.status == 200)
            #expect(!event.streamed)
            #expect(!event.clientAborted)
            // 1 USD and 2 USD per million in micro-units: prompt * 1 + completion * 2.
            #expect(event.costMicros == Int64(prompt + 2 * completion))
        }
    }

    @Test func streamWithoutIncludeUsageHidesUsageButMetersIt() async throws {
        try await LiveHarness.run { harness in
            let tenant = try await harness.makeTenant()
            let plain = try await harness.send("/v1/chat/completions", body: chatBody(), bearer: tenant.key)
            let plainJSON = try plain.json()
            let expectedContent = ((plainJSON["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String
            let expectedUsage = try #require(plainJSON["usage"] as? [String: Any])

            let response = try await harness.send("/v1/chat/completions", body: chatBody(stream: true), bearer: tenant.key)
            #expect(response.status == 200)
            #expect(response.headers.first(name: "content-type")?.hasPrefix("text/event-stream") == true)
            let events = response.events
            #expect(events.last == "[DONE]")
            #expect(!response.text.contains("\"usage\""), "the client did not ask for usage: \(response.text)")
            let content = try streamedContent(events)
            #expect(content == expectedContent)
            let finishReasons = try events.dropLast().compactMap { event -> String? in
                let chunk = try JSONSerialization.jsonObject(with: Data(event.utf8)) as? [String: Any]
                return ((chunk?["choices"] as? [[String: Any]])?.first?["finish_reason"]) as? String
            }
            #expect(finishReasons == ["length"])

            let requestID = try #require(response.headers.first(name: "x-request-id"))
            let event = try await harness.usageEvent(requestID: requestID)
            #expect(event.streamed)
            #expect(!event.tokensEstimated)
            #expect(event.promptTokens == expectedUsage["prompt_tokens"] as? Int)
            #expect(event.completionTokens == expectedUsage["completion_tokens"] as? Int)
            #expect(event.timeToFirstTokenMilliseconds != nil)
        }
    }

    @Test func streamWithIncludeUsageKeepsTheUsageChunk() async throws {
        try await LiveHarness.run { harness in
            let tenant = try await harness.makeTenant()
            let response = try await harness.send("/v1/chat/completions", body: chatBody(stream: true, includeUsage: true), bearer: tenant.key)
            #expect(response.status == 200)
            let events = response.events
            #expect(events.last == "[DONE]")
            let usageChunk = try #require(try JSONSerialization.jsonObject(with: Data(events[events.count - 2].utf8)) as? [String: Any])
            #expect((usageChunk["choices"] as? [Any])?.isEmpty == true)
            let usage = try #require(usageChunk["usage"] as? [String: Any])
            let requestID = try #require(response.headers.first(name: "x-request-id"))
            let event = try await harness.usageEvent(requestID: requestID)
            #expect(event.promptTokens == usage["prompt_tokens"] as? Int)
            #expect(event.completionTokens == usage["completion_tokens"] as? Int)
        }
    }

    @Test func completionsAndEmbeddingsAreServedAndMetered() async throws {
        try await LiveHarness.run { harness in
            let tenant = try await harness.makeTenant()
            let completion = try await harness.send(
                "/v1/completions", body: #"{"model":"chat-small","prompt":"Once upon a time","max_tokens":4}"#, bearer: tenant.key
            )
            #expect(completion.status == 200, "\(completion.text)")
            #expect(try completion.json()["object"] as? String == "text_completion")
            let embedding = try await harness.send("/v1/embeddings", body: #"{"model":"embed-small","input":["a b c","d e"]}"#, bearer: tenant.key)
            #expect(embedding.status == 200, "\(embedding.text)")
            let data = try #require(try embedding.json()["data"] as? [Any])
            #expect(data.count == 2)
            for response in [completion, embedding] {
                let event = try await harness.usageEvent(requestID: try #require(response.headers.first(name: "x-request-id")))
                #expect(event.promptTokens > 0)
                #expect(!event.tokensEstimated)
            }
        }
    }

    @Test func modelsListOnlyWhatTheTierAllows() async throws {
        try await LiveHarness.run { harness in
            let enterprise = try await harness.makeTenant(tier: "enterprise")
            let standard = try await harness.makeTenant(tier: "standard")
            func ids(_ key: String) async throws -> [String] {
                let response = try await harness.send(.GET, "/v1/models", bearer: key)
                #expect(response.status == 200)
                #expect(try response.json()["object"] as? String == "list")
                return try #require(try response.json()["data"] as? [[String: Any]]).compactMap { $0["id"] as? String }
            }
            #expect(try await ids(enterprise.key) == ["chat-capped", "chat-capped-only", "chat-dead", "chat-fallback", "chat-half-dead", "chat-slow", "chat-small", "embed-small"])
            #expect(try await ids(standard.key) == ["chat-small"])
            let outside = try await harness.send("/v1/chat/completions", body: chatBody(model: "embed-small"), bearer: standard.key)
            #expect(outside.status == 404)
            #expect(try outside.error()["code"] as? String == "model_not_found")
            let one = try await harness.send(.GET, "/v1/models/chat-small", bearer: standard.key)
            #expect(try one.json()["id"] as? String == "chat-small")
        }
    }

    @Test func fallbackSkipsAnUnreachableDeploymentAndAllDeadIs503() async throws {
        try await LiveHarness.run { harness in
            let tenant = try await harness.makeTenant()
            let fallback = try await harness.send("/v1/chat/completions", body: chatBody(model: "chat-fallback"), bearer: tenant.key)
            #expect(fallback.status == 200, "\(fallback.text)")
            let event = try await harness.usageEvent(requestID: try #require(fallback.headers.first(name: "x-request-id")))
            #expect(event.deployment == "sim-llama")

            let dead = try await harness.send("/v1/chat/completions", body: chatBody(model: "chat-dead"), bearer: tenant.key)
            #expect(dead.status == 503)
            #expect(try dead.error()["type"] as? String == "server_error")
            #expect(dead.headers.first(name: "x-request-id") != nil)
            // Both were served on the data plane, failing over there before the first byte.
            #expect(harness.server.dataPlane.requestsTaken == 2)
        }
    }

    @Test func clientDisconnectMidStreamCancelsUpstreamAndIsMetered() async throws {
        try await LiveHarness.run { harness in
            let tenant = try await harness.makeTenant()
            var request = HTTPClientRequest(url: harness.baseURL + "/v1/chat/completions")
            request.method = .POST
            request.headers.add(name: "authorization", value: "Bearer \(tenant.key)")
            request.body = .bytes(ByteBuffer(string: chatBody(model: "chat-slow", stream: true, maxTokens: 400)))
            let client = HTTPClient(eventLoopGroupProvider: .singleton)
            let requestID: String
            do {
                let response = try await client.execute(request, timeout: .seconds(30))
                #expect(response.status == .ok)
                requestID = try #require(response.headers.first(name: "x-request-id"))
                var iterator = response.body.makeAsyncIterator()
                var received = 0
                while received < 3, let chunk = try await iterator.next() {
                    received += chunk.readableBytes > 0 ? 1 : 0
                }
            }
            // Closing the client closes the connection mid-stream.
            try await client.shutdown()

            let event = try await harness.usageEvent(requestID: requestID)
            #expect(event.clientAborted)
            #expect(event.streamed)
            #expect(event.deployment == "slow-llama")
            #expect(event.completionTokens < 400)

            // The upstream request was cancelled too: the slow engine frees its slot.
            let deadline = ContinuousClock.now + .seconds(10)
            var running = -1
            while ContinuousClock.now < deadline {
                var metricsRequest = HTTPClientRequest(url: harness.slowEngineURL + "/metrics")
                metricsRequest.method = .GET
                let metrics = try await HTTPClient.shared.execute(metricsRequest, timeout: .seconds(5))
                let text = String(buffer: try await metrics.body.collect(upTo: 1 << 20))
                running = text.split(separator: "\n")
                    .first { $0.hasPrefix("vllm:num_requests_running") }
                    .flatMap { $0.split(separator: " ").last.flatMap { Double($0) } }
                    .map { Int($0) } ?? -1
                if running == 0 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(running == 0, "the upstream kept generating after the client left")
            // And Switchyard gave the replica back to its pool when the event was recorded.
            #expect(harness.server.topology.enginePools.values.allSatisfy { $0.inFlight.allSatisfy { $0 == 0 } })
            #expect(harness.server.dataPlane.requestsTaken == 1, "the stream went through the data plane")
        }
    }

    @Test func clientLeavingAWholeAnswerCancelsUpstreamAndIsMetered() async throws {
        try await LiveHarness.run { harness in
            let tenant = try await harness.makeTenant()
            var request = HTTPClientRequest(url: harness.baseURL + "/v1/chat/completions")
            request.method = .POST
            request.headers.add(name: "authorization", value: "Bearer \(tenant.key)")
            // 400 tokens at 20 a second: the answer would take 20 s.
            request.body = .bytes(ByteBuffer(string: chatBody(model: "chat-slow", maxTokens: 400)))
            let client = HTTPClient(eventLoopGroupProvider: .singleton)
            let whole = request
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { _ = try? await client.execute(whole, timeout: .seconds(60)) }
                try await harness.waitForSlowEngine(running: 1)
                // The client goes away while the answer is being generated.
                try await client.shutdown()
                try await group.waitForAll()
            }
            // The slow engine gives the request up long before its 20 s would have passed.
            try await harness.waitForSlowEngine(running: 0)
            let event = try await harness.awaitOnlyUsageEvent(model: "chat-slow")
            #expect(event.clientAborted)
            #expect(!event.streamed)
            #expect(event.status == 499)
            #expect(event.errorType == "client_closed_request")
            #expect(event.deployment == "slow-llama")
            #expect(event.tokensEstimated)
            #expect(event.promptTokens > 0, "the prompt was sent and is estimated")
            #expect(harness.server.topology.enginePools.values.allSatisfy { $0.inFlight.allSatisfy { $0 == 0 } })
            #expect(harness.server.dataPlane.requestsTaken == 1, "the request went through the data plane")
        }
    }
}

/// The concatenated `delta.content` of a chat stream's chunks.
func streamedContent(_ events: [String]) throws -> String {
    var content = ""
    for event in events where event != "[DONE]" {
        let chunk = try #require(try JSONSerialization.jsonObject(with: Data(event.utf8)) as? [String: Any])
        for choice in chunk["choices"] as? [[String: Any]] ?? [] {
            content += (choice["delta"] as? [String: Any])?["content"] as? String ?? ""
        }
    }
    return content
}
