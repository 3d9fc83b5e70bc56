import Foundation
import NIOCore
import Testing

@testable import Providers

@Suite("AnthropicStreamTranslator")
struct AnthropicStreamTranslatorTests {
    static let recordings = (try? AnthropicFixtures.streams()) ?? []
    static let seeds: [UInt64] = [1, 2, 3, 17, 2024]

    @Test("every recorded stream is found")
    func recordingsAreFound() throws {
        let names = Self.recordings.map(\.name)
        // 4 .sse files, 2 chunk files, 2 SSE bodies in recorded/, 1 cassette body (the
        // other cassette's body is parsed YAML, not SSE).
        #expect(names.count == 9, "\(names)")
        #expect(names.contains { $0.hasPrefix("anthropic/cassettes/pydantic-ai.thinking-stream.yaml") })
        for recording in Self.recordings {
            #expect(try AnthropicExpectation.events(recording.bytes).count >= 5, "\(recording.name)")
        }
    }

    // MARK: Recorded streams

    @Test("whatever the chunking, the output bytes are the same", arguments: recordings, [false, true])
    func chunkingDoesNotMatter(recording: AnthropicRecording, clientWantsUsage: Bool) {
        let whole = AnthropicRun.stream([recording.bytes], clientWantsUsage: clientWantsUsage).output
        #expect(!whole.isEmpty)
        for seed in Self.seeds {
            let chunks = chunked(recording.bytes, seed: seed)
            #expect(AnthropicRun.stream(chunks, clientWantsUsage: clientWantsUsage).output == whole, "seed \(seed)")
        }
        let bytewise = chunked(recording.bytes, seed: 99, maximumChunk: 3)
        #expect(AnthropicRun.stream(bytewise, clientWantsUsage: clientWantsUsage).output == whole)
    }

    @Test("the client gets the recording's content, calls, finish reason and usage", arguments: recordings, [false, true])
    func translatesRecording(recording: AnthropicRecording, clientWantsUsage: Bool) throws {
        let expected = try AnthropicExpectation(stream: recording.bytes)
        let (bytes, translator) = AnthropicRun.stream(chunked(recording.bytes, seed: 7), clientWantsUsage: clientWantsUsage)
        let output = OpenAIStreamOutput(bytes)
        let chunks = try output.chunks()

        #expect(try output.content() == expected.content)
        #expect(try output.calls() == expected.calls)
        #expect(translator.upstreamError == nil)
        #expect(translator.usage == expected.usage)
        #expect(translator.contentChunks == chunks.filter { Self.carriesOutput($0) }.count)

        // Role first; then the finish chunk, the usage chunk if asked for, and [DONE].
        let first = try #require(chunks.first)
        #expect(OpenAIStreamOutput.delta(first)["role"] as? String == "assistant")
        #expect(output.events.last == "[DONE]")
        let tail = Array(chunks.suffix(clientWantsUsage ? 2 : 1))
        let finish = try #require(tail.first)
        #expect(OpenAIStreamOutput.choice(finish)?["finish_reason"] as? String == expected.finishReason)
        let finishChunks = chunks.filter { OpenAIStreamOutput.choice($0)?["finish_reason"] is String }
        #expect(finishChunks.count == 1)
        if clientWantsUsage {
            let usageChunk = try #require(tail.last)
            #expect((usageChunk["choices"] as? [Any])?.isEmpty == true)
            #expect(try openAIUsage(usageChunk["usage"]) == expected.usage)
        } else {
            #expect(chunks.allSatisfy { $0["usage"] == nil })
        }

        for chunk in chunks {
            #expect(chunk["id"] as? String == AnthropicRun.labels.id)
            #expect(chunk["object"] as? String == "chat.completion.chunk")
            #expect(chunk["model"] as? String == AnthropicRun.labels.model, "the public model, not \(expected.model ?? "")")
        }
    }

    /// Whether a chunk carried content or a tool call.
    private static func carriesOutput(_ chunk: [String: Any]) -> Bool {
        let delta = OpenAIStreamOutput.delta(chunk)
        return !(delta["content"] as? String ?? "").isEmpty || delta["tool_calls"] != nil
    }

    @Test("a tool call without argument fragments ends with arguments {}")
    func toolWithoutArguments() throws {
        let recording = try #require(Self.recordings.first { $0.name.contains("tool-no-args") })
        let output = OpenAIStreamOutput(AnthropicRun.stream([recording.bytes], clientWantsUsage: false).output)
        let calls = try output.calls()
        #expect(calls.map(\.name) == ["updateIssueList"])
        #expect(calls.first?.arguments == "{}")
    }

    @Test("the OpenAI tool index counts tool blocks, not Anthropic's block index")
    func toolIndexIsStable() throws {
        let recording = try #require(Self.recordings.first { $0.name == "anthropic/sse/tool-use.anthropic-sdk-python.sse" })
        let output = OpenAIStreamOutput(AnthropicRun.stream([recording.bytes], clientWantsUsage: false).output)
        let indexes = try output.chunks().flatMap { chunk in
            (OpenAIStreamOutput.delta(chunk)["tool_calls"] as? [[String: Any]] ?? []).compactMap { $0["index"] as? Int }
        }
        // The tool_use block is Anthropic's block 1 (after a text block).
        #expect(!indexes.isEmpty)
        #expect(indexes.allSatisfy { $0 == 0 })
    }

