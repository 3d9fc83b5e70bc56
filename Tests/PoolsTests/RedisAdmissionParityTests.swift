import Testing

@testable import Pools
import RedisTestSupport

/// The Redis scripts against their reference: `AdmissionState` and `RedisAdmission` driven
/// through the same admissions, seeds, settlements, expiries, limit, period and throttled
/// rate changes at the same instants must agree on every decision, refusal, retry-after,
/// header value, reservation, settlement, budget status and in-flight count.
@Suite("RedisAdmission parity with AdmissionState")
struct RedisAdmissionParityTests {
    struct Scenario: Sendable, CustomTestStringConvertible {
        var name: String
        /// The tenant's limits; the sequence moves to the next one every `limitsEvery` steps.
        var limits: [TenantLimits]
        var limitsEvery = 40
        var reservationTTL: Duration = .seconds(20)
        var concurrencyRetryAfter: Duration = .seconds(1)
        /// Requests ask for up to this many prompt tokens and as many output tokens.
        var largestRequest = 300
        var seed: UInt64
        var steps = 400
        /// The budgets a request may name: each admission names up to three of them.
        var budgets: [BudgetTemplate] = []
        /// The throttled rate; the sequence moves to the next one every `limitsEvery` steps.
        var throttledRates = [AdmissionRequest.defaultThrottledRequestsPerMinute]
        /// Requests cost up to this many micro-units per token.
        var largestPriceMicros = 20

        var testDescription: String { name }
    }

    /// One budget of the tenant: a request names its period that contains the wall clock.
    struct BudgetTemplate: Sendable {
        var scope: String
        var periodMilliseconds: Int64
        var limitTokens: Int?
        var limitMicros: Int64?
        var whenSpent: BudgetDemand.WhenSpent
    }

    static let scenarios: [Scenario] = [
        Scenario(
            name: "all three limits",
            limits: [TenantLimits(requestsPerMinute: 10, tokensPerMinute: 1000, concurrentRequests: 3)], seed: 1
        ),
        Scenario(
            name: "rates that do not divide a minute, short TTL, frequent expiries",
            limits: [TenantLimits(requestsPerMinute: 7, tokensPerMinute: 333, concurrentRequests: 2)],
            reservationTTL: .milliseconds(3_000), concurrencyRetryAfter: .milliseconds(1_500), seed: 2
        ),
        Scenario(name: "requests only", limits: [TenantLimits(requestsPerMinute: 5)], seed: 3),
        Scenario(name: "tokens only, with debt", limits: [TenantLimits(tokensPerMinute: 500)], seed: 4),
        Scenario(
            name: "concurrency only, hint longer than the TTL",
            limits: [TenantLimits(concurrentRequests: 2)],
            reservationTTL: .milliseconds(2_500), concurrencyRetryAfter: .seconds(5), seed: 5
        ),
        Scenario(
            name: "zero limits",
            limits: [
                TenantLimits(requestsPerMinute: 0, tokensPerMinute: 100),
                TenantLimits(tokensPerMinute: 0, concurrentRequests: 2),
                TenantLimits(concurrentRequests: 0),
            ],
            seed: 6
        ),
        Scenario(name: "unlimited", limits: [.unlimited], seed: 7, steps: 150),
        Scenario(
            name: "limits raised, lowered, removed and added",
            limits: [
                TenantLimits(requestsPerMinute: 10, tokensPerMinute: 1000, concurrentRequests: 3),
                TenantLimits(requestsPerMinute: 4, tokensPerMinute: 250, concurrentRequests: 1),
                TenantLimits(tokensPerMinute: 2000),
                TenantLimits(requestsPerMinute: 30, concurrentRequests: 5),
                TenantLimits(requestsPerMinute: 30, tokensPerMinute: 700, concurrentRequests: 5),
                TenantLimits(requestsPerMinute: 3, tokensPerMinute: 90_000, concurrentRequests: 2),
            ],
            limitsEvery: 25, reservationTTL: .milliseconds(7_000), seed: 8, steps: 600
        ),
        Scenario(
            // One request, one token and one slot per minute, and a reservation holds its
            // slot as long as the buckets take to refill: a one-token request waits exactly
            // as long on every limit, and the tie must name the limit AdmissionState names.
            name: "ties: every limit waits as long",
            limits: [
                TenantLimits(requestsPerMinute: 1, tokensPerMinute: 1, concurrentRequests: 1),
                TenantLimits(requestsPerMinute: 1, tokensPerMinute: 1),
                TenantLimits(tokensPerMinute: 1, concurrentRequests: 1),
                TenantLimits(requestsPerMinute: 1, concurrentRequests: 1),
            ],
            limitsEvery: 50, reservationTTL: .seconds(60), concurrencyRetryAfter: .seconds(60),
            largestRequest: 1, seed: 10, steps: 600
        ),
        Scenario(
            name: "no concurrency hint: the concurrency limit never refuses",
            limits: [TenantLimits(tokensPerMinute: 600, concurrentRequests: 1)],
            concurrencyRetryAfter: .zero, seed: 9
        ),
    ]

