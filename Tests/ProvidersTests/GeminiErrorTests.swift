import Foundation
import NIOCore
import Testing

@testable import Providers

@Suite("Gemini errors")
struct GeminiErrorTests {
    private func failure(_ status: Int, _ bytes: [UInt8], headers: HeaderFields = []) -> UpstreamFailure {
        var buffer = ByteBuffer()
        buffer.writeBytes(bytes)
        return GeminiAdapter().mapError(status: status, headers: headers, body: buffer)
    }

    private func failure(_ status: Int, _ text: String, headers: HeaderFields = []) -> UpstreamFailure {
        failure(status, Array(text.utf8), headers: headers)
    }

    private func googleError(_ code: Int, _ status: String, _ message: String = "upstream says so") -> String {
        #"{"error":{"code":\#(code),"message":"\#(message)","status":"\#(status)"}}"#
    }

    // MARK: Recorded errors

    @Test(arguments: ["gemini/errors/400-API_KEY_INVALID.firebase.json", "gemini/http/400-stream-request-bad-api-key.newrelic.http"])
    func invalidProviderKeyIsOurAuthFailureAndNeverEchoed(name: String) throws {
        let body = name.hasSuffix(".http") ? try Fixtures.httpBody(name) : try Fixtures.bytes(name)
        let recorded = try #require(try foundationObject(body)["error"] as? [String: Any])
        let failure = failure(400, body)
        #expect(failure.error.status == 401)
        #expect(failure.error.type == "authentication_error")
        #expect(failure.error.code == "upstream_auth_failed")
        #expect(failure.retryable == false)
        let upstreamMessage = try #require(recorded["message"] as? String)
        #expect(!failure.error.message.contains(upstreamMessage))
        #expect(!failure.error.message.contains("key1234"))
        #expect(!String(decoding: failure.error.jsonBody().readableBytesView, as: UTF8.self).contains("API key not valid"))
    }

    @Test(arguments: ["gemini/errors/404-unknown-model.firebase.json", "gemini/http/404-stream-request-unknown-model.newrelic.http"])
    func unknownModelIsModelNotFound(name: String) throws {
        let body = name.hasSuffix(".http") ? try Fixtures.httpBody(name) : try Fixtures.bytes(name)
        let recorded = try #require(try foundationObject(body)["error"] as? [String: Any])
        let failure = failure(404, body)
        #expect(failure.error.status == 404)
        #expect(failure.error.type == "invalid_request_error")
        #expect(failure.error.code == "model_not_found")
        #expect(failure.error.param == "model")
        #expect(failure.error.message == recorded["message"] as? String)
        #expect(failure.retryable == false)
    }

    @Test func quotaExhaustedIsRateLimitWithoutProjectDetails() throws {
        let body = try Fixtures.bytes("gemini/errors/429-RESOURCE_EXHAUSTED-quota.firebase.json")
        let failure = failure(429, body)
        #expect(failure.error.status == 429)
        #expect(failure.error.type == "rate_limit_error")
        #expect(failure.error.code == "rate_limit_exceeded")
        #expect(failure.retryable)
        #expect(!failure.error.message.contains("348715329010"))
        // This recording carries ErrorInfo and Help but no RetryInfo: no delay is invented.
        #expect(!String(decoding: body, as: UTF8.self).contains("RetryInfo"))
        #expect(failure.signals.retryAfter == nil)
    }

