import Foundation
import NIOCore
import Testing

@testable import Providers

@Suite("OpenAIStreamRelay")
struct OpenAIStreamRelayTests {
    static let labels = ResponseLabels(id: "chatcmpl-req_relay", created: 1, model: "public-model")

    static let usageFixtures = [
        "openai/sse/chat-text-include_usage.newrelic.sse",
        "openai/sse/chat-tool-call-include_usage.pydantic-ai.sse",
    ]

    // MARK: Helpers

    /// Relays `chunks` and finishes; returns what the client got and the relay's state.
    private func relay(_ chunks: [[UInt8]], clientWantsUsage: Bool) -> (output: [UInt8], relay: OpenAIStreamRelay) {
        var relay = OpenAIStreamRelay(clientWantsUsage: clientWantsUsage, labels: Self.labels)
        var output: [UInt8] = []
        for chunk in chunks {
            var buffer = ByteBuffer()
            buffer.writeBytes(chunk)
            output += bytes(relay.translate(buffer))
        }
        output += bytes(relay.finish())
        return (output, relay)
    }

    private func relay(_ text: String, clientWantsUsage: Bool) -> (output: String, relay: OpenAIStreamRelay) {
        let (output, relay) = relay([Array(text.utf8)], clientWantsUsage: clientWantsUsage)
        return (String(decoding: output, as: UTF8.self), relay)
    }

    /// The data of each event of an SSE byte stream.
    private func eventData(_ bytes: [UInt8]) -> [[UInt8]] {
        var parser = SSEParser()
        var buffer = ByteBuffer()
        buffer.writeBytes(bytes)
        var events = parser.feed(buffer)
        if let last = parser.finish() { events.append(last) }
        return events.map(\.data)
    }

    /// The chunk objects of a stream, without `[DONE]`.
    private func chunkObjects(_ bytes: [UInt8]) throws -> [[String: Any]] {
        try eventData(bytes).filter { $0 != Array("[DONE]".utf8) }.map { try foundationObject($0) }
    }

    /// Everything the deltas of a stream said: content and tool call arguments.
    private func deltaText(_ chunks: [[String: Any]]) -> String {
        var text = ""
        for chunk in chunks {
            for choice in chunk["choices"] as? [[String: Any]] ?? [] {
                let delta = choice["delta"] as? [String: Any] ?? [:]
                text += delta["content"] as? String ?? ""
                for call in delta["tool_calls"] as? [[String: Any]] ?? [] {
                    let function = call["function"] as? [String: Any] ?? [:]
                    text += "[\(function["name"] as? String ?? "")]"
                    text += function["arguments"] as? String ?? ""
                }
            }
        }
        return text
    }

    /// The usage the fixture recorded, read with Foundation.
    private func recordedUsage(_ chunks: [[String: Any]]) throws -> TokenUsage {
        let usage = try #require(chunks.compactMap { $0["usage"] as? [String: Any] }.last)
        let prompt = usage["prompt_tokens_details"] as? [String: Any] ?? [:]
        let completion = usage["completion_tokens_details"] as? [String: Any] ?? [:]
        return TokenUsage(
            promptTokens: try #require(usage["prompt_tokens"] as? Int),
            cachedPromptTokens: prompt["cached_tokens"] as? Int ?? 0,
            completionTokens: try #require(usage["completion_tokens"] as? Int),
            reasoningTokens: completion["reasoning_tokens"] as? Int ?? 0
        )
    }

    // MARK: Recorded streams

    @Test("relays a stream unchanged when the client asked for usage", arguments: usageFixtures)
    func clientWantsUsage(path: String) throws {
        let input = try Fixtures.bytes(path)
        let inputChunks = try chunkObjects(input)
        let (output, relay) = relay([input], clientWantsUsage: true)

        #expect(output == renamingModel(input, to: "public-model"), "only the model's name changes")
        #expect(relay.usage == (try recordedUsage(inputChunks)))
        #expect(relay.sawDone)
        #expect(relay.upstreamError == nil)
        let withChoices = inputChunks.filter { !($0["choices"] as? [Any] ?? []).isEmpty }
        #expect(relay.contentChunks == withChoices.count)
    }

