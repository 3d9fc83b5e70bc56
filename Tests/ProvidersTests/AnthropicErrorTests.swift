import Foundation
import NIOCore
import Testing

@testable import Providers

@Suite("AnthropicError")
struct AnthropicErrorTests {
    private func failure(status: Int, body: String, headers: HeaderFields = []) -> UpstreamFailure {
        AnthropicAdapter().mapError(status: status, headers: headers, body: offsetBuffer(Array(body.utf8)))
    }

    private func body(_ type: String, _ message: String) -> String {
        #"{"type":"error","error":{"type":"\#(type)","message":"\#(message)"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}"#
    }

    @Test("the recorded 400 keeps its message and is not retried")
    func recorded400() throws {
        let exchange = try AnthropicFixtures.exchanges("anthropic/recorded/anthropic-sdk-python.400-invalid_request_error.json")[1]
        let response = try #require(exchange["response"] as? [String: Any])
        let status = try #require(response["status_code"] as? Int)
        let headers = try #require(response["headers"] as? [String: String]).map { (name: $0.key, value: $0.value) }
        let bodyObject = try #require(response["body"] as? [String: Any])
        let recordedMessage = try #require((bodyObject["error"] as? [String: Any])?["message"] as? String)
        let body = try JSONSerialization.data(withJSONObject: bodyObject)

        let failure = AnthropicAdapter().mapError(status: status, headers: headers, body: offsetBuffer(Array(body)))
        #expect(status == 400)
        #expect(failure.error.status == 400)
        #expect(failure.error.type == "invalid_request_error")
        #expect(failure.error.message == recordedMessage)
        #expect(failure.retryable == false)
        #expect(failure.signals.shouldRetry == false)
    }

    @Test("each documented error type", arguments: [
        (400, "invalid_request_error", 400, "invalid_request_error", nil, false),
        (401, "authentication_error", 401, "authentication_error", "upstream_auth_failed", false),
        (403, "permission_error", 403, "permission_error", "upstream_auth_failed", false),
        (404, "not_found_error", 404, "invalid_request_error", "not_found", false),
        (413, "request_too_large", 413, "invalid_request_error", "request_too_large", false),
        (429, "rate_limit_error", 429, "rate_limit_error", "rate_limit_exceeded", true),
        (500, "api_error", 502, "server_error", "upstream_error", true),
        (529, "overloaded_error", 503, "server_error", "overloaded", true),
        (504, "timeout_error", 504, "server_error", "upstream_timeout", true),
    ] as [(Int, String, Int, String, String?, Bool)])
    func documentedTypes(status: Int, anthropicType: String, openAIStatus: Int, openAIType: String, code: String?, retryable: Bool) {
        let failure = failure(status: status, body: body(anthropicType, "Something about it."))
        #expect(failure.error.status == openAIStatus)
        #expect(failure.error.type == openAIType)
        #expect(failure.error.code == code)
        #expect(failure.retryable == retryable)
    }

    @Test("bodies that are no Anthropic error map by status", arguments: [
        (400, 400, nil, false), (401, 401, "upstream_auth_failed", false), (403, 403, "upstream_auth_failed", false),
        (404, 404, "not_found", false), (408, 504, "upstream_timeout", true), (413, 413, "request_too_large", false),
        (429, 429, "rate_limit_exceeded", true), (500, 502, "upstream_error", true), (502, 502, "upstream_error", true),
        (503, 502, "upstream_error", true), (529, 503, "overloaded", true),
    ] as [(Int, Int, String?, Bool)])
    func byStatus(status: Int, openAIStatus: Int, code: String?, retryable: Bool) {
        for body in ["<html>Bad gateway</html>", "", #"{"message":"no"}"#] {
            let failure = failure(status: status, body: body)
            #expect(failure.error.status == openAIStatus, "\(body)")
            #expect(failure.error.code == code, "\(body)")
            #expect(failure.retryable == retryable, "\(body)")
        }
    }

    @Test("credential errors never echo the upstream message", arguments: [(401, "authentication_error"), (403, "permission_error")])
    func credentialsAreNotEchoed(status: Int, type: String) {
        let upstream = "invalid x-api-key sk-ant-api03-AbCdEf123"
        let failure = failure(status: status, body: body(type, upstream))
        #expect(!failure.error.message.contains("sk-ant"))
        #expect(!failure.error.message.contains("x-api-key"))
        #expect(!failure.error.message.isEmpty)
    }

    @Test("a rate limit message naming Switchyard's organisation is not echoed")
    func rateLimitMessageIsOwn() {
        let failure = failure(status: 429, body: body("rate_limit_error", "exceeds your organization's rate limit (org: 5576611f-a1ee)"))
        #expect(!failure.error.message.contains("5576611f"))
    }

    @Test("a not_found_error about the model is model_not_found")
    func modelNotFound() {
        let failure = failure(status: 404, body: body("not_found_error", "model: claude-nonexistent"))
        #expect(failure.error.status == 404)
        #expect(failure.error.code == "model_not_found")
        #expect(failure.error.param == "model")
        #expect(!failure.error.message.contains("claude-nonexistent"))
    }

    @Test("x-should-retry overrides the status")
    func shouldRetryHeader() {
        #expect(failure(status: 400, body: body("invalid_request_error", "x"), headers: [("x-should-retry", "true")]).retryable)
        #expect(!failure(status: 529, body: body("overloaded_error", "Overloaded"), headers: [("X-Should-Retry", "false")]).retryable)
    }

    @Test("the observed 529 and its headers")
    func observed529() {
        // anthropic/errors/observed-in-the-wild.md §1.
        let failure = failure(
            status: 529,
            body: #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011CZqsSVKqVkLw8gAm7VTrb"}"#,
            headers: [("request-id", "req_01RCc7MbLyQNtGKzBTv8VCep"), ("x-should-retry", "true")]
        )
        #expect(failure.error.status == 503)
        #expect(failure.retryable)
        #expect(failure.signals.shouldRetry == true)
        #expect(failure.signals.requests.isEmpty)
    }

    @Test("a 429's retry-after and windows reach the failure's signals")
    func rateLimitSignalsOnFailure() {
        let failure = failure(status: 429, body: body("rate_limit_error", "x"), headers: [
            ("retry-after", "12"), ("anthropic-ratelimit-requests-limit", "5"), ("anthropic-ratelimit-requests-remaining", "0"),
        ])
        #expect(failure.signals.retryAfter == .seconds(12))
        #expect(failure.signals.requests.limit == 5)
        #expect(failure.signals.requests.remaining == 0)
    }
}
