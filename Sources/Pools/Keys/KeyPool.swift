#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A provider key as the key pool sees it: its id, weight and own limits from the
/// catalogue, never the secret.
public struct PooledKey: Sendable, Hashable {
    /// A stable id, such as `pk_3f…` or `env:openai`.
    public var id: String
    /// The key's share of the pool's traffic relative to the others; at least 1.
    public var weight: Int
    /// The key's own requests per minute; nil when it has no limit of its own.
    public var requestsPerMinute: Int?
    /// The key's own tokens per minute; nil when it has no limit of its own.
    public var tokensPerMinute: Int?

    /// - Parameters:
    ///   - id: The key's stable id.
    ///   - weight: Its share of traffic; values below 1 count as 1.
    ///   - requestsPerMinute: Its own request limit, if any.
    ///   - tokensPerMinute: Its own token limit, if any.
    public init(id: String, weight: Int = 1, requestsPerMinute: Int? = nil, tokensPerMinute: Int? = nil) {
        self.id = id
        self.weight = max(1, weight)
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
    }
}

/// What the provider last reported about a key's capacity, from its rate-limit headers.
public struct ReportedCapacity: Sendable, Equatable {
    public var remainingRequests: Int?
    public var limitRequests: Int?
    /// Until the request window is full again; taken as one minute when not reported.
    public var requestsReset: Duration?
    public var remainingTokens: Int?
    public var limitTokens: Int?
    /// Until the token window is full again; taken as one minute when not reported.
    public var tokensReset: Duration?

    public init(
        remainingRequests: Int? = nil, limitRequests: Int? = nil, requestsReset: Duration? = nil,
        remainingTokens: Int? = nil, limitTokens: Int? = nil, tokensReset: Duration? = nil
    ) {
        self.remainingRequests = remainingRequests
        self.limitRequests = limitRequests
        self.requestsReset = requestsReset
        self.remainingTokens = remainingTokens
        self.limitTokens = limitTokens
        self.tokensReset = tokensReset
    }
}

/// How a request on a key ended.
public enum KeyOutcome: Sendable, Equatable {
    /// The provider answered; the capacity it reported, if any, replaces the last report.
    case succeeded(ReportedCapacity?)
    /// 429 or overloaded: the key cools down until `retryAfter`, else the reported reset of
    /// an exhausted window, else for a default that starts at 1 s and doubles with each rate
    /// limit in a row up to 30 s (a success starts it afresh); never longer than an hour.
    case rateLimited(retryAfter: Duration?, ReportedCapacity?)
    /// 401/403: the key is disabled with this reason until an operator re-enables it.
    case rejected(reason: String)
    /// 5xx, timeout, connection reset: noted as the key's last error; nothing else changes.
    case failed(reason: String)
}

extension KeyOutcome {
    /// For a rate limit, the delay the provider named: `retryAfter`, else the later reset
    /// of the reported windows that are exhausted, at most an hour. Nil when it named none
    /// (the key then cools down for its default) and for other outcomes.
    public var providerDelay: Duration? {
        guard case .rateLimited(let retryAfter, let capacity) = self else { return nil }
        return KeyPoolState.Effect.cooldown(retryAfter: retryAfter, capacity: capacity).map { .milliseconds($0) }
    }
}

/// One request's hold on a key, from selection until release.
public struct KeyLease: Sendable, Hashable {
    /// The key pool.
    public let pool: String
    /// The key chosen.
    public let keyID: String
    /// Tokens reserved on the key's token window at selection.
    public let reservedTokens: Int
    /// Identifies the lease among the key's leases, so releasing it twice releases it once.
    public let id: UInt64

    public init(pool: String, keyID: String, reservedTokens: Int, id: UInt64) {
        self.pool = pool
        self.keyID = keyID
        self.reservedTokens = reservedTokens
        self.id = id
    }
}

/// The answer to a selection.
public enum KeySelection: Sendable, Equatable {
    case selected(KeyLease)
    /// No candidate can take the request now; `retryAfter` is when the soonest one can
    /// (nil: none will without an operator, or there was no candidate).
    case exhausted(retryAfter: Duration?)

