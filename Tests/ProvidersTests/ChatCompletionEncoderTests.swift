import Foundation
import NIOCore
import Testing

@testable import Providers

@Suite("ChatCompletionEncoder")
struct ChatCompletionEncoderTests {
    let encoder = ChatCompletionEncoder(labels: ResponseLabels(id: "chatcmpl-req_1", created: 1_800_000_000, model: "claude \"x\""))

    func events(_ buffer: ByteBuffer) throws -> [[String: Any]] {
        let text = String(buffer: buffer)
        #expect(text.hasSuffix("\n\n"))
        return try text.components(separatedBy: "\n\n").dropLast().compactMap { event in
            try #require(event.hasPrefix("data: "))
            let payload = String(event.dropFirst(6))
            if payload == "[DONE]" { return ["done": true] }
            return try #require(try JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any])
        }
    }

    @Test func aStreamOfChunksParsesAsOpenAIChunks() throws {
        var buffer = ByteBuffer()
        encoder.roleChunk(into: &buffer)
        encoder.contentChunk("Hello \"world\"\n", into: &buffer)
        encoder.toolCallStartChunk(index: 0, id: "toolu_1", name: "get_weather", into: &buffer)
        encoder.toolCallArgumentsChunk(index: 0, fragment: "{\"city\":", into: &buffer)
        encoder.toolCallArgumentsChunk(index: 0, fragment: "\"Paris\"}", into: &buffer)
        encoder.finishChunk("tool_calls", into: &buffer)
        encoder.usageChunk(TokenUsage(promptTokens: 10, cachedPromptTokens: 4, completionTokens: 7, reasoningTokens: 2), into: &buffer)
        encoder.done(into: &buffer)
        let events = try events(buffer)
        #expect(events.count == 8)
        for event in events.dropLast() {
            #expect(event["id"] as? String == "chatcmpl-req_1")
            #expect(event["object"] as? String == "chat.completion.chunk")
            #expect(event["created"] as? Int == 1_800_000_000)
            #expect(event["model"] as? String == "claude \"x\"")
        }
        func delta(_ index: Int) -> [String: Any]? {
            ((events[index]["choices"] as? [[String: Any]])?.first?["delta"]) as? [String: Any]
        }
        #expect(delta(0)?["role"] as? String == "assistant")
        #expect(delta(1)?["content"] as? String == "Hello \"world\"\n")
        let start = (delta(2)?["tool_calls"] as? [[String: Any]])?.first
        #expect(start?["id"] as? String == "toolu_1")
        #expect((start?["function"] as? [String: Any])?["name"] as? String == "get_weather")
        let arguments = [3, 4].compactMap { index in
            ((delta(index)?["tool_calls"] as? [[String: Any]])?.first?["function"] as? [String: Any])?["arguments"] as? String
        }.joined()
        #expect(arguments == #"{"city":"Paris"}"#)
        #expect(((events[5]["choices"] as? [[String: Any]])?.first?["finish_reason"]) as? String == "tool_calls")
        let usage = try #require(events[6]["usage"] as? [String: Any])
        #expect(usage["prompt_tokens"] as? Int == 10)
        #expect(usage["total_tokens"] as? Int == 17)
        #expect((usage["prompt_tokens_details"] as? [String: Any])?["cached_tokens"] as? Int == 4)
        #expect((usage["completion_tokens_details"] as? [String: Any])?["reasoning_tokens"] as? Int == 2)
        #expect((events[6]["choices"] as? [Any])?.isEmpty == true)
        #expect(events[7]["done"] as? Bool == true)
    }

    @Test func aWholeCompletionWithToolCalls() throws {
        let body = encoder.completion(
            content: nil,
            toolCalls: [ToolCall(id: "call_0", name: "lookup", arguments: #"{"q":"x"}"#)],
            finishReason: "tool_calls",
            usage: TokenUsage(promptTokens: 3, completionTokens: 5)
        )
        let json = try #require(try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any])
        #expect(json["object"] as? String == "chat.completion")
        // The public model of the labels, whatever the upstream called it.
        #expect(json["model"] as? String == "claude \"x\"")
        let choice = try #require((json["choices"] as? [[String: Any]])?.first)
        #expect(choice["finish_reason"] as? String == "tool_calls")
        let message = try #require(choice["message"] as? [String: Any])
        #expect(message["content"] is NSNull)
        let call = try #require((message["tool_calls"] as? [[String: Any]])?.first)
        #expect((call["function"] as? [String: Any])?["arguments"] as? String == #"{"q":"x"}"#)
        #expect((json["usage"] as? [String: Any])?["completion_tokens"] as? Int == 5)
    }
}

@Suite("ChatRequest")
struct ChatRequestTests {
    func decode(_ json: String) throws(OpenAIError) -> ChatRequest {
        try ChatRequest.decode(ByteBuffer(string: json))
    }

    @Test func decodesTheFieldsAdaptersTranslate() throws {
        let request = try decode(#"""
            {"model":"m","messages":[
              {"role":"system","content":"be brief"},
              {"role":"user","content":[{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA","detail":"low"}}]},
              {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},
              {"role":"tool","tool_call_id":"call_1","content":"42"}],
             "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],
             "tool_choice":{"type":"function","function":{"name":"f"}},
             "response_format":{"type":"json_schema","json_schema":{"name":"s","schema":{"type":"object"},"strict":true}},
             "stop":"END","max_completion_tokens":9,"max_tokens":5,"temperature":0.5,"stream":true,"stream_options":{"include_usage":true},
             "store":false}
            """#)
        #expect(request.messages.count == 4)
        #expect(request.messages[1].content == .parts([.text("what is this?"), .imageURL(url: "data:image/png;base64,AAAA", detail: "low")]))
        #expect(request.messages[2].toolCalls?.first?.function.arguments == #"{"a":1}"#)
        #expect(request.messages[3].toolCallId == "call_1")
        #expect(request.toolChoice == .function(name: "f"))
        #expect(request.responseFormat == .jsonSchema(name: "s", schema: .object(["type": .string("object")]), strict: true))
        #expect(request.stop?.values == ["END"])
        #expect(request.maximumOutputTokens == 9)
        #expect(request.streamOptions?.includeUsage == true)
        #expect(request.presentKeys.contains("store"))
        #expect(request.presentKeys.contains("stream_options"))
    }

    @Test(arguments: [
        (#"{"messages":[]}"#, "model"),
        (#"{"model":"m"}"#, "messages"),
        (#"{"model":"m","messages":[{"content":"x"}]}"#, "messages[0].role"),
        (#"{"model":"m","messages":[],"temperature":"hot"}"#, "temperature"),
        (#"{"model":"m","messages":[],"tool_choice":"sometimes"}"#, "tool_choice"),
    ])
    func errorsNameTheField(json: String, param: String) {
        do {
            _ = try decode(json)
            Issue.record("accepted \(json)")
        } catch {
            #expect(error.status == 400)
            #expect(error.param == param, "\(error.message)")
        }
    }
}
