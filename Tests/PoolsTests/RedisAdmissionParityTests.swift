import Testing

@testable import Pools

/// The Redis scripts against their reference: `AdmissionState` and `RedisAdmission` driven
/// through the same admissions, settlements, expiries and limit changes at the same
/// instants must agree on every decision, refusal, retry-after, header value, settlement
/// and in-flight count.
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

        var testDescription: String { name }
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

    @Test("the same operations at the same instants give the same answers", arguments: scenarios)
    func parity(_ scenario: Scenario) async throws {
        try await withRedis { _, client in
            let admission = RedisAdmission(
                client: client, reservationTTL: scenario.reservationTTL, concurrencyRetryAfter: scenario.concurrencyRetryAfter
            )
            var driver = ParityDriver(scenario: scenario, admission: admission, client: client)
            try await driver.run()
            // Each kind of answer happened often enough to mean something.
            #expect(driver.counts.admitted >= 3)
            #expect(driver.counts.settled >= 3)
            #expect(driver.counts.refused >= 3 || scenario.limits == [.unlimited])
        }
    }

    @Test("settling through the queue at a fixed instant matches too")
    func queuedSettlementParity() async throws {
        try await withRedis { _, client in
            let admission = RedisAdmission(client: client)
            let limits = TenantLimits(requestsPerMinute: 20, tokensPerMinute: 1000, concurrentRequests: 4)
            let start = ContinuousClock.now
            let base = 1_000_000
            func at(_ ms: Int) -> RedisAdmission.FixedNow { .init(milliseconds: base + ms, instant: start + .milliseconds(ms)) }
            var state = AdmissionState(tenantID: "acme", limits: limits, now: start)

            var reservations: [Reservation] = []
            for (index, tokens) in [300, 200, 100].enumerated() {
                let request = AdmissionRequest(promptTokens: tokens, maximumOutputTokens: 0)
                let decision = try await admission.admit(tenantID: "acme", limits: limits, request: request, at: at(index * 10))
                let reservation = try #require(decision.reservation)
                #expect(state.admit(request: request, id: reservation.id, now: at(index * 10).instant) == decision)
                reservations.append(reservation)
            }
            for (index, (reservation, actual)) in zip(reservations, [50, 600, 100]).enumerated() {
                admission.settle(reservation, actualTokens: actual, atMilliseconds: base + 100 + index)
                _ = state.settle(reservation: reservation, actualTokens: actual, now: at(100 + index).instant)
            }
            admission.settle(reservations[0], actualTokens: 0, atMilliseconds: base + 200)
            // run() is not running: flush sends the queue itself, in order, in one pipeline.
            await admission.flush()
            #expect(admission.statistics == RedisAdmission.Statistics(settled: 3, unmatched: 1, dropped: 0, pending: 0))

            let probe = AdmissionRequest(promptTokens: 10, maximumOutputTokens: 0)
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
    var counts = (admitted: 0, refused: 0, settled: 0, unmatched: 0)
    /// Ids for AdmissionState when Redis refused: never admitted, so never stored.
    var unusedID: UInt64 = 1 << 63

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
            let limits = scenario.limits[step / scenario.limitsEvery % scenario.limits.count]
            let roll = random.next(below: 100)
            if roll < 50 || open.isEmpty && roll < 92 {
                try await admit(limits: limits, step: step)
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

    private mutating func admit(limits: TenantLimits, step: Int) async throws {
        let request: AdmissionRequest
        switch random.next(below: 20) {
        case 0: request = AdmissionRequest(promptTokens: 0, maximumOutputTokens: 0)
        case 1: request = AdmissionRequest(promptTokens: 5_000 + random.next(below: 100_000), maximumOutputTokens: 500)
        default:
            request = AdmissionRequest(
                promptTokens: random.next(below: scenario.largestRequest + 1),
                maximumOutputTokens: random.next(below: scenario.largestRequest + 1)
            )
        }
        if state == nil {
            state = AdmissionState(
                tenantID: tenantID, limits: limits, now: now.instant,
                reservationTTL: scenario.reservationTTL, concurrencyRetryAfter: scenario.concurrencyRetryAfter
            )
        }
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
        if let reservation = remote.reservation {
            open.append(reservation)
            counts.admitted += 1
        } else {
            counts.refused += 1
        }
    }

    private mutating func settle(step: Int) async throws {
        // One in eight settles something already settled or expired: it must do nothing.
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
        let remote = try await admission.settleImmediately(reservation, actualTokens: actual, at: now)
        let local = state!.settle(reservation: reservation, actualTokens: actual, now: now.instant)
        try #require(remote == local, "step \(step) at \(elapsed) ms, settling \(reservation.id) with \(actual): Redis \(String(describing: remote)), reference \(String(describing: local))")
        if remote == nil { counts.unmatched += 1 } else { counts.settled += 1 }
    }

    /// Reservations not expired at `now`; expired ones may still be stored until the next
    /// script removes them.
    private func compareInFlight(step: Int) async throws {
        guard let state else { return }
        let keys = RedisAdmission.Keys(tenantID: tenantID)
        let remote = try await client.command(["ZCOUNT", keys.inflight, "(\(now.milliseconds)", "+inf"]).integer
        try #require(remote == state.inFlight(now: now.instant), "step \(step): in flight")
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
