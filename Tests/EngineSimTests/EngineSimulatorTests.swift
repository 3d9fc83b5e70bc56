import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@testable import EngineSim

@Suite struct EngineSimulatorTests {
    private let chatRequest = #"{"model":"chat-large","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say something about trains"}],"max_tokens":12}"#

    // MARK: Plain routes

    @Test func healthAndModels() async throws {
        let app = makeUnpacedSimulator().makeApplication()
        try await app.test(.router) { client in
            try await client.execute(uri: "/health", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "ok")
            }
            try await client.execute(uri: "/v1/models", method: .get) { response in
                #expect(response.status == .ok)
                let json = try jsonObject(response.body)
                #expect(json["object"] as? String == "list")
                let data = try #require(json["data"] as? [[String: Any]])
                #expect(data.first?["id"] as? String == EngineSimulator.servedModelName)
            }
        }
    }

    // MARK: Chat completions

    @Test func nonStreamingChatCompletion() async throws {
        let app = makeUnpacedSimulator().makeApplication()
        try await app.test(.router) { client in
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: jsonHeaders, body: body(chatRequest)) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/json")
                let json = try jsonObject(response.body)
                #expect(json["object"] as? String == "chat.completion")
                #expect((json["id"] as? String)?.hasPrefix("chatcmpl-") == true)
                #expect(json["model"] as? String == "chat-large")
                #expect(json["created"] is Int)
                let choice = try #require((json["choices"] as? [[String: Any]])?.first)
                let message = try #require(choice["message"] as? [String: Any])
                #expect(message["role"] as? String == "assistant")
                let content = try #require(message["content"] as? String)
                #expect(content.split(separator: " ").count == 12)
                #expect(choice["finish_reason"] as? String == "length")
                let usage = try #require(json["usage"] as? [String: Int])
                // "You are terse." (3) + "Say something about trains" (4) + 3 per message.
                #expect(usage == ["prompt_tokens": 13, "completion_tokens": 12, "total_tokens": 25])
            }
        }
    }

    @Test func sameRequestSameText() async throws {
        let app = makeUnpacedSimulator().makeApplication()
        try await app.test(.router) { client in
            let first = try await chatContent(client, chatRequest)
            let second = try await chatContent(client, chatRequest)
            #expect(first == second)
        }
    }

    @Test func maxCompletionTokensWinsAndDefaultLengthStops() async throws {
        let app = makeUnpacedSimulator(defaultMaxTokens: 5).makeApplication()
        try await app.test(.router) { client in
            let both = #"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":9,"max_completion_tokens":3}"#
            try await client.execute(uri: "/v1/chat/completions", method: .post, body: body(both)) { response in
                let usage = try #require(try jsonObject(response.body)["usage"] as? [String: Int])
                #expect(usage["completion_tokens"] == 3)
            }
            let neither = #"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#
            try await client.execute(uri: "/v1/chat/completions", method: .post, body: body(neither)) { response in
                let json = try jsonObject(response.body)
                #expect((json["usage"] as? [String: Int])?["completion_tokens"] == 5)
                #expect((json["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String == "stop")
            }
        }
    }

    @Test func streamingChatWithoutUsage() async throws {
        let app = makeUnpacedSimulator().makeApplication()
        try await app.test(.router) { client in
            let whole = try await chatContent(client, chatRequest)
            let streamRequest = chatRequest.replacingOccurrences(of: #""max_tokens":12"#, with: #""max_tokens":12,"stream":true"#)
            try await client.execute(uri: "/v1/chat/completions", method: .post, body: body(streamRequest)) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "text/event-stream")
                let events = try sseData(response.body)
                #expect(events.last == "[DONE]")
                let chunks = try events.dropLast().map { try jsonObject($0) }
                #expect(chunks.count == 1 + 12 + 1)
                #expect(chunks.allSatisfy { $0["object"] as? String == "chat.completion.chunk" && $0["usage"] == nil })
                #expect(Set(chunks.compactMap { $0["id"] as? String }).count == 1)

                let deltas = chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any] }
                #expect(deltas.first?["role"] as? String == "assistant")
                #expect(deltas.first?["content"] as? String == "")
                #expect(deltas.last?.isEmpty == true)
                let content = deltas.compactMap { $0["content"] as? String }.joined()
                #expect(content == whole)

                let finishReasons = chunks.map { ($0["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String }
                #expect(finishReasons.dropLast().allSatisfy { $0 == nil })
                #expect(finishReasons.last == "length")
            }
        }
    }

    @Test func streamingChatWithUsage() async throws {
        let app = makeUnpacedSimulator().makeApplication()
        try await app.test(.router) { client in
            let whole = try await chatContent(client, chatRequest)
            let streamRequest = chatRequest.replacingOccurrences(
                of: #""max_tokens":12"#,
                with: #""max_tokens":12,"stream":true,"stream_options":{"include_usage":true}"#
            )
            try await client.execute(uri: "/v1/chat/completions", method: .post, body: body(streamRequest)) { response in
                let events = try sseData(response.body)
                #expect(events.last == "[DONE]")
                let chunks = try events.dropLast().map { try jsonObject($0) }
                #expect(chunks.count == 1 + 12 + 1 + 1)
                // Every chunk before the last carries an explicit null usage, as vLLM and OpenAI send.
                #expect(chunks.dropLast().allSatisfy { $0["usage"] is NSNull })
                let last = try #require(chunks.last)
                #expect((last["choices"] as? [Any])?.isEmpty == true)
                #expect(last["usage"] as? [String: Int] == ["prompt_tokens": 13, "completion_tokens": 12, "total_tokens": 25])
                let content = chunks.compactMap {
                    (($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["content"] as? String
                }.joined()
                #expect(content == whole)
            }
        }
    }

    @Test func longUnpacedStreamsArriveWhole() async throws {
        let app = makeUnpacedSimulator().makeApplication()
        try await app.test(.router) { client in
            let request = #"{"model":"m","messages":[{"role":"user","content":"go on"}],"max_tokens":3000}"#
            let whole = try await chatContent(client, request)
            let streamRequest = request.replacingOccurrences(of: "3000", with: #"3000,"stream":true"#)
            try await client.execute(uri: "/v1/chat/completions", method: .post, body: body(streamRequest)) { response in
                let events = try sseData(response.body)
                #expect(events.count == 1 + 3000 + 1 + 1)
                let content = try events.dropLast().map {
                    ((try jsonObject($0)["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["content"] as? String
                }.compactMap { $0 }.joined()
                #expect(content == whole)
            }
        }
    }

    // MARK: Completions and embeddings

    @Test func textCompletions() async throws {
        let app = makeUnpacedSimulator().makeApplication()
        try await app.test(.router) { client in
            let request = #"{"model":"base-small","prompt":"Once upon a time","max_tokens":6}"#
            let text = try await client.execute(uri: "/v1/completions", method: .post, body: body(request)) { response in
                #expect(response.status == .ok)
                let json = try jsonObject(response.body)
                #expect(json["object"] as? String == "text_completion")
                #expect((json["id"] as? String)?.hasPrefix("cmpl-") == true)
                #expect(json["model"] as? String == "base-small")
                #expect(json["usage"] as? [String: Int] == ["prompt_tokens": 4, "completion_tokens": 6, "total_tokens": 10])
                let choice = try #require((json["choices"] as? [[String: Any]])?.first)
                #expect(choice["finish_reason"] as? String == "length")
                return try #require(choice["text"] as? String)
            }
            let streamRequest = #"{"model":"base-small","prompt":"Once upon a time","max_tokens":6,"stream":true,"stream_options":{"include_usage":true}}"#
            try await client.execute(uri: "/v1/completions", method: .post, body: body(streamRequest)) { response in
                let events = try sseData(response.body)
                #expect(events.last == "[DONE]")
                let chunks = try events.dropLast().map { try jsonObject($0) }
                #expect(chunks.count == 6 + 1 + 1)
                #expect(chunks.allSatisfy { $0["object"] as? String == "text_completion" })
                let streamed = chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first?["text"] as? String }.joined()
                #expect(streamed == text)
                #expect(chunks.last?["usage"] as? [String: Int] == ["prompt_tokens": 4, "completion_tokens": 6, "total_tokens": 10])
            }
        }
    }

    @Test func embeddingsAsFloatsAndBase64() async throws {
        let app = makeUnpacedSimulator().makeApplication()
        try await app.test(.router) { client in
            let request = #"{"model":"embed","input":["first input text","second"]}"#
            let floats = try await client.execute(uri: "/v1/embeddings", method: .post, body: body(request)) { response in
                #expect(response.status == .ok)
                let json = try jsonObject(response.body)
                #expect(json["object"] as? String == "list")
                #expect(json["usage"] as? [String: Int] == ["prompt_tokens": 4, "total_tokens": 4])
                let data = try #require(json["data"] as? [[String: Any]])
                #expect(data.map { $0["index"] as? Int } == [0, 1])
                let vectors = try data.map { try #require(($0["embedding"] as? [NSNumber])?.map(\.floatValue)) }
                for vector in vectors {
                    #expect(vector.count == EngineSimulator.embeddingDimensions)
                    #expect(abs(vector.reduce(0) { $0 + $1 * $1 } - 1) < 1e-4)
                }
                #expect(vectors[0] != vectors[1])
                return vectors[0]
            }
            let base64Request = #"{"model":"embed","input":"first input text","encoding_format":"base64"}"#
            try await client.execute(uri: "/v1/embeddings", method: .post, body: body(base64Request)) { response in
                let data = try #require(try jsonObject(response.body)["data"] as? [[String: Any]])
                let encoded = try #require(data.first?["embedding"] as? String)
                let bytes = try #require(Data(base64Encoded: encoded))
                let decoded = stride(from: 0, to: bytes.count, by: 4).map { offset in
                    Float(bitPattern: bytes[offset..<offset + 4].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
                }
                #expect(decoded == floats)
            }
        }
    }

    // MARK: Metrics

    @Test func metricsCountTokensUnderVLLMNames() async throws {
        let app = makeUnpacedSimulator(slots: 2).makeApplication()
        try await app.test(.router) { client in
            _ = try await chatContent(client, chatRequest)
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType]?.hasPrefix("text/plain") == true)
                let text = String(buffer: response.body)
                for (name, type) in [
                    ("vllm:num_requests_running", "gauge"), ("vllm:num_requests_waiting", "gauge"),
                    ("vllm:kv_cache_usage_perc", "gauge"), ("vllm:prompt_tokens_total", "counter"),
                    ("vllm:generation_tokens_total", "counter"),
                ] {
                    #expect(text.contains("# HELP \(name) "))
                    #expect(text.contains("# TYPE \(name) \(type)\n"))
                }
                let label = "{model_name=\"\(EngineSimulator.servedModelName)\"}"
                #expect(text.contains("vllm:num_requests_running\(label) 0.0\n"))
                #expect(text.contains("vllm:num_requests_waiting\(label) 0.0\n"))
                #expect(text.contains("vllm:kv_cache_usage_perc\(label) 0.0\n"))
                #expect(text.contains("vllm:prompt_tokens_total\(label) 13.0\n"))
                #expect(text.contains("vllm:generation_tokens_total\(label) 12.0\n"))
            }
        }
    }

    // MARK: Errors

    @Test func malformedJSONIs400() async throws {
        let app = makeUnpacedSimulator().makeApplication()
        try await app.test(.router) { client in
            for route in ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"] {
                for payload in [#"{"model": "m", "messages": ["#, "", "[1,2]", "\"just a string\"", "\u{0}\u{ff}"] {
                    try await client.execute(uri: route, method: .post, body: body(payload)) { response in
                        #expect(response.status == .badRequest)
                        let error = try #require(try jsonObject(response.body)["error"] as? [String: Any])
                        #expect(error["type"] as? String == "invalid_request_error")
                        #expect(error["message"] is String)
                        #expect(error.keys.contains("param") && error.keys.contains("code"))
                    }
                }
            }
        }
    }

    @Test func missingOrMistypedFieldsAre400WithTheParam() async throws {
        let app = makeUnpacedSimulator().makeApplication()
        let cases: [(String, String, String)] = [
            ("/v1/chat/completions", #"{"model":"m"}"#, "messages"),
            ("/v1/chat/completions", #"{"model":"m","messages":[]}"#, "messages"),
            ("/v1/chat/completions", #"{"model":"m","messages":[{"content":5}]}"#, "messages[0].content"),
            ("/v1/chat/completions", #"{"model":"m","messages":[{"content":"x"}],"max_tokens":"ten"}"#, "max_tokens"),
            ("/v1/completions", #"{"model":"m"}"#, "prompt"),
            ("/v1/completions", #"{"model":"m","prompt":{"a":1}}"#, "prompt"),
            ("/v1/embeddings", #"{"model":"m"}"#, "input"),
            ("/v1/embeddings", #"{"model":"m","input":[]}"#, "input"),
            ("/v1/embeddings", #"{"model":"m","input":"x","encoding_format":"int8"}"#, "encoding_format"),
        ]
        try await app.test(.router) { client in
            for (route, payload, param) in cases {
                try await client.execute(uri: route, method: .post, body: body(payload)) { response in
                    #expect(response.status == .badRequest, "\(payload)")
                    let error = try #require(try jsonObject(response.body)["error"] as? [String: Any])
                    #expect(error["param"] as? String == param, "\(payload)")
                }
            }
        }
    }

    @Test func unknownRouteIsOpenAIShaped404() async throws {
        let app = makeUnpacedSimulator().makeApplication()
        try await app.test(.router) { client in
            try await client.execute(uri: "/v1/nope", method: .post, body: body("{}")) { response in
                #expect(response.status == .notFound)
                let error = try #require(try jsonObject(response.body)["error"] as? [String: Any])
                #expect(error["type"] as? String == "invalid_request_error")
                #expect((error["message"] as? String)?.contains("/v1/nope") == true)
            }
            try await client.execute(uri: "/v1/chat/completions", method: .get) { response in
                #expect(response.status == .notFound)
                let json = try jsonObject(response.body)
                #expect(json["error"] is [String: Any])
            }
        }
    }

    // MARK: Helpers

    private func chatContent(_ client: some TestClientProtocol, _ request: String) async throws -> String {
        try await client.execute(uri: "/v1/chat/completions", method: .post, body: body(request)) { response in
            let json = try jsonObject(response.body)
            let message = (json["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any]
            return try #require(message?["content"] as? String)
        }
    }
}
