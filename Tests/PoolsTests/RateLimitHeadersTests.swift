import Testing

@testable import Pools

@Suite("RateLimitHeaders")
struct RateLimitHeadersTests {
    @Test("resets are written in Go's notation, as OpenAI does", arguments: [
        (Duration.zero, "0s"),
        (.milliseconds(20), "20ms"),
        (.microseconds(1), "1ms"),
        (.milliseconds(999), "999ms"),
        (.seconds(1), "1s"),
        (.seconds(6), "6s"),
        (.milliseconds(90_500), "1m30.5s"),
        (.milliseconds(1_050), "1.05s"),
        (.microseconds(1_000_100), "1.001s"),
        (.seconds(360), "6m0s"),
        (.seconds(3601), "1h0m1s"),
    ])
    func format(duration: Duration, expected: String) {
        #expect(RateLimitHeaders.format(duration) == expected)
    }

    @Test("a limit that is not set sends no headers")
    func partialFields() {
        let headers = RateLimitHeaders(tokens: .init(limit: 1000, remaining: 0, reset: .milliseconds(1500)))
        #expect(headers.fields.map(\.name) == ["x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"])
        #expect(headers.fields.map(\.value) == ["1000", "0", "1.5s"])
    }
}
