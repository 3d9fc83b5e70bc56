import Foundation
import NIOCore
import Testing

@testable import Providers

@Suite("AnthropicAdapter responses")
struct AnthropicResponseTests {
    static let recordings = (try? AnthropicFixtures.messages()) ?? []

    private func translate(_ bytes: [UInt8]) throws -> (completion: [String: Any], usage: TokenUsage?) {
        let translated = try AnthropicAdapter().translateResponse(
            offsetBuffer(bytes), head: AnthropicRun.head(stream: false), labels: AnthropicRun.labels
        )
        return (try foundationObject(translated.body), translated.usage)
    }

    private func translate(_ json: String) throws -> (completion: [String: Any], usage: TokenUsage?) {
        try translate(Array(json.utf8))
    }

    private static func message(_ completion: [String: Any]) -> [String: Any] {
        ((completion["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any]) ?? [:]
    }

    @Test("every recorded answer is found")
    func recordingsAreFound() {
        // json/vercel.anthropic-text.json, 2 bodies of the rate-limit exchange, 1 before the 400.
        #expect(Self.recordings.count == 4, "\(Self.recordings.map(\.name))")
        #expect(AnthropicAdapter().translatesResponses)
    }

    @Test("content, tool calls, finish reason, usage and model are the recording's", arguments: recordings)
    func translatesRecording(recording: AnthropicRecording) throws {
        let expected = try AnthropicExpectation(message: recording.bytes)
        let (completion, usage) = try translate(recording.bytes)
        let message = Self.message(completion)
        let choice = try #require((completion["choices"] as? [[String: Any]])?.first)

        #expect(completion["id"] as? String == AnthropicRun.labels.id)
        #expect(completion["object"] as? String == "chat.completion")
        // The public model of the labels, never the upstream's.
        #expect(completion["model"] as? String == AnthropicRun.labels.model)
        #expect(expected.model != AnthropicRun.labels.model)
        #expect(message["role"] as? String == "assistant")
        #expect(message["content"] as? String == expected.content)
        if expected.content == nil { #expect(message["content"] is NSNull) }
        #expect(choice["finish_reason"] as? String == expected.finishReason)
        #expect(usage == expected.usage)
        #expect(try openAIUsage(completion["usage"]) == expected.usage)

        let calls = try (message["tool_calls"] as? [[String: Any]] ?? []).map { call in
            #expect(call["type"] as? String == "function")
            let function = try #require(call["function"] as? [String: Any])
            let arguments = try #require(function["arguments"] as? String)
            return AnthropicExpectation.Call(
                id: call["id"] as? String ?? "",
                name: function["name"] as? String ?? "",
                arguments: try canonicalJSON(Array(arguments.utf8))
            )
        }
        #expect(calls == expected.calls)
    }

    @Test("server tool blocks are not tool calls")
    func serverToolsAreLeftOut() throws {
        let recording = try #require(Self.recordings.first { $0.name.contains("200-with-ratelimit-headers.json[0]") })
        let message = Self.message(try translate(recording.bytes).completion)
        let calls = message["tool_calls"] as? [[String: Any]] ?? []
        #expect(calls.count == 1)
        #expect((calls.first?["function"] as? [String: Any])?["name"] as? String == "get_weather")
    }

    @Test("thinking is not content; cache reads and writes are prompt tokens")
    func thinkingAndCache() throws {
        let (completion, usage) = try translate(#"""
            {"id":"msg_1","type":"message","role":"assistant","model":"claude-y",
             "content":[{"type":"thinking","thinking":"hmm","signature":"sig"},{"type":"text","text":"A"},{"type":"text","text":"B"}],
             "stop_reason":"stop_sequence","stop_sequence":"###",
             "usage":{"input_tokens":3,"cache_read_input_tokens":100,"cache_creation_input_tokens":20,"output_tokens":9}}
            """#)
        #expect(Self.message(completion)["content"] as? String == "AB")
        #expect(usage == TokenUsage(promptTokens: 123, cachedPromptTokens: 100, completionTokens: 9))
    }

    @Test("stop reasons", arguments: [
        ("end_turn", "stop"), ("stop_sequence", "stop"), ("pause_turn", "stop"), ("max_tokens", "length"),
        ("tool_use", "tool_calls"), ("refusal", "content_filter"), ("model_context_window_exceeded", "length"),
    ])
    func stopReasons(stopReason: String, finishReason: String) throws {
        let (completion, _) = try translate(
            #"{"model":"m","content":[{"type":"text","text":"x"}],"stop_reason":"\#(stopReason)","usage":{"input_tokens":1,"output_tokens":1}}"#
        )
        #expect((completion["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String == finishReason)
    }

    @Test("a tool call without input has arguments {}; no text means null content")
    func toolOnly() throws {
        let (completion, _) = try translate(
            #"{"model":"m","content":[{"type":"tool_use","id":"toolu_1","name":"ping","input":{}}],"stop_reason":"tool_use","usage":{"input_tokens":1,"output_tokens":1}}"#
        )
        let message = Self.message(completion)
        #expect(message["content"] is NSNull)
        let call = try #require((message["tool_calls"] as? [[String: Any]])?.first)
        #expect((call["function"] as? [String: Any])?["arguments"] as? String == "{}")
        #expect(call["id"] as? String == "toolu_1")
    }

    @Test("an error body or an unreadable body throws")
    func unreadable() {
        #expect(throws: OpenAIError.self) { try translate("not json") }
        do {
            _ = try translate(#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#)
            Issue.record("expected an error")
        } catch let error as OpenAIError {
            #expect(error.status == 503)
            #expect(error.code == "overloaded")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}