    static let budgetScenarios: [Scenario] = [
        Scenario(
            name: "budgets in tokens, in money and in both, with rate limits",
            limits: [
                TenantLimits(requestsPerMinute: 60, tokensPerMinute: 20_000, concurrentRequests: 4),
                TenantLimits(requestsPerMinute: 20, tokensPerMinute: 5_000, concurrentRequests: 2),
            ],
            limitsEvery: 60, seed: 21, steps: 500,
            budgets: [
                BudgetTemplate(scope: "quota", periodMilliseconds: 60_000, limitTokens: 8_000, whenSpent: .refuse),
                BudgetTemplate(scope: "tenant", periodMilliseconds: 45_000, limitMicros: 8_000, whenSpent: .throttle),
                BudgetTemplate(
                    scope: "key:a", periodMilliseconds: 30_000, limitTokens: 5_000, limitMicros: 300_000, whenSpent: .serve
                ),
            ],
            throttledRates: [2]
        ),
        Scenario(
            name: "budgets without rate limits",
            limits: [.unlimited], seed: 22, steps: 500,
            budgets: [
                BudgetTemplate(scope: "tenant", periodMilliseconds: 20_000, limitTokens: 3_000, whenSpent: .refuse),
                BudgetTemplate(scope: "quota", periodMilliseconds: 90_000, limitMicros: 15_000, whenSpent: .throttle),
                BudgetTemplate(
                    scope: "key:b", periodMilliseconds: 50_000, limitTokens: 4_000, limitMicros: 60_000, whenSpent: .refuse
                ),
                BudgetTemplate(scope: "key:c", periodMilliseconds: 35_000, whenSpent: .serve),
            ],
            throttledRates: [1, 3]
        ),
        Scenario(
            name: "throttled rates that change, zero among them",
            limits: [TenantLimits(concurrentRequests: 3), TenantLimits(requestsPerMinute: 12, concurrentRequests: 3)],
            limitsEvery: 45, seed: 23, steps: 500,
            budgets: [
                BudgetTemplate(scope: "tenant", periodMilliseconds: 40_000, limitTokens: 1_500, whenSpent: .throttle),
                BudgetTemplate(scope: "key:d", periodMilliseconds: 25_000, limitMicros: 50_000, whenSpent: .throttle),
                BudgetTemplate(scope: "quota", periodMilliseconds: 70_000, limitTokens: 6_000, whenSpent: .serve),
            ],
            throttledRates: [10, 3, 0, 60, 1]
        ),
        Scenario(
            name: "short periods and reservations: periods change under open reservations",
            limits: [TenantLimits(tokensPerMinute: 3_000, concurrentRequests: 5), .unlimited],
            limitsEvery: 80, reservationTTL: .milliseconds(8_000), seed: 24, steps: 600,
            budgets: [
                BudgetTemplate(scope: "tenant", periodMilliseconds: 5_000, limitTokens: 1_200, whenSpent: .refuse),
                BudgetTemplate(
                    scope: "quota", periodMilliseconds: 12_000, limitTokens: 2_500, limitMicros: 20_000, whenSpent: .throttle
                ),
                BudgetTemplate(scope: "key:e", periodMilliseconds: 9_000, limitMicros: 15_000, whenSpent: .refuse),
            ],
            throttledRates: [1, 2]
        ),
    ]

