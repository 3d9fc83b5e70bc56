import Foundation
import NIOCore
import Testing

@testable import Providers

// MARK: Harness

/// Relays engine streams and reads the client's side of them as an SDK would.
enum EngineStream {
    static let labels = ResponseLabels(id: "chatcmpl-req_engine1", created: 1_700_000_000, model: "engine-model")

    /// Relays `chunks` in front of an engine (or, with `engine` false, OpenAI) and finishes.
    static func relay(_ chunks: [[UInt8]], wantsUsage: Bool, engine: Bool = true) -> (output: [UInt8], relay: OpenAIStreamRelay) {
        var relay = OpenAIStreamRelay(clientWantsUsage: wantsUsage, labels: labels, engine: engine)
        var output: [UInt8] = []
        for chunk in chunks {
            var buffer = ByteBuffer()
            buffer.writeBytes(chunk)
            output += bytes(relay.translate(buffer))
        }
        output += bytes(relay.finish())
        return (output, relay)
    }

    static func relay(_ text: String, wantsUsage: Bool, engine: Bool = true) -> (output: String, relay: OpenAIStreamRelay) {
        let (output, relay) = relay([Array(text.utf8)], wantsUsage: wantsUsage, engine: engine)
        return (String(decoding: output, as: UTF8.self), relay)
    }

    /// What the client gets of upstream text: every `model` names the public model.
    static func named(_ text: String) -> String {
        String(decoding: renamingModel(Array(text.utf8), to: labels.model), as: UTF8.self)
    }

    static func named(_ texts: [String]) -> [String] {
        texts.map { named($0) }
    }

    static func named(_ bytes: [UInt8]) -> [UInt8] {
        renamingModel(bytes, to: labels.model)
    }

    /// `data: <json>` events, with a closing `[DONE]` when `done`.
    static func sse(_ chunks: [String], done: Bool) -> String {
        chunks.map { "data: \($0)\n\n" }.joined() + (done ? "data: [DONE]\n\n" : "")
    }

    /// The data of each event of an SSE byte stream.
    static func events(_ bytes: [UInt8]) -> [[UInt8]] {
        var parser = SSEParser()
        var buffer = ByteBuffer()
        buffer.writeBytes(bytes)
        var events = parser.feed(buffer)
        if let last = parser.finish() { events.append(last) }
        return events.map(\.data)
    }

