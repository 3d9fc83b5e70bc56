import Foundation
import NIOCore
import Testing

@testable import Providers

/// Helpers shared by the request translation suites.
enum AnthropicRequestRun {
    static let deployment = DeploymentSettings(upstreamModel: "claude-sonnet-4-5", defaultMaxTokens: 1234)
    static let endpoint = ProviderEndpoint(kind: .anthropic, baseURL: "https://api.anthropic.com", apiKey: "sk-ant-test")

    static func request(_ json: String, endpoint: ProviderEndpoint = endpoint, deployment: DeploymentSettings = deployment) throws -> UpstreamRequest {
        let body = offsetBuffer(Array(json.utf8))
        let head = try InferenceRequestHead.parse(body, endpoint: .chatCompletions)
        return try AnthropicAdapter().makeRequest(head: head, body: body, deployment: deployment, endpoint: endpoint)
    }

    /// The Messages request body for an OpenAI request body.
    static func body(_ json: String, deployment: DeploymentSettings = deployment) throws -> [String: Any] {
        try foundationObject(try request(json, deployment: deployment).body)
    }

    /// A request with `messages` and the given extra top-level members.
    static func body(messages: String = #"[{"role":"user","content":"Hi"}]"#, extra: String) throws -> [String: Any] {
        try body(#"{"model":"chat-large","messages":\#(messages)\#(extra.isEmpty ? "" : ",")\#(extra)}"#)
    }

    /// The error a request is refused with, or nil when it is translated.
    static func refusal(_ json: String) -> OpenAIError? {
        do {
            _ = try request(json)
            return nil
        } catch let error as OpenAIError {
            return error
        } catch {
            Issue.record("unexpected \(error)")
            return nil
        }
    }

    static func refusal(messages: String = #"[{"role":"user","content":"Hi"}]"#, extra: String) -> OpenAIError? {
        refusal(#"{"model":"chat-large","messages":\#(messages)\#(extra.isEmpty ? "" : ",")\#(extra)}"#)
    }

    static func messages(_ body: [String: Any]) -> [[String: Any]] {
        body["messages"] as? [[String: Any]] ?? []
    }

    static func blocks(_ message: [String: Any]) -> [[String: Any]] {
        message["content"] as? [[String: Any]] ?? []
    }

    static func json(_ value: Any) throws -> String {
        try canonicalJSON(Array(try JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed])))
    }
}

@Suite("AnthropicAdapter requests")
struct AnthropicRequestTests {
    typealias Run = AnthropicRequestRun

    // MARK: Envelope

