import Logging
import Synchronization

/// Key selection against a shared store (``RedisKeyPool``), falling back by policy when the
/// store fails: to the in-process twin (fail open) or to a refusal (fail closed). Releases go
/// back to whichever side selected. The store is tried on every call, so recovery needs no
/// action; what the fallback learnt meanwhile (cooldowns, disables) stays in this process.
public final class FailoverKeyPool: KeyPool {
    private let primary: any KeyPool
    private let fallback: InProcessKeyPool
    private let policy: LimitStoreFailurePolicy
    private let logger: Logger
    private let onFailure: @Sendable () -> Void
    /// Leases the fallback made, so their releases go back to it.
    private let fallbackLeases = Mutex<Set<KeyLease>>([])
    private let lastWarning = Mutex<ContinuousClock.Instant?>(nil)

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
        self.policy = policy
        self.logger = logger
        self.onFailure = onFailure
    }

    /// Selects through the store; when it fails, through the fallback (open) or not at all.
    /// - Throws: ``LimitStoreUnavailable`` when the store fails and the policy is closed.
    public func select(pool: String, candidates: [PooledKey], tokens: Int, excluding: Set<String>) async throws -> KeySelection {
        do {
            return try await primary.select(pool: pool, candidates: candidates, tokens: tokens, excluding: excluding)
        } catch {
            try failed(error)
            let selection = try await fallback.select(pool: pool, candidates: candidates, tokens: tokens, excluding: excluding)
            if let lease = selection.lease {
                fallbackLeases.withLock { _ = $0.insert(lease) }
            }
            return selection
        }
    }

    public func release(_ lease: KeyLease, actualTokens: Int?, outcome: KeyOutcome) async {
        let wasFallback = fallbackLeases.withLock { $0.remove(lease) != nil }
        if wasFallback {
            await fallback.release(lease, actualTokens: actualTokens, outcome: outcome)
        } else {
            await primary.release(lease, actualTokens: actualTokens, outcome: outcome)
        }
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
            try failed(error)
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
            onFailure()
            warn(error)
            throw LimitStoreUnavailable(underlying: String(describing: error))
        }
    }

    /// Counts and reports a store failure, then throws when the policy is closed.
    private func failed(_ error: any Error) throws {
        onFailure()
        warn(error)
        guard policy == .failOpen else {
            throw LimitStoreUnavailable(underlying: String(describing: error))
        }
    }

    /// One warning every ten seconds at most while the store is down.
    private func warn(_ error: any Error) {
        let now = ContinuousClock.now
        let due = lastWarning.withLock { last -> Bool in
            if let last, now - last < .seconds(10) { return false }
            last = now
            return true
        }
        if due {
            logger.warning(
                "key-pool store unavailable",
                metadata: ["error": "\(error)", "policy": "fail_\(policy.rawValue)"]
            )
        }
    }
}
