import Logging
import Synchronization

/// Key selection against a shared store (``RedisKeyPool``), falling back by policy when the
/// store fails: to the in-process twin (fail open) or to a refusal (fail closed). Releases go
/// back to whichever side selected. The store is tried on every call, so recovery needs no
/// action; what the fallback learnt meanwhile (cooldowns, disables) stays in this process.
public final class FailoverKeyPool: KeyPool {
    private let primary: any KeyPool
    private let fallback: InProcessKeyPool
    private let failover: LimitStoreFailover
    /// Leases the fallback made, so their releases go back to it.
    private let fallbackLeases = Mutex<Set<KeyLease>>([])

    /// - Parameters:
    ///   - primary: The shared store.
    ///   - fallback: The in-process pool used while the store fails and the policy is open.
    ///   - policy: Whether to keep selecting (open) or refuse (closed) while the store fails.
    ///   - logger: Where store failures are reported, once every ten seconds at most.
    ///   - onFailure: Called on every store failure (for a metric).
    public init(
        primary: any KeyPool,
        fallback: InProcessKeyPool = InProcessKeyPool(),
        policy: LimitStoreFailurePolicy,
        logger: Logger,
        onFailure: @escaping @Sendable () -> Void = {}
    ) {
        self.primary = primary
        self.fallback = fallback
        self.failover = LimitStoreFailover(policy: policy, logger: logger, store: "key-pool store", onFailure: onFailure)
    }

    /// Selects through the store; when it fails, through the fallback (open) or not at all.
    /// - Throws: ``LimitStoreUnavailable`` when the store fails and the policy is closed.
    public func select(
        pool: String, candidates: [PooledKey], tokens: Int, excluding: Set<String>, heldBack: Int
    ) async throws -> KeySelection {
        do {
            return try await primary.select(pool: pool, candidates: candidates, tokens: tokens, excluding: excluding, heldBack: heldBack)
        } catch is CancellationError where Task.isCancelled {
            // The request was given up (its client left): no store failure.
            throw CancellationError()
        } catch {
            try failover.failed(error)
            let selection = try await fallback.select(pool: pool, candidates: candidates, tokens: tokens, excluding: excluding, heldBack: heldBack)
            if let lease = selection.lease {
                fallbackLeases.withLock { _ = $0.insert(lease) }
            }
            return selection
        }
    }

    @discardableResult
    public func release(_ lease: KeyLease, actualTokens: Int?, outcome: KeyOutcome) async -> Duration? {
        let wasFallback = fallbackLeases.withLock { $0.remove(lease) != nil }
        if wasFallback {
            return await fallback.release(lease, actualTokens: actualTokens, outcome: outcome)
        }
        return await primary.release(lease, actualTokens: actualTokens, outcome: outcome)
    }

    public func finish(_ lease: KeyLease, actualTokens: Int?, outcome: KeyOutcome) {
        let wasFallback = fallbackLeases.withLock { $0.remove(lease) != nil }
        if wasFallback {
            fallback.finish(lease, actualTokens: actualTokens, outcome: outcome)
        } else {
            primary.finish(lease, actualTokens: actualTokens, outcome: outcome)
        }
    }

    /// The store's view; when it fails, the fallback's (open) or none.
    /// - Throws: ``LimitStoreUnavailable`` when the store fails and the policy is closed.
    public func status(pool: String, keyIDs: [String]) async throws -> [String: KeyLiveStatus] {
        do {
            return try await primary.status(pool: pool, keyIDs: keyIDs)
        } catch {
            try failover.failed(error)
            return try await fallback.status(pool: pool, keyIDs: keyIDs)
        }
    }

    /// Re-enables the key on both sides.
    /// - Throws: ``LimitStoreUnavailable`` when the store fails, whatever the policy: the key
    ///   would stay disabled for every replica, and an operator must not think it done.
    public func reset(pool: String, keyID: String) async throws {
        try await fallback.reset(pool: pool, keyID: keyID)
        do {
            try await primary.reset(pool: pool, keyID: keyID)
        } catch {
            failover.report(error)
            throw LimitStoreUnavailable(underlying: String(describing: error))
        }
    }
}
