import Foundation
import Testing

@testable import Pools

@Suite("KeyPoolState")
struct KeyPoolStateTests {
    /// Milliseconds since 1970, on a whole minute so the per-minute counter is easy to follow.
    private let start = 1_750_000_020_000

    private let a = PooledKey(id: "a")
    private let b = PooledKey(id: "b")

    /// A state and the lease ids it is given; a class, so that `#expect` may call it.
    private final class Pool {
        var state = KeyPoolState(pool: "openai")
        var nextID: UInt64 = 0

        func select(
            _ candidates: [PooledKey], tokens: Int = 0, excluding: Set<String> = [], heldBack: Int = 0, at now: Int
        ) -> KeySelection {
            nextID += 1
            return state.select(
                candidates: candidates, tokens: tokens, excluding: excluding, heldBack: heldBack, leaseID: nextID, now: now
            )
        }

        /// Selects and fails the test if nothing is selected.
        func lease(
            _ candidates: [PooledKey], tokens: Int = 0, at now: Int, sourceLocation: SourceLocation = #_sourceLocation
        ) throws -> KeyLease {
            let selection = select(candidates, tokens: tokens, at: now)
            return try #require(selection.lease, "\(selection)", sourceLocation: sourceLocation)
        }

        /// Which keys `count` selections at one instant choose, in order.
        func picks(_ count: Int, _ candidates: [PooledKey], tokens: Int = 0, at now: Int) -> [String] {
            (0..<count).map { _ in select(candidates, tokens: tokens, at: now).lease?.keyID ?? "-" }
        }

        @discardableResult
        func release(_ lease: KeyLease, actualTokens: Int?, outcome: KeyOutcome, now: Int) -> Bool {
            state.release(lease, actualTokens: actualTokens, outcome: outcome, now: now)
        }

        func status(_ keyID: String, at now: Int) -> KeyLiveStatus {
            state.status(keyIDs: [keyID], now: now)[keyID]!
        }
    }

    // MARK: Weights and headroom

    @Test("weights 3:1 split 400 picks of unlimited keys exactly 300:100, 3:1 in every four")
    func weights() {
        let pool = Pool()
        let picks = pool.picks(400, [PooledKey(id: "a", weight: 3), b], at: start)
        #expect(picks.count { $0 == "a" } == 300)
        #expect(picks.count { $0 == "b" } == 100)
        for window in stride(from: 0, to: 400, by: 4) {
            #expect(picks[window..<window + 4].count { $0 == "b" } == 1, "smooth: picks \(window)...")
        }
        #expect(pool.status("a", at: start).inFlight == 300)
    }

    @Test("traffic moves away from a key as its reported room runs down")
    func headroom() {
        let pool = Pool()
        let lease = KeyLease(pool: "openai", keyID: "a", reservedTokens: 0, id: 999)
        let report = ReportedCapacity(remainingRequests: 100, limitRequests: 1000, requestsReset: .seconds(3600))
        pool.release(lease, actualTokens: nil, outcome: .succeeded(report), now: start)
        let picks = pool.picks(220, [a, b], at: start)
        // A tenth of its room left gives "a" a tenth of "b"'s weight, and less as it is used.
        #expect(picks.count { $0 == "a" } > 0)
        #expect(picks.count { $0 == "a" } <= 20)
    }

    @Test("keys with their own request limits share the load until both are empty")
    func drainEvenly() {
        let pool = Pool()
        let keys = [PooledKey(id: "a", requestsPerMinute: 100), PooledKey(id: "b", requestsPerMinute: 100)]
        let picks = pool.picks(201, keys, at: start)
        #expect(picks.count { $0 == "a" } == 100)
        #expect(picks.count { $0 == "b" } == 100)
        #expect(picks.last == "-")
        // Neither runs dry long before the other: after 100 picks each has given about half.
        #expect(abs(picks.prefix(100).count { $0 == "a" } - 50) <= 2)
    }