    @Test("the same operations at the same instants give the same answers", arguments: scenarios + budgetScenarios)
    func parity(_ scenario: Scenario) async throws {
        try await withRedis { _, client in
            let admission = RedisAdmission(
                client: client, reservationTTL: scenario.reservationTTL, concurrencyRetryAfter: scenario.concurrencyRetryAfter
            )
            var driver = ParityDriver(scenario: scenario, admission: admission, client: client)
            try await driver.run()
            // Each kind of answer happened often enough to mean something.
            let counts = driver.counts
            #expect(counts.admitted >= 3)
            #expect(counts.settled >= 3)
            #expect(counts.refused >= 3 || scenario.limits == [.unlimited])
            guard !scenario.budgets.isEmpty else { return }
            #expect(counts.needsSeed >= 3)
            #expect(counts.budgetStatuses >= 100)
            if scenario.budgets.contains(where: { $0.whenSpent == .refuse }) {
                #expect(counts.budgetRefused >= 3)
            }
            if scenario.budgets.contains(where: { $0.whenSpent == .throttle }) {
                #expect(counts.throttledAdmitted >= 3)
                #expect(counts.throttledRefused >= 3)
            }
        }
    }

    @Test("settling through the queue at a fixed instant matches too, budgets included")
    func queuedSettlementParity() async throws {
        try await withRedis { _, client in
            let admission = RedisAdmission(client: client)
            let limits = TenantLimits(requestsPerMinute: 20, tokensPerMinute: 1000, concurrentRequests: 4)
            let start = ContinuousClock.now
            let base = 1_000_000
            func at(_ ms: Int) -> RedisAdmission.FixedNow { .init(milliseconds: base + ms, instant: start + .milliseconds(ms)) }
            var state = AdmissionState(tenantID: "acme", limits: limits, now: start)
            let budget = BudgetDemand(
                key: BudgetPeriodKey(scope: "tenant", periodStart: 0), resetsAt: 3_600_000,
                limitTokens: 5_000, limitMicros: 90_000, whenSpent: .refuse, seed: BudgetAmounts(tokens: 40, micros: 300)
            )
            func request(_ tokens: Int, budgets: [BudgetDemand] = [budget]) -> AdmissionRequest {
                AdmissionRequest(
                    promptTokens: tokens, maximumOutputTokens: 0, maximumCostMicros: Int64(tokens) * 3, budgets: budgets,
                    wallClockMilliseconds: Int64(base)
                )
            }

            var reservations: [Reservation] = []
            for (index, tokens) in [300, 200, 100].enumerated() {
                let decision = try await admission.admit(tenantID: "acme", limits: limits, request: request(tokens), at: at(index * 10))
                let reservation = try #require(decision.reservation)
                #expect(state.admit(request: request(tokens), id: reservation.id, now: at(index * 10).instant) == decision)
                reservations.append(reservation)
            }
            for (index, (reservation, actual)) in zip(reservations, [50, 600, 100]).enumerated() {
                admission.settle(reservation, actualTokens: actual, actualMicros: Int64(actual) * 2, atMilliseconds: base + 100 + index)
                _ = state.settle(reservation: reservation, actualTokens: actual, actualMicros: Int64(actual) * 2, now: at(100 + index).instant)
            }
            admission.settle(reservations[0], actualTokens: 0, atMilliseconds: base + 200)
            _ = state.settle(reservation: reservations[0], actualTokens: 0, now: at(200).instant)
            // run() is not running: flush sends the queue itself, in order, in one pipeline.
            await admission.flush()
            #expect(admission.statistics == RedisAdmission.Statistics(settled: 3, unmatched: 1, dropped: 0, pending: 0))
            let status = try await admission.budgetStatus(tenantID: "acme", key: budget.key, at: at(300))
            #expect(status == state.budget(budget.key, now: at(300).instant))
            #expect(status == BudgetStatus(used: BudgetAmounts(tokens: 790, micros: 1_800), reserved: .zero))

            let probe = request(10, budgets: [])
            let decision = try await admission.admit(tenantID: "acme", limits: limits, request: probe, at: at(500))
            let id = decision.reservation?.id ?? Reservation.ID(0)
            #expect(state.admit(request: probe, id: id, now: at(500).instant) == decision)
            #expect(decision.reservation != nil)
        }
    }
}

