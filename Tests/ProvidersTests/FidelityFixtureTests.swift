import Foundation
import NIOCore
import Testing

@testable import Providers

/// The fidelity cases of `Tests/Fixtures` (built from the providers' documentation) and
/// the recorded Anthropic thinking stream, replayed whole and at seeded chunk boundaries.
@Suite("Fidelity fixtures")
struct FidelityFixtureTests {
    static let seeds: [UInt64] = [1, 2, 3, 4, 5, 6, 7, 8]

    static func labels(exposeReasoning: Bool = false) -> ResponseLabels {
        ResponseLabels(
            id: "chatcmpl-req_fidelity", created: 1_700_000_000, model: "chat-public", exposeReasoning: exposeReasoning,
            promptTokenEstimate: 17
        )
    }

    /// The translation of `bytes`, fed whole and then at every seeded chunking: all must
    /// give the same output.
    static func translate(
        _ bytes: [UInt8], _ make: () -> any StreamTranslator
    ) -> (output: [UInt8], translator: any StreamTranslator) {
        func run(_ chunks: [[UInt8]]) -> (output: [UInt8], translator: any StreamTranslator) {
            var translator = make()
            var output: [UInt8] = []
            for chunk in chunks {
                var buffer = ByteBuffer()
                buffer.writeBytes(chunk)
                output += Array(translator.translate(buffer).readableBytesView)
            }
            output += Array(translator.finish().readableBytesView)
            return (output, translator)
        }
        let whole = run([bytes])
        for seed in seeds {
            let split = run(chunked(bytes, seed: seed, maximumChunk: 9))
            #expect(split.output == whole.output, "seed \(seed)")
        }
        return whole
    }

    static func chunks(_ output: [UInt8]) throws -> (chunks: [[String: Any]], done: Bool) {
        var payloads = openAIEventPayloads(output)
        let done = payloads.last == "[DONE]"
        if done { payloads.removeLast() }
        return (try payloads.map { try foundationObject(Array($0.utf8)) }, done)
    }

    static func deltas(_ chunks: [[String: Any]]) -> [[String: Any]] {
        chunks.compactMap { (($0["choices"] as? [[String: Any]])?.first?["delta"]) as? [String: Any] }
    }

    static func gemini(exposeReasoning: Bool = false, usage: Bool = true) -> () -> any StreamTranslator {
        { GeminiStreamTranslator(labels: labels(exposeReasoning: exposeReasoning), clientWantsUsage: usage) }
    }

    // MARK: Errors inside a stream body

    @Test func geminiStreamEndingWithABareErrorEndsWithTheErrorEvent() throws {
        let (output, translator) = Self.translate(try Fixtures.own("gemini/stream-cancelled.built.sse"), Self.gemini())
        let (chunks, done) = try Self.chunks(output)
        #expect(!done, "no [DONE] after an error")
        #expect(!String(decoding: output, as: UTF8.self).contains(#""finish_reason":"stop""#))
        let error = try #require(chunks.last?["error"] as? [String: Any])
        #expect(error["code"] as? String == "upstream_cancelled")
        #expect(translator.upstreamError?.type == "server_error")
        #expect(try AnswerSummary.openAIChunks(Array(chunks.dropLast())).content == "The first half of the answer and then some")
    }

    @Test func openAIStreamEndingWithABareErrorEndsWithTheErrorEvent() throws {
        let (output, translator) = Self.translate(try Fixtures.own("openai/chat-stream-bare-error.built.sse")) {
            OpenAIStreamRelay(clientWantsUsage: true, labels: Self.labels())
        }
        let (chunks, done) = try Self.chunks(output)
        #expect(!done)
        #expect((chunks.last?["error"] as? [String: Any])?["type"] as? String == "server_error")
        #expect(translator.upstreamError != nil)
        #expect(chunks.dropLast().allSatisfy { $0["model"] as? String == "chat-public" })
    }

