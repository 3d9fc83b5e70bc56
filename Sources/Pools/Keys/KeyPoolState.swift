#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The selection state machine of one key pool: each key's own windows, the capacity its
/// provider last reported, cooldown, disable, leases in flight and round-robin credit.
///
/// `select` picks by smooth weighted round robin over the keys that can take the request,
/// each weighted by its configured weight times its headroom (the fullest fraction left of
/// its tightest known window), so traffic splits by weight while keys have room and moves
/// away from a key as its room runs out. All arithmetic is on integers.
///
/// Time is wall-clock milliseconds since 1970: the clock Redis's `TIME` gives the scripts,
/// which mirror this type operation for operation, and the one operators' lists show.
/// ``InProcessKeyPool`` runs this type as it is.
public struct KeyPoolState: Sendable, Hashable {
    public let pool: String
    /// How long a lease counts in flight when it is never released, in milliseconds.
    public let leaseTTL: Int
    /// Each key's state, by key id; a key without state is a fresh key.
    private(set) var keys: [String: Key] = [:]

    /// - Parameters:
    ///   - pool: The key pool's name.
    ///   - leaseTTL: How long an unreleased lease counts in flight; whole milliseconds.
    public init(pool: String, leaseTTL: Duration = .seconds(600)) {
        self.pool = pool
        self.leaseTTL = Self.milliseconds(leaseTTL)
    }

    // MARK: Selection

    /// Picks a key for a request needing one request and `tokens` tokens, reserves them on
    /// it and counts `leaseID` in flight on it; or says when the soonest candidate can.
    ///
    /// Candidates are taken in order, duplicates and `excluding` dropped; the rest have their
    /// expired leases dropped and their limits applied (raising a limit grants the difference
    /// at once, lowering it takes it away), whatever the outcome.
    /// - Parameters:
    ///   - heldBack: Thousandths of each key's windows reserved for other tiers: a key with
    ///     a known window no fuller than that is passed over (a full or unknown window never
    ///     is). The reserved capacity of tier contracts over pooled keys.
    ///   - leaseID: An id not in flight on any candidate; the caller makes them unique.
    ///   - now: Milliseconds since 1970.
    public mutating func select(
        candidates: [PooledKey], tokens: Int, excluding: Set<String>, heldBack: Int = 0, leaseID: UInt64, now: Int
    ) -> KeySelection {
        let heldBack = Self.heldBack(heldBack)
        let needed = Self.count(tokens)
        let candidates = Self.usable(candidates, excluding: excluding)
        var eligible: [(id: String, effective: Int)] = []
        var soonest: Int?
        for candidate in candidates {
            var key = keys[candidate.id] ?? Key()
            key.expireLeases(now: now)
            key.apply(candidate, now: now)
            keys[candidate.id] = key
            guard key.disabledReason == nil, let wait = key.wait(tokens: needed, now: now) else { continue }
            if wait == 0 {
                let headroom = key.headroom(now: now)
                // What is left of the key belongs to other tiers' reserves.
                if headroom <= heldBack, headroom < 1000 { continue }
                eligible.append((candidate.id, candidate.weight * headroom))
            } else {
                soonest = min(soonest ?? wait, wait)
            }
        }
        guard !eligible.isEmpty else { return .exhausted(retryAfter: soonest.map { .milliseconds($0) }) }

        // Smooth weighted round robin: every eligible key earns its effective weight, the
        // richest (first on ties) is picked and pays the sum. Ineligible keys keep their credit.
        let total = eligible.reduce(0) { $0 + $1.effective }
        var picked: (id: String, credit: Int)?
        for (id, effective) in eligible {
            let credit = Self.bounded(keys[id]!.credit + effective)
            keys[id]!.credit = credit
            if picked == nil || credit > picked!.credit { picked = (id, credit) }
        }
        let id = picked!.id
        keys[id]!.credit = Self.bounded(keys[id]!.credit - total)
        keys[id]!.reserve(tokens: needed, leaseID: leaseID, expiresAt: now + leaseTTL, now: now)
        return .selected(KeyLease(pool: pool, keyID: id, reservedTokens: needed, id: leaseID))
    }

    /// The candidates a selection considers, in order: the first of each id, none excluded,
    /// weights and limits within what the scripts hold exactly.
    static func usable(_ candidates: [PooledKey], excluding: Set<String>) -> [PooledKey] {
        var seen = Set<String>()
        return candidates.filter { !excluding.contains($0.id) && seen.insert($0.id).inserted }.map(normalized)
    }

    // MARK: Release