    @Test("thinking and signature deltas send nothing")
    func thinkingIsNotContent() throws {
        let recording = try #require(Self.recordings.first { $0.name.contains("thinking-stream") })
        let text = String(decoding: AnthropicRun.stream([recording.bytes], clientWantsUsage: false).output, as: UTF8.self)
        #expect(text.contains("Here are"))
        #expect(!text.contains("straightforward question about"))
        #expect(!text.contains("EvMCCkYICxgCKkCHP2c"))
    }

    // MARK: Constructed streams

    static let start = #"event: message_start"# + "\n"
        + #"data: {"type":"message_start","message":{"model":"claude-x","usage":{"input_tokens":10,"cache_read_input_tokens":4,"cache_creation_input_tokens":2,"output_tokens":1}}}"#
        + "\n\n"
    static let textBlock = #"event: content_block_start"# + "\n"
        + #"data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"# + "\n\n"
        + "event: content_block_delta\n"
        + #"data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"# + "\n\n"
    static let end = "event: content_block_stop\n" + #"data: {"type":"content_block_stop","index":0}"# + "\n\n"
        + "event: message_delta\n"
        + #"data: {"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":7}}"# + "\n\n"
        + "event: message_stop\n" + #"data: {"type":"message_stop"}"# + "\n\n"

    @Test("usage joins message_start's input and cache counts with message_delta's output")
    func usageAcrossEvents() throws {
        let (output, translator) = AnthropicRun.stream(Self.start + Self.textBlock + Self.end, clientWantsUsage: true)
        let expected = TokenUsage(promptTokens: 16, cachedPromptTokens: 4, completionTokens: 7)
        #expect(translator.usage == expected)
        #expect(try openAIUsage(try output.chunks().last?["usage"]) == expected)
        #expect(OpenAIStreamOutput.choice(try output.chunks().dropLast().last!)?["finish_reason"] as? String == "length")
    }

    @Test("an error event is relayed as an OpenAI error and nothing follows", arguments: [
        #"{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}"#,
        #"{"type":"error","error":{"details":null,"type":"overloaded_error","message":"Overloaded"} }"#,
    ])
    func errorEvent(data: String) throws {
        let stream = Self.start + Self.textBlock + "event: error\ndata: \(data)\n\n" + Self.end
        let (output, translator) = AnthropicRun.stream(stream, clientWantsUsage: true)
        let error = try #require(translator.upstreamError)
        #expect(error.status == 503)
        #expect(error.type == "server_error")
        #expect(error.code == "overloaded")
        let last = try foundationObject(Array(try #require(output.events.last).utf8))
        #expect((last["error"] as? [String: Any])?["code"] as? String == "overloaded")
        #expect(!output.events.contains("[DONE]"))
        #expect(try output.content() == "Hi")
        #expect(try output.chunks().allSatisfy { OpenAIStreamOutput.choice($0)?["finish_reason"] as? String == nil })
    }

    @Test("a stream cut before message_stop ends with an error event", arguments: recordings)
    func cutStream(recording: AnthropicRecording) throws {
        let text = String(decoding: recording.bytes, as: UTF8.self)
        let cut = try #require(text.range(of: "event: message_stop"))
        let (output, translator) = AnthropicRun.stream(String(text[..<cut.lowerBound]), clientWantsUsage: true)
        let error = try #require(translator.upstreamError)
        #expect(error.type == "server_error")
        #expect(error.message == "upstream stream ended early")
        let last = try foundationObject(Array(try #require(output.events.last).utf8))
        #expect((last["error"] as? [String: Any])?["message"] as? String == "upstream stream ended early")
        #expect(!output.events.contains("[DONE]"))
        // What was reported before the cut still counts.
        #expect(translator.usage == (try AnthropicExpectation(stream: recording.bytes)).usage)
    }

    @Test("finish() after [DONE] or an error adds nothing")
    func finishAfterEnd() {
        var translator = AnthropicStreamTranslator(clientWantsUsage: false, labels: AnthropicRun.labels)
        _ = translator.translate(ByteBuffer(string: Self.start + Self.textBlock + Self.end))
        #expect(translator.finish().readableBytes == 0)
        #expect(translator.translate(ByteBuffer(string: Self.textBlock)).readableBytes == 0)
        #expect(translator.upstreamError == nil)
    }

    @Test("an event that is not JSON fails the stream instead of dropping output")
    func unreadableEvent() throws {
        let (output, translator) = AnthropicRun.stream(Self.start + "event: content_block_delta\ndata: {not json\n\n" + Self.end)
        #expect(translator.upstreamError?.status == 502)
        #expect(output.events.last?.contains(#""error""#) == true)
        #expect(!output.events.contains("[DONE]"))
    }

    @Test("unknown event and block types are skipped")
    func unknownEventsAreSkipped() throws {
        let extra = "event: brand_new\n" + #"data: {"type":"brand_new","index":0}"# + "\n\n"
            + "event: content_block_start\n"
            + #"data: {"type":"content_block_start","index":1,"content_block":{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{}}}"# + "\n\n"
            + "event: content_block_delta\n"
            + #"data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"q\":1}"}}"# + "\n\n"
        let (output, translator) = AnthropicRun.stream(Self.start + Self.textBlock + extra + Self.end)
        #expect(try output.content() == "Hi")
        #expect(try output.calls().isEmpty)
        #expect(translator.upstreamError == nil)
        #expect(output.events.last == "[DONE]")
    }
}
