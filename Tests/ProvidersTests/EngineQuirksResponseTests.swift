import Foundation
import NIOCore
import Testing

@testable import Providers

@Suite("Engine quirks: non-streaming answers and the adapter")
struct EngineQuirksResponseTests {
    static let labels = ResponseLabels(id: "chatcmpl-req_engine2", created: 1_700_000_000, model: "engine-model")

    /// The answer in the Ollama cassette `ollama/pydantic-ai.nonstream-json_schema-reasoning.yaml`, as JSON.
    static let ollamaAnswer = #"{"choices":[{"finish_reason":"stop","index":0,"message":{"content":"{ \"city\": \"Paris\", \"country\": \"France\" }","reasoning":"Okay, the user is asking for the capital of France. I know that France's capital is Paris. But I need to make sure I'm correct here. Let me think. Paris is indeed the capital since it's where the government is based. It's a major city, so I should mention that it's a key city. Also, maybe add some context like its role in the country. I should keep it simple and direct since the user is just asking the question. Double-checking my knowledge to avoid any mistakes. Yep, I'm confident the answer is Paris.\n","role":"assistant"}}],"created":1776298304,"id":"chatcmpl-150","model":"qwen3:0.6b","object":"chat.completion","system_fingerprint":"fp_ollama","usage":{"completion_tokens":15,"prompt_tokens":136,"total_tokens":151}}"#

    private func head(_ json: String, endpoint: InferenceEndpoint = .chatCompletions) throws -> InferenceRequestHead {
        try InferenceRequestHead.parse(ByteBuffer(string: json), endpoint: endpoint)
    }