/// Runs one scenario step by step against both implementations, stopping at the first
/// difference.
private struct ParityDriver {
    struct Counts {
        var admitted = 0
        var refused = 0
        var settled = 0
        var unmatched = 0
        var needsSeed = 0
        var budgetRefused = 0
        var throttledAdmitted = 0
        var throttledRefused = 0
        var budgetStatuses = 0
    }

    let scenario: RedisAdmissionParityTests.Scenario
    let admission: RedisAdmission
    let client: RedisClient
    let tenantID = "parity"
    let start = ContinuousClock.now
    /// Redis milliseconds at the start: any value works; this one looks like a real clock.
    let base = 1_750_000_000_000

    var random: SplitMix64
    var elapsed = 0
    var state: AdmissionState?
    var open: [Reservation] = []
    var finished: [Reservation] = []
    var counts = Counts()
    /// Ids for AdmissionState when Redis refused: never admitted, so never stored.
    var unusedID: UInt64 = 1 << 63
    /// What the ledger records per budget period: every settled usage, and what it had
    /// counted before the store knew the period.
    var ledger: [BudgetPeriodKey: BudgetAmounts] = [:]
    /// Every budget period named so far, and when it resets.
    var periods: [BudgetPeriodKey: Int64] = [:]

    init(scenario: RedisAdmissionParityTests.Scenario, admission: RedisAdmission, client: RedisClient) {
        self.scenario = scenario
        self.admission = admission
        self.client = client
        self.random = SplitMix64(seed: scenario.seed)
    }

    var now: RedisAdmission.FixedNow {
        .init(milliseconds: base + elapsed, instant: start + .milliseconds(elapsed))
    }

    mutating func run() async throws {
        for step in 0..<scenario.steps {
            let phase = step / scenario.limitsEvery
            let limits = scenario.limits[phase % scenario.limits.count]
            let throttledRate = scenario.throttledRates[phase % scenario.throttledRates.count]
            let roll = random.next(below: 100)
            if roll < 50 || open.isEmpty && roll < 92 {
                try await admit(limits: limits, throttledRate: throttledRate, step: step)
            } else if roll < 92 {
                try await settle(step: step)
            } else if let expiry = earliestExpiry, expiry > elapsed, random.next(below: 3) == 0 {
                // To the very millisecond a reservation expires: it no longer holds its slot.
                elapsed = expiry
            } else {
                // Long pauses: buckets refill, some or all reservations expire.
                elapsed += random.next(below: random.next(below: 2) == 0 ? 90_000 : 15_000)
            }
            try await compareInFlight(step: step)
            try await compareBudgets(step: step, all: step % 25 == 0)
            elapsed += advance()
        }
    }

    /// When the first open reservation expires, in milliseconds since the start.
    private var earliestExpiry: Int? {
        open.map { reservation in
            let (seconds, attoseconds) = (reservation.expiresAt - start).components
            return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
        }.min()
    }

    /// Mostly short steps, some none at all, some of one tick, some of whole seconds (where
    /// waits of whole seconds tie).
    private mutating func advance() -> Int {
        switch random.next(below: 20) {
        case 0, 1, 2: 0
        case 3: 1
        case 4, 5: 1000 * random.next(below: 3)
        default: random.next(below: 2_500)
        }
    }

    // MARK: Admitting