    static func events(_ text: String) -> [String] {
        events(Array(text.utf8)).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The chunk objects of a stream, without `[DONE]`.
    static func chunks(_ bytes: [UInt8]) throws -> [[String: Any]] {
        try events(bytes).filter { $0 != Array("[DONE]".utf8) }.map { try foundationObject($0) }
    }

    // MARK: What an SDK assembles

    /// One tool call as the client's deltas described it.
    struct ToolCall {
        var ids: [String] = []
        var names: [String] = []
        var types: [String] = []
        var arguments = ""
        /// The keys of each delta after the first, and of their `function` objects.
        var laterKeys: [Set<String>] = []
        var laterFunctionKeys: [Set<String>] = []
    }

    struct Assembled {
        var content = ""
        var reasoning = ""
        var roles: [String] = []
        var toolCalls: [Int: ToolCall] = [:]
        var finishReasons: [String] = []
        var ids: [String] = []
        /// Chunks with no choices and a usage object.
        var usageChunks: [[String: Any]] = []
        /// Chunks with choices that also carry a (non-null) usage object.
        var usageOnChoices = 0
    }

    static func assemble(_ chunks: [[String: Any]]) -> Assembled {
        var result = Assembled()
        for chunk in chunks {
            result.ids.append(chunk["id"] as? String ?? "<missing>")
            let choices = chunk["choices"] as? [[String: Any]] ?? []
            if chunk["usage"] is [String: Any] {
                if choices.isEmpty { result.usageChunks.append(chunk) } else { result.usageOnChoices += 1 }
            }
            for choice in choices {
                if let reason = choice["finish_reason"] as? String { result.finishReasons.append(reason) }
                let delta = choice["delta"] as? [String: Any] ?? [:]
                result.content += delta["content"] as? String ?? ""
                result.reasoning += delta["reasoning_content"] as? String ?? ""
                if let role = delta["role"] as? String { result.roles.append(role) }
                for call in delta["tool_calls"] as? [[String: Any]] ?? [] {
                    let index = call["index"] as? Int ?? -1
                    var assembled = result.toolCalls[index] ?? ToolCall()
                    let function = call["function"] as? [String: Any] ?? [:]
                    if result.toolCalls[index] != nil {
                        assembled.laterKeys.append(Set(call.keys))
                        assembled.laterFunctionKeys.append(Set(function.keys))
                    }
                    if let id = call["id"] as? String { assembled.ids.append(id) }
                    if let type = call["type"] as? String { assembled.types.append(type) }
                    if let name = function["name"] as? String { assembled.names.append(name) }
                    assembled.arguments += function["arguments"] as? String ?? ""
                    result.toolCalls[index] = assembled
                }
            }
        }
        return result
    }
}

// MARK: Tests

@Suite("Engine quirks in streams")
struct EngineQuirksStreamTests {
    // Verbatim from observed-in-the-wild.md: llama.cpp llama-server, builds b6881 and b6097.
    static let llamaRole = #"{"choices":[{"finish_reason":null,"index":0,"delta":{"role":"assistant","content":null}}],"created":1762593253,"id":"chatcmpl-DHvcEyFobkuV4Xu1QSYo4bqNv18TDqaA","model":"gpt-oss:120b","system_fingerprint":"b6881-8b11deea4","object":"chat.completion.chunk"}"#
    static let llamaReasoning = #"{"choices":[{"finish_reason":null,"index":0,"delta":{"reasoning_content":"We"}}],"created":1762593253,"id":"chatcmpl-DHvcEyFobkuV4Xu1QSYo4bqNv18TDqaA","model":"gpt-oss:120b","system_fingerprint":"b6881-8b11deea4","object":"chat.completion.chunk"}"#
    static let llamaFinish = #"{"choices":[{"finish_reason":"stop","index":0,"delta":{}}],"created":1754524122,"id":"chatcmpl-yPk7z9nC22CofOlh100qQdHVEDMNYCb1","model":"gpt-oss:20b","system_fingerprint":"b6097-9515c613","object":"chat.completion.chunk","usage":{"completion_tokens":247,"prompt_tokens":1085,"total_tokens":1332},"timings":{"prompt_n":1085,"prompt_ms":203.378,"prompt_per_token_ms":0.18744516129032257,"prompt_per_second":5334.893646313762,"predicted_n":247,"predicted_ms":933.63,"predicted_per_token_ms":3.7798785425101213,"predicted_per_second":264.5587652496171}}"#
    static let llamaUsage = #"{"completion_tokens":247,"prompt_tokens":1085,"total_tokens":1332}"#

    // MARK: llama.cpp

