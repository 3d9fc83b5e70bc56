import Foundation
import NIOCore
import Testing

@testable import Providers

@Suite("InferenceRequestHead")
struct InferenceRequestHeadTests {
    // MARK: Helpers

    private func parse(_ json: String, endpoint: InferenceEndpoint = .chatCompletions) throws -> InferenceRequestHead {
        try InferenceRequestHead.parse(ByteBuffer(string: json), endpoint: endpoint)
    }

    /// The error `parse` throws for `json`; records an issue when it accepts it.
    private func parseError(
        _ json: String,
        endpoint: InferenceEndpoint = .chatCompletions,
        sourceLocation: SourceLocation = #_sourceLocation
    ) -> OpenAIError? {
        do throws(OpenAIError) {
            let head = try InferenceRequestHead.parse(ByteBuffer(string: json), endpoint: endpoint)
            Issue.record("accepted \(json) as \(head)", sourceLocation: sourceLocation)
            return nil
        } catch {
            #expect(error.status == 400, sourceLocation: sourceLocation)
            #expect(error.type == "invalid_request_error", sourceLocation: sourceLocation)
            return error
        }
    }

    private func rewrite(_ json: String, to upstreamModel: String, endpoint: InferenceEndpoint = .chatCompletions) throws -> String {
        let body = ByteBuffer(string: json)
        let head = try InferenceRequestHead.parse(body, endpoint: endpoint)
        return text(head.upstreamBody(from: body, upstreamModel: upstreamModel))
    }

    // MARK: Reading the head