    public var lease: KeyLease? {
        if case .selected(let lease) = self { return lease }
        return nil
    }
}

/// The live, shared state of one key, for operators' lists.
public struct KeyLiveStatus: Sendable, Equatable {
    /// Leases neither released nor expired.
    public var inFlight: Int
    /// The end of the key's cooldown; nil when it is not cooling down.
    public var coolingDownUntil: Date?
    /// Why the provider rejected the key; cleared by an operator's reset.
    public var disabledReason: String?
    public var lastError: String?
    public var lastErrorAt: Date?
    /// The last selection or release of the key.
    public var lastUsedAt: Date?
    /// Requests started in the trailing minute, estimated from per-minute counters.
    public var requestsLastMinute: Int

    public init(
        inFlight: Int = 0, coolingDownUntil: Date? = nil, disabledReason: String? = nil, lastError: String? = nil,
        lastErrorAt: Date? = nil, lastUsedAt: Date? = nil, requestsLastMinute: Int = 0
    ) {
        self.inFlight = inFlight
        self.coolingDownUntil = coolingDownUntil
        self.disabledReason = disabledReason
        self.lastError = lastError
        self.lastErrorAt = lastErrorAt
        self.lastUsedAt = lastUsedAt
        self.requestsLastMinute = requestsLastMinute
    }
}

/// Where provider keys are chosen and their live state kept: in this process, or in Redis
/// so that every replica sees the same windows, cooldowns and disables.
public protocol KeyPool: Sendable {
    /// Picks one of `candidates` (already filtered by the catalogue: active, allowed for the
    /// tenant), skipping `excluding` and every key cooling down, disabled, or without room in
    /// its own windows or the provider's reported remaining capacity for one request and
    /// `tokens`. Reserves one request and `tokens` on the chosen key's windows and counts it
    /// in flight.
    /// - Parameters:
    ///   - pool: The key pool.
    ///   - candidates: The keys that may serve the request, in order of preference for ties.
    ///   - tokens: Tokens to reserve (prompt plus the most the answer can take).
    ///   - excluding: Key ids already tried for this request.
    ///   - heldBack: Thousandths of each key's windows reserved for tiers other than the
    ///     request's: a key with no more left than that is passed over.
    func select(
        pool: String, candidates: [PooledKey], tokens: Int, excluding: Set<String>, heldBack: Int
    ) async throws -> KeySelection

    /// Ends a lease: one fewer in flight, the key's token window adjusted by `actualTokens -
    /// reservedTokens` (nil keeps the reservation), then the outcome applied. When it returns
    /// for an outcome other than success, the cooldown or disable is visible to every later
    /// selection. Never throws: a shared store retries in the background.
    /// - Returns: For a rate limit, how long the key now cools down; nil for other outcomes,
    ///   and when a shared store could not be reached and queued the release.
    @discardableResult
    func release(_ lease: KeyLease, actualTokens: Int?, outcome: KeyOutcome) async -> Duration?

    /// Ends a lease as ``release(_:actualTokens:outcome:)`` does, without waiting: for
    /// callers that cannot await (a `deinit`) and outcomes no retry depends on. A shared
    /// store queues it, so other replicas may see its outcome a moment later.
    func finish(_ lease: KeyLease, actualTokens: Int?, outcome: KeyOutcome)

    /// The live state of `keyIDs` in `pool`; every id has an entry.
    func status(pool: String, keyIDs: [String]) async throws -> [String: KeyLiveStatus]

    /// Operator re-enable: clears the key's cooldown and disabled reason, keeping its windows.
    func reset(pool: String, keyID: String) async throws
}

extension KeyPool {
    /// A selection for a tier none of whose keys' capacity is held back for others.
    public func select(pool: String, candidates: [PooledKey], tokens: Int, excluding: Set<String>) async throws -> KeySelection {
        try await select(pool: pool, candidates: candidates, tokens: tokens, excluding: excluding, heldBack: 0)
    }
}