    @Test("llama.cpp: role and reasoning chunks pass through; usage on the finish chunk becomes a usage chunk", arguments: [true, false])
    func llamaCppWantsUsage(upstreamSendsDone: Bool) {
        let input = EngineStream.sse([Self.llamaRole, Self.llamaReasoning, Self.llamaFinish], done: upstreamSendsDone)
        let (output, relay) = EngineStream.relay(input, wantsUsage: true)
        let finishWithoutUsage = Self.llamaFinish.replacingOccurrences(of: #""usage":\#(Self.llamaUsage),"#, with: "")
        #expect(finishWithoutUsage != Self.llamaFinish)
        let usageChunk = #"{"id":"chatcmpl-yPk7z9nC22CofOlh100qQdHVEDMNYCb1","object":"chat.completion.chunk","created":1754524122,"model":"gpt-oss:20b","choices":[],"usage":\#(Self.llamaUsage)}"#
        #expect(EngineStream.events(output) == EngineStream.named([Self.llamaRole, Self.llamaReasoning, finishWithoutUsage, usageChunk, "[DONE]"]))
        #expect(finishWithoutUsage.contains(#""timings":{"prompt_n":1085"#))
        #expect(relay.usage == TokenUsage(promptTokens: 1085, completionTokens: 247))
        #expect(relay.sawDone == upstreamSendsDone)
        #expect(relay.contentChunks == 3)
    }

    @Test("llama.cpp: usage on the finish chunk is cut when the client did not ask, still read", arguments: [true, false])
    func llamaCppNoUsage(upstreamSendsDone: Bool) {
        let input = EngineStream.sse([Self.llamaRole, Self.llamaReasoning, Self.llamaFinish], done: upstreamSendsDone)
        let (output, relay) = EngineStream.relay(input, wantsUsage: false)
        let finishWithoutUsage = Self.llamaFinish.replacingOccurrences(of: #""usage":\#(Self.llamaUsage),"#, with: "")
        #expect(EngineStream.events(output) == EngineStream.named([Self.llamaRole, Self.llamaReasoning, finishWithoutUsage, "[DONE]"]))
        #expect(relay.usage == TokenUsage(promptTokens: 1085, completionTokens: 247))
    }

    @Test("llama.cpp: the same stream in front of OpenAI is relayed as it is")
    func llamaCppAsOpenAI() {
        let input = EngineStream.sse([Self.llamaRole, Self.llamaReasoning, Self.llamaFinish], done: true)
        let (output, relay) = EngineStream.relay(input, wantsUsage: true, engine: false)
        #expect(output == EngineStream.named(input))
        #expect(relay.usage == TokenUsage(promptTokens: 1085, completionTokens: 247))
    }

    @Test("llama.cpp: identical output whatever the chunk boundaries")
    func llamaCppRechunked() {
        let input = Array(EngineStream.sse([Self.llamaRole, Self.llamaReasoning, Self.llamaFinish], done: false).utf8)
        for wantsUsage in [true, false] {
            let whole = EngineStream.relay([input], wantsUsage: wantsUsage).output
            for seed: UInt64 in 1...8 {
                #expect(EngineStream.relay(chunked(input, seed: seed, maximumChunk: [1, 5, 40][Int(seed) % 3]), wantsUsage: wantsUsage).output == whole)
            }
        }
    }

    // MARK: Missing [DONE]

    @Test("a finished stream without [DONE] still ends with [DONE]; an unfinished one does not")
    func missingDone() {
        let content = #"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}"#
        let finish = #"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#

        let (finished, finishedRelay) = EngineStream.relay(EngineStream.sse([content, finish], done: false), wantsUsage: false)
        #expect(finished == EngineStream.named(EngineStream.sse([content, finish], done: true)))
        #expect(!finishedRelay.sawDone)

        let (cutOff, _) = EngineStream.relay(EngineStream.sse([content], done: false), wantsUsage: false)
        #expect(cutOff == EngineStream.named(EngineStream.sse([content], done: false)))

        // The last event without its blank line still counts.
        let (unterminated, _) = EngineStream.relay("data: \(content)\n\ndata: \(finish)", wantsUsage: false)
        #expect(unterminated == EngineStream.named(EngineStream.sse([content, finish], done: true)))

        let error = #"{"error":{"message":"overloaded","type":"server_error"}}"#
        let (errored, erroredRelay) = EngineStream.relay(EngineStream.sse([content, finish, error], done: false), wantsUsage: false)
        let sent = #"{"error":{"message":"overloaded","type":"server_error","param":null,"code":null}}"#
        #expect(errored == EngineStream.named(EngineStream.sse([content, finish, sent], done: false)))
        #expect(erroredRelay.upstreamError != nil)

        let (openAI, _) = EngineStream.relay(EngineStream.sse([content, finish], done: false), wantsUsage: false, engine: false)
        #expect(openAI == EngineStream.named(EngineStream.sse([content, finish], done: false)))
    }

    @Test("with n > 1, [DONE] is added only once every choice finished")
    func missingDoneSeveralChoices() {
        let first = #"{"id":"c","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null},{"index":1,"delta":{"content":"b"},"finish_reason":null}]}"#
        let zeroDone = #"{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#
        let oneDone = #"{"id":"c","choices":[{"index":1,"delta":{},"finish_reason":"length"}]}"#
        #expect(!EngineStream.relay(EngineStream.sse([first, zeroDone], done: false), wantsUsage: false).output.hasSuffix("[DONE]\n\n"))
        #expect(EngineStream.relay(EngineStream.sse([first, zeroDone, oneDone], done: false), wantsUsage: false).output.hasSuffix("\n\ndata: [DONE]\n\n"))
    }

    // MARK: vLLM tool calls without an id

    @Test("vLLM: a tool call whose first delta has no id gets one, unique in the stream; later deltas pass untouched")
    func vllmToolCallWithoutID() throws {
        let head = #""id":"chatcmpl-v","object":"chat.completion.chunk","created":5,"model":"qwen""#
        let chunks = [
            #"{\#(head),"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#,
            #"{\#(head),"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"type":"function","function":{"name":"get_weather","arguments":""}}]},"logprobs":null,"finish_reason":null}]}"#,
            #"{\#(head),"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\": \"Oslo\"}"}}]},"logprobs":null,"finish_reason":null}]}"#,
            #"{\#(head),"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"name":"get_time","arguments":"{}"}}]},"logprobs":null,"finish_reason":null}]}"#,
            #"{\#(head),"choices":[{"index":0,"delta":{"tool_calls":[{"id":"","index":2,"type":null,"function":{"name":"get_date","arguments":"{}"}}]},"logprobs":null,"finish_reason":null}]}"#,
            #"{\#(head),"choices":[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"tool_calls"}]}"#,
        ]
        let (output, relay) = EngineStream.relay(EngineStream.sse(chunks, done: true), wantsUsage: false)
        let events = EngineStream.events(output)
        #expect(events.count == chunks.count + 1)
        #expect(events[0] == EngineStream.named(chunks[0]))
        #expect(events[1] == EngineStream.named(chunks[1].replacingOccurrences(of: #"{"index":0,"type""#, with: #"{"id":"call_0","index":0,"type""#)))
        #expect(events[2] == EngineStream.named(chunks[2]))
        #expect(events[3] == EngineStream.named(chunks[3].replacingOccurrences(of: #"{"index":1,"#, with: #"{"id":"call_1","type":"function","index":1,"#)))
        #expect(events[4] == EngineStream.named(chunks[4].replacingOccurrences(of: #""id":"","index":2,"type":null"#, with: #""id":"call_2","index":2,"type":"function""#)))
        #expect(events[5] == EngineStream.named(chunks[5]))

        let assembled = EngineStream.assemble(try EngineStream.chunks(Array(output.utf8)))
        #expect(assembled.toolCalls[0]?.ids == ["call_0"])
        #expect(assembled.toolCalls[1]?.ids == ["call_1"])
        #expect(assembled.toolCalls[2]?.ids == ["call_2"])
        #expect(assembled.toolCalls.values.allSatisfy { $0.types == ["function"] && $0.names.count == 1 })
        #expect(assembled.toolCalls[0]?.arguments == #"{"city": "Oslo"}"#)
        #expect(assembled.finishReasons == ["tool_calls"])
        #expect(relay.sawDone)
    }

    @Test("an engine's tool call keeps its own id; a later id or name for the same call is dropped")
    func upstreamToolCallIDKept() throws {
        let chunks = [
            #"{"id":"x","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_abc","type":"function","function":{"name":"f","arguments":""}}]}}]}"#,
            #"{"id":"x","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_xyz","function":{"arguments":"{}","name":"f"}}]}}]}"#,
            #"{"id":"x","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        ]
        let (output, _) = EngineStream.relay(EngineStream.sse(chunks, done: true), wantsUsage: false)
        let events = EngineStream.events(output)
        #expect(events[0] == chunks[0])
        #expect(events[1] == #"{"id":"x","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}]}"#)
        let assembled = EngineStream.assemble(try EngineStream.chunks(Array(output.utf8)))
        #expect(assembled.toolCalls[0]?.ids == ["call_abc"])
        #expect(assembled.toolCalls[0]?.names == ["f"])
        #expect(assembled.toolCalls[0]?.arguments == "{}")
    }

    // MARK: Finish reasons

    @Test("tool calls that end with finish_reason stop end with tool_calls; stop without tool calls stays")
    func stopAfterToolCalls() throws {
        let chunks = [
            #"{"id":"t","object":"chat.completion.chunk","created":9,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":null}]}"#,
            #"{"id":"t","object":"chat.completion.chunk","created":9,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"},{"index":1,"delta":{"content":"x"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":4}}"#,
        ]
        let (output, relay) = EngineStream.relay(EngineStream.sse(chunks, done: true), wantsUsage: true)
        #expect(EngineStream.events(output) == EngineStream.named([
            chunks[0],
            #"{"id":"t","object":"chat.completion.chunk","created":9,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"},{"index":1,"delta":{"content":"x"},"finish_reason":"stop"}]}"#,
            #"{"id":"t","object":"chat.completion.chunk","created":9,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}"#,
            "[DONE]",
        ]))
        #expect(relay.usage == TokenUsage(promptTokens: 3, completionTokens: 4))
    }

