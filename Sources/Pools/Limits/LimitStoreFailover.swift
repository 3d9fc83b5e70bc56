import Logging
import Synchronization

/// What to do with tenant limits while the shared store (Redis) cannot be reached.
public enum LimitStoreFailurePolicy: String, Sendable, CaseIterable {
    /// Keep serving, holding tenants to the same limits in this process alone.
    case failOpen = "open"
    /// Refuse requests (503) until the store is back.
    case failClosed = "closed"
}

/// The store could not decide and the policy is to fail closed.
public struct LimitStoreUnavailable: Error, Sendable {
    public var underlying: String
}

/// How ``FailoverAdmission`` and ``FailoverKeyPool`` meet a failure of their shared store:
/// count it, warn at most once every ten seconds (a store that is down fails every request,
/// and one line per request would bury the log), and say by policy whether to fall back.
///
/// Noncopyable because it owns the time of the last warning, which its owner shares among
/// all its callers.
struct LimitStoreFailover: ~Copyable, Sendable {
    let policy: LimitStoreFailurePolicy
    private let logger: Logger
    /// What the warning calls the store, as in "<store> unavailable".
    private let store: String
    private let onFailure: @Sendable () -> Void
    private let lastWarning = Mutex<ContinuousClock.Instant?>(nil)

    /// - Parameters:
    ///   - store: What the warning calls the store, e.g. "tenant-limit store".
    ///   - onFailure: Called on every store failure (for a metric).
    init(policy: LimitStoreFailurePolicy, logger: Logger, store: String, onFailure: @escaping @Sendable () -> Void) {
        self.policy = policy
        self.logger = logger
        self.store = store
        self.onFailure = onFailure
    }

    /// Counts and reports a store failure; the caller falls back unless this throws.
    /// - Throws: ``LimitStoreUnavailable`` when the policy is closed.
    func failed(_ error: any Error) throws(LimitStoreUnavailable) {
        report(error)
        guard policy == .failOpen else {
            throw LimitStoreUnavailable(underlying: String(describing: error))
        }
    }

    /// Counts a store failure and warns about it, at most once every ten seconds.
    func report(_ error: any Error) {
        onFailure()
        let now = ContinuousClock.now
        let due = lastWarning.withLock { last -> Bool in
            if let last, now - last < .seconds(10) { return false }
            last = now
            return true
        }
        if due {
            logger.warning(
                "\(store) unavailable",
                metadata: ["error": "\(error)", "policy": "fail_\(policy.rawValue)"]
            )
        }
    }
}
