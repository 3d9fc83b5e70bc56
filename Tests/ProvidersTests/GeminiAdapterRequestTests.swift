import Foundation
import NIOCore
import Testing

@testable import Providers

@Suite("GeminiAdapter requests")
struct GeminiAdapterRequestTests {
    private let user = #"{"role":"user","content":"Hi"}"#

    private func body(_ members: String, messages: String? = nil) throws -> [String: Any] {
        try GeminiHarness.geminiBody(#"{"model":"chat-large","messages":[\#(messages ?? user)]\#(members.isEmpty ? "" : ",")\#(members)}"#)
    }

    private func refusal(_ members: String, messages: String? = nil) throws -> OpenAIError {
        try GeminiHarness.refusal(#"{"model":"chat-large","messages":[\#(messages ?? user)]\#(members.isEmpty ? "" : ",")\#(members)}"#)
    }

    private func contents(_ body: [String: Any]) -> [[String: Any]] {
        body["contents"] as? [[String: Any]] ?? []
    }

    private func parts(_ content: [String: Any]?) -> [[String: Any]] {
        content?["parts"] as? [[String: Any]] ?? []
    }

    private func generationConfig(_ members: String) throws -> [String: Any] {
        try #require(try body(members)["generationConfig"] as? [String: Any])
    }

    // MARK: Where it goes

    @Test func nonStreamingRequestGoesToGenerateContent() throws {
        let request = try GeminiHarness.request(#"{"model":"chat-large","messages":[\#(user)]}"#).get()
        #expect(request.url == "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent")
        #expect(RateLimitSignals.header("content-type", in: request.headers) == "application/json")
        #expect(RateLimitSignals.header("x-goog-api-key", in: request.headers) == "test-provider-key")
        #expect(request.headers.count == 2)
    }

    @Test func streamingRequestAsksForSSE() throws {
        let request = try GeminiHarness.request(
            #"{"model":"chat-large","stream":true,"stream_options":{"include_usage":true},"messages":[\#(user)]}"#
        ).get()
        #expect(request.url == "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
        let body = try foundationObject(request.body)
        #expect(body["stream"] == nil)
        #expect(body["stream_options"] == nil)
    }

    @Test func modelNamedWithItsCollectionIsUsedAsIs() throws {
        let request = try GeminiHarness.request(#"{"model":"chat-large","messages":[\#(user)]}"#, model: "tunedModels/my-tune").get()
        #expect(request.url == "https://generativelanguage.googleapis.com/v1beta/tunedModels/my-tune:generateContent")
    }

    @Test(arguments: [InferenceEndpoint.embeddings, .completions])
    func otherEndpointsAreRefused(endpoint: InferenceEndpoint) throws {
        let error = try GeminiHarness.refusal(#"{"model":"chat-large","input":"x","prompt":"x"}"#, endpoint: endpoint)
        #expect(error.status == 400)
        #expect(error.type == "invalid_request_error")
        #expect(error.code == "unsupported_endpoint")
    }

    @Test func bodyIsReadFromItsReaderIndex() throws {
        let json = #"{"model":"chat-large","messages":[{"role":"user","content":"offset"}]}"#
        let head = try GeminiHarness.head(json)
        let request = try GeminiAdapter().makeRequest(
            head: head, body: offsetBuffer(Array(json.utf8)), deployment: DeploymentSettings(upstreamModel: "m"),
            endpoint: GeminiHarness.endpoint
        )
        #expect(parts(contents(try foundationObject(request.body)).first).first?["text"] as? String == "offset")
    }

    // MARK: Messages

    @Test func rolesAndSystemInstruction() throws {
        let body = try body("", messages: """
            {"role":"system","content":"Be brief."},{"role":"user","content":"Hi"},
            {"role":"developer","content":[{"type":"text","text":"Use French."}]},
            {"role":"assistant","content":"Bonjour"},{"role":"user","content":"Again"},{"role":"user","content":"And again"}
            """)
        let system = try #require(body["systemInstruction"] as? [String: Any])
        #expect(parts(system).map { $0["text"] as? String } == ["Be brief.", "Use French."])
        #expect(system["role"] == nil)
        let contents = contents(body)
        try #require(contents.map { $0["role"] as? String } == ["user", "model", "user"])
        #expect(parts(contents[2]).map { $0["text"] as? String } == ["Again", "And again"])
        #expect(parts(contents[1]).map { $0["text"] as? String } == ["Bonjour"])
    }

    @Test func noSystemMessageMeansNoSystemInstruction() throws {
        let body = try body("")
        #expect(body["systemInstruction"] == nil)
        #expect(body["tools"] == nil)
        #expect(body["toolConfig"] == nil)
        #expect(body["generationConfig"] == nil)
    }

    @Test func dataURLImagesBecomeInlineData() throws {
        let body = try body("", messages: """
            {"role":"user","content":[{"type":"text","text":"What is this?"},
             {"type":"image_url","image_url":{"url":"data:image/PNG;base64,iVBORw0KGgo=","detail":"high"}}]}
            """)
        let parts = parts(contents(body).first)
        #expect(parts.first?["text"] as? String == "What is this?")
        let inline = try #require(parts.last?["inlineData"] as? [String: Any])
        #expect(inline["mimeType"] as? String == "image/png")
        #expect(inline["data"] as? String == "iVBORw0KGgo=")
    }

    @Test(arguments: ["https://example.com/cat.png", "http://example.com/cat.png", "data:image/png,rawbytes", "data:;base64,AAAA"])
    func imagesGeminiCannotTakeAreRefused(url: String) throws {
        let error = try refusal("", messages: """
            {"role":"user","content":[{"type":"text","text":"What is this?"},{"type":"image_url","image_url":{"url":"\(url)"}}]}
            """)
        #expect(error.status == 400)
        #expect(error.param == "messages[0].content[1].image_url")
    }

    @Test func unsupportedPartsAreRefused() throws {
        let audio = try refusal("", messages: """
            {"role":"system","content":"x"},{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]}
            """)
        #expect(audio.status == 400)
        #expect(audio.param == "messages[1].content[0].type")
        let systemImage = try refusal("", messages: """
            {"role":"system","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}
            """)
        #expect(systemImage.param == "messages[0].content[0]")
        let role = try refusal("", messages: #"{"role":"function","name":"f","content":"x"}"#)
        #expect(role.param == "messages[0].role")
    }

    // MARK: Tool calls and results

    private let toolConversation = """
        {"role":"user","content":"Weather in Paris and Rome?"},
        {"role":"assistant","content":null,"tool_calls":[
          {"id":"call_a","type":"function","function":{"name":"weather","arguments":"{\\"city\\":\\"Paris\\"}"}},
          {"id":"call_b","type":"function","function":{"name":"forecast","arguments":""}}]},
        {"role":"tool","tool_call_id":"call_b","content":"sunny"},
        {"role":"tool","tool_call_id":"call_a","content":"{\\"temp\\":21,\\"unit\\":\\"C\\"}"}
        """

    @Test func toolCallsAndResultsRoundTrip() throws {
        let contents = contents(try body("", messages: toolConversation))
        try #require(contents.map { $0["role"] as? String } == ["user", "model", "user"])

        let calls = parts(contents[1])
        let first = try #require(calls.first?["functionCall"] as? [String: Any])
        #expect(first["id"] as? String == "call_a")
        #expect(first["name"] as? String == "weather")
        #expect(first["args"] as? [String: String] == ["city": "Paris"])
        #expect(calls.first?["thoughtSignature"] as? String == "skip_thought_signature_validator")
        let second = try #require(calls.last?["functionCall"] as? [String: Any])
        #expect(second["name"] as? String == "forecast")
        #expect((second["args"] as? [String: Any])?.isEmpty == true)
        #expect(calls.last?["thoughtSignature"] == nil)

        let results = parts(contents[2]).compactMap { $0["functionResponse"] as? [String: Any] }
        try #require(results.map { $0["name"] as? String } == ["forecast", "weather"])
        #expect(results.map { $0["id"] as? String } == ["call_b", "call_a"])
        #expect(results[0]["response"] as? [String: String] == ["content": "sunny"])
        let weather = try #require(results[1]["response"] as? [String: Any])
        #expect(weather["temp"] as? Int == 21)
        #expect(weather["unit"] as? String == "C")
    }

    @Test func repeatedCallIDsResolveToTheLatestCall() throws {
        let contents = contents(try body("", messages: """
            {"role":"user","content":"a"},
            {"role":"assistant","tool_calls":[{"id":"call_0","type":"function","function":{"name":"first","arguments":"{}"}}]},
            {"role":"tool","tool_call_id":"call_0","content":"1"},
            {"role":"assistant","tool_calls":[{"id":"call_0","type":"function","function":{"name":"second","arguments":"{}"}}]},
            {"role":"tool","tool_call_id":"call_0","content":"2"}
            """))
        let names = contents.flatMap { parts($0) }.compactMap { ($0["functionResponse"] as? [String: Any])?["name"] as? String }
        #expect(names == ["first", "second"])
    }

    @Test func unknownToolCallIDIsRefused() throws {
        let error = try refusal("", messages: """
            {"role":"user","content":"a"},
            {"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]},
            {"role":"tool","tool_call_id":"call_9","content":"x"}
            """)
        #expect(error.status == 400)
        #expect(error.param == "messages[2].tool_call_id")
    }

    @Test(arguments: ["{not json", "[1,2]", "\\\"text\\\""])
    func argumentsThatAreNoObjectAreRefused(arguments: String) throws {
        let error = try refusal("", messages: """
            {"role":"user","content":"a"},
            {"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"\(arguments)"}}]}
            """)
        #expect(error.status == 400)
        #expect(error.param == "messages[1].tool_calls[0].function.arguments")
    }

    // MARK: Tools

    @Test func toolsBecomeFunctionDeclarationsWithJSONSchema() throws {
        let body = try body("""
            "tools":[{"type":"function","function":{"name":"weather","description":"Weather now",
              "parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false},
              "strict":true}},
             {"type":"function","function":{"name":"ping"}}]
            """)
        let tools = try #require(body["tools"] as? [[String: Any]])
        #expect(tools.count == 1)
        let declarations = try #require(tools.first?["functionDeclarations"] as? [[String: Any]])
        try #require(declarations.map { $0["name"] as? String } == ["weather", "ping"])
        #expect(declarations.map { $0["description"] as? String } == ["Weather now", ""])
        let schema = try #require(declarations[0]["parametersJsonSchema"] as? [String: Any])
        #expect(schema["required"] as? [String] == ["city"])
        #expect(schema["additionalProperties"] as? Bool == false)
        #expect(declarations[1]["parametersJsonSchema"] == nil)
        #expect(declarations[0]["parameters"] == nil)
    }

    @Test func nonFunctionToolsAreRefused() throws {
        let error = try refusal(#""tools":[{"type":"custom","function":{"name":"x"}}]"#)
        #expect(error.param == "tools[0].type")
    }

    @Test(arguments: [
        (#""auto""#, "AUTO", nil), (#""none""#, "NONE", nil), (#""required""#, "ANY", nil),
        (#"{"type":"function","function":{"name":"weather"}}"#, "ANY", "weather"),
    ] as [(String, String, String?)])
    func toolChoiceBecomesFunctionCallingMode(choice: String, mode: String, allowed: String?) throws {
        let body = try body(#""tools":[{"type":"function","function":{"name":"weather"}}],"tool_choice":\#(choice)"#)
        let config = try #require((body["toolConfig"] as? [String: Any])?["functionCallingConfig"] as? [String: Any])
        #expect(config["mode"] as? String == mode)
        #expect(config["allowedFunctionNames"] as? [String] == allowed.map { [$0] })
    }

    // MARK: Generation settings

    @Test func generationSettingsAreTranslated() throws {
        let config = try generationConfig("""
            "temperature":0.3,"top_p":0.9,"max_tokens":50,"stop":["END","STOP"],"seed":42,
            "presence_penalty":0.5,"frequency_penalty":-0.25,"n":1
            """)
        #expect(config["temperature"] as? Double == 0.3)
        #expect(config["topP"] as? Double == 0.9)
        #expect(config["maxOutputTokens"] as? Int == 50)
        #expect(config["stopSequences"] as? [String] == ["END", "STOP"])
        #expect(config["seed"] as? Int == 42)
        #expect(config["presencePenalty"] as? Double == 0.5)
        #expect(config["frequencyPenalty"] as? Double == -0.25)
        #expect(config["candidateCount"] as? Int == 1)
    }

    @Test func maxCompletionTokensWinsAndOneStopIsAList() throws {
        let config = try generationConfig(#""max_tokens":50,"max_completion_tokens":80,"stop":"END""#)
        #expect(config["maxOutputTokens"] as? Int == 80)
        #expect(config["stopSequences"] as? [String] == ["END"])
    }

    @Test func responseFormats() throws {
        let json = try generationConfig(#""response_format":{"type":"json_object"}"#)
        #expect(json["responseMimeType"] as? String == "application/json")
        #expect(json["responseJsonSchema"] == nil)

        let schema = try generationConfig("""
            "response_format":{"type":"json_schema","json_schema":{"name":"city","strict":true,
              "schema":{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}}}
            """)
        #expect(schema["responseMimeType"] as? String == "application/json")
        let sent = try #require(schema["responseJsonSchema"] as? [String: Any])
        #expect(sent["required"] as? [String] == ["name"])
        #expect(schema["responseSchema"] == nil)

        #expect(try body(#""response_format":{"type":"text"}"#)["generationConfig"] == nil)
    }

    // MARK: Refused and ignored parameters

    @Test(arguments: [
        (#""n":2"#, "n"), (#""logprobs":true"#, "logprobs"), (#""top_logprobs":3"#, "top_logprobs"),
        (#""logit_bias":{"50256":-100}"#, "logit_bias"), (#""parallel_tool_calls":false"#, "parallel_tool_calls"),
        (#""audio":{"voice":"alloy","format":"wav"}"#, "audio"),
        (#""modalities":["text","audio"]"#, "modalities"), (#""prediction":{"type":"content","content":"x"}"#, "prediction"),
        (#""functions":[{"name":"f"}]"#, "functions"), (#""web_search_options":{}"#, "web_search_options"),
        (#""verbosity":"low""#, "verbosity"), (#""made_up":1"#, "made_up"),
    ])
    func unsupportedParametersAreRefusedByName(member: String, param: String) throws {
        let error = try refusal(member)
        #expect(error.status == 400)
        #expect(error.type == "invalid_request_error")
        #expect(error.param == param)
        #expect(error.code == "unsupported_parameter")
        #expect(error.message.contains("'\(param)'"))
    }

    @Test func seedBeyond32BitsIsRefused() throws {
        let error = try refusal(#""seed":4294967296"#)
        #expect(error.param == "seed")
    }

    @Test func harmlessParametersAreAccepted() throws {
        let body = try body("""
            "store":false,"metadata":{"team":"a"},"user":"u-1","service_tier":"auto","safety_identifier":"s",
            "prompt_cache_key":"k","logprobs":false,"top_logprobs":0,"logit_bias":{},"parallel_tool_calls":true
            """)
        #expect(body.keys.sorted() == ["contents"])
    }

    // MARK: Reasoning

    @Test(arguments: [
        ("gemini-2.5-flash", #""reasoning_effort":"low""#, #"{"includeThoughts":true,"thinkingBudget":1024}"#),
        ("gemini-2.5-pro", #""reasoning_effort":"high""#, #"{"includeThoughts":true,"thinkingBudget":24576}"#),
        ("gemini-2.5-flash", #""reasoning_effort":"none""#, #"{"thinkingBudget":0}"#),
        ("gemini-3-pro-preview", #""reasoning_effort":"medium""#, #"{"includeThoughts":true,"thinkingLevel":"high"}"#),
        ("models/gemini-3-flash", #""reasoning_effort":"minimal""#, #"{"includeThoughts":true,"thinkingLevel":"low"}"#),
    ])
    func reasoningEffortBecomesTheThinkingConfig(model: String, member: String, expected: String) throws {
        let json = #"{"model":"chat-large","messages":[{"role":"user","content":"hi"}],\#(member)}"#
        let body = try foundationObject(try GeminiHarness.request(json, model: model).get().body)
        let thinking = try #require((body["generationConfig"] as? [String: Any])?["thinkingConfig"] as? [String: Any])
        #expect(NSDictionary(dictionary: thinking) == NSDictionary(dictionary: try foundationObject(Array(expected.utf8))))
    }

    @Test func noReasoningEffortSendsNoThinkingConfig() throws {
        let body = try GeminiHarness.geminiBody(#"{"model":"chat-large","messages":[{"role":"user","content":"hi"}]}"#)
        #expect((body["generationConfig"] as? [String: Any])?["thinkingConfig"] == nil)
    }

    @Test func anUnknownReasoningEffortIsRefused() throws {
        let error = try refusal(#""reasoning_effort":"extreme""#)
        #expect(error.status == 400)
        #expect(error.param == "reasoning_effort")
        #expect(error.code == "invalid_value")
    }
}
