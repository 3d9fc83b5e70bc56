import Hummingbird
import Testing

@testable import EngineSim

@Suite struct RenderingTests {
    @Test func quotedEscapesWhatJSONRequires() throws {
        #expect(JSONText.quoted("plain") == "\"plain\"")
        #expect(JSONText.quoted("a\"b\\c") == #""a\"b\\c""#)
        #expect(JSONText.quoted("line\nbreak\ttab\r") == #""line\nbreak\ttab\r""#)
        #expect(JSONText.quoted("\u{1}") == #""\u0001""#)
        #expect(JSONText.quoted("é✓") == "\"é✓\"")
        let tricky = "model \"x\"\n\u{7}\\"
        let parsed = try jsonObject("{\"v\":\(JSONText.quoted(tricky))}")
        #expect(parsed["v"] as? String == tricky)
    }

    @Test func echoedModelNamesAreEscaped() throws {
        var prompt = PromptDigest()
        prompt.add(text: "hi")
        let generation = Generation(prompt: prompt, requestedTokens: 2, defaultMaxTokens: 16)
        let renderer = CompletionRenderer(kind: .chat, id: "chatcmpl-1", created: 1, model: "we\"ird\n", includeUsage: false)
        var json = ""
        renderer.writeResponse(generation, into: &json)
        #expect(try jsonObject(json)["model"] as? String == "we\"ird\n")
    }

    @Test func metricsExpositionFormat() {
        let text = SimulatorMetrics.exposition(
            modelName: "m\"1",
            slots: .init(slots: 4, running: 3, waiting: 2),
            promptTokens: 10,
            generationTokens: 20
        )
        #expect(text.contains("vllm:num_requests_running{model_name=\"m\\\"1\"} 3.0\n"))
        #expect(text.contains("vllm:num_requests_waiting{model_name=\"m\\\"1\"} 2.0\n"))
        #expect(text.contains("vllm:kv_cache_usage_perc{model_name=\"m\\\"1\"} 0.75\n"))
        #expect(text.contains("vllm:prompt_tokens_total{model_name=\"m\\\"1\"} 10.0\n"))
        #expect(text.contains("vllm:generation_tokens_total{model_name=\"m\\\"1\"} 20.0\n"))
        #expect(text.split(separator: "\n").count == 15)
    }
}