    @Test func engineStreamEndingWithABareErrorGetsNoDone() throws {
        // An engine's finished answer without [DONE] is completed by the relay, but not
        // one that ended in an error object.
        let body = Array((#"data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}]}"#
            + "\n\n" + #"{"error":{"message":"engine died","type":"server_error"}}"# + "\n").utf8)
        let (output, _) = Self.translate(body) { OpenAIStreamRelay(clientWantsUsage: false, labels: Self.labels(), engine: true) }
        let (chunks, done) = try Self.chunks(output)
        #expect(!done)
        #expect(chunks.last?["error"] != nil)
    }

    @Test func anthropicStreamEndingWithABareErrorEndsWithTheErrorEvent() throws {
        let body = Array((#"event: message_start"# + "\n" + #"data: {"type":"message_start","message":{"model":"claude-x","usage":{"input_tokens":3}}}"# + "\n\n"
            + #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"# + "\n").utf8)
        let (output, translator) = Self.translate(body) { AnthropicStreamTranslator(clientWantsUsage: true, labels: Self.labels()) }
        let (chunks, done) = try Self.chunks(output)
        #expect(!done)
        #expect(chunks.last?["error"] != nil)
        #expect(translator.upstreamError?.code == "overloaded")
    }

    @Test func strayTextThatIsNoErrorDoesNotEndAGoodStream() throws {
        let body = Array(("junk line\n" + #"data: {"candidates":[{"content":{"parts":[{"text":"ok"}]},"finishReason":"STOP"}]}"# + "\r\n\r\n").utf8)
        let (output, translator) = Self.translate(body, Self.gemini(usage: false))
        #expect(try Self.chunks(output).done)
        #expect(translator.upstreamError == nil)
    }

    // MARK: Gemini 3 streamed function-call arguments

    @Test func partialArgumentsBecomeOneNamedToolCallWithItsWholeArguments() throws {
        let (output, translator) = Self.translate(
            try Fixtures.own("gemini/stream-function-call-partial-args.built.sse"), Self.gemini()
        )
        let (chunks, done) = try Self.chunks(output)
        #expect(done)
        let calls = Self.deltas(chunks).flatMap { $0["tool_calls"] as? [[String: Any]] ?? [] }
        #expect(Set(calls.compactMap { $0["index"] as? Int }) == [0])
        let starts = calls.filter { $0["id"] != nil }
        #expect(starts.count == 1)
        #expect((starts.first?["function"] as? [String: Any])?["name"] as? String == "get_weather")
        #expect(calls.allSatisfy { call in
            // Only the opening chunk carries a name, and it is never empty.
            ((call["function"] as? [String: Any])?["name"] as? String).map { !$0.isEmpty } ?? (call["id"] == nil)
        })
        #expect(calls.count > 2, "the arguments arrive as deltas, not in one piece")
        let arguments = calls.compactMap { ($0["function"] as? [String: Any])?["arguments"] as? String }.joined()
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(arguments.utf8)) as? [String: Any])
        #expect(parsed["location"] as? String == #"Boston, MA "Back Bay""#)
        #expect(parsed["days"] as? Int == 3)
        #expect(parsed["units"] as? [String: String] == ["temperature": "celsius", "wind": "km/h"])
        #expect(parsed["include_hourly"] as? Bool == false)
        let finish = (chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String }).last
        #expect(finish == "tool_calls")
        #expect(translator.usage?.completionTokens == 24)
    }

    @Test func partialArrayArgumentsEndingWithoutAnEmptyPartStillClose() throws {
        let (output, _) = Self.translate(
            try Fixtures.own("gemini/stream-function-call-partial-args-array.built.sse"), Self.gemini()
        )
        let (chunks, _) = try Self.chunks(output)
        let deltas = Self.deltas(chunks)
        #expect(deltas.compactMap { $0["content"] as? String }.joined() == "Asking two questions.")
        let calls = deltas.flatMap { $0["tool_calls"] as? [[String: Any]] ?? [] }
        #expect(calls.first?["id"] as? String == "fc-built-2")
        let arguments = calls.compactMap { ($0["function"] as? [String: Any])?["arguments"] as? String }.joined()
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(arguments.utf8)) as? [String: Any])
        let questions = try #require(parsed["questions"] as? [[String: Any]])
        #expect(questions.count == 2)
        #expect(questions[0]["text"] as? String == "Which city?")
        #expect(questions[0]["options"] as? [String] == ["Paris", "Rome"])
        #expect(questions[1]["text"] as? String == "When?")
        #expect((questions[1]["options"] as? [Any])?.first is NSNull)
    }

    @Test func wholeAnswerReassemblesPartialArgumentsToo() throws {
        let body = #"{"candidates":[{"content":{"parts":[{"functionCall":{"name":"f","willContinue":true}},{"functionCall":{"partialArgs":[{"jsonPath":"$.a","stringValue":"x","willContinue":true}],"willContinue":true}},{"functionCall":{"partialArgs":[{"jsonPath":"$.a","stringValue":"y"},{"jsonPath":"$.b[0]","numberValue":1.5}]}}]},"finishReason":"STOP"}]}"#
        let translated = try GeminiAdapter().translateResponse(
            GeminiHarness.body(body), head: try GeminiHarness.head(#"{"model":"m","messages":[]}"#), labels: Self.labels()
        )
        let object = try foundationObject(Array(translated.body.readableBytesView))
        let message = try #require(((object["choices"] as? [[String: Any]])?.first?["message"]) as? [String: Any])
        let calls = try #require(message["tool_calls"] as? [[String: Any]])
        #expect(calls.count == 1)
        let function = try #require(calls[0]["function"] as? [String: Any])
        #expect(function["name"] as? String == "f")
        #expect(function["arguments"] as? String == #"{"a":"xy","b":[1.5]}"#)
        #expect(object["model"] as? String == "chat-public")
    }

    @Test func continuationWithNoOpenCallIsDropped() throws {
        let (output, _) = GeminiHarness.stream(
            #"data: {"candidates":[{"content":{"parts":[{"functionCall":{"partialArgs":[{"jsonPath":"$.a","stringValue":"x"}]}}]},"finishReason":"STOP"}]}"#
                + "\r\n\r\n"
        )
        #expect(!output.contains("tool_calls"))
        #expect(output.contains(#""finish_reason":"stop""#))
    }

    // MARK: Usage on every successful stream

    @Test func blockedPromptWithoutUsageStillSendsTheEstimatedUsageChunk() throws {
        let (output, translator) = Self.translate(try Fixtures.own("gemini/stream-blocked-no-usage.built.sse"), Self.gemini())
        let (chunks, done) = try Self.chunks(output)
        #expect(done)
        let usage = try #require(chunks.last?["usage"] as? [String: Any])
        #expect(usage["prompt_tokens"] as? Int == 17)
        #expect(translator.usage?.estimated == true)
        #expect(translator.usage?.promptTokens == 17)
    }

    @Test func openAIStreamWithoutUsageGetsTheEstimatedUsageChunk() throws {
        let (output, translator) = Self.translate(try Fixtures.own("openai/chat-stream-no-usage.built.sse")) {
            OpenAIStreamRelay(clientWantsUsage: true, labels: Self.labels())
        }
        let (chunks, done) = try Self.chunks(output)
        #expect(done)
        let last = try #require(chunks.last)
        #expect((last["choices"] as? [Any])?.isEmpty == true)
        #expect(last["id"] as? String == "chatcmpl-built-1")
        let usage = try #require(last["usage"] as? [String: Any])
        #expect(usage["prompt_tokens"] as? Int == 17)
        #expect(usage["completion_tokens"] as? Int == translator.contentChunks)
        #expect(translator.usage?.estimated == true)
        #expect(chunks.allSatisfy { $0["model"] as? String == "chat-public" })
    }

    @Test func noUsageChunkIsAddedWhenTheClientDidNotAsk() throws {
        let (output, translator) = Self.translate(try Fixtures.own("openai/chat-stream-no-usage.built.sse")) {
            OpenAIStreamRelay(clientWantsUsage: false, labels: Self.labels())
        }
        #expect(!String(decoding: output, as: UTF8.self).contains("usage"))
        #expect(translator.usage == nil)
    }

    // MARK: Reasoning

    @Test func geminiThoughtsAreReasoningContentOnlyWhenExposed() throws {
        let fixture = try Fixtures.own("gemini/stream-thoughts.built.sse")
        let exposed = try Self.chunks(Self.translate(fixture, Self.gemini(exposeReasoning: true)).output).chunks
        let reasoning = Self.deltas(exposed).compactMap { $0["reasoning_content"] as? String }.joined()
        #expect(reasoning == "**Weighing the question**\n\nThe user asks for a prime; 7 fits. Checking it once more.")
        #expect(Self.deltas(exposed).compactMap { $0["content"] as? String }.joined() == "7 is a prime number.")

        let hidden = Self.translate(fixture, Self.gemini(exposeReasoning: false)).output
        #expect(!String(decoding: hidden, as: UTF8.self).contains("reasoning_content"))
        #expect(!String(decoding: hidden, as: UTF8.self).contains("Weighing"))
    }

    static func anthropicThinkingStream() throws -> [UInt8] {
        let recording = try #require(try AnthropicFixtures.streams().first { $0.name.contains("thinking-stream") })
        return recording.bytes
    }

    @Test func anthropicThinkingIsReasoningContentWithItsSignatureWhenExposed() throws {
        let bytes = try Self.anthropicThinkingStream()
        let recorded = String(decoding: bytes, as: UTF8.self)
        let (output, _) = Self.translate(bytes) {
            AnthropicStreamTranslator(clientWantsUsage: true, labels: Self.labels(exposeReasoning: true))
        }
        let (chunks, done) = try Self.chunks(output)
        #expect(done)
        let deltas = Self.deltas(chunks)
        let reasoning = deltas.compactMap { $0["reasoning_content"] as? String }.joined()
        #expect(reasoning.hasPrefix("This is a straightforward question about pedestrian safety"))
        let blocks = deltas.flatMap { $0["thinking_blocks"] as? [[String: Any]] ?? [] }
        #expect(blocks.count == 1)
        #expect(blocks.first?["thinking"] as? String == reasoning)
        let signature = try #require(blocks.first?["signature"] as? String)
        #expect(!signature.isEmpty)
        #expect(recorded.contains(signature.prefix(40)), "the signature is Anthropic's, as sent")

        let (hidden, _) = Self.translate(bytes) { AnthropicStreamTranslator(clientWantsUsage: true, labels: Self.labels()) }
        let text = String(decoding: hidden, as: UTF8.self)
        #expect(!text.contains("reasoning_content"))
        #expect(!text.contains("thinking_blocks"))
    }

    @Test func anthropicWholeAnswerCarriesThinkingWhenExposed() throws {
        let body = #"{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[{"type":"thinking","thinking":"Let me see.","signature":"sig-abc"},{"type":"redacted_thinking","data":"opaque"},{"type":"text","text":"Hi"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":4}}"#
        var buffer = ByteBuffer()
        buffer.writeString(body)
        let head = AnthropicRun.head(stream: false)
        let exposed = try foundationObject(Array(try AnthropicAdapter().translateResponse(buffer, head: head, labels: Self.labels(exposeReasoning: true)).body.readableBytesView))
        let message = try #require(((exposed["choices"] as? [[String: Any]])?.first?["message"]) as? [String: Any])
        #expect(message["reasoning_content"] as? String == "Let me see.")
        let blocks = try #require(message["thinking_blocks"] as? [[String: Any]])
        #expect(blocks.map { $0["type"] as? String } == ["thinking", "redacted_thinking"])
        #expect(blocks[0]["signature"] as? String == "sig-abc")
        #expect(blocks[1]["data"] as? String == "opaque")
        #expect(exposed["model"] as? String == "chat-public")

        let hidden = try foundationObject(Array(try AnthropicAdapter().translateResponse(buffer, head: head, labels: Self.labels()).body.readableBytesView))
        let plain = try #require(((hidden["choices"] as? [[String: Any]])?.first?["message"]) as? [String: Any])
        #expect(plain["reasoning_content"] == nil)
        #expect(plain["thinking_blocks"] == nil)
    }
}