    private mutating func admit(limits: TenantLimits, throttledRate: Int, step: Int) async throws {
        var request = makeRequest(throttledRate: throttledRate)
        if state == nil {
            state = AdmissionState(
                tenantID: tenantID, limits: limits, now: now.instant,
                reservationTTL: scenario.reservationTTL, concurrencyRetryAfter: scenario.concurrencyRetryAfter
            )
        }
        var decision = try await admitBoth(request, limits: limits, step: step)
        if case .needsSeed(let missing) = decision {
            counts.needsSeed += 1
            // The proxy asks the ledger and tries again with the figures.
            for index in request.budgets.indices where missing.contains(request.budgets[index].key) {
                request.budgets[index].seed = seed(for: request.budgets[index])
            }
            decision = try await admitBoth(request, limits: limits, step: step)
        }
        switch decision {
        case .admitted(let reservation):
            open.append(reservation)
            counts.admitted += 1
            if reservation.throttled { counts.throttledAdmitted += 1 }
        case .refused(let refusal):
            counts.refused += 1
            if refusal.limit == .budget { counts.budgetRefused += 1 }
            if refusal.throttled { counts.throttledRefused += 1 }
        case .needsSeed(let keys):
            Issue.record("step \(step): asked for seeds of \(keys) after they were given")
        }
    }

    private mutating func admitBoth(_ request: AdmissionRequest, limits: TenantLimits, step: Int) async throws -> AdmissionDecision {
        let remote = try await admission.admit(tenantID: tenantID, limits: limits, request: request, at: now)
        let id: Reservation.ID
        if let reservation = remote.reservation {
            id = reservation.id
        } else {
            unusedID += 1
            id = Reservation.ID(unusedID)
        }
        state!.apply(limits, now: now.instant)
        let local = state!.admit(request: request, id: id, now: now.instant)
        try #require(remote == local, "step \(step) at \(elapsed) ms, \(limits), \(request): Redis \(remote), reference \(local)")
        return remote
    }

    private mutating func makeRequest(throttledRate: Int) -> AdmissionRequest {
        var request: AdmissionRequest
        switch random.next(below: 20) {
        case 0: request = AdmissionRequest(promptTokens: 0, maximumOutputTokens: 0)
        case 1: request = AdmissionRequest(promptTokens: 5_000 + random.next(below: 100_000), maximumOutputTokens: 500)
        default:
            request = AdmissionRequest(
                promptTokens: random.next(below: scenario.largestRequest + 1),
                maximumOutputTokens: random.next(below: scenario.largestRequest + 1)
            )
        }
        guard !scenario.budgets.isEmpty else { return request }
        let price = random.next(below: 4) == 0 ? 0 : random.next(below: scenario.largestPriceMicros + 1)
        request.maximumCostMicros = Int64(request.reservedTokens) * Int64(price)
        request.throttledRequestsPerMinute = throttledRate
        // Mostly the proxy's clock agrees with Redis's; sometimes it lags, and names the
        // period before the one Redis's clock is in.
        let wall = Int64(now.milliseconds) - (random.next(below: 6) == 0 ? Int64(random.next(below: 3_000)) : 0)
        request.wallClockMilliseconds = wall
        // Up to three budgets, each of its own scope, in any order; sometimes one twice.
        var templates = scenario.budgets
        templates.shuffle(using: &random)
        let chosen = templates.prefix(random.next(below: min(3, templates.count) + 1))
        let seeded = random.next(below: 4) == 0
        for template in chosen {
            let periodStart = wall / template.periodMilliseconds * template.periodMilliseconds
            var budget = BudgetDemand(
                key: BudgetPeriodKey(scope: template.scope, periodStart: periodStart),
                resetsAt: periodStart + template.periodMilliseconds,
                limitTokens: template.limitTokens, limitMicros: template.limitMicros, whenSpent: template.whenSpent
            )
            periods[budget.key] = budget.resetsAt
            if seeded { budget.seed = seed(for: budget) }
            request.budgets.append(budget)
        }
        if let again = request.budgets.first, random.next(below: 12) == 0 {
            request.budgets.append(again)
        }
        return request
    }