    /// Ends a lease: it no longer counts in flight, the key's token window gets back what
    /// the request did not use or gives what it used beyond the reservation (nil
    /// `actualTokens` keeps the reservation), then the outcome is applied.
    ///
    /// The outcome applies even when the lease had already expired (its tokens then stay
    /// taken): a key the provider refused is refused however long the request took.
    /// - Returns: Whether the lease was still in flight.
    @discardableResult
    public mutating func release(_ lease: KeyLease, actualTokens: Int?, outcome: KeyOutcome, now: Int) -> Bool {
        var key = keys[lease.keyID] ?? Key()
        key.expireLeases(now: now)
        let wasOpen = key.leases.removeValue(forKey: lease.id) != nil
        if wasOpen, let actualTokens, key.tokens != nil {
            let reserved = Self.count(lease.reservedTokens)
            let actual = Self.count(actualTokens)
            key.tokens!.giveBack(max(0, reserved - actual), now: Self.instant(now))
            key.tokens!.take(max(0, actual - reserved), now: Self.instant(now))
        }
        key.apply(Self.Effect(outcome), now: now)
        key.lastUsedAt = now
        keys[lease.keyID] = key
        return wasOpen
    }

    // MARK: Operators

    /// The live state of `keyIDs`; a key without state reads as a fresh key.
    public func status(keyIDs: [String], now: Int) -> [String: KeyLiveStatus] {
        Dictionary(keyIDs.map { ($0, keys[$0]?.status(now: now) ?? KeyLiveStatus()) }, uniquingKeysWith: { first, _ in first })
    }

    /// Milliseconds left of a key's cooldown at `now`; nil when it is not cooling down.
    public func cooldown(keyID: String, now: Int) -> Int? {
        guard let until = keys[keyID]?.coolingDownUntil, until > now else { return nil }
        return until - now
    }

    /// Clears a key's cooldown, rate limits in a row and disabled reason; its windows,
    /// reports and leases stay.
    public mutating func reset(keyID: String) {
        guard keys[keyID] != nil else { return }
        keys[keyID]!.coolingDownUntil = nil
        keys[keyID]!.rateLimitStreak = 0
        keys[keyID]!.disabledReason = nil
    }

    // MARK: Bounds shared with the scripts

    /// The most weight a key carries; heavier keys count as this heavy.
    public static let largestWeight = 1_000_000
    /// Limits and reported counts beyond what the scripts hold exactly are capped here.
    public static let largestLimit = RedisAdmission.largestLimit
    /// Credits stay within plus or minus this, so no sequence of candidate sets can push
    /// one past what doubles hold exactly.
    static let creditBound = 1 << 50
    /// Cooldown after a 429 that says nothing about when to retry, when the key's last
    /// answer was not a rate limit; it doubles with each rate limit in a row.
    public static let shortestDefaultCooldown: Duration = .seconds(1)
    /// The most a cooldown that the provider gave no length for grows to.
    public static let longestDefaultCooldown: Duration = .seconds(30)
    /// Rate limits in a row are counted up to this; enough to reach the longest default.
    static let largestRateLimitStreak = 16
    /// The longest cooldown a 429 imposes.
    public static let longestCooldown: Duration = .seconds(3_600)
    /// How long a reported window is trusted when the provider gives no reset.
    public static let defaultReportedReset: Duration = .seconds(60)
    /// The furthest reset a report may name; further ones are taken as this.
    public static let longestReportedReset: Duration = .seconds(86_400)

    /// The cooldown, in milliseconds, of a 429 that names no delay, after `streak` rate
    /// limits in a row: the shortest default doubled for each, at most the longest default.
    public static func defaultCooldown(afterRateLimits streak: Int) -> Int {
        let doublings = min(max(0, streak), largestRateLimitStreak)
        let shortest = milliseconds(shortestDefaultCooldown)
        let longest = milliseconds(longestDefaultCooldown)
        return min(longest, shortest << doublings)
    }

    /// A held-back share in thousandths: 0…1000.
    public static func heldBack(_ thousandths: Int) -> Int {
        min(1000, max(0, thousandths))
    }

    static func bounded(_ credit: Int) -> Int {
        min(creditBound, max(-creditBound, credit))
    }

    static func normalized(_ key: PooledKey) -> PooledKey {
        PooledKey(
            id: key.id, weight: min(max(1, key.weight), largestWeight),
            requestsPerMinute: key.requestsPerMinute.map(limit), tokensPerMinute: key.tokensPerMinute.map(limit)
        )
    }

    static func limit(_ value: Int) -> Int {
        min(max(0, value), largestLimit)
    }

    /// A token count: at least 0, at most what the scripts take exactly.
    static func count(_ tokens: Int) -> Int {
        RedisAdmission.count(tokens)
    }

    /// Whole milliseconds in a duration, rounded up; zero for negative durations.
    static func milliseconds(_ duration: Duration) -> Int {
        RedisAdmission.milliseconds(duration)
    }

    // MARK: Time

    /// Buckets measure time on `ContinuousClock`; only differences matter to them, so wall
    /// milliseconds map onto it from one fixed origin, exactly.
    private static let origin = ContinuousClock.now

    static func instant(_ milliseconds: Int) -> ContinuousClock.Instant {
        origin + .milliseconds(milliseconds)
    }

    static func date(_ milliseconds: Int) -> Date {
        Date(timeIntervalSince1970: Double(milliseconds) / 1000)
    }

    /// The wall clock in whole milliseconds since 1970.
    static func currentMilliseconds() -> Int {
        Int((Date().timeIntervalSince1970 * 1000).rounded(.down))
    }
}
