import Foundation
import NIOCore
import Testing

@testable import Providers

@Suite("AnthropicAdapter conversation translation")
struct AnthropicConversationTests {
    typealias Run = AnthropicRequestRun

    @Test("system and developer messages are joined, in order, into system")
    func systemPrompt() throws {
        let body = try Run.body(messages: #"""
            [{"role":"system","content":"Be brief."},
             {"role":"user","content":"Hi"},
             {"role":"developer","content":[{"type":"text","text":"Use French."}]},
             {"role":"assistant","content":"Salut"},
             {"role":"system","content":"No emoji."},
             {"role":"user","content":"Again"}]
            """#, extra: "")
        #expect(body["system"] as? String == "Be brief.\nUse French.\nNo emoji.")
        #expect(Run.messages(body).map { $0["role"] as? String } == ["user", "assistant", "user"])
        #expect(try Run.body(extra: "")["system"] == nil)
    }

    @Test("an image in a system message is refused, naming the part")
    func systemImage() throws {
        let error = try #require(Run.refusal(
            messages: #"[{"role":"system","content":[{"type":"text","text":"x"},{"type":"image_url","image_url":{"url":"https://a/b.png"}}]},{"role":"user","content":"Hi"}]"#,
            extra: ""
        ))
        #expect(error.param == "messages[0].content[1]")
    }

    @Test("consecutive messages of one role are merged so roles alternate")
    func alternation() throws {
        let body = try Run.body(messages: #"""
            [{"role":"user","content":"one"},{"role":"user","content":[{"type":"text","text":"two"}]},
             {"role":"assistant","content":"three"},{"role":"assistant","content":"four"},
             {"role":"user","content":"five"}]
            """#, extra: "")
        let messages = Run.messages(body)
        #expect(messages.map { $0["role"] as? String } == ["user", "assistant", "user"])
        #expect(Run.blocks(messages[0]).map { $0["text"] as? String } == ["one", "two"])
        #expect(Run.blocks(messages[1]).map { $0["text"] as? String } == ["three", "four"])
    }

    @Test("blank text is left out; a message left empty is dropped")
    func blankText() throws {
        let body = try Run.body(messages: #"""
            [{"role":"user","content":"Hi"},{"role":"assistant","content":"  "},{"role":"user","content":[{"type":"text","text":""},{"type":"text","text":"there"}]}]
            """#, extra: "")
        let messages = Run.messages(body)
        #expect(messages.count == 1)
        #expect(Run.blocks(messages[0]).map { $0["text"] as? String } == ["Hi", "there"])
    }

    // MARK: Images

    @Test("a data URL becomes a base64 source, an http(s) URL a url source; detail is dropped")
    func images() throws {
        let body = try Run.body(messages: #"""
            [{"role":"user","content":[{"type":"text","text":"Compare"},
              {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo=","detail":"high"}},
              {"type":"image_url","image_url":{"url":"https://example.com/cat.jpg"}}]}]
            """#, extra: "")
        let blocks = Run.blocks(Run.messages(body)[0])
        #expect(try Run.json(blocks) == #"""
            [{"text":"Compare","type":"text"},\#
            {"source":{"data":"iVBORw0KGgo=","media_type":"image/png","type":"base64"},"type":"image"},\#
            {"source":{"type":"url","url":"https://example.com/cat.jpg"},"type":"image"}]
            """#)
    }

    @Test("images Anthropic cannot take are refused, naming the part", arguments: [
        "data:image/svg+xml;base64,PHN2Zz4=", "data:image/png,rawbytes", "ftp://example.com/a.png", "file:///etc/passwd",
    ])
    func badImages(url: String) throws {
        let error = try #require(Run.refusal(
            messages: #"[{"role":"user","content":[{"type":"text","text":"See"},{"type":"image_url","image_url":{"url":"\#(url)"}}]}]"#,
            extra: ""
        ))
        #expect(error.status == 400)
        #expect(error.param == "messages[0].content[1]")
    }

    @Test("unsupported part types are refused, naming the part", arguments: [
        #"{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}"#,
        #"{"type":"file","file":{"file_id":"file-1"}}"#,
    ])
    func unsupportedParts(part: String) throws {
        let error = try #require(Run.refusal(
            messages: #"[{"role":"user","content":"Hi"},{"role":"assistant","content":"Yes"},{"role":"user","content":[{"type":"text","text":"x"},\#(part)]}]"#,
            extra: ""
        ))
        #expect(error.status == 400)
        #expect(error.type == "invalid_request_error")
        #expect(error.param == "messages[2].content[1]")
    }

    @Test("unknown roles are refused, naming the role", arguments: ["function", "critic"])
    func unknownRole(role: String) throws {
        let error = try #require(Run.refusal(messages: #"[{"role":"\#(role)","content":"x","name":"f"}]"#, extra: ""))
        #expect(error.param == "messages[0].role")
    }

    // MARK: Tool calls and results

    @Test("a recorded tool round trip translates to the recorded Messages request")
    func recordedRoundTrip() throws {
        let exchange = try AnthropicFixtures.exchanges("anthropic/recorded/anthropic-sdk-python.tool-use-stream-two-turns.json")[1]
        var recorded = try #require((exchange["request"] as? [String: Any])?["body"] as? [String: Any])
        let turns = try #require(recorded["messages"] as? [[String: Any]])
        let question = try #require(turns[0]["content"] as? String)
        let use = try #require((turns[1]["content"] as? [[String: Any]])?.first)
        let result = try #require((turns[2]["content"] as? [[String: Any]])?.first)
        let tool = try #require((recorded["tools"] as? [[String: Any]])?.first)

        // What an OpenAI client sends for the same conversation.
        let arguments = String(decoding: try JSONSerialization.data(withJSONObject: try #require(use["input"])), as: UTF8.self)
        let openAI: [String: Any] = [
            "model": "chat-large",
            "max_tokens": try #require(recorded["max_tokens"]),
            "stream": true,
            "messages": [
                ["role": "user", "content": question],
                ["role": "assistant", "content": NSNull(), "tool_calls": [[
                    "id": try #require(use["id"]), "type": "function",
                    "function": ["name": try #require(use["name"]), "arguments": arguments],
                ]]],
                ["role": "tool", "tool_call_id": try #require(result["tool_use_id"]), "content": try #require(result["content"])],
            ],
            "tools": [["type": "function", "function": [
                "name": try #require(tool["name"]), "description": try #require(tool["description"]),
                "parameters": try #require(tool["input_schema"]),
            ]]],
        ]
        let json = String(decoding: try JSONSerialization.data(withJSONObject: openAI), as: UTF8.self)
        let deployment = DeploymentSettings(upstreamModel: try #require(recorded["model"] as? String))
        let translated = try Run.body(json, deployment: deployment)

        // The recording writes the first turn as a string and keeps the SDK's `caller`.
        var expectedUse = use
        expectedUse["caller"] = nil
        recorded["messages"] = [
            ["role": "user", "content": [["type": "text", "text": question]]],
            ["role": "assistant", "content": [expectedUse]],
            turns[2],
        ]
        #expect(try Run.json(translated) == (try Run.json(recorded)))
    }

    @Test("consecutive tool results share one user turn, before any text")
    func toolResults() throws {
        let body = try Run.body(messages: #"""
            [{"role":"user","content":"Weather in SF and NY?"},
             {"role":"assistant","content":"Checking.","tool_calls":[
               {"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SF\"}"}},
               {"id":"call_b","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"NY\"}"}}]},
             {"role":"tool","tool_call_id":"call_a","content":"18C"},
             {"role":"tool","tool_call_id":"call_b","content":[{"type":"text","text":"25C"}]},
             {"role":"user","content":"Thanks"}]
            """#, extra: "")
        let messages = Run.messages(body)
        #expect(messages.map { $0["role"] as? String } == ["user", "assistant", "user"])
        #expect(try Run.json(Run.blocks(messages[1])) == #"""
            [{"text":"Checking.","type":"text"},\#
            {"id":"call_a","input":{"city":"SF"},"name":"get_weather","type":"tool_use"},\#
            {"id":"call_b","input":{"city":"NY"},"name":"get_weather","type":"tool_use"}]
            """#)
        #expect(try Run.json(Run.blocks(messages[2])) == #"""
            [{"content":"18C","tool_use_id":"call_a","type":"tool_result"},\#
            {"content":"25C","tool_use_id":"call_b","type":"tool_result"},\#
            {"text":"Thanks","type":"text"}]
            """#)
    }

    @Test("empty arguments are an empty input; arguments that are no JSON object are refused")
    func toolArguments() throws {
        func messages(_ arguments: String) -> String {
            #"[{"role":"user","content":"Go"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"\#(arguments)"}}]},{"role":"tool","tool_call_id":"c1","content":"ok"}]"#
        }
        let body = try Run.body(messages: messages(""), extra: "")
        #expect(try Run.json(Run.blocks(Run.messages(body)[1])) == #"[{"id":"c1","input":{},"name":"f","type":"tool_use"}]"#)
        let typed = try Run.body(messages: messages(#"{\"n\":1,\"r\":0.5,\"ok\":true,\"tags\":[\"a\"],\"none\":null}"#), extra: "")
        #expect(try Run.json(Run.blocks(Run.messages(typed)[1])[0]["input"] as Any) == #"{"n":1,"none":null,"ok":true,"r":0.5,"tags":["a"]}"#)
        for bad in [#"{\"a\":"#, "[1,2]", "not json"] {
            let error = try #require(Run.refusal(messages: messages(bad), extra: ""), "\(bad)")
            #expect(error.status == 400)
            #expect(error.param == "messages[1].tool_calls[0].function.arguments")
        }
    }

    @Test("a tool message without tool_call_id is refused, naming it")
    func toolResultWithoutID() throws {
        let error = try #require(Run.refusal(messages: #"[{"role":"user","content":"Go"},{"role":"tool","content":"ok"}]"#, extra: ""))
        #expect(error.param == "messages[1].tool_call_id")
    }

    @Test("an earlier refusal is kept as the assistant's words")
    func refusalHistory() throws {
        let body = try Run.body(messages: #"""
            [{"role":"user","content":"Do X"},{"role":"assistant","content":null,"refusal":"I can't help with that."},{"role":"user","content":"OK"}]
            """#, extra: "")
        #expect(Run.blocks(Run.messages(body)[1]).map { $0["text"] as? String } == ["I can't help with that."])
    }
}
