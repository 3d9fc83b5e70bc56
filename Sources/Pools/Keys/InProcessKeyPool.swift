import Synchronization

/// Provider key pools for a single proxy instance: the in-process twin of ``RedisKeyPool``,
/// used when Switchyard runs without Redis or has lost it and fails open.
///
/// Every pool's `KeyPoolState` sits behind one lock, so a selection is atomic exactly as the
/// Redis script is. Keys are few (an operator adds each one), so their state is kept for
/// the life of the process.
public final class InProcessKeyPool: KeyPool {
    /// How long an unreleased lease counts in flight.
    public let leaseTTL: Duration
    private let state: Mutex<PoolTable>

    private struct PoolTable: Sendable {
        var pools: [String: KeyPoolState] = [:]
        /// Lease ids are unique over the process's life, across pools and keys.
        var nextID: UInt64 = 0
    }

    /// - Parameter leaseTTL: How long an unreleased lease counts in flight; whole milliseconds.
    public init(leaseTTL: Duration = .seconds(600)) {
        self.leaseTTL = leaseTTL
        self.state = Mutex(PoolTable())
    }

    // MARK: KeyPool

    public func select(
        pool: String, candidates: [PooledKey], tokens: Int, excluding: Set<String>, heldBack: Int
    ) async throws -> KeySelection {
        select(pool: pool, candidates: candidates, tokens: tokens, excluding: excluding, heldBack: heldBack, at: KeyPoolState.currentMilliseconds())
    }

    @discardableResult
    public func release(_ lease: KeyLease, actualTokens: Int?, outcome: KeyOutcome) async -> Duration? {
        release(lease, actualTokens: actualTokens, outcome: outcome, at: KeyPoolState.currentMilliseconds()).cooldown
    }

    public func finish(_ lease: KeyLease, actualTokens: Int?, outcome: KeyOutcome) {
        _ = release(lease, actualTokens: actualTokens, outcome: outcome, at: KeyPoolState.currentMilliseconds())
    }

    public func status(pool: String, keyIDs: [String]) async throws -> [String: KeyLiveStatus] {
        status(pool: pool, keyIDs: keyIDs, at: KeyPoolState.currentMilliseconds())
    }

    public func reset(pool: String, keyID: String) async throws {
        reset(pool: pool, keyID: keyID, at: KeyPoolState.currentMilliseconds())
    }

    // MARK: At a given instant

    /// ``select(pool:candidates:tokens:excluding:)`` at `now`, in milliseconds since 1970.
    func select(
        pool: String, candidates: [PooledKey], tokens: Int, excluding: Set<String>, heldBack: Int = 0, at now: Int
    ) -> KeySelection {
        state.withLock { table in
            table.nextID &+= 1
            let id = table.nextID
            // Mutating through the subscript keeps the state uniquely referenced: no copy.
            return table.pools[pool, default: KeyPoolState(pool: pool, leaseTTL: leaseTTL)]
                .select(candidates: candidates, tokens: tokens, excluding: excluding, heldBack: heldBack, leaseID: id, now: now)
        }
    }

    /// ``release(_:actualTokens:outcome:)`` at `now`.
    /// - Returns: Whether the lease was still in flight, and for a rate limit how long the
    ///   key now cools down.
    func release(_ lease: KeyLease, actualTokens: Int?, outcome: KeyOutcome, at now: Int) -> (wasOpen: Bool, cooldown: Duration?) {
        state.withLock { table in
            let wasOpen = table.pools[lease.pool, default: KeyPoolState(pool: lease.pool, leaseTTL: leaseTTL)]
                .release(lease, actualTokens: actualTokens, outcome: outcome, now: now)
            guard case .rateLimited = outcome else { return (wasOpen, nil) }
            let cooldown = table.pools[lease.pool]?.cooldown(keyID: lease.keyID, now: now) ?? 0
            return (wasOpen, .milliseconds(cooldown))
        }
    }

    /// ``status(pool:keyIDs:)`` at `now`.
    func status(pool: String, keyIDs: [String], at now: Int) -> [String: KeyLiveStatus] {
        state.withLock { table in
            (table.pools[pool] ?? KeyPoolState(pool: pool, leaseTTL: leaseTTL)).status(keyIDs: keyIDs, now: now)
        }
    }

    /// ``reset(pool:keyID:)``. A reset does not depend on the time; `now` keeps the calls
    /// of tests alike for both pools.
    func reset(pool: String, keyID: String, at now: Int) {
        state.withLock { $0.pools[pool]?.reset(keyID: keyID) }
    }
}