    @Test("URL, headers, model and max_tokens default", arguments: [false, true])
    func envelope(stream: Bool) throws {
        let request = try Run.request(#"{"model":"chat-large","stream":\#(stream),"messages":[{"role":"user","content":"Hi"}]}"#)
        #expect(request.url == "https://api.anthropic.com/v1/messages")
        let headers = Dictionary(request.headers.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
        #expect(headers.count == request.headers.count)
        #expect(headers["content-type"] == "application/json")
        #expect(headers["x-api-key"] == "sk-ant-test")
        #expect(headers["anthropic-version"] == "2023-06-01")
        #expect(headers["accept"] == (stream ? "text/event-stream" : "application/json"))
        #expect(headers["authorization"] == nil)

        let body = try foundationObject(request.body)
        #expect(body["model"] as? String == "claude-sonnet-4-5")
        #expect(body["max_tokens"] as? Int == 1234)
        #expect(body["stream"] as? Bool == (stream ? true : nil))
        #expect(try Run.json(body["messages"] as Any) == #"[{"content":[{"text":"Hi","type":"text"}],"role":"user"}]"#)
        #expect(Set(body.keys) == (stream ? ["model", "max_tokens", "messages", "stream"] : ["model", "max_tokens", "messages"]))
    }

    @Test("a base URL ending in /v1 is not doubled")
    func baseURLWithVersion() throws {
        let endpoint = ProviderEndpoint(kind: .anthropic, baseURL: "https://gateway.example/anthropic/v1/")
        let request = try Run.request(#"{"model":"m","messages":[{"role":"user","content":"Hi"}]}"#, endpoint: endpoint)
        #expect(request.url == "https://gateway.example/anthropic/v1/messages")
        #expect(!request.headers.contains { $0.name == "x-api-key" })
    }

    @Test("operations other than chat completions are refused", arguments: [InferenceEndpoint.completions, .embeddings])
    func otherEndpoints(endpoint: InferenceEndpoint) throws {
        let body = ByteBuffer(string: #"{"model":"m","prompt":"Hi","input":"Hi"}"#)
        let head = try InferenceRequestHead.parse(body, endpoint: endpoint)
        #expect(throws: OpenAIError.self) {
            _ = try AnthropicAdapter().makeRequest(head: head, body: body, deployment: Run.deployment, endpoint: Run.endpoint)
        }
        do {
            _ = try AnthropicAdapter().makeRequest(head: head, body: body, deployment: Run.deployment, endpoint: Run.endpoint)
        } catch {
            #expect(error.status == 400)
            #expect(error.type == "invalid_request_error")
            #expect(error.code == "unsupported_endpoint")
            #expect(error.message.contains(endpoint.rawValue))
        }
    }

    @Test("max_completion_tokens, then max_tokens, then the deployment's default")
    func maxTokens() throws {
        #expect(try Run.body(extra: #""max_tokens":50,"max_completion_tokens":60"#)["max_tokens"] as? Int == 60)
        #expect(try Run.body(extra: #""max_tokens":50"#)["max_tokens"] as? Int == 50)
        #expect(try Run.body(extra: #""max_tokens":null"#)["max_tokens"] as? Int == 1234)
    }

    @Test("temperature, top_p, stop, user and safety_identifier")
    func samplingAndMetadata() throws {
        let body = try Run.body(extra: #""temperature":0.3,"top_p":0.9,"stop":["@@@","END"],"user":"user-42""#)
        #expect(body["temperature"] as? Double == 0.3)
        #expect(body["top_p"] as? Double == 0.9)
        #expect(body["stop_sequences"] as? [String] == ["@@@", "END"])
        #expect(try Run.json(body["metadata"] as Any) == #"{"user_id":"user-42"}"#)
        #expect(try Run.body(extra: #""stop":"STOP""#)["stop_sequences"] as? [String] == ["STOP"])
        #expect(try Run.body(extra: #""stop":[]"#)["stop_sequences"] == nil)
        #expect(try Run.body(extra: #""temperature":1"#)["temperature"] as? Double == 1)
        let safety = try Run.body(extra: #""safety_identifier":"hash-7""#)
        #expect((safety["metadata"] as? [String: Any])?["user_id"] as? String == "hash-7")
    }

    @Test("temperature above 1 or below 0 is refused, naming it", arguments: ["1.5", "2", "-0.1"])
    func temperatureOutOfRange(value: String) throws {
        let error = try #require(Run.refusal(extra: #""temperature":\#(value)"#))
        #expect(error.status == 400)
        #expect(error.type == "invalid_request_error")
        #expect(error.param == "temperature")
    }

    @Test("thinking passes through as written")
    func thinking() throws {
        let body = try Run.body(extra: #""thinking":{"type":"enabled","budget_tokens":2048},"max_tokens":4096"#)
        #expect(try Run.json(body["thinking"] as Any) == #"{"budget_tokens":2048,"type":"enabled"}"#)
    }

    // MARK: Response format

    @Test("json_schema becomes output_config.format; text adds nothing")
    func responseFormat() throws {
        let schema = #"{"type":"array","items":{"type":"integer"}}"#
        let body = try Run.body(extra: #""response_format":{"type":"json_schema","json_schema":{"name":"ids","strict":true,"schema":\#(schema)}}"#)
        // The shape of the recorded structured-output request behind sse/text-structured-output.recorded.sse.
        #expect(try Run.json(body["output_config"] as Any) == #"{"format":{"schema":{"items":{"type":"integer"},"type":"array"},"type":"json_schema"}}"#)
        #expect(try Run.body(extra: #""response_format":{"type":"text"}"#)["output_config"] == nil)
    }

    @Test("json_object and a schema-less json_schema are refused")
    func responseFormatRefused() throws {
        let jsonObject = try #require(Run.refusal(extra: #""response_format":{"type":"json_object"}"#))
        #expect(jsonObject.status == 400)
        #expect(jsonObject.param == "response_format")
        let noSchema = try #require(Run.refusal(extra: #""response_format":{"type":"json_schema","json_schema":{"name":"x"}}"#))
        #expect(noSchema.param == "response_format.json_schema.schema")
    }
}