    /// The ledger's figure for a period: what was settled in it, and now and then what was
    /// used before the store knew it: up to the limit, past it, or exactly at it.
    private mutating func seed(for budget: BudgetDemand) -> BudgetAmounts {
        var amounts = ledger[budget.key] ?? .zero
        switch random.next(below: 10) {
        case 0:
            amounts = BudgetAmounts(
                tokens: max(amounts.tokens, budget.limitTokens ?? 0), micros: max(amounts.micros, budget.limitMicros ?? 0)
            )
            ledger[budget.key] = amounts
        case 1, 2:
            let earlier = BudgetAmounts(
                tokens: random.next(below: (budget.limitTokens ?? 1_000) * 5 / 4 + 1),
                micros: Int64(random.next(below: Int(budget.limitMicros ?? 10_000) * 5 / 4 + 1))
            )
            amounts = amounts.adding(earlier)
            ledger[budget.key] = amounts
        default:
            break
        }
        return amounts
    }

    // MARK: Settling

    private mutating func settle(step: Int) async throws {
        // One in eight settles something already settled or expired: it must do nothing
        // but count the usage again.
        let again = !finished.isEmpty && random.next(below: 8) == 0
        let reservation: Reservation
        if again {
            reservation = finished[random.next(below: finished.count)]
        } else {
            reservation = open.remove(at: random.next(below: open.count))
            finished.append(reservation)
        }
        let actual: Int
        switch random.next(below: 10) {
        case 0: actual = 0
        case 1: actual = reservation.tokens + random.next(below: 2_000)
        case 2: actual = -5
        default: actual = random.next(below: reservation.tokens + 1)
        }
        let actualMicros: Int64
        switch random.next(below: 10) {
        case 0: actualMicros = 0
        case 1: actualMicros = reservation.micros + Int64(random.next(below: 5_000))
        case 2: actualMicros = -3
        default: actualMicros = Int64(random.next(below: Int(reservation.micros) + 1))
        }
        let remote = try await admission.settleImmediately(reservation, actualTokens: actual, actualMicros: actualMicros, at: now)
        let local = state!.settle(reservation: reservation, actualTokens: actual, actualMicros: actualMicros, now: now.instant)
        try #require(remote == local, "step \(step) at \(elapsed) ms, settling \(reservation.id) with \(actual), \(actualMicros) micros: Redis \(String(describing: remote)), reference \(String(describing: local))")
        if remote == nil { counts.unmatched += 1 } else { counts.settled += 1 }
        let used = BudgetAmounts(tokens: actual, micros: actualMicros)
        for key in reservation.budgets {
            ledger[key] = (ledger[key] ?? .zero).adding(used)
        }
    }

    // MARK: Comparing

    /// Reservations not expired at `now`; expired ones may still be stored until the next
    /// script removes them.
    private func compareInFlight(step: Int) async throws {
        guard let state else { return }
        let keys = RedisAdmission.Keys(tenantID: tenantID)
        let remote = try await client.command(["ZCOUNT", keys.inflight, "(\(now.milliseconds)", "+inf"]).integer
        try #require(remote == state.inFlight(now: now.instant), "step \(step): in flight")
    }

    /// The budget periods that may still change (recent ones and those open reservations
    /// name), or every period named so far.
    private mutating func compareBudgets(step: Int, all: Bool) async throws {
        guard let state, !periods.isEmpty else { return }
        let held = Set(open.flatMap(\.budgets))
        let recent = Int64(now.milliseconds) - 100_000
        for (key, resetsAt) in periods where all || resetsAt > recent || held.contains(key) {
            let remote = try await admission.budgetStatus(tenantID: tenantID, key: key, at: now)
            let local = state.budget(key, now: now.instant)
            try #require(remote == local, "step \(step) at \(elapsed) ms, budget \(key): Redis \(String(describing: remote)), reference \(String(describing: local))")
            counts.budgetStatuses += 1
        }
    }
}

/// A small seeded generator, so every run of a scenario is the same run.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in `0..<bound`.
    mutating func next(below bound: Int) -> Int {
        Int(next() % UInt64(max(1, bound)))
    }
}
