import Testing

@testable import Pools
import RedisTestSupport

/// The Redis scripts against their reference: `KeyPoolState` and `RedisKeyPool` driven
/// through the same selections, releases, resets and limit changes at the same instants
/// (Redis's clock cannot be set, so the scripts are given each instant) must agree on every
/// choice, wait, release and status.
@Suite("RedisKeyPool parity with KeyPoolState", .timeLimit(.minutes(3)))
struct RedisKeyPoolParityTests {
    struct Scenario: Sendable, CustomTestStringConvertible {
        var name: String
        var keys: [PooledKey]
        /// The catalogue from half-way on, when it changes.
        var laterKeys: [PooledKey]?
        var leaseTTL: Duration = .seconds(600)
        /// Requests ask for up to this many tokens.
        var largestRequest = 300
        var seed: UInt64
        var steps = 400

        var testDescription: String { name }
    }

    static let scenarios: [Scenario] = [
        Scenario(
            name: "weights without limits",
            keys: [PooledKey(id: "a", weight: 3), PooledKey(id: "b"), PooledKey(id: "c", weight: 2)], seed: 1
        ),
        Scenario(
            name: "own windows that do not divide a minute",
            keys: [
                PooledKey(id: "a", requestsPerMinute: 7, tokensPerMinute: 1000),
                PooledKey(id: "b", weight: 2, requestsPerMinute: 3),
                PooledKey(id: "c", tokensPerMinute: 333),
            ],
            seed: 2
        ),
        Scenario(
            name: "limits raised, lowered, removed and added",
            keys: [
                PooledKey(id: "a", requestsPerMinute: 10, tokensPerMinute: 900),
                PooledKey(id: "b", weight: 4, tokensPerMinute: 2000),
                PooledKey(id: "c"),
            ],
            laterKeys: [
                PooledKey(id: "a", requestsPerMinute: 4),
                PooledKey(id: "b", weight: 1, requestsPerMinute: 6, tokensPerMinute: 250),
                PooledKey(id: "c", weight: 5, tokensPerMinute: 700),
            ],
            seed: 3, steps: 600
        ),
        Scenario(
            name: "short leases that expire",
            keys: [PooledKey(id: "a", requestsPerMinute: 20), PooledKey(id: "b", tokensPerMinute: 600)],
            leaseTTL: .milliseconds(3_000), seed: 4
        ),
        Scenario(
            name: "zero limits and requests larger than a window",
            keys: [
                PooledKey(id: "zero-rpm", requestsPerMinute: 0),
                PooledKey(id: "zero-tpm", tokensPerMinute: 0),
                PooledKey(id: "tiny", requestsPerMinute: 1, tokensPerMinute: 50),
                PooledKey(id: "free", weight: 2),
            ],
            largestRequest: 120, seed: 5
        ),
        Scenario(
            name: "many keys, heavy weights",
            keys: (0..<8).map { PooledKey(id: "k\($0)", weight: [1, 1000, 7, 1_000_000, 3, 2, 50, 9][$0], requestsPerMinute: $0 % 2 == 0 ? 30 : nil) },
            seed: 6, steps: 500
        ),
    ]

    @Test("the same operations at the same instants give the same answers", arguments: scenarios)
    func parity(_ scenario: Scenario) async throws {
        try await withRedis { _, client in
            let pool = RedisKeyPool(client: client, leaseTTL: scenario.leaseTTL)
            var driver = KeyPoolParityDriver(scenario: scenario, pool: pool)
            try await driver.run()
            // Each kind of answer happened often enough to mean something.
            #expect(driver.counts.selected >= 20)
            #expect(driver.counts.exhausted >= 3)
            #expect(driver.counts.released >= 20)
            #expect(driver.counts.unmatched >= 3)
            #expect(Set(driver.chosen).count >= 2)
        }
    }
}

/// Runs one scenario step by step against both implementations, stopping at the first
/// difference.
private struct KeyPoolParityDriver {
    let scenario: RedisKeyPoolParityTests.Scenario
    let pool: RedisKeyPool
    let poolName = "parity"
    /// Redis milliseconds at the start: any value works; this one looks like a real clock.
    let base = 1_750_000_000_000