    @Test("TGI's tool call answer gets the labels' id and finish_reason tool_calls; the rest is as recorded")
    func tgiToolCall() throws {
        let recorded = try Fixtures.bytes("local-engines/tgi/chat-tool-call-nonstream.json")
        let adapter = OpenAIAdapter(kind: .engine)
        #expect(adapter.translatesResponses)
        let translated = try adapter.translateResponse(
            ByteBuffer(bytes: recorded), head: try head(#"{"model":"m","messages":[]}"#), labels: Self.labels
        )
        var expected = try foundationObject(recorded)
        #expect(expected["id"] as? String == "")
        expected["id"] = Self.labels.id
        expected["model"] = Self.labels.model
        var choices = try #require(expected["choices"] as? [[String: Any]])
        #expect(choices[0]["finish_reason"] as? String == "stop")
        choices[0]["finish_reason"] = "tool_calls"
        expected["choices"] = choices
        #expect(NSDictionary(dictionary: try foundationObject(translated.body)) == NSDictionary(dictionary: expected))
        #expect(translated.usage == TokenUsage(promptTokens: 501, completionTokens: 29))

        let message = try #require(choices[0]["message"] as? [String: Any])
        let call = try #require((message["tool_calls"] as? [[String: Any]])?.first)
        let function = try #require(call["function"] as? [String: Any])
        #expect(function["name"] as? String == "get_current_weather")
        let arguments = try foundationObject(Array(try #require(function["arguments"] as? String).utf8))
        #expect(arguments["location"] as? String == "Brooklyn, NY")
    }

    @Test("an answer without quirks comes back byte for byte but for its model: the Ollama cassette")
    func ollamaUnchanged() throws {
        let body = ByteBuffer(string: Self.ollamaAnswer)
        let translated = try OpenAIAdapter(kind: .engine).translateResponse(body, head: try head(#"{"model":"m","messages":[]}"#), labels: Self.labels)
        #expect(translated.body == ByteBuffer(bytes: renamingModel(Array(body.readableBytesView), to: Self.labels.model)))
        let relabelled = ResponseLabels(id: Self.labels.id, created: 1, model: try #require(try foundationObject(Array(body.readableBytesView))["model"] as? String))
        #expect(try OpenAIAdapter(kind: .engine).translateResponse(body, head: try head(#"{"model":"m","messages":[]}"#), labels: relabelled).body == body)
        #expect(translated.usage == TokenUsage(promptTokens: 136, completionTokens: 15))
    }

    @Test("stop stays stop without tool calls, or with an empty tool_calls list")
    func stopStays() throws {
        let bodies = [
            #"{"id":"a","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"hi","tool_calls":[]}}]}"#,
            #"{"id":"a","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"hi","tool_calls":null}}]}"#,
            #"{"id":"a","choices":[{"index":0,"finish_reason":"length","message":{"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{"}}]}}]}"#,
        ]
        for body in bodies {
            #expect(text(EngineResponseQuirks.normalise(ByteBuffer(string: body), labels: Self.labels)) == body)
        }
        let twoChoices = #"{"id":"","choices":[{"index":0,"finish_reason":"stop","message":{"content":"x"}},{"index":1,"finish_reason":"stop","message":{"tool_calls":[{"id":"0","function":{"name":"f","arguments":"{}"}}]}}]}"#
        #expect(text(EngineResponseQuirks.normalise(ByteBuffer(string: twoChoices), labels: Self.labels))
            == #"{"id":"chatcmpl-req_engine2","choices":[{"index":0,"finish_reason":"stop","message":{"content":"x"}},{"index":1,"finish_reason":"tool_calls","message":{"tool_calls":[{"id":"0","function":{"name":"f","arguments":"{}"}}]}}]}"#)
    }

    @Test("embeddings and bodies that are not JSON objects pass through")
    func passThrough() throws {
        let adapter = OpenAIAdapter(kind: .engine)
        let embeddings = ByteBuffer(string: #"{"id":"","object":"list","data":[],"usage":{"prompt_tokens":3,"total_tokens":3}}"#)
        let translated = try adapter.translateResponse(embeddings, head: try head(#"{"model":"m","input":"x"}"#, endpoint: .embeddings), labels: Self.labels)
        #expect(translated.body == embeddings)
        #expect(translated.usage == TokenUsage(promptTokens: 3, completionTokens: 0))
        let notJSON = ByteBuffer(string: "upstream said no")
        #expect(EngineResponseQuirks.normalise(notJSON, labels: Self.labels) == notJSON)
    }

    @Test("OpenAI and Azure relay answers as they are; only an engine collects them")
    func kinds() throws {
        #expect(OpenAIAdapter().kind == .openai)
        #expect(!OpenAIAdapter().translatesResponses)
        #expect(!OpenAIAdapter(kind: .azureOpenAI).translatesResponses)
        let tgi = ByteBuffer(bytes: try Fixtures.bytes("local-engines/tgi/chat-tool-call-nonstream.json"))
        let translated = try OpenAIAdapter(kind: .azureOpenAI).translateResponse(tgi, head: try head(#"{"model":"m","messages":[]}"#), labels: Self.labels)
        #expect(translated.body == tgi)
    }

    @Test("the adapter's stream translator fixes quirks only in front of an engine")
    func streamTranslatorByKind() throws {
        let streamHead = try head(#"{"model":"m","messages":[],"stream":true}"#)
        let input = ByteBuffer(string: #"data: {"id":"","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}]}"# + "\n\n")
        var engine = OpenAIAdapter(kind: .engine).makeStreamTranslator(head: streamHead, labels: Self.labels)
        #expect(text(engine.translate(input)) == #"data: {"id":"chatcmpl-req_engine2","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}]}"# + "\n\n")
        #expect(text(engine.finish()) == "data: [DONE]\n\n")
        for kind in [ProviderKind.openai, .azureOpenAI] {
            var relay = OpenAIAdapter(kind: kind).makeStreamTranslator(head: streamHead, labels: Self.labels)
            #expect(relay.translate(input) == input)
            #expect(relay.finish().readableBytes == 0)
        }
    }
}
