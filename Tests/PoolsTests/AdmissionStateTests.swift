import Testing

@testable import Pools

@Suite("AdmissionState")
struct AdmissionStateTests {
    private let start = ContinuousClock.now
    private let limits = TenantLimits(requestsPerMinute: 10, tokensPerMinute: 1000, concurrentRequests: 5)

    private func request(_ prompt: Int, _ output: Int) -> AdmissionRequest {
        AdmissionRequest(promptTokens: prompt, maximumOutputTokens: output)
    }

    /// Admits and fails the test if the request is refused.
    private func admit(
        _ state: inout AdmissionState, _ request: AdmissionRequest, id: UInt64, at now: ContinuousClock.Instant,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> Reservation {
        let decision = state.admit(request: request, id: Reservation.ID(id), now: now)
        return try #require(decision.reservation, "refused: \(String(describing: decision.refusal))", sourceLocation: sourceLocation)
    }

    // MARK: Admission

    @Test("admission reserves one request, prompt plus maximum output tokens, and a slot")
    func reserves() throws {
        var state = AdmissionState(tenantID: "acme", limits: limits, now: start)
        let reservation = try admit(&state, request(100, 50), id: 1, at: start)
        #expect(reservation.tenantID == "acme")
        #expect(reservation.tokens == 150)
        #expect(reservation.expiresAt == start + .seconds(600))
        #expect(state.inFlight(now: start) == 1)
        #expect(reservation.headers.requests == RateLimitHeaders.Window(limit: 10, remaining: 9, reset: .seconds(6)))
        // 150 tokens at 1000 per minute take 9 s to come back.
        #expect(reservation.headers.tokens == RateLimitHeaders.Window(limit: 1000, remaining: 850, reset: .seconds(9)))
        #expect(state.headers(now: start + .seconds(3)).tokens?.remaining == 900)
    }

    @Test("all or nothing: requests left but tokens short refuses and changes nothing")
    func allOrNothing() throws {
        var state = AdmissionState(tenantID: "acme", limits: limits, now: start)
        _ = try admit(&state, request(500, 300), id: 1, at: start)
        let before = state
        let decision = state.admit(request: request(200, 100), id: Reservation.ID(2), now: start)
        let refusal = try #require(decision.refusal)
        #expect(refusal.limit == .tokens)
        #expect(refusal.limitValue == 1000)
        #expect(refusal.remaining == 200)
        #expect(refusal.requested == 300)
        // 100 tokens short at 1000 per minute: 6 s.
        #expect(refusal.retryAfter == .seconds(6))
        #expect(refusal.retryAfterSeconds == 6)
        #expect(state == before)
        #expect(state.inFlight(now: start) == 1)
        #expect(state.headers(now: start).requests?.remaining == 9, "the refused request took no request")
        _ = try admit(&state, request(200, 100), id: 3, at: start + .seconds(6))
    }

    @Test("requests per minute refuses with the wait for the next request")
    func requestsLimit() throws {
        var state = AdmissionState(tenantID: "acme", limits: TenantLimits(requestsPerMinute: 3), now: start)
        for id in 1...3 {
            _ = try admit(&state, request(1, 1), id: UInt64(id), at: start)
        }
        let refusal = try #require(state.admit(request: request(1, 1), id: Reservation.ID(4), now: start + .seconds(5)).refusal)
        #expect(refusal.limit == .requests)
        #expect(refusal.limitValue == 3)
        #expect(refusal.remaining == 0)
        #expect(refusal.requested == 1)
        #expect(refusal.retryAfter == .seconds(15), "one request per 20 s, 5 s already elapsed")
        #expect(refusal.headers.requests == RateLimitHeaders.Window(limit: 3, remaining: 0, reset: .seconds(55)))
        #expect(state.admit(request: request(1, 1), id: Reservation.ID(5), now: start + .seconds(20) - .milliseconds(1)).refusal != nil)
        _ = try admit(&state, request(1, 1), id: 6, at: start + .seconds(20))
    }

    @Test("the concurrency limit refuses until a slot is settled")
    func concurrencyLimit() throws {
        var state = AdmissionState(tenantID: "acme", limits: TenantLimits(concurrentRequests: 2), now: start)
        let first = try admit(&state, request(1, 1), id: 1, at: start)
        _ = try admit(&state, request(1, 1), id: 2, at: start)
        let refusal = try #require(state.admit(request: request(1, 1), id: Reservation.ID(3), now: start).refusal)
        #expect(refusal.limit == .concurrency)
        #expect(refusal.limitValue == 2)
        #expect(refusal.remaining == 0)
        #expect(refusal.retryAfter == .seconds(1), "the configured hint")
        #expect(state.settle(reservation: first, actualTokens: 2, now: start) != nil)
        #expect(state.inFlight(now: start) == 1)
        _ = try admit(&state, request(1, 1), id: 4, at: start)
    }

    @Test("a concurrency refusal never suggests waiting past the first expiry")
    func concurrencyRetryAfterExpiry() throws {
        var state = AdmissionState(
            tenantID: "acme", limits: TenantLimits(concurrentRequests: 1), now: start,
            reservationTTL: .milliseconds(1500), concurrencyRetryAfter: .seconds(5)
        )
        _ = try admit(&state, request(1, 1), id: 1, at: start)
        let refusal = try #require(state.admit(request: request(1, 1), id: Reservation.ID(2), now: start + .milliseconds(200)).refusal)
        #expect(refusal.retryAfter == .milliseconds(1300))
        #expect(refusal.retryAfterSeconds == 2)
    }

    @Test("when several limits are short, the refusal names the longest wait")
    func longestWaitNamed() throws {
        var state = AdmissionState(
            tenantID: "acme", limits: TenantLimits(requestsPerMinute: 2, tokensPerMinute: 100, concurrentRequests: 2), now: start
        )
        _ = try admit(&state, request(50, 40), id: 1, at: start)
        _ = try admit(&state, request(0, 0), id: 2, at: start + .seconds(1))
        // At 1 s every limit is short: requests wait 29 s (one per 30 s), concurrency 1 s (the
        // hint), and tokens 53 s (11.67 held, 88.33 more to come at 100 per minute).
        let refusal = try #require(state.admit(request: request(60, 40), id: Reservation.ID(3), now: start + .seconds(1)).refusal)
        #expect(refusal.limit == .tokens)
        #expect(refusal.remaining == 11)
        #expect(refusal.retryAfter == .seconds(53))
        #expect(state.admit(request: request(1, 0), id: Reservation.ID(4), now: start + .seconds(1)).refusal?.retryAfter == .seconds(29))
    }

    @Test("a request larger than the limit can never fit")
    func tooLarge() throws {
        var state = AdmissionState(tenantID: "acme", limits: limits, now: start)
        let refusal = try #require(state.admit(request: request(800, 400), id: Reservation.ID(1), now: start).refusal)
        #expect(refusal.limit == .tokens)
        #expect(refusal.retryAfter == nil)
        #expect(refusal.retryAfterSeconds == nil)
        #expect(refusal.requested == 1200)
        #expect(refusal.message.hasPrefix("Request too large for tokens per minute."))
        #expect(state.inFlight(now: start) == 0)
    }

    @Test("unlimited limits admit everything and send no rate-limit headers")
    func unlimited() throws {
        var state = AdmissionState(tenantID: "acme", limits: .unlimited, now: start)
        for id in 1...1000 {
            _ = try admit(&state, request(Int.max, Int.max), id: UInt64(id), at: start)
        }
        #expect(state.inFlight(now: start) == 1000)
        #expect(state.headers(now: start) == RateLimitHeaders())
        #expect(state.headers(now: start).fields.isEmpty)
    }

    // MARK: Settling

    @Test("settling gives back unused tokens and frees the slot")
    func settleRefunds() throws {
        var state = AdmissionState(tenantID: "acme", limits: limits, now: start)
        let reservation = try admit(&state, request(200, 300), id: 1, at: start)
        #expect(state.headers(now: start).tokens?.remaining == 500)
        let settled = state.settle(reservation: reservation, actualTokens: 120, now: start)
        let settlement = try #require(settled)
        #expect(settlement == Settlement(reservedTokens: 500, actualTokens: 120, unusedTokens: 380, excessTokens: 0))
        #expect(state.headers(now: start).tokens?.remaining == 880)
        #expect(state.headers(now: start).requests?.remaining == 9, "the request itself is not given back")
        #expect(state.inFlight(now: start) == 0)
    }

    @Test("using more than reserved takes the excess, into debt, and later requests wait")
    func settleExcess() throws {
        var state = AdmissionState(tenantID: "acme", limits: limits, now: start)
        let reservation = try admit(&state, request(100, 800), id: 1, at: start)
        let settled = state.settle(reservation: reservation, actualTokens: 1400, now: start)
        let settlement = try #require(settled)
        #expect(settlement.unusedTokens == 0)
        #expect(settlement.excessTokens == 500)
        #expect(state.tokens?.level == -400)
        #expect(state.headers(now: start).tokens?.remaining == 0)
        let refusal = try #require(state.admit(request: request(10, 0), id: Reservation.ID(2), now: start).refusal)
        #expect(refusal.limit == .tokens)
        #expect(refusal.retryAfter == .milliseconds(24_600), "410 tokens at 1000 per minute")
    }

    @Test("settling twice settles once")
    func doubleSettle() throws {
        var state = AdmissionState(tenantID: "acme", limits: limits, now: start)
        let reservation = try admit(&state, request(100, 100), id: 1, at: start)
        _ = try admit(&state, request(100, 100), id: 2, at: start)
        #expect(state.settle(reservation: reservation, actualTokens: 50, now: start) != nil)
        let afterFirst = state
        #expect(state.settle(reservation: reservation, actualTokens: 50, now: start) == nil)
        #expect(state.settle(reservation: reservation, actualTokens: 0, now: start) == nil)
        #expect(state == afterFirst)
        #expect(state.inFlight(now: start) == 1)
    }

    // MARK: Expiry

    @Test("an expired reservation frees its slot when next touched and keeps its tokens")
    func expiry() throws {
        var state = AdmissionState(
            tenantID: "acme", limits: TenantLimits(tokensPerMinute: 1000, concurrentRequests: 1), now: start,
            reservationTTL: .seconds(10)
        )
        let crashed = try admit(&state, request(100, 200), id: 1, at: start)
        #expect(state.admit(request: request(1, 1), id: Reservation.ID(2), now: start + .seconds(9)).refusal?.limit == .concurrency)
        #expect(state.inFlight(now: start + .seconds(10)) == 0)
        _ = try admit(&state, request(1, 1), id: 3, at: start + .seconds(10))
        #expect(state.open[crashed.id] == nil, "released on that touch")
        // A late settle does nothing: the expired reservation's tokens stay spent.
        let remaining = state.headers(now: start + .seconds(11)).tokens?.remaining
        #expect(state.settle(reservation: crashed, actualTokens: 0, now: start + .seconds(11)) == nil)
        #expect(state.headers(now: start + .seconds(11)).tokens?.remaining == remaining)
        #expect(state.inFlight(now: start + .seconds(11)) == 1)
    }

    // MARK: Limits and headers

    @Test("changed limits keep what has been used")
    func changedLimits() throws {
        var state = AdmissionState(tenantID: "acme", limits: limits, now: start)
        _ = try admit(&state, request(300, 300), id: 1, at: start)
        state.apply(TenantLimits(requestsPerMinute: 10, tokensPerMinute: 2000, concurrentRequests: 5), now: start)
        #expect(state.headers(now: start).tokens == RateLimitHeaders.Window(limit: 2000, remaining: 1400, reset: .seconds(18)))
        state.apply(TenantLimits(requestsPerMinute: 10, concurrentRequests: 5), now: start)
        #expect(state.headers(now: start).tokens == nil)
        state.apply(TenantLimits(requestsPerMinute: 10, tokensPerMinute: 500, concurrentRequests: 5), now: start)
        #expect(state.headers(now: start).tokens?.remaining == 500, "a new limit starts full")
    }

    @Test("header fields are OpenAI's names and notation")
    func headerFields() throws {
        var state = AdmissionState(tenantID: "acme", limits: TenantLimits(requestsPerMinute: 60, tokensPerMinute: 90_000), now: start)
        let reservation = try admit(&state, request(1000, 500), id: 1, at: start)
        let fields = reservation.headers.fields
        #expect(fields.map(\.name) == [
            "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests",
            "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens",
        ])
        #expect(fields.map(\.value) == ["60", "59", "1s", "90000", "88500", "1s"])
    }
}