    @Test("takes the usage out when the client did not ask, still reading it", arguments: usageFixtures)
    func clientDoesNotWantUsage(path: String) throws {
        let input = try Fixtures.bytes(path)
        let inputChunks = try chunkObjects(input)
        let (output, relay) = relay([input], clientWantsUsage: false)
        let outputEvents = eventData(output)
        let outputChunks = try chunkObjects(output)

        #expect(relay.usage == (try recordedUsage(inputChunks)))
        #expect(relay.sawDone)
        #expect(outputEvents.last == Array("[DONE]".utf8))
        #expect(outputEvents.count == eventData(input).count - 1, "the usage chunk is gone")
        #expect(!String(decoding: output, as: UTF8.self).contains(#""usage""#))
        #expect(deltaText(outputChunks) == deltaText(inputChunks))
        #expect(!deltaText(outputChunks).isEmpty)

        // Every other chunk is the upstream's, less its `"usage":null`.
        let expectedChunks = inputChunks.filter { !($0["usage"] is [String: Any]) }.map { chunk in
            var chunk = chunk
            chunk.removeValue(forKey: "usage")
            chunk["model"] = "public-model"
            return NSDictionary(dictionary: chunk)
        }
        #expect(outputChunks.map { NSDictionary(dictionary: $0) } == expectedChunks)

        // Each event is framed as `data: …` and a blank line.
        let text = String(decoding: output, as: UTF8.self)
        #expect(text.hasSuffix("\n\n"))
        for event in text.components(separatedBy: "\n\n").dropLast() {
            #expect(event.hasPrefix("data: ") && !event.contains("\n"))
        }
    }

    @Test("re-chunking at random boundaries gives identical output", arguments: usageFixtures)
    func rechunked(path: String) throws {
        let input = try Fixtures.bytes(path)
        for wantsUsage in [true, false] {
            let (whole, wholeRelay) = relay([input], clientWantsUsage: wantsUsage)
            for seed: UInt64 in 1...16 {
                let maximum = [1, 3, 17, 100][Int(seed) % 4]
                let (output, relay) = relay(chunked(input, seed: seed, maximumChunk: maximum), clientWantsUsage: wantsUsage)
                #expect(output == whole, "seed \(seed), wantsUsage \(wantsUsage)")
                #expect(relay.usage == wholeRelay.usage)
                #expect(relay.contentChunks == wholeRelay.contentChunks)
                #expect(relay.sawDone)
            }
        }
    }

    @Test("a stream without usage relays unchanged and reports none, unless the client asked for usage")
    func noUsage() throws {
        let input = try Fixtures.bytes("openai/sse/chat-text-no-stream_options.newrelic.sse")
        let (output, quiet) = relay([input], clientWantsUsage: false)
        #expect(output == renamingModel(input, to: "public-model"))
        #expect(quiet.usage == nil)
        #expect(quiet.sawDone)
        #expect(quiet.contentChunks > 0)

        // A client that asked gets the estimate before [DONE], and so does the ledger.
        let (asked, estimating) = relay([input], clientWantsUsage: true)
        let chunks = try chunkObjects(asked)
        let usage = try #require(chunks.last?["usage"] as? [String: Any])
        #expect((chunks.last?["choices"] as? [Any])?.isEmpty == true)
        #expect(usage["completion_tokens"] as? Int == estimating.contentChunks)
        #expect(estimating.usage?.estimated == true)
        #expect(eventData(asked).last == Array("[DONE]".utf8))
        #expect(Array(asked.prefix(output.count - 14)) == Array(output.prefix(output.count - 14)), "the rest is as relayed")
    }

    // MARK: Azure

    /// The Azure model-router chunks as SSE: a `prompt_filter_results` chunk with
    /// `choices: []` and no usage first, `content_filter_results` on every choice.
    private func azureStream() throws -> (input: [UInt8], lines: [String]) {
        let lines = String(decoding: try Fixtures.bytes("openai/chunks/vercel.azure-model-router.chunks.txt"), as: UTF8.self)
            .split(separator: "\n").map(String.init)
        return (Array((lines.map { "data: \($0)\n\n" }.joined() + "data: [DONE]\n\n").utf8), lines)
    }