    var random: SplitMix64
    /// Draws the held-back reserves apart from `random`, so the rest of each scenario is
    /// what it always was.
    var heldBackRandom: SplitMix64
    var elapsed = 0
    var state: KeyPoolState
    var open: [KeyLease] = []
    var finished: [KeyLease] = []
    var chosen: [String] = []
    /// Instants (since the start) at which a cooldown, report or lease ends.
    var deadlines: [Int] = []
    var counts = (selected: 0, exhausted: 0, released: 0, unmatched: 0)
    /// Lease ids for KeyPoolState when Redis selected nothing: never stored.
    var unusedID: UInt64 = 1 << 63

    init(scenario: RedisKeyPoolParityTests.Scenario, pool: RedisKeyPool) {
        self.scenario = scenario
        self.pool = pool
        self.random = SplitMix64(seed: scenario.seed)
        self.heldBackRandom = SplitMix64(seed: scenario.seed &+ 0x5EED)
        self.state = KeyPoolState(pool: poolName, leaseTTL: scenario.leaseTTL)
    }

    var now: Int { base + elapsed }

    mutating func run() async throws {
        for step in 0..<scenario.steps {
            let keys = step >= scenario.steps / 2 ? scenario.laterKeys ?? scenario.keys : scenario.keys
            let roll = random.next(below: 100)
            if roll < 50 || open.isEmpty && roll < 90 {
                try await select(keys, step: step)
            } else if roll < 90 {
                try await release(step: step)
            } else if roll < 94 {
                let keyID = random.next(below: 8) == 0 ? "ghost" : keys[random.next(below: keys.count)].id
                try await pool.reset(pool: poolName, keyID: keyID, at: now)
                state.reset(keyID: keyID)
            } else if let deadline = deadlines.filter({ $0 > elapsed }).min(), random.next(below: 3) == 0 {
                // To the very millisecond a cooldown, report or lease ends.
                elapsed = deadline
            } else {
                // Long pauses: windows refill, cooldowns and reports end, leases expire.
                elapsed += random.next(below: random.next(below: 2) == 0 ? 90_000 : 15_000)
            }
            try await compareStatus(keys, step: step)
            elapsed += advance()
        }
    }

    /// Mostly short steps, some none at all, some of one tick, some of whole seconds.
    private mutating func advance() -> Int {
        switch random.next(below: 20) {
        case 0, 1, 2: 0
        case 3: 1
        case 4, 5: 1000 * random.next(below: 3)
        default: random.next(below: 2_500)
        }
    }