    // MARK: Reserved capacity

    @Test("a key whose room has fallen into other tiers' reserve is passed over by tiers without one")
    func reservedCapacity() {
        let pool = Pool()
        let limited = PooledKey(id: "a", requestsPerMinute: 10)
        // Other tiers reserve 30% of every key: a tier without a reserve takes 7 of 10.
        let unreserved = (0..<10).map { _ in pool.select([limited], heldBack: 300, at: start).lease?.keyID ?? "-" }
        #expect(unreserved == Array(repeating: "a", count: 7) + ["-", "-", "-"])
        // The reserving tier (nothing held back from it) takes the rest.
        #expect(pool.picks(4, [limited], at: start) == ["a", "a", "a", "-"])
        // Another key with room takes the unreserved tier's traffic instead.
        let other = PooledKey(id: "b", requestsPerMinute: 10)
        #expect(pool.picks(3, [limited, other], at: start + 1).allSatisfy { $0 == "b" })
        // A full or unknown window is never passed over, whatever is held back.
        #expect(pool.select([PooledKey(id: "c")], heldBack: 1000, at: start).lease?.keyID == "c")
        #expect(pool.select([PooledKey(id: "d", requestsPerMinute: 5)], heldBack: 999, at: start).lease?.keyID == "d")
    }

    // MARK: Own windows

    @Test("a key whose request bucket is empty is passed over until it refills")
    func requestsBucket() throws {
        let pool = Pool()
        let limited = PooledKey(id: "a", requestsPerMinute: 2)
        #expect(pool.picks(10, [limited, b], at: start).count { $0 == "a" } == 2)
        #expect(pool.select([limited], at: start) == .exhausted(retryAfter: .seconds(30)))
        #expect(pool.select([limited], at: start + 29_999) == .exhausted(retryAfter: .milliseconds(1)))
        #expect(pool.select([limited], at: start + 30_000).lease?.keyID == "a")
        #expect(pool.picks(4, [limited, b], at: start + 90_000).contains("a"))
    }

    @Test("tokens: a reservation is settled with what was used, or kept when usage is unknown")
    func tokenSettlement() throws {
        let pool = Pool()
        let key = PooledKey(id: "a", tokensPerMinute: 1000)
        let first = try pool.lease([key], tokens: 600, at: start)
        #expect(first.reservedTokens == 600)
        // 200 short at 1000 per minute.
        #expect(pool.select([key], tokens: 600, at: start) == .exhausted(retryAfter: .seconds(12)))
        #expect(pool.release(first, actualTokens: 100, outcome: .succeeded(nil), now: start))
        let second = try pool.lease([key], tokens: 600, at: start)  // 900 held
        #expect(pool.release(second, actualTokens: nil, outcome: .succeeded(nil), now: start))
        #expect(pool.select([key], tokens: 600, at: start) == .exhausted(retryAfter: .seconds(18)))
        let third = try pool.lease([key], tokens: 300, at: start)  // 0 left
        pool.release(third, actualTokens: 500, outcome: .succeeded(nil), now: start)  // 200 of debt
        #expect(pool.select([key], tokens: 1, at: start) == .exhausted(retryAfter: .milliseconds(12_060)))
    }

    @Test("a request larger than the token window goes alone on a full window; a zero window never takes one")
    func largerThanWindow() throws {
        let pool = Pool()
        let key = PooledKey(id: "a", tokensPerMinute: 100)
        _ = try pool.lease([key], tokens: 500, at: start)
        // The debt is floored at one window: 200 tokens to come back at 100 per minute.
        #expect(pool.select([key], tokens: 500, at: start) == .exhausted(retryAfter: .seconds(120)))
        #expect(pool.select([key], tokens: 500, at: start + 120_000).lease != nil)
        #expect(pool.select([PooledKey(id: "z", tokensPerMinute: 0)], tokens: 1, at: start) == .exhausted(retryAfter: nil))
        #expect(pool.select([PooledKey(id: "y", requestsPerMinute: 0)], at: start) == .exhausted(retryAfter: nil))
    }

