import Foundation
import NIOCore
import Testing

@testable import Providers

@Suite("UpstreamError")
struct UpstreamErrorTests {
    private func map(_ status: Int, _ body: String) -> OpenAIError {
        UpstreamError.map(status: status, body: ByteBuffer(string: body))
    }

    private func map(_ status: Int, bytes: [UInt8]) -> OpenAIError {
        var buffer = ByteBuffer()
        buffer.writeBytes(bytes)
        return UpstreamError.map(status: status, body: buffer)
    }

    // MARK: OpenAI-shaped bodies

    @Test("an OpenAI-shaped body keeps its message, type, param and code")
    func openAIShape() throws {
        let bytes = try Fixtures.bytes("openai/errors/vercel.400-unsupported_parameter.json")
        let recorded = try #require(try foundationObject(bytes)["error"] as? [String: Any])
        let error = map(400, bytes: bytes)
        #expect(error == OpenAIError(
            status: 400,
            message: try #require(recorded["message"] as? String),
            type: try #require(recorded["type"] as? String),
            param: recorded["param"] as? String,
            code: recorded["code"] as? String
        ))
        #expect(error.param == "max_tokens")
        #expect(map(400, bytes: bytes) == UpstreamError.map(status: 400, body: offsetBuffer(bytes)))
    }

    @Test("the recorded 404 model_not_found keeps its status and fields")
    func recorded404() throws {
        let body = try Fixtures.httpBody("openai/http/404-model_not_found.newrelic.http")
        let recorded = try #require(try foundationObject(body)["error"] as? [String: Any])
        let error = map(404, bytes: body)
        #expect(error.status == 404)
        #expect(error.message == recorded["message"] as? String)
        #expect(error.type == "invalid_request_error")
        #expect(error.param == nil)
        #expect(error.code == "model_not_found")
    }

    @Test("escaped text in the upstream's message is decoded")
    func escapedMessage() {
        let error = map(400, #"{"error":{"message":"bad \"x\"\nthere \u00e9","type":"invalid_request_error","code":null}}"#)
        #expect(error.message == "bad \"x\"\nthere \u{e9}")
        #expect(error.code == nil)
    }

    @Test("a numeric code becomes a string, and missing fields get defaults by status")
    func codesAndDefaults() {
        #expect(map(429, #"{"error":{"message":"slow down","type":"requests","code":429}}"#).code == "429")
        let server = map(500, #"{"error":{"message":"boom"}}"#)
        #expect(server == OpenAIError(status: 500, message: "boom", type: "server_error"))
        let client = map(400, #"{"error":{"type":"invalid_request_error"}}"#)
        #expect(client == OpenAIError(status: 400, message: "", type: "invalid_request_error"))
    }

    @Test("a 429 with an OpenAI body stays a 429 and keeps the upstream's type")
    func rateLimitedWithBody() {
        let error = map(429, #"{"error":{"message":"Rate limit reached for requests","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#)
        #expect(error.status == 429)
        #expect(error.type == "requests")
        #expect(error.code == "rate_limit_exceeded")
    }

    // MARK: Credentials

    @Test(
        "401 and 403 keep their status as upstream_auth_failed, whatever the body",
        arguments: [(401, "authentication_error"), (403, "permission_error")]
    )
    func authFailures(status: Int, type: String) throws {
        let recorded = try Fixtures.httpBody("openai/http/401-invalid_api_key.newrelic.http")
        for body in [recorded, Array("Forbidden".utf8), [], Array(#"{"detail":"no"}"#.utf8)] {
            let error = map(status, bytes: body)
            #expect(error.status == status)
            #expect(error.type == type)
            #expect(error.code == "upstream_auth_failed")
        }
    }

    @Test(
        "the upstream's 401 message, which quotes the provider key, never reaches the client",
    )
    func authFailureHidesProviderKey() throws {
        let body = try Fixtures.httpBody("openai/http/401-invalid_api_key.newrelic.http")
        #expect(String(decoding: body, as: UTF8.self).contains("DEADBEEF"))
        let error = map(401, bytes: body)
        #expect(!error.message.contains("DEADBEEF"))
        #expect(!text(error.jsonBody()).contains("DEADBEEF"))
    }

    // MARK: Bodies of another shape

    @Test(
        "a body that is not OpenAI-shaped becomes a generic error",
        arguments: [
            (500, "<html>Internal Server Error</html>", 502, "server_error", "upstream_error" as String?),
            (502, "", 502, "server_error", "upstream_error"),
            (503, #"{"detail":"overloaded"}"#, 502, "server_error", "upstream_error"),
            (500, #"{"error":"engine crashed"}"#, 502, "server_error", "upstream_error"),
            (404, "no such route", 502, "server_error", "upstream_error"),
            (429, "Too Many Requests", 429, "rate_limit_error", "rate_limit_exceeded"),
            (429, "", 429, "rate_limit_error", "rate_limit_exceeded"),
            (400, "bad", 400, "invalid_request_error", nil),
            (422, #"{"object":"error","message":"x"}"#, 422, "invalid_request_error", nil),
        ]
    )
    func genericErrors(status: Int, body: String, mappedStatus: Int, type: String, code: String?) {
        let error = map(status, body)
        #expect(error.status == mappedStatus)
        #expect(error.type == type)
        #expect(error.code == code)
        #expect(error.param == nil)
        #expect(error.message.contains("\(status)") || status == 404 || status == 429)
        if !body.isEmpty {
            #expect(!error.message.contains(body), "the upstream body is not echoed")
        }
    }
}