// MARK: - Streamed argument writer

@Suite("PartialArgumentsWriter")
struct PartialArgumentsWriterTests {
    static func piece(_ json: String) throws -> GeminiResponse.PartialArg {
        try JSONDecoder().decode(GeminiResponse.PartialArg.self, from: Data(json.utf8))
    }

    static func write(_ pieces: [String]) throws -> String {
        var writer = PartialArgumentsWriter()
        var text = ""
        for piece in pieces { text += writer.apply(try Self.piece(piece)) }
        return text + writer.finish()
    }

    @Test func nothingIsAnEmptyObject() {
        var writer = PartialArgumentsWriter()
        #expect(writer.finish() == "{}")
    }

    @Test func pathsOpenAndCloseContainers() throws {
        let text = try Self.write([
            #"{"jsonPath":"$.a.b","stringValue":"x"}"#,
            #"{"jsonPath":"$.a.c[0]","numberValue":1}"#,
            #"{"jsonPath":"$.a.c[2]","boolValue":true}"#,
            #"{"jsonPath":"$['d.e']","nullValue":null}"#,
            #"{"jsonPath":"$.f","structValue":{"g":[1,2]}}"#,
        ])
        #expect(text == #"{"a":{"b":"x","c":[1,null,true]},"d.e":null,"f":{"g":[1,2]}}"#)
    }

