import Foundation
import NIOCore
import Testing

@testable import Providers

@Suite("RateLimitSignals.anthropic")
struct AnthropicRateLimitSignalsTests {
    /// The headers of the recorded 200 that carries the full `anthropic-ratelimit-*` set.
    private func recordedHeaders() throws -> [String: String] {
        let exchange = try AnthropicFixtures.exchanges("anthropic/recorded/anthropic-sdk-python.200-with-ratelimit-headers.json")[0]
        return try #require((exchange["response"] as? [String: Any])?["headers"] as? [String: String])
    }

    @Test("limits and remaining counts are the recorded headers' values")
    func recordedWindows() throws {
        let headers = try recordedHeaders()
        let signals = AnthropicAdapter().rateLimitSignals(status: 200, headers: headers.map { ($0.key, $0.value) }, body: nil)
        let windows: [(String, RateLimitSignals.Window)] = [
            ("requests", signals.requests), ("tokens", signals.tokens),
            ("input-tokens", signals.inputTokens), ("output-tokens", signals.outputTokens),
        ]
        for (kind, window) in windows {
            let limit = try #require(headers["anthropic-ratelimit-\(kind)-limit"].flatMap { Int($0) })
            let remaining = try #require(headers["anthropic-ratelimit-\(kind)-remaining"].flatMap { Int($0) })
            #expect(window.limit == limit, "\(kind)")
            #expect(window.remaining == remaining, "\(kind)")
            // The recording is in the past: resets are due now, never negative.
            let reset = try #require(window.reset, "\(kind)")
            #expect(reset >= .zero)
        }
        #expect(signals.requests.limit == 50)
        #expect(signals.retryAfter == nil)
    }

    @Test("resets are measured from the response time")
    func resetDurations() throws {
        let headers = try recordedHeaders().map { (name: $0.key, value: $0.value) }
        let now = try Date("2026-02-25T20:02:30Z", strategy: .iso8601)
        let signals = RateLimitSignals.anthropic(headers: headers, now: now)
        #expect(signals.requests.reset == .seconds(2))
        #expect(signals.inputTokens.reset == .seconds(7))
        #expect(signals.outputTokens.reset == .seconds(6))
        #expect(signals.tokens.reset == .seconds(6))
    }

    @Test("retry-after on a 200, as one cassette recorded it")
    func retryAfterOnSuccess() throws {
        let lines = String(decoding: try Fixtures.bytes("anthropic/cassettes/pydantic-ai.nonstream-200-with-retry-after.yaml"), as: UTF8.self)
            .split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        let key = try #require(lines.firstIndex(of: "retry-after:"))
        let value = lines[key + 1].trimmingCharacters(in: CharacterSet(charactersIn: "- '"))
        let signals = AnthropicAdapter().rateLimitSignals(status: 200, headers: [("retry-after", value)], body: nil)
        #expect(value == "55")
        #expect(signals.retryAfter == .seconds(55))
        #expect(signals.requests.isEmpty)
    }

    @Test("no headers, no signals; malformed values are skipped")
    func malformed() {
        #expect(RateLimitSignals.anthropic(headers: []).isEmpty)
        let signals = RateLimitSignals.anthropic(headers: [
            ("anthropic-ratelimit-tokens-limit", "lots"), ("anthropic-ratelimit-tokens-reset", "tomorrow"),
            ("anthropic-ratelimit-tokens-remaining", "100"),
        ])
        #expect(signals.tokens == RateLimitSignals.Window(remaining: 100))
    }
}
