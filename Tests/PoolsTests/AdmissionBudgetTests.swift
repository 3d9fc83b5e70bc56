import Testing

@testable import Pools

@Suite("AdmissionState budgets")
struct AdmissionBudgetTests {
    private let start = ContinuousClock.now
    /// 2026-12-01T12:00:00Z in Unix milliseconds; the month resets 2027-01-01.
    private let wall: Int64 = 1_796_126_400_000
    private let monthStart: Int64 = 1_796_083_200_000
    private let monthEnd: Int64 = 1_798_761_600_000

    private func budget(
        _ scope: String = "tenant", tokens: Int? = nil, micros: Int64? = nil, _ whenSpent: BudgetDemand.WhenSpent = .refuse,
        seed: BudgetAmounts? = .zero, periodStart: Int64? = nil
    ) -> BudgetDemand {
        BudgetDemand(
            key: BudgetPeriodKey(scope: scope, periodStart: periodStart ?? monthStart), resetsAt: monthEnd,
            limitTokens: tokens, limitMicros: micros, whenSpent: whenSpent, seed: seed
        )
    }

    private func request(_ prompt: Int, _ output: Int, micros: Int64 = 0, _ budgets: [BudgetDemand], throttled: Int = 10) -> AdmissionRequest {
        AdmissionRequest(
            promptTokens: prompt, maximumOutputTokens: output, maximumCostMicros: micros, budgets: budgets,
            wallClockMilliseconds: wall, throttledRequestsPerMinute: throttled
        )
    }

    private func state(_ limits: TenantLimits = .unlimited) -> AdmissionState {
        AdmissionState(tenantID: "acme", limits: limits, now: start)
    }

    @Test("a period without state asks for the ledger's figure and reserves nothing")
    func needsSeed() throws {
        var state = state()
        let unseeded = budget(seed: nil)
        let decision = state.admit(request: request(10, 10, [unseeded]), id: .init(1), now: start)
        #expect(decision == .needsSeed([unseeded.key]))
        #expect(state.budget(unseeded.key, now: start) == nil)
        #expect(state.inFlight(now: start) == 0)
        // Seeded, the period starts from what the ledger counted.
        let seeded = budget(seed: BudgetAmounts(tokens: 400, micros: 7))
        let reservation = try #require(state.admit(request: request(10, 10, micros: 3, [seeded]), id: .init(2), now: start).reservation)
        #expect(reservation.budgets == [seeded.key])
        #expect(reservation.micros == 3)
        #expect(state.budget(seeded.key, now: start) == BudgetStatus(used: .init(tokens: 400, micros: 7), reserved: .init(tokens: 20, micros: 3)))
        // Once it has state, a seed is not asked for and one given is ignored.
        var later = budget(seed: BudgetAmounts(tokens: 999_999, micros: 0))
        later.seed = nil
        #expect(state.admit(request: request(1, 1, [later]), id: .init(3), now: start).reservation != nil)
        #expect(state.budget(seeded.key, now: start)?.used.tokens == 400)
    }

    @Test("settling moves the reservation to used with the actual tokens and cost")
    func settles() throws {
        var state = state()
        let tenant = budget(tokens: 1_000)
        let reservation = try #require(state.admit(request: request(100, 200, micros: 50, [tenant]), id: .init(1), now: start).reservation)
        #expect(state.budget(tenant.key, now: start)?.reserved == BudgetAmounts(tokens: 300, micros: 50))
        let settled = state.settle(reservation: reservation, actualTokens: 120, actualMicros: 20, now: start)
        #expect(settled?.actualTokens == 120)
        #expect(state.budget(tenant.key, now: start) == BudgetStatus(used: .init(tokens: 120, micros: 20), reserved: .zero))
        // Settling again adds nothing to the reservation side but would count usage twice;
        // the meter settles once, so only the held one changes reserved amounts.
        #expect(state.settle(reservation: reservation, actualTokens: 0, actualMicros: 0, now: start) == nil)
        #expect(state.budget(tenant.key, now: start)?.used == BudgetAmounts(tokens: 120, micros: 20))
    }

