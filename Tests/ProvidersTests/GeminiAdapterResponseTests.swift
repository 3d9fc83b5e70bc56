import Foundation
import NIOCore
import Testing

@testable import Providers

@Suite("GeminiAdapter responses")
struct GeminiAdapterResponseTests {
    private func translate(_ body: ByteBuffer) throws -> (completion: [String: Any], response: TranslatedResponse) {
        let head = try GeminiHarness.head(#"{"model":"chat-large","messages":[]}"#)
        let response = try GeminiAdapter().translateResponse(body, head: head, labels: GeminiHarness.labels)
        return ((try? foundationObject(response.body)) ?? [:], response)
    }

    private func translate(_ json: String) throws -> (completion: [String: Any], response: TranslatedResponse) {
        try translate(GeminiHarness.body(json))
    }

    private func message(_ completion: [String: Any]) -> [String: Any] {
        ((completion["choices"] as? [[String: Any]])?.first?["message"]) as? [String: Any] ?? [:]
    }

    @Test func everyRecordingIsFound() {
        #expect(GeminiRecordings.jsonNames.count == 2)
    }

    @Test(arguments: GeminiRecordings.jsonNames)
    func recordingTranslatesToWhatItSaid(name: String) throws {
        let recorded = try Fixtures.bytes(name)
        let recordedObject = try foundationObject(recorded)
        let expected = try AnswerSummary.gemini([recordedObject])
        var buffer = ByteBuffer()
        buffer.writeBytes(recorded)
        let (completion, response) = try translate(buffer)

        #expect(try AnswerSummary.openAICompletion(completion) == expected)
        #expect(response.usage == expected.usage)
        #expect(completion["model"] as? String == GeminiHarness.labels.model, "the public model, not Gemini's modelVersion")
        #expect(completion["id"] as? String == GeminiHarness.labels.id)
        #expect(completion["object"] as? String == "chat.completion")
        #expect(message(completion)["role"] as? String == "assistant")
    }

    @Test func readsTheBodyFromItsReaderIndex() throws {
        let recorded = try Fixtures.bytes("gemini/json/text.firebase.json")
        let (completion, _) = try translate(offsetBuffer(recorded))
        #expect((message(completion)["content"] as? String)?.hasPrefix("Google's headquarters") == true)
    }

    @Test func functionCallsBecomeToolCalls() throws {
        let (completion, response) = try translate(#"""
            {"candidates":[{"content":{"role":"model","parts":[
              {"text":"thinking…","thought":true},
              {"functionCall":{"name":"weather","args":{"city":"Paris","days":[1,2]}},"thoughtSignature":"c2ln"},
              {"functionCall":{"name":"time","args":{}}}]},"finishReason":"STOP"}],
             "usageMetadata":{"promptTokenCount":10,"cachedContentTokenCount":4,"candidatesTokenCount":7,"thoughtsTokenCount":3},
             "modelVersion":"gemini-2.5-pro"}
            """#)
        let message = message(completion)
        #expect(message.keys.contains("content"))
        #expect(message["content"] is NSNull)
        let calls = try #require(message["tool_calls"] as? [[String: Any]])
        #expect(calls.map { $0["id"] as? String } == ["call_0", "call_1"])
        #expect(try AnswerSummary.openAICompletion(completion).toolCalls == [#"weather({"city":"Paris","days":[1,2]})"#, "time({})"])
        #expect((completion["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String == "tool_calls")
        #expect(response.usage == TokenUsage(promptTokens: 10, cachedPromptTokens: 4, completionTokens: 10, reasoningTokens: 3))
    }

    @Test func maxTokensIsLength() throws {
        let (completion, _) = try translate(#"{"candidates":[{"content":{"parts":[{"text":"Once upon"}]},"finishReason":"MAX_TOKENS"}]}"#)
        #expect((completion["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String == "length")
        #expect(message(completion)["content"] as? String == "Once upon")
        #expect(completion["model"] as? String == GeminiHarness.labels.model)
        #expect(completion["usage"] == nil)
    }

    @Test func safetyStopWithoutTextHasNullContent() throws {
        let (completion, _) = try translate(#"{"candidates":[{"finishReason":"SAFETY","index":0}]}"#)
        #expect((completion["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String == "content_filter")
        #expect(message(completion)["content"] is NSNull)
    }

    @Test func blockedPromptIsContentFilterWithNullContent() throws {
        let (completion, response) = try translate(
            #"{"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},"usageMetadata":{"promptTokenCount":12,"totalTokenCount":12}}"#
        )
        #expect((completion["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String == "content_filter")
        #expect(message(completion)["content"] is NSNull)
        #expect(response.usage == TokenUsage(promptTokens: 12, completionTokens: 0))
    }

    @Test func unreadableOrEmptyAnswersAreUpstreamFailures() {
        for body in ["<html>oops</html>", #"{"candidates":[]}"#, "{}"] {
            do {
                _ = try translate(body)
                Issue.record("\(body) was translated")
            } catch let error as OpenAIError {
                #expect(error.status == 502)
                #expect(error.type == "server_error")
            } catch {
                Issue.record("unexpected \(error)")
            }
        }
    }
}
