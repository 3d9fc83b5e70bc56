import Foundation
import NIOCore
import Testing

@testable import Providers

@Suite("Rate-limit signals")
struct RateLimitSignalsTests {
    /// The header block of a recorded HTTP response.
    func recordedHeaders(_ path: String) throws -> HeaderFields {
        let text = String(decoding: try Fixtures.bytes(path), as: UTF8.self)
        let head = text.components(separatedBy: "\n\n")[0]
        return head.split(separator: "\n").dropFirst().compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
    }

    @Test func openAIHeadersFromARecordedResponse() throws {
        let signals = RateLimitSignals.openAI(headers: try recordedHeaders("openai/http/200-chat-with-ratelimit-headers.newrelic.http"))
        #expect(signals.requests == .init(limit: 10_000, remaining: 9_999, reset: .milliseconds(6)))
        #expect(signals.tokens == .init(limit: 50_000_000, remaining: 49_999_975, reset: .zero))
        #expect(signals.retryAfter == nil)
        #expect(signals.shouldRetry == nil)
    }

    @Test(arguments: [
        ("6ms", Duration.milliseconds(6)), ("0s", .zero), ("20s", .seconds(20)), ("1m30s", .seconds(90)),
        ("2h0m1.5s", .milliseconds(7_201_500)), ("350us", .microseconds(350)), ("12", .seconds(12)), ("0.5", .milliseconds(500)),
    ])
    func durations(text: String, expected: Duration) {
        #expect(RateLimitSignals.parseDuration(text) == expected)
    }

    @Test(arguments: ["", "ms", "5x", "1m30", "-3s", "abc"])
    func malformedDurationsAreNil(text: String) {
        #expect(RateLimitSignals.parseDuration(text) == nil)
    }

    @Test func retryAfterInSecondsMillisecondsAndAsADate() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        var signals = RateLimitSignals()
        signals.readCommonHeaders([("Retry-After", "7"), ("x-should-retry", "true")], now: now)
        #expect(signals.retryAfter == .seconds(7))
        #expect(signals.shouldRetry == true)

        signals = RateLimitSignals()
        signals.readCommonHeaders([("retry-after", "7"), ("retry-after-ms", "1250")], now: now)
        #expect(signals.retryAfter == .milliseconds(1250), "retry-after-ms is the more precise")

        let parsed = RateLimitSignals.parseRetryAfter("Thu, 01 Jan 1970 00:01:00 GMT", now: Date(timeIntervalSince1970: 30))
        #expect(parsed == .seconds(30))
        #expect(RateLimitSignals.parseRetryAfter("soon", now: now) == nil)

        signals = RateLimitSignals()
        signals.readCommonHeaders([("x-should-retry", "false")], now: now)
        #expect(signals.shouldRetry == false)
        #expect(signals.retryAfter == nil)
    }

    @Test func resetTimesAsRFC3339() {
        let now = Date(timeIntervalSince1970: 1_767_225_600)  // 2026-01-01T00:00:00Z
        #expect(RateLimitSignals.parseResetTime("2026-01-01T00:00:42Z", now: now) == .seconds(42))
        #expect(RateLimitSignals.parseResetTime("2026-01-01T00:00:00.5Z", now: now) == .milliseconds(500))
        #expect(RateLimitSignals.parseResetTime("2025-12-31T23:59:00Z", now: now) == .zero, "a reset in the past is now")
        #expect(RateLimitSignals.parseResetTime("tomorrow", now: now) == nil)
    }

    @Test func openAIAdapterClassifiesErrors() {
        let adapter = OpenAIAdapter()
        let overloaded = adapter.mapError(status: 503, headers: [("retry-after", "2")], body: ByteBuffer(string: "busy"))
        #expect(overloaded.retryable)
        #expect(overloaded.error.status == 502)
        #expect(overloaded.signals.retryAfter == .seconds(2))
        let bad = adapter.mapError(status: 400, headers: [], body: ByteBuffer(string: #"{"error":{"message":"bad","type":"invalid_request_error"}}"#))
        #expect(!bad.retryable)
        #expect(bad.error.status == 400)
        let told = adapter.mapError(status: 400, headers: [("x-should-retry", "true")], body: ByteBuffer())
        #expect(told.retryable, "x-should-retry overrides the status")
    }

    // MARK: Hostile values

    @Test(
        "durations that are not finite or not positive are absent",
        arguments: ["inf", "infinity", "-inf", "nan", "1e999", "-1", "-0.5"]
    )
    func nonFiniteDurationsAreAbsent(text: String) {
        #expect(RateLimitSignals.parseDuration(text) == nil)
        #expect(RateLimitSignals.parseRetryAfter(text) == nil)
        var signals = RateLimitSignals()
        signals.readCommonHeaders([(name: "retry-after-ms", value: text)])
        #expect(signals.retryAfter == nil)
    }

    @Test(
        "absurdly long durations are held to a week instead of overflowing",
        arguments: ["1e19", "9223372036854775807", "0x1p80", "3000000000000000h", "9223372036854775808ms"]
    )
    func hugeDurationsAreClamped(text: String) {
        let week = RateLimitSignals.longestReportedDelay
        #expect(RateLimitSignals.parseDuration(text) == week)
        if Double(text) != nil { #expect(RateLimitSignals.parseRetryAfter(text) == week) }
        var signals = RateLimitSignals()
        signals.readCommonHeaders([(name: "retry-after-ms", value: "1e22")])
        #expect(signals.retryAfter == week)
        let openAI = RateLimitSignals.openAI(headers: [
            (name: "x-ratelimit-remaining-requests", value: "1"), (name: "x-ratelimit-reset-requests", value: text),
            (name: "retry-after", value: "inf"),
        ])
        #expect(openAI.requests.reset == week)
        #expect(openAI.retryAfter == nil)
    }
}