    @Test("after [DONE], a choice that never finished gets a finish chunk: delta or text, as the stream was")
    func finishChunkAdded() {
        let completions = #"{"id":"","object":"text_completion","created":3,"model":"m","choices":[{"index":0,"text":"hi","finish_reason":null}]}"#
        let (output, _) = EngineStream.relay(EngineStream.sse([completions], done: true), wantsUsage: false)
        #expect(EngineStream.events(output) == EngineStream.named([
            completions.replacingOccurrences(of: #""id":"""#, with: #""id":"chatcmpl-req_engine1""#),
            #"{"id":"chatcmpl-req_engine1","object":"text_completion","created":3,"model":"m","choices":[{"index":0,"text":"","finish_reason":"stop"}]}"#,
            "[DONE]",
        ]))
        let chat = #"{"choices":[{"index":0,"delta":{"content":"hi"}}]}"#
        #expect(EngineStream.events(EngineStream.relay(EngineStream.sse([chat], done: true), wantsUsage: false).output) == [
            chat,
            #"{"id":"chatcmpl-req_engine1","object":"chat.completion.chunk","created":1700000000,"model":"engine-model","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
            "[DONE]",
        ])
    }

    // MARK: Ids and roles

    @Test("an empty or null chunk id becomes the labels' id; a real one stays")
    func emptyChunkID() {
        let chunks = [
            #"{"id":"","choices":[{"index":0,"delta":{"content":"a"}}]}"#,
            #"{"choices":[{"index":0,"delta":{"content":"b"}}],"id":null}"#,
            #"{"id":"own","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
        ]
        let (output, _) = EngineStream.relay(EngineStream.sse(chunks, done: true), wantsUsage: false)
        #expect(EngineStream.events(output) == [
            #"{"id":"chatcmpl-req_engine1","choices":[{"index":0,"delta":{"content":"a"}}]}"#,
            #"{"choices":[{"index":0,"delta":{"content":"b"}}],"id":"chatcmpl-req_engine1"}"#,
            chunks[2],
            "[DONE]",
        ])
        #expect(EngineStream.relay(EngineStream.sse(chunks, done: true), wantsUsage: false, engine: false).output == EngineStream.sse(chunks, done: true))
    }

    @Test("a role repeated on every delta goes out once per choice")
    func repeatedRole() throws {
        let chunks = [
            #"{"id":"r","choices":[{"index":0,"delta":{"role":"assistant","content":"a"}},{"index":1,"delta":{"content":"x","role":"assistant"}}]}"#,
            #"{"id":"r","choices":[{"index":0,"delta":{"content":"b","role":"assistant"}},{"index":1,"delta":{"role":"assistant"}}]}"#,
        ]
        let (output, _) = EngineStream.relay(EngineStream.sse(chunks, done: false), wantsUsage: false)
        #expect(EngineStream.events(output) == [
            chunks[0],
            #"{"id":"r","choices":[{"index":0,"delta":{"content":"b"}},{"index":1,"delta":{}}]}"#,
        ])
    }

    @Test("an engine's own usage chunk after usage on the finish chunk is the only usage chunk")
    func usageTwice() throws {
        let finish = #"{"id":"u","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#
        let usage = #"{"id":"u","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#
        let (output, relay) = EngineStream.relay(EngineStream.sse([finish, usage], done: true), wantsUsage: true)
        let assembled = EngineStream.assemble(try EngineStream.chunks(Array(output.utf8)))
        #expect(assembled.usageChunks.count == 1)
        #expect(assembled.usageOnChoices == 0)
        #expect(EngineStream.events(output).last == "[DONE]")
        #expect(relay.usage == TokenUsage(promptTokens: 1, completionTokens: 2))
    }

    @Test("multi-line usage on a finish chunk makes a one-line usage chunk")
    func multiLineUsage() throws {
        let input = "data: {\"id\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":4,\ndata: \"completion_tokens\":5}}\n\n"
        let (output, relay) = EngineStream.relay(input, wantsUsage: true)
        let events = EngineStream.events(output)
        #expect(events.count == 3)
        #expect(!events[1].contains("\n"))
        let usage = try #require(try foundationObject(Array(events[1].utf8))["usage"] as? [String: Any])
        #expect(usage["completion_tokens"] as? Int == 5)
        #expect(relay.usage == TokenUsage(promptTokens: 4, completionTokens: 5))
    }
}