    @Test("Azure: filter results relay intact and usage is read from the last chunk", arguments: [true, false])
    func azureModelRouter(wantsUsage: Bool) throws {
        let (input, lines) = try azureStream()
        let inputChunks = try chunkObjects(input)
        #expect(inputChunks.first?["prompt_filter_results"] != nil)
        #expect((inputChunks.first?["choices"] as? [Any])?.isEmpty == true)

        let translator = OpenAIAdapter(kind: .azureOpenAI).makeStreamTranslator(
            head: try InferenceRequestHead.parse(
                ByteBuffer(string: #"{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":\#(wantsUsage)}}"#),
                endpoint: .chatCompletions
            ),
            labels: ResponseLabels(id: "chatcmpl-req_azure", created: 1, model: "m")
        )
        var relay = try #require(translator as? OpenAIStreamRelay)
        var output = bytes(relay.translate(ByteBuffer(bytes: input)))
        output += bytes(relay.finish())

        #expect(relay.usage == TokenUsage(promptTokens: 15, completionTokens: 78, reasoningTokens: 64))
        #expect(relay.sawDone)
        #expect(relay.upstreamError == nil)
        if wantsUsage {
            #expect(output == renamingModel(input, to: "m"))
            return
        }
        // Only the usage chunk goes, and the `"usage":null` of the others; the prompt
        // filter chunk (no choices, no usage) and every filter result stay as they were.
        let outputEvents = eventData(output).map { String(decoding: $0, as: UTF8.self) }
        #expect(outputEvents.count == lines.count)
        #expect(outputEvents.first == lines.first.map { String(decoding: renamingModel(Array($0.utf8), to: "m"), as: UTF8.self) })
        #expect(outputEvents.last == "[DONE]")
        let expected = lines.dropLast().map {
            String(decoding: renamingModel(Array($0.utf8), to: "m"), as: UTF8.self).replacingOccurrences(of: #","usage":null"#, with: "")
        }
        #expect(Array(outputEvents.dropLast()) == expected)
        #expect(expected.filter { $0.contains("content_filter_results") }.count == lines.count - 1)
    }

    // MARK: Engine-style and unusual chunks

    @Test("a chunk with choices and usage keeps its choices and loses usage when the client did not ask")
    func engineStyleUsage() throws {
        let chunk = #"{"id":"c1","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}"#
        let input = "data: \(chunk)\n\ndata: [DONE]\n\n"

        let (withoutUsage, relay) = relay(input, clientWantsUsage: false)
        #expect(relay.usage == TokenUsage(promptTokens: 5, completionTokens: 1))
        #expect(relay.contentChunks == 1)
        let data = eventData(Array(withoutUsage.utf8))
        #expect(data.count == 2)
        let object = try foundationObject(data[0])
        #expect(object["usage"] == nil)
        #expect(deltaText([object]) == "hi")
        #expect(object["id"] as? String == "c1")

        let (withUsage, usageRelay) = self.relay(input, clientWantsUsage: true)
        #expect(withUsage == input)
        #expect(usageRelay.usage == TokenUsage(promptTokens: 5, completionTokens: 1))
    }

    @Test("a usage-only chunk without a choices member is dropped when the client did not ask")
    func usageWithoutChoices() {
        let input = #"data: {"id":"c","usage":{"prompt_tokens":2,"completion_tokens":3}}"# + "\n\ndata: [DONE]\n\n"
        let (output, relay) = relay(input, clientWantsUsage: false)
        #expect(output == "data: [DONE]\n\n")
        #expect(relay.usage == TokenUsage(promptTokens: 2, completionTokens: 3))
        #expect(relay.contentChunks == 0)
    }

    @Test("usage:null members are cut wherever they sit")
    func nullUsageCut() throws {
        let chunks = [
            #"{"usage":null,"id":"a","choices":[]}"#,
            #"{"id":"b","usage":null,"choices":[{"index":0,"delta":{}}]}"#,
            #"{"id":"c","choices":[{"index":0,"delta":{}}] , "usage" : null }"#,
            #"{"usage":null}"#,
        ]
        let input = chunks.map { "data: \($0)\n\n" }.joined()
        let (output, _) = relay(input, clientWantsUsage: false)
        let data = eventData(Array(output.utf8))
        #expect(data.count == chunks.count)
        for (index, event) in data.enumerated() {
            var expected = try foundationObject(Array(chunks[index].utf8))
            expected.removeValue(forKey: "usage")
            #expect(NSDictionary(dictionary: try foundationObject(event)) == NSDictionary(dictionary: expected))
        }
    }

    @Test("keeps event names and non-JSON data; an upstream error is the last event, in Switchyard's encoding")
    func otherEvents() {
        let before = "event: custom\ndata: {\"x\":1}\n\ndata: not json\n\n"
        let input = before
            + "data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n"
            + "data: {\"x\":2}\n\n"
        let (output, relay) = relay(input, clientWantsUsage: false)
        #expect(output == before + "data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n")
        #expect(relay.upstreamError != nil)
        #expect(!relay.sawDone)
        #expect(relay.usage == nil)
    }

    @Test("finish() delivers a last event without its blank line")
    func finishDeliversLastEvent() {
        var relay = OpenAIStreamRelay(clientWantsUsage: false, labels: Self.labels)
        let first = relay.translate(ByteBuffer(string: "data: {\"choices\":[{\"index\":0}]}\n\ndata: [DONE]"))
        #expect(text(first) == "data: {\"choices\":[{\"index\":0}]}\n\n")
        #expect(!relay.sawDone)
        #expect(text(relay.finish()) == "data: [DONE]\n\n")
        #expect(relay.sawDone)
        #expect(relay.contentChunks == 1)
    }

    @Test("CRLF from the upstream is relayed as LF framing with the same events")
    func crlfUpstream() throws {
        let input = try Fixtures.bytes("openai/sse/chat-text-include_usage.newrelic.sse")
        let crlf = input.flatMap { $0 == 0x0A ? [UInt8(0x0D), 0x0A] : [$0] }
        #expect(relay([crlf], clientWantsUsage: true).output == renamingModel(input, to: "public-model"))
    }

    @Test(
        "multi-line data is relayed as multi-line data",
    )
    func multiLineData() {
        let input = "data: {\"choices\":[],\ndata: \"id\":\"x\"}\n\n"
        let (output, _) = relay(input, clientWantsUsage: true)
        #expect(eventData(Array(output.utf8)) == [Array("{\"choices\":[],\n\"id\":\"x\"}".utf8)])
    }

    // MARK: Cutting a member

    @Test(
        "memberWithSeparator leaves valid JSON wherever the member sits",
        arguments: [
            (#"{"usage":{"a":1},"id":"x","n":2}"#, #"{"id":"x","n":2}"#),
            (#"{"id":"x","usage":{"a":[1,2]},"n":2}"#, #"{"id":"x","n":2}"#),
            (#"{"id":"x","n":2,"usage":null}"#, #"{"id":"x","n":2}"#),
            (#"{"usage":null}"#, "{}"),
            (#"{ "usage" : null , "id" : "x" }"#, #"{  "id" : "x" }"#),
            ("{\"id\":\"x\" ,\n\t\"usage\":{\"a\":{\"b\":\",\"}}\n}", "{\"id\":\"x\" \n}"),
            (#"{"id":",","usage":1}"#, #"{"id":","}"#),
        ]
    )
    func memberWithSeparator(json: String, expected: String) throws {
        let bytes = Array(json.utf8)
        let remaining = try bytes.withUnsafeBytes { raw -> [UInt8] in
            let scanner = JSONScanner(raw)
            let members = try scanner.topLevelMembers()
            let usage = try #require(members.first { scanner.key($0, equals: "usage") })
            let cut = OpenAIStreamRelay.memberWithSeparator(usage, in: raw)
            return Array(bytes[..<cut.lowerBound] + bytes[cut.upperBound...])
        }
        #expect(String(decoding: remaining, as: UTF8.self) == expected)
        #expect(throws: Never.self) { try foundationObject(remaining) }
        #expect(withScanner(String(decoding: remaining, as: UTF8.self)) { (try? $0.topLevelMembers()) != nil })
    }
}