    @Test("a raised limit grants the difference at once")
    func limitsChange() throws {
        let pool = Pool()
        _ = try pool.lease([PooledKey(id: "a", requestsPerMinute: 1)], at: start)
        #expect(pool.select([PooledKey(id: "a", requestsPerMinute: 1)], at: start).lease == nil)
        #expect(pool.select([PooledKey(id: "a", requestsPerMinute: 3)], at: start).lease != nil)
        #expect(pool.select([PooledKey(id: "a")], at: start).lease != nil, "no limit: no bucket")
    }

    // MARK: Outcomes

    @Test("a 429 with retry-after cools the key down until then, and it is used again after")
    func cooldownRetryAfter() throws {
        let pool = Pool()
        let lease = try pool.lease([a], at: start)
        pool.release(lease, actualTokens: nil, outcome: .rateLimited(retryAfter: .seconds(10), nil), now: start)
        let status = pool.status("a", at: start)
        #expect(status.coolingDownUntil == KeyPoolState.date(start + 10_000))
        #expect(status.lastError == "rate limited")
        #expect(status.lastErrorAt == KeyPoolState.date(start))
        #expect(status.inFlight == 0)
        #expect(!pool.picks(20, [a, b], at: start + 5_000).contains("a"))
        #expect(pool.select([a], at: start + 9_999) == .exhausted(retryAfter: .milliseconds(1)))
        #expect(pool.select([a], at: start + 10_000).lease?.keyID == "a")
        #expect(pool.status("a", at: start + 10_000).coolingDownUntil == nil)
    }

    @Test("a 429 without retry-after waits for the exhausted window's reset, else the default, never over an hour")
    func cooldownLength() throws {
        let pool = Pool()
        let lease = try pool.lease([a], at: start)
        pool.release(lease, actualTokens: nil, outcome: .rateLimited(retryAfter: nil, nil), now: start)
        #expect(pool.select([a], at: start) == .exhausted(retryAfter: .seconds(1)))

        let capacity = ReportedCapacity(
            remainingRequests: 0, requestsReset: .seconds(7), remainingTokens: 0, tokensReset: .seconds(20)
        )
        pool.release(lease, actualTokens: nil, outcome: .rateLimited(retryAfter: nil, capacity), now: start)
        #expect(pool.select([a], at: start) == .exhausted(retryAfter: .seconds(20)), "the later of the two resets")
        let tokensLeft = ReportedCapacity(remainingRequests: 0, requestsReset: .seconds(7), remainingTokens: 5, tokensReset: .seconds(20))
        pool.release(lease, actualTokens: nil, outcome: .rateLimited(retryAfter: nil, tokensLeft), now: start)
        #expect(pool.select([a], at: start) == .exhausted(retryAfter: .seconds(7)), "only exhausted windows count")
        pool.release(lease, actualTokens: nil, outcome: .rateLimited(retryAfter: .seconds(7200), nil), now: start)
        #expect(pool.select([a], at: start) == .exhausted(retryAfter: .seconds(3600)))
    }

    @Test("a rejected key is never chosen again until an operator resets it")
    func rejected() throws {
        let pool = Pool()
        let lease = try pool.lease([a], at: start)
        pool.release(lease, actualTokens: nil, outcome: .rejected(reason: "401 invalid api key"), now: start)
        #expect(!pool.picks(50, [a, b], at: start + 3_600_000).contains("a"))
        #expect(pool.select([a], at: start + 86_400_000) == .exhausted(retryAfter: nil))
        #expect(pool.status("a", at: start).disabledReason == "401 invalid api key")
        #expect(pool.status("a", at: start).lastError == "401 invalid api key")

        pool.state.reset(keyID: "a")
        #expect(pool.select([a], at: start + 86_400_000).lease?.keyID == "a")
        let status = pool.status("a", at: start + 86_400_000)
        #expect(status.disabledReason == nil)
        #expect(status.lastError == "401 invalid api key", "history stays")
    }