    @Test("a budget admits while any of it is free, then refuses until its reset")
    func refusesWhenSpent() throws {
        var state = state()
        let tenant = budget(tokens: 500)
        // 300 reserved of 500: 200 free, so a 300-token request is still admitted...
        let first = try #require(state.admit(request: request(100, 200, [tenant]), id: .init(1), now: start).reservation)
        let second = try #require(state.admit(request: request(100, 200, [tenant]), id: .init(2), now: start).reservation)
        // ...and now 600 are reserved of 500: nothing more, whatever its size.
        let decision = state.admit(request: request(1, 0, [tenant]), id: .init(3), now: start)
        let refusal = try #require(decision.refusal)
        #expect(refusal.limit == .budget)
        #expect(refusal.budget == tenant)
        #expect(refusal.throttled == false)
        #expect(refusal.limitValue == 500)
        #expect(refusal.remaining == 0)
        #expect(refusal.requested == 1)
        #expect(refusal.retryAfter == .milliseconds(monthEnd - wall))
        #expect(refusal.retryAfterSeconds == Int((monthEnd - wall) / 1000))
        // Requests that used less give it back: 200 used, 300 free again.
        _ = state.settle(reservation: first, actualTokens: 100, now: start)
        _ = state.settle(reservation: second, actualTokens: 100, now: start)
        #expect(state.admit(request: request(1, 0, [tenant]), id: .init(4), now: start).reservation != nil)
    }

    @Test("overshoot is bounded: concurrent admissions never reserve past the limit by more than one reservation")
    func boundedOvershoot() throws {
        var state = state()
        let tenant = budget(tokens: 1_000, micros: 10_000)
        var admitted: [Reservation] = []
        for id in 1...200 {
            if let reservation = state.admit(request: request(30, 70, micros: 90, [tenant]), id: .init(UInt64(id)), now: start).reservation {
                admitted.append(reservation)
            }
        }
        // 100 tokens each: ten fit under 1000, the tenth reaching it exactly.
        #expect(admitted.count == 10)
        for reservation in admitted {
            _ = state.settle(reservation: reservation, actualTokens: 100, actualMicros: 90, now: start)
        }
        let status = try #require(state.budget(tenant.key, now: start))
        #expect(status.used == BudgetAmounts(tokens: 1_000, micros: 900))
        #expect(status.used.tokens <= 1_000 + 100)
        #expect(state.admit(request: request(1, 0, [tenant]), id: .init(999), now: start).refusal?.limit == .budget)
    }

    @Test("a money limit refuses on micro-units and reports them")
    func moneyLimit() throws {
        var state = state()
        let tenant = budget(micros: 1_000)
        _ = try #require(state.admit(request: request(10, 10, micros: 1_000, [tenant]), id: .init(1), now: start).reservation)
        let refusal = try #require(state.admit(request: request(10, 10, micros: 5, [tenant]), id: .init(2), now: start).refusal)
        #expect(refusal.limitValue == 1_000)
        #expect(refusal.remaining == 0)
        #expect(refusal.requested == 5)
    }

    @Test("budgets are checked in order and the first spent one refuses; rate limits come after")
    func order() throws {
        var state = state(TenantLimits(requestsPerMinute: 1))
        let quota = budget("quota", tokens: 10, seed: .init(tokens: 10, micros: 0))
        let tenant = budget(tokens: 5, seed: .init(tokens: 5, micros: 0))
        let refusal = try #require(state.admit(request: request(1, 1, [quota, tenant]), id: .init(1), now: start).refusal)
        #expect(refusal.budget?.key.scope == "quota")
        // A quota that serves when spent (overage) lets the next budget decide.
        let overage = budget("quota", tokens: 10, .serve)
        #expect(state.admit(request: request(1, 1, [overage, tenant]), id: .init(2), now: start).refusal?.budget?.key.scope == "tenant")
        // With no budget spent, the rate limits decide.
        let fresh = budget("key:k1", tokens: 100)
        _ = try #require(state.admit(request: request(1, 1, [overage, fresh]), id: .init(3), now: start).reservation)
        #expect(state.admit(request: request(1, 1, [overage, fresh]), id: .init(4), now: start).refusal?.limit == .requests)
    }

