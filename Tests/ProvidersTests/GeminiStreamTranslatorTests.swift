import Foundation
import NIOCore
import Testing

@testable import Providers

@Suite("GeminiStreamTranslator")
struct GeminiStreamTranslatorTests {
    /// Chunkings: (seed, largest chunk). Size 1 feeds byte by byte; small sizes split most
    /// CRLF pairs somewhere.
    static let chunkings: [(seed: UInt64, maximumChunk: Int)] = [(1, 1), (2, 3), (3, 7), (4, 16), (5, 48), (6, 200)]

    // MARK: Recorded streams

    @Test func everyRecordingIsFound() {
        // 5 raw .sse files, 1 .chunks.txt, 1 recorded 200 stream response.
        #expect(GeminiRecordings.streamNames.count == 7)
    }

    @Test(arguments: GeminiRecordings.streamNames)
    func recordingTranslatesToWhatItSaid(name: String) throws {
        let recording = try GeminiRecordings.streamBytes(name)
        let expected = try AnswerSummary.gemini(try GeminiRecordings.events(recording))
        #expect(expected.finishReason != nil, "\(name) records a finish reason")

        for wantsUsage in [true, false] {
            let (output, translator) = GeminiHarness.stream([recording], clientWantsUsage: wantsUsage)
            let payloads = openAIEventPayloads(output)
            #expect(payloads.last == "[DONE]", "\(name)")
            let chunks = try payloads.dropLast().map { try foundationObject(Array($0.utf8)) }
            let said = try AnswerSummary.openAIChunks(chunks)

            #expect(said.content == expected.content, "\(name)")
            #expect(said.toolCalls == expected.toolCalls, "\(name)")
            #expect(said.finishReason == expected.finishReason, "\(name)")
            #expect(translator.usage == expected.usage, "\(name)")
            #expect(translator.upstreamError == nil)
            #expect(said.usage == (wantsUsage ? expected.usage : nil), "\(name)")

            // The order of the end: finish chunk, then (when asked) the usage chunk.
            let finishIndex = wantsUsage ? chunks.count - 2 : chunks.count - 1
            try #require(finishIndex >= 0)
            let finishChoice = (chunks[finishIndex]["choices"] as? [[String: Any]])?.first
            #expect(finishChoice?["finish_reason"] as? String == expected.finishReason)
            if wantsUsage { #expect((chunks.last?["choices"] as? [Any])?.isEmpty == true) }

            // The first chunk is the role; every chunk names the public model, not
            // Gemini's model version.
            let firstDelta = ((chunks.first?["choices"] as? [[String: Any]])?.first?["delta"]) as? [String: Any]
            #expect(firstDelta?["role"] as? String == "assistant")
            #expect(chunks.allSatisfy { $0["model"] as? String == GeminiHarness.labels.model })
            let contentAndToolChunks = chunks.filter { chunk in
                let delta = ((chunk["choices"] as? [[String: Any]])?.first?["delta"]) as? [String: Any] ?? [:]
                return (delta["content"] as? String).map { !$0.isEmpty } ?? false || delta["tool_calls"] != nil
            }
            #expect(translator.contentChunks == contentAndToolChunks.count)
        }
    }

    @Test(arguments: GeminiRecordings.streamNames)
    func chunkBoundariesDoNotChangeTheOutput(name: String) throws {
        let recording = try GeminiRecordings.streamBytes(name)
        let whole = GeminiHarness.stream([recording]).output
        var splitCRLF = false
        for chunking in Self.chunkings {
            let chunks = chunked(recording, seed: chunking.seed, maximumChunk: chunking.maximumChunk)
            splitCRLF = splitCRLF || zip(chunks, chunks.dropFirst()).contains { $0.last == 0x0D && $1.first == 0x0A }
            let (output, translator) = GeminiHarness.stream(chunks)
            #expect(output == whole, "\(name) seed \(chunking.seed)")
            #expect(translator.contentChunks == GeminiHarness.stream([recording]).translator.contentChunks)
        }
        #expect(splitCRLF, "some chunking of \(name) splits a CRLF pair")
    }

    @Test func toolCallRecordingGivesStableDistinctIDs() throws {
        let recording = try GeminiRecordings.streamBytes("gemini/chunks/vercel.google-tool-call.chunks.txt")
        let payloads = openAIEventPayloads(GeminiHarness.stream([recording]).output)
        let calls = try payloads.dropLast().flatMap { payload -> [[String: Any]] in
            let chunk = try foundationObject(Array(payload.utf8))
            let delta = ((chunk["choices"] as? [[String: Any]])?.first?["delta"]) as? [String: Any]
            return delta?["tool_calls"] as? [[String: Any]] ?? []
        }
        #expect(calls.count == 1)
        #expect(calls.first?["id"] as? String == "call_0")
        #expect(calls.first?["index"] as? Int == 0)
        #expect(calls.first?["type"] as? String == "function")
    }

    // MARK: Synthetic streams

    @Test func multiByteTextSurvivesEveryBoundary() throws {
        let texts = ["Grüße, ", "日本語 ", "🌍🚀", " done\r\n"]
        var stream = ""
        for (index, text) in texts.enumerated() {
            let finish = index == texts.count - 1 ? #","finishReason":"STOP""# : ""
            let escaped = text.replacingOccurrences(of: "\r", with: "\\r").replacingOccurrences(of: "\n", with: "\\n")
            stream += #"data: {"candidates":[{"content":{"parts":[{"text":"\#(escaped)"}],"role":"model"}\#(finish)}]}"# + "\r\n\r\n"
        }
        let bytes = Array(stream.utf8)
        let whole = GeminiHarness.stream([bytes]).output
        for chunking in Self.chunkings {
            #expect(GeminiHarness.stream(chunked(bytes, seed: chunking.seed, maximumChunk: chunking.maximumChunk)).output == whole)
        }
        let chunks = try openAIEventPayloads(whole).dropLast().map { try foundationObject(Array($0.utf8)) }
        #expect(try AnswerSummary.openAIChunks(chunks).content == texts.joined())
    }

    @Test func thoughtsAreNotContent() throws {
        let (output, translator) = GeminiHarness.stream(
            #"data: {"candidates":[{"content":{"parts":[{"text":"Let me think","thought":true},{"text":"Answer"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":1,"thoughtsTokenCount":5}}"#
                + "\r\n\r\n"
        )
        #expect(!output.contains("Let me think"))
        #expect(output.contains(#"{"content":"Answer"}"#))
        #expect(translator.contentChunks == 1)
        #expect(translator.usage == TokenUsage(promptTokens: 3, completionTokens: 6, reasoningTokens: 5))
    }

    @Test func severalFunctionCallsGetOneIndexEach() throws {
        let (output, translator) = GeminiHarness.stream(
            #"data: {"candidates":[{"content":{"parts":[{"functionCall":{"name":"a","args":{"x":1}}}]}}]}"# + "\r\n\r\n"
                + #"data: {"candidates":[{"content":{"parts":[{"functionCall":{"name":"b"}},{"functionCall":{"id":"g-7","name":"c","args":{}}}]},"finishReason":"STOP"}]}"#
                + "\r\n\r\n"
        )
        let chunks = try openAIEventPayloads(Array(output.utf8)).dropLast().map { try foundationObject(Array($0.utf8)) }
        let calls = chunks.flatMap { chunk -> [[String: Any]] in
            let delta = ((chunk["choices"] as? [[String: Any]])?.first?["delta"]) as? [String: Any]
            return delta?["tool_calls"] as? [[String: Any]] ?? []
        }
        #expect(calls.map { $0["index"] as? Int } == [0, 1, 2])
        #expect(calls.map { $0["id"] as? String } == ["call_0", "call_1", "g-7"])
        let summary = try AnswerSummary.openAIChunks(chunks)
        #expect(summary.toolCalls == [#"a({"x":1})"#, "b({})", "c({})"])
        #expect(summary.finishReason == "tool_calls")
        #expect(translator.contentChunks == 3)
    }

    @Test(arguments: [("MAX_TOKENS", "length"), ("SAFETY", "content_filter"), ("RECITATION", "content_filter"),
                      ("MALFORMED_FUNCTION_CALL", "stop"), ("OTHER", "stop")])
    func finishReasonIsTranslated(gemini: String, openAI: String) throws {
        let (output, _) = GeminiHarness.stream(
            #"data: {"candidates":[{"content":{"parts":[{"text":"x"}]},"finishReason":"\#(gemini)"}]}"# + "\r\n\r\n"
        )
        let chunks = try openAIEventPayloads(Array(output.utf8)).dropLast().map { try foundationObject(Array($0.utf8)) }
        #expect(try AnswerSummary.openAIChunks(chunks).finishReason == openAI)
    }

    @Test func blockedPromptFinishesAsContentFilter() throws {
        let (output, translator) = GeminiHarness.stream(
            #"data: {"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":9,"totalTokenCount":9}}"# + "\r\n\r\n"
        )
        let payloads = openAIEventPayloads(Array(output.utf8))
        #expect(payloads.last == "[DONE]")
        let chunks = try payloads.dropLast().map { try foundationObject(Array($0.utf8)) }
        #expect(try AnswerSummary.openAIChunks(chunks).finishReason == "content_filter")
        #expect(translator.usage == TokenUsage(promptTokens: 9, completionTokens: 0))
        #expect(translator.contentChunks == 0)
    }

    @Test func errorEventEndsTheStream() throws {
        var translator = GeminiStreamTranslator(labels: GeminiHarness.labels, clientWantsUsage: true)
        let first = text(translator.translate(GeminiHarness.body(
            #"data: {"candidates":[{"content":{"parts":[{"text":"Hel"}]}}]}"# + "\r\n\r\n"
                + #"data: {"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"# + "\r\n\r\n"
                + #"data: {"candidates":[{"content":{"parts":[{"text":"lo"}]},"finishReason":"STOP"}]}"# + "\r\n\r\n"
        )))
        let later = text(translator.translate(GeminiHarness.body(
            #"data: {"candidates":[{"content":{"parts":[{"text":"more"}]},"finishReason":"STOP"}]}"# + "\r\n\r\n"
        )))
        let end = text(translator.finish())

        let payloads = openAIEventPayloads(Array(first.utf8))
        try #require(payloads.count == 3)
        let error = try #require(try foundationObject(Array(payloads[2].utf8))["error"] as? [String: Any])
        #expect(error["type"] as? String == "server_error")
        #expect(translator.upstreamError?.status == 503)
        #expect(!first.contains("lo\""))
        #expect(later.isEmpty)
        #expect(end.isEmpty)
        #expect(translator.contentChunks == 1)
    }

    @Test func streamWithoutFinishReasonEndsWithAnError() throws {
        let (output, translator) = GeminiHarness.stream(
            #"data: {"candidates":[{"content":{"parts":[{"text":"Hel"}]}}],"usageMetadata":{"promptTokenCount":2}}"# + "\r\n\r\n"
        )
        let payloads = openAIEventPayloads(Array(output.utf8))
        #expect(!payloads.contains("[DONE]"))
        let last = try #require(payloads.last)
        let error = try #require(try foundationObject(Array(last.utf8))["error"] as? [String: Any])
        #expect(error["type"] as? String == "server_error")
        #expect(error["message"] as? String == "upstream stream ended early")
        #expect(translator.upstreamError?.type == "server_error")
        #expect(translator.usage?.promptTokens == 2)
    }

    @Test func emptyUpstreamIsAnErrorToo() {
        let (output, translator) = GeminiHarness.stream("")
        #expect(output.hasPrefix(#"data: {"error":"#))
        #expect(translator.upstreamError != nil)
    }

    @Test func unreadableEventIsAnError() {
        let (output, translator) = GeminiHarness.stream("data: {not json\r\n\r\n")
        #expect(output.contains(#""type":"server_error""#))
        #expect(!output.contains("[DONE]"))
        #expect(translator.upstreamError?.status == 502)
    }

    @Test func lastEventWithoutBlankLineStillCounts() throws {
        let (output, _) = GeminiHarness.stream(
            #"data: {"candidates":[{"content":{"parts":[{"text":"ok"}]},"finishReason":"STOP"}]}"#
        )
        #expect(output.hasSuffix("data: [DONE]\n\n"))
        #expect(output.contains(#"{"content":"ok"}"#))
    }
}
