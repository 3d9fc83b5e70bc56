import Foundation
import NIOCore
import Testing

@testable import Providers

@Suite("AnthropicAdapter tools and parameters")
struct AnthropicParameterTests {
    typealias Run = AnthropicRequestRun

    static let tools = #"""
        "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather by city","strict":true,
          "parameters":{"type":"object","properties":{"city":{"type":"string"},"max_temp":{"type":"number"}},"required":["city"]}}},
          {"type":"function","function":{"name":"now"}}]
        """#

    // MARK: Tools

    @Test("tools become name, description and input_schema; keys of the schema are unchanged")
    func tools() throws {
        let body = try Run.body(extra: Self.tools)
        #expect(try Run.json(body["tools"] as Any) == #"""
            [{"description":"Weather by city","input_schema":{"properties":{"city":{"type":"string"},"max_temp":{"type":"number"}},\#
            "required":["city"],"type":"object"},"name":"get_weather"},\#
            {"input_schema":{"properties":{},"type":"object"},"name":"now"}]
            """#)
        #expect(body["tool_choice"] == nil)
    }

    @Test("a tool of another type is refused, naming it")
    func otherToolType() throws {
        let error = try #require(Run.refusal(extra: #""tools":[{"type":"custom","function":{"name":"x"}}]"#))
        #expect(error.param == "tools[0].type")
    }

    @Test("tool_choice and parallel_tool_calls", arguments: [
        (#""auto""#, nil, #"{"type":"auto"}"#),
        (#""required""#, nil, #"{"type":"any"}"#),
        (#""none""#, nil, #"{"type":"none"}"#),
        (#"{"type":"function","function":{"name":"now"}}"#, nil, #"{"name":"now","type":"tool"}"#),
        (#""auto""#, "false", #"{"disable_parallel_tool_use":true,"type":"auto"}"#),
        (#""required""#, "false", #"{"disable_parallel_tool_use":true,"type":"any"}"#),
        (#"{"type":"function","function":{"name":"now"}}"#, "false", #"{"disable_parallel_tool_use":true,"name":"now","type":"tool"}"#),
        (#""none""#, "false", #"{"type":"none"}"#),
        (nil, "false", #"{"disable_parallel_tool_use":true,"type":"auto"}"#),
        (nil, "true", nil),
        (#""auto""#, "true", #"{"type":"auto"}"#),
    ] as [(String?, String?, String?)])
    func toolChoice(choice: String?, parallel: String?, expected: String?) throws {
        var extra = Self.tools
        if let choice { extra += #","tool_choice":\#(choice)"# }
        if let parallel { extra += #","parallel_tool_calls":\#(parallel)"# }
        let body = try Run.body(extra: extra)
        if let expected {
            #expect(try Run.json(try #require(body["tool_choice"])) == expected)
        } else {
            #expect(body["tool_choice"] == nil)
        }
    }

    @Test("without tools, none and auto send nothing; required and a named tool are refused")
    func toolChoiceWithoutTools() throws {
        #expect(try Run.body(extra: #""tool_choice":"none","parallel_tool_calls":false"#)["tool_choice"] == nil)
        #expect(try Run.body(extra: #""tool_choice":"auto""#)["tool_choice"] == nil)
        #expect(Run.refusal(extra: #""tool_choice":"required""#)?.param == "tool_choice")
        #expect(Run.refusal(extra: #""tool_choice":{"type":"function","function":{"name":"x"}}"#)?.param == "tool_choice")
    }

    // MARK: Refused and ignored parameters

    @Test("parameters that would change the answer are refused, naming them", arguments: [
        (#""n":2"#, "n"),
        (#""logprobs":true"#, "logprobs"),
        (#""top_logprobs":3"#, "top_logprobs"),
        (#""logit_bias":{"50256":-100}"#, "logit_bias"),
        (#""presence_penalty":0.5"#, "presence_penalty"),
        (#""frequency_penalty":-1"#, "frequency_penalty"),
        (#""audio":{"voice":"alloy","format":"wav"}"#, "audio"),
        (#""modalities":["text","audio"]"#, "modalities"),
        (#""prediction":{"type":"content","content":"x"}"#, "prediction"),
        (#""web_search_options":{}"#, "web_search_options"),
        (#""functions":[{"name":"f"}]"#, "functions"),
        (#""function_call":"auto""#, "function_call"),
        (#""verbosity":"low""#, "verbosity"),
        (#""top_k":5"#, "top_k"),
    ])
    func refused(member: String, param: String) throws {
        let error = try #require(Run.refusal(extra: member))
        #expect(error.status == 400)
        #expect(error.type == "invalid_request_error")
        #expect(error.param == param)
        #expect(error.code == "unsupported_parameter")
    }

    @Test("parameters at values that change nothing, and harmless ones, are accepted and not sent", arguments: [
        #""n":1"#, #""logprobs":false"#, #""top_logprobs":0"#, #""logit_bias":{}"#, #""presence_penalty":0"#,
        #""frequency_penalty":0"#, #""modalities":["text"]"#, #""audio":null"#, #""prediction":null"#,
        #""store":true"#, #""metadata":{"team":"a"}"#, #""service_tier":"auto""#, #""seed":7"#,
        #""reasoning_effort":"none""#, #""prompt_cache_key":"k""#, #""stream_options":{"include_usage":true}"#,
        #""n":null,"logprobs":null,"logit_bias":null,"presence_penalty":null"#,
    ])
    func accepted(member: String) throws {
        let body = try Run.body(extra: member)
        #expect(Set(body.keys) == ["model", "max_tokens", "messages"])
    }

    // MARK: Reasoning

    @Test("reasoning_effort becomes extended thinking with a budget, max_tokens making room", arguments: [
        (#""reasoning_effort":"low""#, 1024, 1234),
        (#""reasoning_effort":"medium""#, 2048, 4096),
        (#""reasoning_effort":"high""#, 4096, 8192),
        (#""reasoning_effort":"xhigh","max_tokens":3000"#, 2999, 3000),
    ])
    func reasoningEffort(member: String, budget: Int, maxTokens: Int) throws {
        let body = try Run.body(extra: member)
        let thinking = try #require(body["thinking"] as? [String: Any])
        #expect(thinking["type"] as? String == "enabled")
        #expect(thinking["budget_tokens"] as? Int == budget)
        #expect(body["max_tokens"] as? Int == maxTokens)
    }

    @Test("a client's own thinking object wins over reasoning_effort; none sends no thinking")
    func thinkingObjectWins() throws {
        let own = try Run.body(extra: #""reasoning_effort":"high","thinking":{"type":"enabled","budget_tokens":1500}"#)
        #expect((own["thinking"] as? [String: Any])?["budget_tokens"] as? Int == 1500)
        #expect(try Run.body(extra: #""reasoning_effort":"none""#)["thinking"] == nil)
    }

    @Test("reasoning_effort with no room to think, or an unknown value, is a 400 naming the parameter")
    func reasoningEffortRefused() throws {
        let cramped = try #require(Run.refusal(#"{"model":"m","messages":[{"role":"user","content":"Hi"}],"reasoning_effort":"low","max_tokens":1000}"#))
        #expect(cramped.status == 400)
        #expect(cramped.param == "max_tokens")
        let unknown = try #require(Run.refusal(#"{"model":"m","messages":[{"role":"user","content":"Hi"}],"reasoning_effort":"max"}"#))
        #expect(unknown.param == "reasoning_effort")
        #expect(unknown.code == "invalid_value")
    }

    @Test("thinking blocks sent back on an assistant message go to Anthropic first, as they came")
    func thinkingBlocksGoBack() throws {
        let messages = #"""
            [{"role":"user","content":"Weather?"},
             {"role":"assistant","content":null,
              "thinking_blocks":[{"type":"thinking","thinking":"Use the tool.","signature":"sig-1"},{"type":"redacted_thinking","data":"opaque"}],
              "tool_calls":[{"id":"toolu_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}}]},
             {"role":"tool","tool_call_id":"toolu_1","content":"sunny"}]
            """#
        let body = try Run.body(messages: messages, extra: "")
        let turns = try #require(body["messages"] as? [[String: Any]])
        let assistant = try #require(turns.first { $0["role"] as? String == "assistant" })
        let blocks = try #require(assistant["content"] as? [[String: Any]])
        #expect(blocks.map { $0["type"] as? String } == ["thinking", "redacted_thinking", "tool_use"])
        #expect(blocks[0]["signature"] as? String == "sig-1")
        #expect(blocks[0]["thinking"] as? String == "Use the tool.")
        #expect(blocks[1]["data"] as? String == "opaque")
    }

    @Test("a thinking block without its signature is a 400 naming it")
    func thinkingBlockWithoutSignature() throws {
        let error = try #require(Run.refusal(#"{"model":"m","messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"x","thinking_blocks":[{"type":"thinking","thinking":"t"}]}]}"#))
        #expect(error.param == "messages[1].thinking_blocks[0].signature")
    }
}