    @Test("a spent budget that throttles admits at the throttled rate, marked throttled")
    func throttles() throws {
        var state = state()
        let tenant = budget(tokens: 10, .throttle, seed: .init(tokens: 10, micros: 0))
        let first = try #require(state.admit(request: request(5, 5, [tenant], throttled: 2), id: .init(1), now: start).reservation)
        #expect(first.throttled)
        #expect(try #require(state.admit(request: request(5, 5, [tenant], throttled: 2), id: .init(2), now: start).reservation).throttled)
        let refusal = try #require(state.admit(request: request(5, 5, [tenant], throttled: 2), id: .init(3), now: start).refusal)
        #expect(refusal.limit == .budget)
        #expect(refusal.throttled)
        #expect(refusal.limitValue == 2)
        // Two per minute: the next in 30 s.
        #expect(refusal.retryAfter == .seconds(30))
        #expect(state.admit(request: request(5, 5, [tenant], throttled: 2), id: .init(4), now: start + .seconds(30)).reservation?.throttled == true)
        // Usage keeps counting while throttled.
        _ = state.settle(reservation: first, actualTokens: 7, now: start)
        #expect(state.budget(tenant.key, now: start)?.used.tokens == 17)
        // A budget with room is not throttled.
        let roomy = budget("key:k2", tokens: 1_000, .throttle)
        #expect(state.admit(request: request(5, 5, [roomy], throttled: 2), id: .init(5), now: start + .seconds(30)).reservation?.throttled == false)
    }

    @Test("a throttled rate of zero refuses until the reset")
    func throttledToNothing() throws {
        var state = state()
        let tenant = budget(tokens: 10, .throttle, seed: .init(tokens: 10, micros: 0))
        let refusal = try #require(state.admit(request: request(1, 1, [tenant], throttled: 0), id: .init(1), now: start).refusal)
        #expect(refusal.throttled)
        #expect(refusal.retryAfter == .milliseconds(monthEnd - wall))
    }

    @Test("an expired reservation gives its budget reservation back; its late settle still counts the usage")
    func expiry() throws {
        var state = AdmissionState(tenantID: "acme", limits: .unlimited, now: start, reservationTTL: .seconds(10))
        let tenant = budget(tokens: 1_000)
        let reservation = try #require(state.admit(request: request(100, 400, micros: 9, [tenant]), id: .init(1), now: start).reservation)
        #expect(state.budget(tenant.key, now: start + .seconds(9))?.reserved.tokens == 500)
        #expect(state.budget(tenant.key, now: start + .seconds(10))?.reserved == .zero)
        #expect(state.settle(reservation: reservation, actualTokens: 250, actualMicros: 4, now: start + .seconds(20)) == nil)
        #expect(state.budget(tenant.key, now: start + .seconds(20)) == BudgetStatus(used: .init(tokens: 250, micros: 4), reserved: .zero))
    }

    @Test("a new period starts from its seed and forgets the old period once nothing holds it")
    func rollover() throws {
        var state = state()
        let december = budget(tokens: 100, seed: .init(tokens: 100, micros: 0))
        #expect(state.admit(request: request(1, 1, [december]), id: .init(1), now: start).refusal != nil)
        let january = budget(tokens: 100, seed: .zero, periodStart: monthEnd)
        _ = try #require(state.admit(request: request(1, 1, [january]), id: .init(2), now: start).reservation)
        #expect(state.budget(december.key, now: start) == nil)
        #expect(state.budget(january.key, now: start)?.reserved.tokens == 2)
    }

    @Test("an old period an open reservation holds is kept until it settles")
    func rolloverWhileHeld() throws {
        var state = state()
        let december = budget(tokens: 100)
        let held = try #require(state.admit(request: request(1, 1, [december]), id: .init(1), now: start).reservation)
        let january = budget(tokens: 100, periodStart: monthEnd)
        _ = try #require(state.admit(request: request(1, 1, [january]), id: .init(2), now: start).reservation)
        _ = state.settle(reservation: held, actualTokens: 2, now: start)
        #expect(state.budget(december.key, now: start) == BudgetStatus(used: .init(tokens: 2, micros: 0), reserved: .zero))
    }

    @Test("budget state keeps a tenant from being forgotten until the ledger has caught up")
    func idleness() throws {
        var state = state()
        let tenant = budget(tokens: 100)
        let reservation = try #require(state.admit(request: request(1, 1, [tenant]), id: .init(1), now: start).reservation)
        _ = state.settle(reservation: reservation, actualTokens: 2, now: start)
        #expect(!state.isIdle(now: start + .seconds(59)))
        #expect(state.isIdle(now: start + .seconds(60)))
    }
}