    @Test("reads the model of a minimal request, with defaults for the rest")
    func minimal() throws {
        let head = try parse(#"{"model":"chat-large","messages":[{"role":"user","content":"hi"}]}"#)
        #expect(head.endpoint == .chatCompletions)
        #expect(head.model == "chat-large")
        #expect(!head.stream)
        #expect(!head.clientWantsUsage)
        #expect(head.maxOutputTokens == nil)
    }

    @Test("decodes an escaped model name")
    func escapedModel() throws {
        #expect(try parse(#"{"model":"chat\"large\u00e9"}"#).model == "chat\"large\u{e9}")
        #expect(try parse(#"{"mod\u0065l":"chat-small"}"#).model == "chat-small")
    }

    @Test(
        "reads stream and stream_options.include_usage",
        arguments: [
            (#""stream":true"#, true, false),
            (#""stream":false"#, false, false),
            (#""stream":null"#, false, false),
            (#""stream":true,"stream_options":{"include_usage":true}"#, true, true),
            (#""stream_options":{"include_usage":true},"stream":true"#, true, true),
            (#""stream":true,"stream_options":{"include_usage":false}"#, true, false),
            (#""stream":true,"stream_options":{"include_obfuscation":false}"#, true, false),
            (#""stream":true,"stream_options":null"#, true, false),
            // Usage is a streaming option: without a stream the client gets the usage in the body anyway.
            (#""stream":false,"stream_options":{"include_usage":true}"#, false, false),
        ]
    )
    func streamFlags(members: String, stream: Bool, wantsUsage: Bool) throws {
        let head = try parse(#"{"model":"m","#.appending(members) + "}")
        #expect(head.stream == stream)
        #expect(head.clientWantsUsage == wantsUsage)
    }

    @Test(
        "reads max_tokens and max_completion_tokens, the latter winning",
        arguments: [
            (#""max_tokens":100"#, 100 as Int?),
            (#""max_tokens":0"#, 0),
            (#""max_completion_tokens":50"#, 50),
            (#""max_tokens":100,"max_completion_tokens":50"#, 50),
            (#""max_completion_tokens":50,"max_tokens":100"#, 50),
            (#""max_tokens":16777216"#, InferenceRequestHead.largestOutputTokens),
        ]
    )
    func maxOutputTokens(members: String, expected: Int?) throws {
        #expect(try parse(#"{"model":"m","#.appending(members) + "}").maxOutputTokens == expected)
    }

    @Test(
        "a null max_tokens or max_completion_tokens counts as not given",
    )
    func nullMaxTokens() throws {
        #expect(try parse(#"{"model":"m","max_tokens":null}"#).maxOutputTokens == nil)
        #expect(try parse(#"{"model":"m","max_completion_tokens":null}"#).maxOutputTokens == nil)
        #expect(try parse(#"{"model":"m","max_completion_tokens":null,"max_tokens":100}"#).maxOutputTokens == 100)
        #expect(try parse(#"{"model":"m","max_tokens":null,"max_completion_tokens":50}"#).maxOutputTokens == 50)
    }

    @Test("streams are allowed on chat and completions, and a non-streaming embeddings request parses")
    func endpoints() throws {
        #expect(try parse(#"{"model":"m","stream":true}"#, endpoint: .completions).stream)
        let embeddings = try parse(#"{"model":"embed","input":"hi","stream":false}"#, endpoint: .embeddings)
        #expect(embeddings.endpoint == .embeddings)
        #expect(embeddings.model == "embed")
    }

    @Test("reads a body whose reader index is not zero")
    func offsetBody() throws {
        let json = #"{"model":"chat-large","stream":true,"max_tokens":7}"#
        let head = try InferenceRequestHead.parse(offsetBuffer(Array(json.utf8)), endpoint: .chatCompletions)
        #expect(head.model == "chat-large")
        #expect(head.stream)
        #expect(head.maxOutputTokens == 7)
        #expect(head == (try parse(json)))
    }

    // MARK: Errors

    @Test("rejects an empty body")
    func emptyBody() {
        #expect(parseError("")?.message.contains("empty") == true)
    }

    @Test("rejects a body that is not an object", arguments: ["[]", #"["model"]"#, #""model""#, "42", "null", "  \n "])
    func notAnObject(json: String) {
        let error = parseError(json)
        #expect(error?.param == nil)
    }

    @Test(
        "rejects malformed JSON",
        arguments: [#"{"model":"m""#, #"{"model":"m",}"#, #"{"model":"m"} trailing"#, #"{"model":'m'}"#, "{", "{\"model\":\"a\nb\"}"]
    )
    func malformed(json: String) {
        #expect(parseError(json)?.message.contains("parse") == true)
    }

    @Test(
        "rejects wrongly typed or missing fields, naming them in param",
        arguments: [
            (#"{"messages":[]}"#, "model"),
            ("{}", "model"),
            (#"{"model":null}"#, "model"),
            (#"{"model":42}"#, "model"),
            (#"{"model":["m"]}"#, "model"),
            (#"{"model":"m","stream":"true"}"#, "stream"),
            (#"{"model":"m","stream":1}"#, "stream"),
            (#"{"model":"m","max_tokens":-1}"#, "max_tokens"),
            (#"{"model":"m","max_tokens":1.5}"#, "max_tokens"),
            (#"{"model":"m","max_tokens":1e3}"#, "max_tokens"),
            (#"{"model":"m","max_tokens":"10"}"#, "max_tokens"),
            (#"{"model":"m","max_tokens":99999999999999999999}"#, "max_tokens"),
            (#"{"model":"m","max_completion_tokens":-5}"#, "max_completion_tokens"),
            (#"{"model":"m","max_completion_tokens":2.0}"#, "max_completion_tokens"),
            (#"{"model":"m","stream":true,"stream_options":"include_usage"}"#, "stream_options"),
            (#"{"model":"m","stream":true,"stream_options":[]}"#, "stream_options"),
        ]
    )
    func badFields(json: String, param: String) {
        #expect(parseError(json)?.param == param)
    }

    @Test("rejects stream:true on embeddings")
    func streamingEmbeddings() {
        let error = parseError(#"{"model":"embed","input":"x","stream":true}"#, endpoint: .embeddings)
        #expect(error?.param == "stream")
    }

    // MARK: Rewriting for the upstream

    @Test("replaces the model and keeps every other byte of a non-streaming body")
    func rewritesModelOnly() throws {
        let json = "{ \"messages\" : [ {\"role\":\"user\",\"content\":\"h\u{e9}\\n\"} ],\n  \"model\" :  \"chat-large\" , \"temperature\":0.50,\"stream\":false }\n"
        let expected = "{ \"messages\" : [ {\"role\":\"user\",\"content\":\"h\u{e9}\\n\"} ],\n  \"model\" :  \"gpt-4o-mini\" , \"temperature\":0.50,\"stream\":false }\n"
        #expect(try rewrite(json, to: "gpt-4o-mini") == expected)
    }

    @Test("a non-streaming body gets no stream_options, and keeps those it has")
    func nonStreamKeepsOptions() throws {
        #expect(try rewrite(#"{"model":"a","n":1}"#, to: "b") == #"{"model":"b","n":1}"#)
        #expect(
            try rewrite(#"{"model":"a","stream_options":{"include_usage":false}}"#, to: "b")
                == #"{"model":"b","stream_options":{"include_usage":false}}"#
        )
    }

    @Test(
        "escapes an upstream model that needs it",
        arguments: ["we\"ird", "back\\slash", "line\nbreak", "tab\there", "ctl\u{1}", "caf\u{e9}/\u{1F600}"]
    )
    func escapesUpstreamModel(upstreamModel: String) throws {
        let rewritten = try rewrite(#"{"model":"chat","stream":true,"x":[1,2]}"#, to: upstreamModel)
        let object = try foundationObject(Array(rewritten.utf8))
        #expect(object["model"] as? String == upstreamModel)
        #expect(object["x"] as? [Int] == [1, 2])
        // And Switchyard's own parser reads back the same name.
        #expect(try parse(rewritten).model == upstreamModel)
    }

    @Test(
        "forces stream_options to include usage on streams, appending or replacing it",
        arguments: [
            (#"{"model":"a","stream":true}"#, #"{"model":"b","stream":true,"stream_options":{"include_usage":true}}"#),
            (
                "{\"model\":\"a\",\"stream\":true }\r\n",
                "{\"model\":\"b\",\"stream\":true ,\"stream_options\":{\"include_usage\":true}}\r\n"
            ),
            (
                #"{"model":"a","stream":true,"stream_options":{"include_usage":false}}"#,
                #"{"model":"b","stream":true,"stream_options":{"include_usage":true}}"#
            ),
            (
                #"{"model":"a","stream":true,"stream_options":null,"n":2}"#,
                #"{"model":"b","stream":true,"stream_options":{"include_usage":true},"n":2}"#
            ),
            (
                #"{"stream_options" : { "include_usage" : true },"stream":true,"model":"a"}"#,
                #"{"stream_options":{"include_usage":true},"stream":true,"model":"b"}"#
            ),
            (
                #"{"stream":true,"model":"a","stream_options":{"include_obfuscation":false,"include_usage":false}}"#,
                #"{"stream":true,"model":"b","stream_options":{"include_usage":true}}"#
            ),
        ]
    )
    func streamOptions(json: String, expected: String) throws {
        let rewritten = try rewrite(json, to: "b")
        #expect(rewritten == expected)
        let object = try foundationObject(Array(rewritten.utf8))
        #expect(object["model"] as? String == "b")
        #expect((object["stream_options"] as? [String: Any])?["include_usage"] as? Bool == true)
        #expect((object["stream_options"] as? [String: Any])?.count == 1)
    }

    @Test("the rewritten body equals the original except for model and stream_options")
    func rewritePreservesEverythingElse() throws {
        let json = #"""
            {"messages":[{"role":"system","content":"Be \"brief\"."},{"role":"user","content":"caf\u00e9 \ud83d\ude00"}],
             "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{}}}}],
             "temperature":0.2,"top_p":1,"stop":null,"model":"chat-large","stream":true,"user":"u-1"}
            """#
        let rewritten = try rewrite(json, to: "gpt-4.1-nano")
        var original = try foundationObject(Array(json.utf8))
        var result = try foundationObject(Array(rewritten.utf8))
        #expect(result.removeValue(forKey: "model") as? String == "gpt-4.1-nano")
        #expect(result.removeValue(forKey: "stream_options") != nil)
        original.removeValue(forKey: "model")
        #expect(NSDictionary(dictionary: result) == NSDictionary(dictionary: original))
    }

    @Test("rewrites a body whose reader index is not zero")
    func rewritesOffsetBody() throws {
        let cases = [
            (#"{"model":"a","messages":[]}"#, #"{"model":"upstream","messages":[]}"#),
            (#"{"messages":[],"model":"a","stream":true}"#, #"{"messages":[],"model":"upstream","stream":true,"stream_options":{"include_usage":true}}"#),
            (
                #"{"model":"a","stream_options":{"include_usage":false},"stream":true,"n":1}"#,
                #"{"model":"upstream","stream_options":{"include_usage":true},"stream":true,"n":1}"#
            ),
        ]
        for (json, expected) in cases {
            let body = offsetBuffer(Array(json.utf8))
            let head = try InferenceRequestHead.parse(body, endpoint: .chatCompletions)
            #expect(text(head.upstreamBody(from: body, upstreamModel: "upstream")) == expected)

            // A slice of a larger buffer behaves the same.
            var big = ByteBuffer(string: "0123456789")
            big.writeString(json)
            big.writeString(#"{"model":"tail"}"#)
            let slice = try #require(big.getSlice(at: 10, length: json.utf8.count))
            let sliceHead = try InferenceRequestHead.parse(slice, endpoint: .chatCompletions)
            #expect(text(sliceHead.upstreamBody(from: slice, upstreamModel: "upstream")) == expected)
        }
    }

    @Test("rewriting does not consume the client's body")
    func bodyUntouched() throws {
        let json = #"{"model":"a","stream":true}"#
        let body = ByteBuffer(string: json)
        let head = try InferenceRequestHead.parse(body, endpoint: .chatCompletions)
        _ = head.upstreamBody(from: body, upstreamModel: "b")
        #expect(text(body) == json)
    }

    // MARK: Hostile numbers and repeated keys

    @Test(
        "output-token limits above the ceiling are a 400 naming the parameter",
        arguments: ["max_tokens", "max_completion_tokens"],
        ["9223372036854775807", "16777217", "99999999999"]
    )
    func outputTokenCeiling(name: String, value: String) throws {
        let error = try #require(parseError(#"{"model":"chat-small","\#(name)":\#(value)}"#))
        #expect(error.param == name)
        #expect(error.message.contains("16777216"))
        for endpoint in [InferenceEndpoint.completions, .embeddings] {
            #expect(parseError(#"{"model":"m","\#(name)":\#(value)}"#, endpoint: endpoint)?.param == name)
        }
    }

    @Test("the ceiling itself is accepted, and says which parameter set it")
    func outputTokenCeilingIsInclusive() throws {
        let head = try parse(#"{"model":"chat-small","max_tokens":16777216}"#)
        #expect(head.maxOutputTokens == InferenceRequestHead.largestOutputTokens)
        #expect(head.maxOutputTokensParameter == "max_tokens")
        let both = try parse(#"{"model":"chat-small","max_tokens":5,"max_completion_tokens":7}"#)
        #expect(both.maxOutputTokens == 7)
        #expect(both.maxOutputTokensParameter == "max_completion_tokens")
    }

    @Test(
        "a member the head reads may be given only once",
        arguments: [
            (#"{"model":"a","max_tokens":64000,"max_tokens":1}"#, "max_tokens"),
            (#"{"model":"a","max_tokens":-5,"max_tokens":10}"#, "max_tokens"),
            (#"{"model":"a","model":"b"}"#, "model"),
            (#"{"model":"a","model":"b"}"#, "model"),
            (#"{"model":"a","stream":true,"stream":false}"#, "stream"),
            (#"{"model":"a","n":1,"n":2}"#, "n"),
            (#"{"model":"a","max_completion_tokens":1,"max_completion_tokens":1}"#, "max_completion_tokens"),
            (#"{"model":"a","stream_options":null,"stream_options":{}}"#, "stream_options"),
        ]
    )
    func repeatedMembers(json: String, param: String) throws {
        let error = try #require(parseError(json))
        #expect(error.param == param)
    }

    @Test("n is read and bounded")
    func choices() throws {
        #expect(try parse(#"{"model":"a"}"#).choices == 1)
        #expect(try parse(#"{"model":"a","n":null}"#).choices == 1)
        #expect(try parse(#"{"model":"a","n":128}"#).choices == 128)
        for value in ["0", "-1", "129", "9223372036854775807", "1.5", "\"2\""] {
            #expect(parseError(#"{"model":"a","n":\#(value)}"#)?.param == "n", "n = \(value)")
        }
    }

    @Test("invalid UTF-8 in a message is a 400 that says so")
    func invalidUTF8() throws {
        var bytes = Array(#"{"model":"chat-small","messages":[{"role":"user","content":"caf"#.utf8)
        bytes += [0xE9, 0x22, 0x7D, 0x5D, 0x7D]
        do throws(OpenAIError) {
            _ = try InferenceRequestHead.parse(ByteBuffer(bytes: bytes), endpoint: .chatCompletions)
            Issue.record("accepted invalid UTF-8")
        } catch {
            #expect(error.status == 400)
            #expect(error.code == "invalid_utf8")
            #expect(error.message.contains("not valid UTF-8"))
        }
    }

    @Test("an engine told the band gets its priority in place of the client's")
    func enginePriority() throws {
        func body(_ json: String, priority: Int?) throws -> String {
            let buffer = ByteBuffer(string: json)
            let head = try InferenceRequestHead.parse(buffer, endpoint: .chatCompletions)
            return text(head.upstreamBody(from: buffer, upstreamModel: "up", priority: priority))
        }
        #expect(try body(#"{"model":"a","messages":[]}"#, priority: -100) == #"{"model":"up","messages":[],"priority":-100}"#)
        // A client's own priority is replaced, wherever it is.
        #expect(try body(#"{"priority": -1000000, "model":"a"}"#, priority: -10) == #"{"priority":-10, "model":"up"}"#)
        #expect(try body(#"{"model":"a","priority":{"x":[1,2]},"n":1}"#, priority: 0) == #"{"model":"up","priority":0,"n":1}"#)
        // Not told: the body is the client's.
        #expect(try body(#"{"model":"a","priority":-5}"#, priority: nil) == #"{"model":"up","priority":-5}"#)
        #expect(parseError(#"{"model":"a","priority":1,"priority":-9}"#)?.param == "priority")
    }

    @Test("only engines are sent a priority")
    func priorityOnlyForEngines() throws {
        let buffer = ByteBuffer(string: #"{"model":"a","messages":[]}"#)
        let head = try InferenceRequestHead.parse(buffer, endpoint: .chatCompletions)
        let settings = DeploymentSettings(upstreamModel: "up", enginePriority: -100)
        let engine = try OpenAIAdapter(kind: .engine).makeRequest(
            head: head, body: buffer, deployment: settings, endpoint: ProviderEndpoint(kind: .engine, baseURL: "http://e/v1")
        )
        #expect(text(engine.body).hasSuffix(#","priority":-100}"#))
        let openAI = try OpenAIAdapter(kind: .openai).makeRequest(
            head: head, body: buffer, deployment: settings, endpoint: ProviderEndpoint(kind: .openai, baseURL: "https://api.openai.com/v1")
        )
        #expect(!text(openAI.body).contains("priority"))
    }
}