    @Test("a failure is noted and changes nothing else")
    func failed() throws {
        let pool = Pool()
        let lease = try pool.lease([a], at: start)
        pool.release(lease, actualTokens: nil, outcome: .failed(reason: "upstream 503"), now: start + 1_000)
        let status = pool.status("a", at: start + 1_000)
        #expect(status == KeyLiveStatus(
            inFlight: 0, lastError: "upstream 503", lastErrorAt: KeyPoolState.date(start + 1_000),
            lastUsedAt: KeyPoolState.date(start + 1_000), requestsLastMinute: 1
        ))
        #expect(pool.select([a], at: start + 1_000).lease != nil)
    }

    @Test("reported remaining 0 skips the key until the reported reset; each selection counts down")
    func reportedRemaining() throws {
        let pool = Pool()
        let lease = try pool.lease([a], at: start)
        let none = ReportedCapacity(remainingRequests: 0, limitRequests: 100, requestsReset: .seconds(5))
        pool.release(lease, actualTokens: nil, outcome: .succeeded(none), now: start)
        #expect(pool.select([a], at: start) == .exhausted(retryAfter: .seconds(5)))
        #expect(pool.picks(10, [a, b], at: start + 4_999) == Array(repeating: "b", count: 10))
        #expect(pool.select([a], at: start + 5_000).lease?.keyID == "a")

        let two = ReportedCapacity(remainingRequests: 2, requestsReset: .seconds(5), remainingTokens: 1000, tokensReset: .seconds(8))
        pool.release(lease, actualTokens: nil, outcome: .succeeded(two), now: start + 10_000)
        #expect(pool.picks(3, [a], at: start + 10_000) == ["a", "a", "-"])
        #expect(pool.select([a], at: start + 10_000) == .exhausted(retryAfter: .seconds(5)))

        let tokens = ReportedCapacity(remainingTokens: 300, tokensReset: .seconds(8))
        pool.release(lease, actualTokens: nil, outcome: .succeeded(tokens), now: start + 20_000)
        _ = try pool.lease([a], tokens: 500, at: start + 20_000)  // one token left is enough; now none
        #expect(pool.select([a], tokens: 1, at: start + 20_000) == .exhausted(retryAfter: .seconds(8)))
        // A report replaces the last one whole: without windows, nothing holds the key back.
        pool.release(lease, actualTokens: nil, outcome: .succeeded(ReportedCapacity()), now: start + 20_000)
        #expect(pool.select([a], tokens: 1, at: start + 20_000).lease != nil)
    }

    // MARK: Cooldowns without a named delay

    /// Rate-limits `key` with `outcome` at `now` and says how long it cools down, as the
    /// next selection of it alone reports.
    private func rateLimit(_ pool: Pool, _ key: PooledKey, _ outcome: KeyOutcome = .rateLimited(retryAfter: nil, nil), at now: Int) throws -> Duration? {
        let lease = try pool.lease([key], at: now)
        pool.release(lease, actualTokens: nil, outcome: outcome, now: now)
        return pool.select([key], at: now).retryAfter
    }

    @Test("a 429 naming no delay cools the key for 1 s, doubling with each in a row up to 30 s")
    func defaultCooldownGrows() throws {
        let pool = Pool()
        var now = start
        for expected in [1, 2, 4, 8, 16, 30, 30, 30] {
            #expect(try rateLimit(pool, a, at: now) == .seconds(expected))
            #expect(pool.select([a], at: now + expected * 1_000 - 1) == .exhausted(retryAfter: .milliseconds(1)))
            now += expected * 1_000
        }
        #expect(pool.select([a], at: now).lease != nil, "each cooldown ends when it says")
        #expect(KeyPoolState.defaultCooldown(afterRateLimits: 0) == 1_000)
        #expect(KeyPoolState.defaultCooldown(afterRateLimits: 4) == 16_000)
        #expect(KeyPoolState.defaultCooldown(afterRateLimits: 1_000) == 30_000)
    }

    @Test("a success starts the default afresh; a failure does not, a named delay counts as a rate limit")
    func defaultCooldownResets() throws {
        let pool = Pool()
        #expect(try rateLimit(pool, a, at: start) == .seconds(1))
        #expect(try rateLimit(pool, a, at: start + 1_000) == .seconds(2))
        let failing = try pool.lease([a], at: start + 3_000)
        pool.release(failing, actualTokens: nil, outcome: .failed(reason: "upstream 503"), now: start + 3_000)
        #expect(try rateLimit(pool, a, at: start + 3_000) == .seconds(4), "a server error is not a success")
        let serving = try pool.lease([a], at: start + 7_000)
        pool.release(serving, actualTokens: nil, outcome: .succeeded(nil), now: start + 7_000)
        #expect(try rateLimit(pool, a, at: start + 7_000) == .seconds(1))
        // The provider's own delay stands as it is, and the streak still grows behind it.
        #expect(try rateLimit(pool, a, .rateLimited(retryAfter: .milliseconds(300), nil), at: start + 8_000) == .milliseconds(300))
        #expect(try rateLimit(pool, a, at: start + 8_300) == .seconds(4))
        // Keys keep their own streaks; an operator's reset starts afresh.
        #expect(try rateLimit(pool, b, at: start + 8_300) == .seconds(1))
        pool.state.reset(keyID: "a")
        #expect(try rateLimit(pool, a, at: start + 8_300) == .seconds(1))
    }

    @Test("an exhausted window reported without its reset ends with the cooldown, not a minute later")
    func exhaustedWindowWithoutReset() throws {
        let pool = Pool()
        let capacity = ReportedCapacity(remainingRequests: 0, limitRequests: 100)
        #expect(try rateLimit(pool, a, .rateLimited(retryAfter: nil, capacity), at: start) == .seconds(1))
        #expect(pool.select([a], at: start + 1_000).lease != nil)
        // With its reset, the window holds the key as long as it says.
        let reset = ReportedCapacity(remainingRequests: 0, limitRequests: 100, requestsReset: .seconds(6))
        #expect(try rateLimit(pool, b, .rateLimited(retryAfter: .seconds(2), reset), at: start) == .seconds(6))
    }

    @Test("the delay a provider named: retry-after, else an exhausted window's reset, else none")
    func providerDelay() {
        #expect(KeyOutcome.rateLimited(retryAfter: .milliseconds(1_500), nil).providerDelay == .milliseconds(1_500))
        let exhausted = ReportedCapacity(remainingRequests: 0, requestsReset: .seconds(3), remainingTokens: 9, tokensReset: .seconds(9))
        #expect(KeyOutcome.rateLimited(retryAfter: nil, exhausted).providerDelay == .seconds(3))
        #expect(KeyOutcome.rateLimited(retryAfter: nil, ReportedCapacity(remainingRequests: 0)).providerDelay == nil)
        #expect(KeyOutcome.rateLimited(retryAfter: nil, nil).providerDelay == nil)
        #expect(KeyOutcome.rateLimited(retryAfter: .seconds(90_000), nil).providerDelay == .seconds(3_600))
        #expect(KeyOutcome.failed(reason: "503").providerDelay == nil)
    }

    // MARK: Exhaustion, exclusion, status

    @Test("exhausted names the soonest wait among candidates neither disabled nor excluded")
    func exhaustedRetryAfter() throws {
        let pool = Pool()
        let cooling = PooledKey(id: "cooling")
        let empty = PooledKey(id: "empty", requestsPerMinute: 1)
        let disabled = PooledKey(id: "disabled")
        let excluded = PooledKey(id: "excluded")
        for (key, outcome) in [(cooling, KeyOutcome.rateLimited(retryAfter: .seconds(10), nil)),
                               (disabled, .rejected(reason: "403")), (excluded, .rateLimited(retryAfter: .seconds(1), nil))] {
            let lease = try pool.lease([key], at: start)
            pool.release(lease, actualTokens: nil, outcome: outcome, now: start)
        }
        _ = try pool.lease([empty], at: start)
        let all = [cooling, empty, disabled, excluded]
        #expect(pool.select(all, excluding: ["excluded"], at: start) == .exhausted(retryAfter: .seconds(10)))
        #expect(pool.select([empty, disabled], at: start) == .exhausted(retryAfter: .seconds(60)))
        #expect(pool.select([disabled, excluded], excluding: ["excluded"], at: start) == .exhausted(retryAfter: nil))
        #expect(pool.select([], at: start) == .exhausted(retryAfter: nil))

        // A key both cooling and out of requests waits for both.
        let both = PooledKey(id: "both", requestsPerMinute: 1)
        let lease = try pool.lease([both], at: start)
        pool.release(lease, actualTokens: nil, outcome: .rateLimited(retryAfter: .seconds(5), nil), now: start)
        #expect(pool.select([both], at: start) == .exhausted(retryAfter: .seconds(60)))
    }

    @Test("excluded keys are never chosen; duplicates count once")
    func excluding() {
        let pool = Pool()
        let picks = (0..<20).map { _ in pool.select([a, b, a], excluding: ["a"], at: start).lease?.keyID }
        #expect(picks == Array(repeating: "b", count: 20))
        #expect(pool.select([a, b], excluding: ["a", "b"], at: start) == .exhausted(retryAfter: nil))
        #expect(pool.picks(4, [a, a, b, b], at: start) == ["a", "b", "a", "b"])
        #expect(pool.status("a", at: start).inFlight == 2, "the excluded selections never touched it")
    }

    @Test("in flight counts leases until released once or expired; status reads the rest")
    func inFlight() throws {
        let pool = Pool()
        let leases = try (0..<3).map { _ in try pool.lease([a], at: start) }
        #expect(Set(leases.map(\.id)).count == 3)
        var status = pool.status("a", at: start)
        #expect(status.inFlight == 3)
        #expect(status.requestsLastMinute == 3)
        #expect(status.lastUsedAt == KeyPoolState.date(start))
        #expect(pool.release(leases[0], actualTokens: 10, outcome: .succeeded(nil), now: start + 1_000))
        #expect(!pool.release(leases[0], actualTokens: 10, outcome: .succeeded(nil), now: start + 1_000))
        status = pool.status("a", at: start + 1_000)
        #expect(status.inFlight == 2)
        #expect(status.lastUsedAt == KeyPoolState.date(start + 1_000))
        // The trailing minute: half of the previous minute's three, then none.
        #expect(pool.status("a", at: start + 90_000).requestsLastMinute == 1)
        #expect(pool.status("a", at: start + 120_000).requestsLastMinute == 0)
        // Leases expire after ten minutes; releasing one then only applies its outcome.
        #expect(pool.status("a", at: start + 600_000).inFlight == 0)
        #expect(!pool.release(leases[1], actualTokens: nil, outcome: .failed(reason: "timeout"), now: start + 600_000))
        #expect(pool.status("a", at: start + 600_000).lastError == "timeout")
        #expect(pool.status("unknown", at: start) == KeyLiveStatus())
    }

    @Test("a cooldown or reset too long for milliseconds saturates instead of trapping")
    func durationsSaturate() {
        let largest = Int.max / 2
        #expect(KeyPoolState.milliseconds(.seconds(9_223_372_036_854_775) + .milliseconds(808)) == largest)
        #expect(KeyPoolState.milliseconds(.seconds(Int64.max)) == largest)
        #expect(KeyPoolState.milliseconds(.milliseconds(1) + .nanoseconds(1)) == 2)
        #expect(KeyPoolState.milliseconds(.seconds(-5)) == 0)
    }
}