    @Test func retryInfoBecomesRetryAfter() throws {
        let body = try Fixtures.bytes("gemini/errors/vercel.429-RESOURCE_EXHAUSTED-retryinfo.json")
        let recordedDelay = try #require(
            ((try foundationObject(body)["error"] as? [String: Any])?["details"] as? [[String: Any]])?
                .compactMap { $0["retryDelay"] as? String }.first
        )
        let seconds = try #require(Double(recordedDelay.dropLast()))
        let failure = failure(429, body)
        #expect(failure.error.status == 429)
        #expect(failure.retryable)
        #expect(failure.signals.retryAfter == .milliseconds(seconds * 1000))
        var buffer = ByteBuffer()
        buffer.writeBytes(body)
        #expect(GeminiAdapter().rateLimitSignals(status: 429, headers: [], body: buffer).retryAfter == .milliseconds(seconds * 1000))
    }

    @Test func recordedStreamHeadersCarryNoSignals() throws {
        let text = String(decoding: try Fixtures.bytes("gemini/http/200-stream-headers.newrelic.http"), as: UTF8.self)
        let headerBlock = try #require(text.components(separatedBy: "\n\n").first)
        let headers: HeaderFields = headerBlock.split(separator: "\n").dropFirst().compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]).lowercased(), String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces))
        }
        #expect(headers.count > 5)
        #expect(GeminiAdapter().rateLimitSignals(status: 200, headers: headers, body: nil).isEmpty)
    }

    // MARK: Status table

    @Test(arguments: [
        (400, "INVALID_ARGUMENT", 400, "invalid_request_error", false),
        (400, "FAILED_PRECONDITION", 400, "invalid_request_error", false),
        (401, "UNAUTHENTICATED", 401, "authentication_error", false),
        (403, "PERMISSION_DENIED", 403, "permission_error", false),
        (429, "RESOURCE_EXHAUSTED", 429, "rate_limit_error", true),
        (500, "INTERNAL", 502, "server_error", true),
        (503, "UNAVAILABLE", 503, "server_error", true),
        (504, "DEADLINE_EXCEEDED", 504, "server_error", true),
    ])
    func statusesMapAsDocumented(code: Int, status: String, expected: Int, type: String, retryable: Bool) {
        let failure = failure(code, googleError(code, status))
        #expect(failure.error.status == expected)
        #expect(failure.error.type == type)
        #expect(failure.retryable == retryable)
        if code == 401 || code == 403 {
            #expect(failure.error.code == "upstream_auth_failed")
            #expect(!failure.error.message.contains("upstream says so"))
        }
        if status == "INVALID_ARGUMENT" || status == "FAILED_PRECONDITION" {
            #expect(failure.error.message == "upstream says so")
        }
    }

    @Test func wrappedInAnArrayIsReadToo() {
        let failure = failure(429, "[" + googleError(429, "RESOURCE_EXHAUSTED") + "]")
        #expect(failure.error.status == 429)
        #expect(failure.error.code == "rate_limit_exceeded")
    }

    @Test func notFoundAboutSomethingElseHasNoModelCode() {
        let failure = failure(404, googleError(404, "NOT_FOUND", "File abc is not found."))
        #expect(failure.error.status == 404)
        #expect(failure.error.code == nil)
    }

    @Test(arguments: [
        (400, 400, false), (401, 401, false), (404, 502, false), (429, 429, true), (500, 502, true), (503, 503, true), (504, 504, true),
    ])
    func bodiesThatAreNotGooglesMapByStatus(status: Int, expected: Int, retryable: Bool) {
        let failure = failure(status, "<html><body>Error</body></html>")
        #expect(failure.error.status == expected)
        #expect(failure.retryable == retryable)
        #expect(!failure.error.message.contains("html"))
    }

    @Test func shouldRetryHeaderWins() {
        #expect(failure(503, googleError(503, "UNAVAILABLE"), headers: [("x-should-retry", "false")]).retryable == false)
        #expect(failure(400, googleError(400, "INVALID_ARGUMENT"), headers: [("X-Should-Retry", "true")]).retryable == true)
    }

    @Test func retryAfterHeaderWinsOverTheBody() {
        let body = #"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1.5s"}]}}"#
        #expect(failure(429, body).signals.retryAfter == .milliseconds(1500))
        #expect(failure(429, body, headers: [("retry-after", "3")]).signals.retryAfter == .seconds(3))
    }
}