    @Test func continuedStringsAreEscapedAndJoined() throws {
        let text = try Self.write([
            #"{"jsonPath":"$.code","stringValue":"line \"one\"\n","willContinue":true}"#,
            #"{"jsonPath":"$.code","stringValue":"tab\there\\","willContinue":true}"#,
            #"{"jsonPath":"$.code","stringValue":"\u0001end"}"#,
        ])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: String])
        #expect(object["code"] == "line \"one\"\ntab\there\\\u{1}end")
    }

    @Test func aStringLeftOpenIsClosedAtTheEnd() throws {
        let text = try Self.write([#"{"jsonPath":"$.a","stringValue":"cut","willContinue":true}"#])
        #expect(text == #"{"a":"cut"}"#)
    }

    @Test func outOfOrderPiecesAreDroppedAndTheTextStaysJSON() throws {
        let text = try Self.write([
            #"{"jsonPath":"$.items[1]","numberValue":1}"#,
            #"{"jsonPath":"$.items[0]","numberValue":0}"#,
            #"{"jsonPath":"$.items.name","stringValue":"x"}"#,
            #"{"jsonPath":"not a path","stringValue":"x"}"#,
        ])
        #expect(text == #"{"items":[null,1]}"#)
    }

    @Test(arguments: ["$.a", "$.a.b", "$[0]", "$['a']", "$.a[12].b", "$[\"q\"]"])
    func pathsParse(path: String) {
        #expect(PartialArgumentsWriter.parse(path) != nil)
    }

    @Test(arguments: ["", "a", "$.", "$[x]", "$['a'", "$..a", "$[-1]"])
    func badPathsDoNot(path: String) {
        #expect(PartialArgumentsWriter.parse(path) == nil)
    }
}

// MARK: - Model names

@Suite("ModelNameRewriter")
struct ModelNameRewriterTests {
    static func rewrite(_ text: String, splitAt cuts: [Int]) -> String {
        var rewriter = ModelNameRewriter(model: "chat-small")
        let bytes = Array(text.utf8)
        var output: [UInt8] = []
        var start = 0
        for cut in cuts + [bytes.count] where cut >= start {
            var buffer = ByteBuffer()
            buffer.writeBytes(bytes[start..<cut])
            output += Array(rewriter.rewrite(buffer).readableBytesView)
            start = cut
        }
        return String(decoding: output, as: UTF8.self)
    }

    static let answer = #"{"id":"chatcmpl-1","object":"chat.completion","model":"meta-llama/Llama-3.1-8B-Instruct","choices":[{"message":{"content":"the \"model\": x","model":"nested"}}],"usage":{"model":"n"}}"#
    static let expected = #"{"id":"chatcmpl-1","object":"chat.completion","model":"chat-small","choices":[{"message":{"content":"the \"model\": x","model":"nested"}}],"usage":{"model":"n"}}"#

    @Test func topLevelModelIsRewrittenAtEveryBoundary() {
        #expect(Self.rewrite(Self.answer, splitAt: []) == Self.expected)
        for cut in 0...Self.answer.utf8.count {
            #expect(Self.rewrite(Self.answer, splitAt: [cut]) == Self.expected, "cut at \(cut)")
        }
        #expect(Self.rewrite(Self.answer, splitAt: Array(0...Self.answer.utf8.count)) == Self.expected)
    }

    @Test func embeddingsNameTheModelLastAndOtherMembersStay() {
        let body = #"{"object":"list","data":[{"object":"embedding","embedding":[0.1,-2e-3],"index":0}],"model" : "text-embedding-3-small\"x","usage":{"prompt_tokens":2,"total_tokens":2}}"#
        let want = #"{"object":"list","data":[{"object":"embedding","embedding":[0.1,-2e-3],"index":0}],"model" : "chat-small","usage":{"prompt_tokens":2,"total_tokens":2}}"#
        for cut in 0...body.utf8.count {
            #expect(Self.rewrite(body, splitAt: [cut]) == want, "cut at \(cut)")
        }
    }

    @Test func aBodyWithoutTheMemberComesBackAsItWas() {
        for body in [#"{"a":1,"models":"x","b":{"model":"y"}}"#, #"[{"model":"x"}]"#, "not json", #"{"model":null}"#] {
            #expect(Self.rewrite(body, splitAt: [3]) == body)
        }
    }
}

// MARK: - The request head's reasoning_effort

@Suite("InferenceRequestHead reasoning_effort")
struct ReasoningEffortHeadTests {
    static func head(_ member: String) throws -> InferenceRequestHead {
        try InferenceRequestHead.parse(ByteBuffer(string: #"{"model":"m","messages":[]\#(member)}"#), endpoint: .chatCompletions)
    }

    @Test func readAndAskingForReasoning() throws {
        #expect(try Self.head(#","reasoning_effort":"low""#).asksForReasoning)
        #expect(try !Self.head(#","reasoning_effort":"none""#).asksForReasoning)
        #expect(try !Self.head(#","reasoning_effort":null"#).asksForReasoning)
        #expect(try !Self.head("").asksForReasoning)
    }

    @Test(arguments: [#","reasoning_effort":3"#, #","reasoning_effort":{"x":1}"#, #","reasoning_effort":"low","reasoning_effort":"high""#])
    func wrongOrRepeatedIsA400(member: String) {
        let error = #expect(throws: OpenAIError.self) { try Self.head(member) }
        #expect(error?.status == 400)
        #expect(error?.param == "reasoning_effort")
    }

    @Test func aDeploymentThatExposesReasoningDoesSoUnasked() throws {
        let head = try Self.head("")
        #expect(DeploymentSettings(upstreamModel: "x", exposeReasoning: true).exposesReasoning(for: head))
        #expect(!DeploymentSettings(upstreamModel: "x").exposesReasoning(for: head))
        #expect(DeploymentSettings(upstreamModel: "x").exposesReasoning(for: try Self.head(#","reasoning_effort":"high""#)))
    }
}

// MARK: - Found by trying to break it

@Suite("Fidelity edge cases")
struct FidelityEdgeCaseTests {
    static let labels = ResponseLabels(
        id: "chatcmpl-req_edge", created: 1, model: "chat-public", promptTokenEstimate: 5,
        redaction: SecretRedaction(secrets: ["sk-edge-0123456789"], renaming: ["gpt-4o": "chat-public"])
    )

    static func relay(_ text: String, usage: Bool = true) -> (output: String, relay: OpenAIStreamRelay) {
        var relay = OpenAIStreamRelay(clientWantsUsage: usage, labels: labels)
        var output = relay.translate(ByteBuffer(string: text))
        var tail = relay.finish()
        output.writeBuffer(&tail)
        return (String(buffer: output), relay)
    }

    @Test func anErrorEventWithAProviderLinkStaysOneValidEvent() throws {
        let (output, relay) = Self.relay(
            #"data: {"error":{"message":"Quota exceeded for gpt-4o. Learn more: https://ai.google.dev/gemini-api/docs/rate-limits","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}"#
                + "\n\n" + "data: [DONE]\n\n"
        )
        let payloads = openAIEventPayloads(Array(output.utf8))
        #expect(payloads.count == 1, "the error, and no [DONE] after it")
        let error = try #require(try foundationObject(Array(payloads[0].utf8))["error"] as? [String: Any])
        #expect(error["message"] as? String == "Quota exceeded for chat-public. Learn more: [link removed]")
        #expect(relay.upstreamError?.code == "rate_limit_exceeded")
    }

    @Test func theAnswerBeforeAnErrorIsNotScrubbed() throws {
        let content = #"data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"chat-public","choices":[{"index":0,"delta":{"content":"OpenAI docs: https://platform.openai.com/docs"}}]}"#
        let (output, _) = Self.relay(content + "\n\n" + #"data: {"error":{"message":"boom \"https://platform.openai.com/x\" sk-edge-0123456789","type":"server_error"}}"# + "\n\n")
        let payloads = openAIEventPayloads(Array(output.utf8))
        #expect(payloads.count == 2)
        #expect(payloads[0] == String(content.dropFirst(6)), "the model's own words go through as they came")
        let error = try #require(try foundationObject(Array(payloads[1].utf8))["error"] as? [String: Any])
        #expect(error["message"] as? String == #"boom "[link removed]" [redacted]"#)
    }

    @Test func aUsageObjectOfAnotherShapeIsNotDoubledByAnEstimate() {
        let (output, relay) = Self.relay(
            #"data: {"id":"c","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}]}"# + "\n\n"
                + #"data: {"id":"c","choices":[],"usage":{"input_tokens":3,"output_tokens":1}}"# + "\n\n" + "data: [DONE]\n\n"
        )
        #expect(output.components(separatedBy: #""usage""#).count == 2, "one usage chunk")
        #expect(relay.usage == nil)
    }

    @Test func strayLinesThatAreNoErrorObjectDoNotEndAGoodStream() throws {
        let good = #"data: {"candidates":[{"content":{"parts":[{"text":"ok"}]},"finishReason":"STOP"}]}"# + "\r\n\r\n"
        let (output, translator) = GeminiHarness.stream(good + #"x-debug: {"error":null}"# + "\n")
        #expect(output.hasSuffix("data: [DONE]\n\n"))
        #expect(translator.upstreamError == nil)
    }

    @Test func anErrorObjectFollowedByAProxysWordsIsStillAnError() {
        let (output, relay) = Self.relay(
            #"data: {"id":"c","choices":[{"index":0,"delta":{"content":"x"}}]}"# + "\n\n"
                + #"{"error":{"message":"upstream reset","type":"server_error"}}"# + "\nupstream connect error or disconnect\n"
        )
        #expect(relay.upstreamError != nil)
        #expect(output.hasSuffix(#""type":"server_error","param":null,"code":null}}"# + "\n\n"))
    }

    @Test func aWholeCallWhosePiecesAllCameInOnePart() throws {
        var calls = GeminiFunctionCalls()
        let call = try JSONDecoder().decode(
            GeminiResponse.FunctionCall.self,
            from: Data(#"{"name":"f","partialArgs":[{"jsonPath":"$.x","numberValue":1},{"jsonPath":"$.y","stringValue":"a"}]}"#.utf8)
        )
        #expect(calls.receive(call) == [.start(index: 0, id: "call_0", name: "f", arguments: #"{"x":1,"y":"a"}"#)])
    }

    @Test func aContinuationThatRepeatsTheNameIsTheSameCall() throws {
        var calls = GeminiFunctionCalls()
        func part(_ json: String) throws -> GeminiResponse.FunctionCall {
            try JSONDecoder().decode(GeminiResponse.FunctionCall.self, from: Data(json.utf8))
        }
        var events = calls.receive(try part(#"{"name":"f","willContinue":true}"#))
        events += calls.receive(try part(#"{"name":"f","partialArgs":[{"jsonPath":"$.p","numberValue":1}],"willContinue":true}"#))
        events += calls.receive(try part(#"{"name":"f","partialArgs":[{"jsonPath":"$.q","boolValue":true}]}"#))
        events += calls.receive(try part(#"{"name":"f","args":{"again":1}}"#))
        let starts = events.filter { if case .start = $0 { true } else { false } }
        #expect(starts.count == 2, "the last part, after the first call ended, is a new call")
        let arguments = events.compactMap { event -> String? in
            if case .arguments(0, let fragment) = event { fragment } else { nil }
        }.joined()
        #expect(arguments == #"{"p":1,"q":true}"#)
    }

    @Test func aGapOfManyElementsIsDropped() throws {
        let text = try PartialArgumentsWriterTests.write([
            #"{"jsonPath":"$.a[65535]","numberValue":1}"#, #"{"jsonPath":"$.b","numberValue":2}"#,
        ])
        #expect(text == #"{"b":2}"#)
    }
}

@Suite("SecretRedaction: names stand alone")
struct RenamingTests {
    let redaction = SecretRedaction(secrets: [], renaming: ["gpt-4o": "chat-small"])

    @Test(arguments: [
        ("The model gpt-4o does not exist.", "The model chat-small does not exist."),
        ("gpt-4o-mini, chatgpt-4o-latest, gpt-4o.1, gpt-4o:8b", "gpt-4o-mini, chatgpt-4o-latest, gpt-4o.1, gpt-4o:8b"),
        ("`gpt-4o`; models/gpt-4o, (gpt-4o)", "`chat-small`; models/chat-small, (chat-small)"),
    ])
    func onlyWholeNamesAreRenamed(text: String, expected: String) {
        #expect(redaction.redact(text) == expected)
    }
}