    private mutating func select(_ keys: [PooledKey], step: Int) async throws {
        var candidates = keys
        if random.next(below: 5) == 0 {
            // Another tenant may be allowed fewer keys, listed in another order.
            candidates = Array(candidates.shuffled(using: &random).prefix(1 + random.next(below: candidates.count)))
        }
        if random.next(below: 10) == 0 { candidates.append(candidates[0]) }
        var excluding: Set<String> = []
        if random.next(below: 7) == 0 { excluding.insert(keys[random.next(below: keys.count)].id) }
        let tokens = random.next(below: 20) == 0
            ? 1_000 + random.next(below: 5_000)
            : random.next(below: scenario.largestRequest + 1)

        // Sometimes the request's tier may not use what other tiers reserve on each key.
        let heldBack = heldBackRandom.next(below: 3) == 0 ? heldBackRandom.next(below: 1_001) : 0
        let remote = try await pool.select(
            pool: poolName, candidates: candidates, tokens: tokens, excluding: excluding, heldBack: heldBack, at: now
        )
        let id: UInt64
        if let lease = remote.lease {
            id = lease.id
        } else {
            unusedID += 1
            id = unusedID
        }
        let local = state.select(candidates: candidates, tokens: tokens, excluding: excluding, heldBack: heldBack, leaseID: id, now: now)
        try #require(
            remote == local,
            "step \(step) at \(elapsed) ms, \(candidates.map(\.id)) excluding \(excluding), \(tokens) tokens, held back \(heldBack): Redis \(remote), reference \(local)"
        )
        if let lease = remote.lease {
            open.append(lease)
            deadlines.append(elapsed + state.leaseTTL)
            chosen.append(lease.keyID)
            counts.selected += 1
        } else {
            counts.exhausted += 1
        }
    }

    private mutating func release(step: Int) async throws {
        // One in eight releases something already released or expired: only its outcome applies.
        let again = !finished.isEmpty && random.next(below: 8) == 0
        let lease: KeyLease
        if again {
            lease = finished[random.next(below: finished.count)]
        } else {
            lease = open.remove(at: random.next(below: open.count))
            finished.append(lease)
        }
        let actual: Int?
        switch random.next(below: 10) {
        case 0: actual = nil
        case 1: actual = 0
        case 2: actual = lease.reservedTokens + random.next(below: 2_000)
        case 3: actual = -5
        default: actual = random.next(below: lease.reservedTokens + 1)
        }
        let outcome = randomOutcome(step: step)
        let remote = try await pool.releaseImmediately(lease, actualTokens: actual, outcome: outcome, at: now)
        let wasOpen = state.release(lease, actualTokens: actual, outcome: outcome, now: now)
        var cooldown: Int?
        if case .rateLimited = outcome { cooldown = state.cooldown(keyID: lease.keyID, now: now) ?? 0 }
        let local = RedisKeyPool.Released(wasOpen: wasOpen, cooldown: cooldown)
        try #require(remote == local, "step \(step) at \(elapsed) ms, releasing \(lease) with \(outcome): Redis \(remote), reference \(local)")
        noteDeadlines(of: outcome, keyID: lease.keyID)
        if remote.wasOpen { counts.released += 1 } else { counts.unmatched += 1 }
    }

    private mutating func noteDeadlines(of outcome: KeyOutcome, keyID: String) {
        let effect = KeyPoolState.Effect(outcome)
        // The default cooldown depends on the key's rate limits in a row: read it back.
        if effect.kind == .rateLimited, let cooldown = state.cooldown(keyID: keyID, now: now) { deadlines.append(elapsed + cooldown) }
        for window in [effect.report?.requests, effect.report?.tokens].compactMap({ $0 }) {
            deadlines.append(elapsed + window.resetAfter)
        }
    }

    private mutating func randomOutcome(step: Int) -> KeyOutcome {
        switch random.next(below: 20) {
        case 0..<10: return .succeeded(random.next(below: 2) == 0 ? nil : randomCapacity())
        case 10..<14:
            let retryAfter: Duration? = random.next(below: 2) == 0 ? nil : .milliseconds(random.next(below: 20_000))
            return .rateLimited(retryAfter: retryAfter, random.next(below: 2) == 0 ? nil : randomCapacity())
        case 14: return .rejected(reason: "401 at step \(step)")
        default: return .failed(reason: "upstream 503 at step \(step)")
        }
    }

    /// Reports with windows present or not, often exhausted, with and without limits and resets.
    private mutating func randomCapacity() -> ReportedCapacity {
        func maybe(_ value: Int) -> Int? { random.next(below: 4) == 0 ? nil : value }
        let remainingRequests = random.next(below: 3) == 0 ? 0 : random.next(below: 6)
        let remainingTokens = random.next(below: 4) == 0 ? 0 : random.next(below: 2_000)
        let requestsReset = random.next(below: 20_000)
        let tokensReset = random.next(below: 20_000)
        return ReportedCapacity(
            remainingRequests: maybe(remainingRequests), limitRequests: maybe(random.next(below: 3) == 0 ? 1 : 10),
            requestsReset: maybe(requestsReset).map { .milliseconds($0) },
            remainingTokens: maybe(remainingTokens), limitTokens: maybe(2_000),
            tokensReset: maybe(tokensReset).map { .milliseconds($0) }
        )
    }

    private func compareStatus(_ keys: [PooledKey], step: Int) async throws {
        let ids = keys.map(\.id) + ["ghost"]
        let remote = try await pool.status(pool: poolName, keyIDs: ids, at: now)
        let local = state.status(keyIDs: ids, now: now)
        try #require(remote == local, "step \(step) at \(elapsed) ms: status: Redis \(remote), reference \(local)")
    }
}
