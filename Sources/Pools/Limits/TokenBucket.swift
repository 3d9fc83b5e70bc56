/// A token bucket in exact integer arithmetic: holds up to `capacity` tokens and gains
/// `refill` tokens every `period`, continuously.
///
/// The level is kept in fixed-point units of `1 / periodTicks` token, where a tick is one
/// millisecond. Each elapsed tick adds exactly `refill` units, so a rate like 10 per minute
/// (one token per 6 s) is represented exactly: there is no rounding to accumulate, and a
/// bucket refilled in many small steps holds the same level as one refilled once. Time
/// that does not make a whole tick is carried to the next refill, not dropped.
///
/// The level may fall below zero when a request uses more than it reserved; that debt is
/// floored at `-capacity` so one absurd usage report cannot lock a tenant out for long.
///
/// This is the reference the Redis Lua scripts mirror. Lua numbers are doubles, exact for
/// integers below 2^53, so there `capacity * periodTicks` must stay below 2^53 (at one
/// minute: 150 billion tokens). Here every intermediate is bounded below `Int.max / 2`.
public struct TokenBucket: Sendable, Hashable {
    /// The resolution of refills.
    public static let tick: Duration = .milliseconds(1)

    /// The most tokens the bucket holds.
    public let capacity: Int
    /// Tokens gained per `period`.
    public let refill: Int
    /// Ticks per period: also the number of fixed-point units in one token.
    public let periodTicks: Int
    /// The level in units of `1 / periodTicks` token; between `-capacity` and `capacity` tokens.
    public private(set) var units: Int
    /// The instant the level was last brought up to date. Trails the last refill by less
    /// than one tick while the bucket is filling; equals it once full.
    public private(set) var lastRefill: ContinuousClock.Instant

    /// Creates a full bucket.
    /// - Parameters:
    ///   - capacity: The most tokens it holds; at least 0.
    ///   - refill: Tokens gained per `period`; at least 1.
    ///   - period: Whole milliseconds, at least one.
    ///   - now: The instant the bucket is full.
    public init(capacity: Int, refill: Int, per period: Duration, now: ContinuousClock.Instant) {
        let periodTicks = max(1, Self.wholeTicks(in: period))
        // Keeps `capacity * periodTicks` and every sum of two levels inside Int.
        let largest = Int.max / 4 / periodTicks
        self.capacity = min(max(0, capacity), largest)
        self.refill = min(max(1, refill), largest)
        self.periodTicks = periodTicks
        self.units = self.capacity * periodTicks
        self.lastRefill = now
    }

    /// Creates a full bucket for a per-minute limit: `limit` tokens, refilled at `limit` per minute.
    public init(perMinute limit: Int, now: ContinuousClock.Instant) {
        self.init(capacity: limit, refill: limit, per: .seconds(60), now: now)
    }

    // MARK: Level

    /// Whole tokens at the last refill, rounded down; negative while in debt.
    public var level: Int {
        units >= 0 ? units / periodTicks : -((-units + periodTicks - 1) / periodTicks)
    }

    /// Whole tokens that can be taken at the last refill; never negative.
    public var available: Int { max(0, level) }

    private var capacityUnits: Int { capacity * periodTicks }

    /// Brings the level up to `now`. An instant before the last refill changes nothing.
    public mutating func refill(now: ContinuousClock.Instant) {
        guard now > lastRefill else { return }
        let elapsed = Self.wholeTicks(in: now - lastRefill)
        let deficit = capacityUnits - units
        // Dividing first avoids `elapsed * refill` overflowing after a long idle time.
        if elapsed >= (deficit + refill - 1) / refill {
            units = capacityUnits
            lastRefill = now
        } else {
            units += elapsed * refill
            lastRefill += Self.tick * elapsed
        }
    }

    /// The bucket as it will be at `now`.
    public func refilled(now: ContinuousClock.Instant) -> TokenBucket {
        var copy = self
        copy.refill(now: now)
        return copy
    }

    // MARK: Taking and giving back

    /// Whether `count` tokens can be taken at the last refill.
    public func canTake(_ count: Int) -> Bool {
        count <= capacity && units >= max(0, count) * periodTicks
    }

    /// Takes `count` tokens if the bucket holds them at `now`; otherwise only refills.
    /// - Returns: Whether the tokens were taken.
    public mutating func tryTake(_ count: Int, now: ContinuousClock.Instant) -> Bool {
        refill(now: now)
        guard canTake(count) else { return false }
        units -= max(0, count) * periodTicks
        return true
    }

    /// Takes `count` tokens even when that leaves the bucket in debt (at most `capacity`
    /// tokens of it): usage that already happened cannot be refused.
    public mutating func take(_ count: Int, now: ContinuousClock.Instant) {
        refill(now: now)
        units = max(-capacityUnits, units - clampedUnits(count))
    }

    /// Returns `count` tokens, never filling past `capacity`.
    public mutating func giveBack(_ count: Int, now: ContinuousClock.Instant) {
        refill(now: now)
        units = min(capacityUnits, units + clampedUnits(count))
    }

    /// `count` tokens in units, at most two full buckets: more would be capped anyway,
    /// and the bound keeps the sums in `take` and `giveBack` from overflowing.
    private func clampedUnits(_ count: Int) -> Int {
        count <= 0 ? 0 : (count >= 2 * capacity ? 2 * capacityUnits : count * periodTicks)
    }

    // MARK: Waiting

    /// How long from `now` until `count` tokens can be taken, assuming nothing else is taken
    /// meanwhile; zero when they can be taken now, nil when `count` exceeds the capacity.
    public func timeUntilAvailable(_ count: Int, now: ContinuousClock.Instant) -> Duration? {
        guard count <= capacity else { return nil }
        return timeUntil(units: max(0, count) * periodTicks, now: now)
    }

    /// How long from `now` until the bucket is full again: the `reset` of rate-limit headers.
    public func timeUntilFull(now: ContinuousClock.Instant) -> Duration {
        timeUntil(units: capacityUnits, now: now)
    }

    private func timeUntil(units target: Int, now: ContinuousClock.Instant) -> Duration {
        let current = refilled(now: now)
        let deficit = target - current.units
        guard deficit > 0 else { return .zero }
        let ticks = (deficit + refill - 1) / refill
        // The refill above left up to one tick of `now` uncounted; it shortens the wait.
        return max(.zero, current.lastRefill + Self.tick * ticks - now)
    }

    // MARK: Limits that change

    /// The same bucket with another capacity (and refill), keeping what has been used:
    /// raising a limit grants the difference at once, lowering it takes it away.
    public func resized(capacity newCapacity: Int, refill newRefill: Int, now: ContinuousClock.Instant) -> TokenBucket {
        let current = refilled(now: now)
        var resized = TokenBucket(capacity: newCapacity, refill: newRefill, per: Self.tick * periodTicks, now: now)
        let used = current.capacityUnits - current.units
        resized.units = max(-resized.capacityUnits, resized.capacityUnits - min(used, 2 * resized.capacityUnits))
        return resized
    }

    // MARK: Time

    /// Whole ticks in a duration, rounded down; zero for negative durations.
    static func wholeTicks(in duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0, attoseconds >= 0 else { return 0 }
        let (milliseconds, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        guard !overflow, milliseconds < Int64.max / 2 else { return Int.max / 2 }
        return Int(milliseconds) + Int(attoseconds / 1_000_000_000_000_000)
    }
}
