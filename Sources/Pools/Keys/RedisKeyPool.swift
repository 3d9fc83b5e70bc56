#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import Synchronization

/// Provider key pools kept in Redis, so that every proxy replica pointed at the same Redis
/// sees the same per-key windows, reported capacity, cooldowns, disables and leases.
///
/// Each selection is one Lua script (``RedisKeyPool/selectScript``) over the candidates'
/// keys that runs `KeyPoolState.select` atomically with Redis's own clock: the choices and
/// retry-afters are those of one ``InProcessKeyPool`` serving every replica.
///
/// Releasing never throws. A release with any outcome but success runs at once, so that
/// when it returns every replica sees the cooldown or disable; if Redis fails it is queued
/// and retried like the rest. Successful releases and every ``finish(_:actualTokens:outcome:)``
/// are queued (bounded; when full, they are
/// dropped and counted, and their leases expire after `leaseTTL`) and ``run()`` sends the
/// queue in pipelined batches: it must be running, wrapped in the proxy's `Service`, for
/// them to reach Redis. ``shutdown()`` sends what is left; shut the pool down before its
/// `RedisClient`.
///
/// Lease ids are a random 64-bit starting point per instance plus a counter, as
/// ``RedisAdmission``'s reservation ids are; the script refuses an id in flight on a
/// candidate and the pool draws the next.
public final class RedisKeyPool: KeyPool {
    /// The Redis keys of one provider key. Every key of a pool has the hash tag
    /// `{pool:<pool>}`, so one script may use all of them in a Redis Cluster.
    public struct Keys: Sendable, Hashable {
        /// A hash: the key's windows, reports, cooldown, disable, errors, counters, credit.
        public let state: String
        /// A sorted set: lease id -> expiry in Redis milliseconds.
        public let leases: String

        public init(pool: String, keyID: String) {
            let prefix = "sy:{pool:\(pool)}"
            state = prefix + ":k:" + keyID
            leases = prefix + ":l:" + keyID
        }

        var all: [String] { [state, leases] }
    }

    /// Releases sent, releases Redis had no lease for (already released or expired; their
    /// outcome still applied), releases dropped (queue full, or Redis unreachable at
    /// shutdown), and waiting now.
    public struct Statistics: Sendable, Hashable {
        public var released: Int
        public var unmatched: Int
        public var dropped: Int
        public var pending: Int
    }

    public let client: RedisClient
    /// How long an unreleased lease counts in flight; whole milliseconds.
    public let leaseTTL: Duration
    /// How long a key's state outlives the moment it stops mattering (windows full, leases
    /// expired, cooldown and reports over), so operators still see its last use and error.
    public let idleExpiry: Duration
    /// The most releases queued while Redis is slow or unreachable.
    public let releaseCapacity: Int
    /// The most releases sent in one pipeline.
    public let releaseBatchSize: Int

    let logger: Logger
    /// Queues releases and sends them in batches.
    let sender: RedisBatchSender<PendingRelease>
    let counters: Counters
    /// The last lease id drawn.
    let nextID: Atomic<UInt64>

    /// - Parameters:
    ///   - client: The Redis every replica shares. Shut it down after this pool.
    ///   - leaseTTL: How long an unreleased lease counts in flight; rounded up to whole ms.
    ///   - idleExpiry: How long an idle key's state is kept; rounded up to whole ms.
    ///   - releaseCapacity: The most releases queued; at least 1.
    ///   - releaseBatchSize: The most releases sent in one round trip; at least 1.
    ///   - logger: Where failures to release are reported.
    public init(
        client: RedisClient,
        leaseTTL: Duration = .seconds(600),
        idleExpiry: Duration = .seconds(86_400),
        releaseCapacity: Int = 10_000,
        releaseBatchSize: Int = 64,
        logger: Logger = Logger(label: "switchyard.pools.keys")
    ) {
        self.client = client
        self.leaseTTL = .milliseconds(KeyPoolState.milliseconds(leaseTTL))
        self.idleExpiry = .milliseconds(KeyPoolState.milliseconds(idleExpiry))
        self.releaseCapacity = max(1, releaseCapacity)
        self.releaseBatchSize = max(1, releaseBatchSize)
        self.logger = logger
        let counters = Counters()
        let margin = KeyPoolState.milliseconds(self.idleExpiry)
        self.counters = counters
        self.sender = RedisBatchSender(
            client: client, script: Self.releaseScript,
            capacity: releaseCapacity, batchSize: releaseBatchSize,
            wording: Self.releaseWording, logger: logger,
            command: { $0.command(margin: margin) }, count: { _ = try counters.count($0) }
        )
        var generator = SystemRandomNumberGenerator()
        self.nextID = Atomic(generator.next())
    }

    public var statistics: Statistics {
        Statistics(
            released: counters.released.load(ordering: .relaxed),
            unmatched: counters.unmatched.load(ordering: .relaxed),
            dropped: sender.dropped,
            pending: sender.pending
        )
    }

    // MARK: KeyPool

    /// Selects a key atomically across every replica, in one round trip.
    /// - Throws: ``RedisError`` when Redis cannot be reached, does not answer in time, or
    ///   answers with an error.
    public func select(
        pool: String, candidates: [PooledKey], tokens: Int, excluding: Set<String>, heldBack: Int
    ) async throws -> KeySelection {
        try await select(pool: pool, candidates: candidates, tokens: tokens, excluding: excluding, heldBack: heldBack, at: nil)
    }

    @discardableResult
    public func release(_ lease: KeyLease, actualTokens: Int?, outcome: KeyOutcome) async -> Duration? {
        let pending = PendingRelease(lease: lease, actualTokens: actualTokens, effect: KeyPoolState.Effect(outcome), now: nil)
        guard pending.effect.kind != .succeeded else {
            enqueue(pending)
            return nil
        }
        do {
            return try await send(pending).cooldown.map { .milliseconds($0) }
        } catch {
            logger.warning(
                "releasing a provider key in Redis failed; queued to retry",
                metadata: ["pool": "\(lease.pool)", "key": "\(lease.keyID)", "error": "\(error)"]
            )
            enqueue(pending)
            return nil
        }
    }

    /// Queues the release whatever its outcome; ``run()`` sends it.
    public func finish(_ lease: KeyLease, actualTokens: Int?, outcome: KeyOutcome) {
        enqueue(PendingRelease(lease: lease, actualTokens: actualTokens, effect: KeyPoolState.Effect(outcome), now: nil))
    }

    /// - Throws: ``RedisError`` when Redis cannot be reached or answers with an error.
    public func status(pool: String, keyIDs: [String]) async throws -> [String: KeyLiveStatus] {
        try await status(pool: pool, keyIDs: keyIDs, at: nil)
    }

    /// - Throws: ``RedisError`` when Redis cannot be reached or answers with an error.
    public func reset(pool: String, keyID: String) async throws {
        try await reset(pool: pool, keyID: keyID, at: nil)
    }

    // MARK: At a given instant

    /// ``select(pool:candidates:tokens:excluding:)`` at `now` (Redis milliseconds) instead
    /// of Redis's `TIME`: for tests, which compare it with `KeyPoolState`.
    func select(
        pool: String, candidates: [PooledKey], tokens: Int, excluding: Set<String>, heldBack: Int = 0, at now: Int?
    ) async throws -> KeySelection {
        let candidates = KeyPoolState.usable(candidates, excluding: excluding)
        guard !candidates.isEmpty else { return .exhausted(retryAfter: nil) }
        let needed = KeyPoolState.count(tokens)
        var keys: [String] = []
        var perKey: [String] = []
        for candidate in candidates {
            keys += Keys(pool: pool, keyID: candidate.id).all
            perKey += [String(candidate.weight), Self.argument(candidate.requestsPerMinute), Self.argument(candidate.tokensPerMinute)]
        }
        // A collision needs a 64-bit coincidence; a few draws settle it for good.
        for _ in 0..<4 {
            let id = nextID.wrappingAdd(1, ordering: .relaxed).newValue
            let reply = try await client.evalSHA(
                script: Self.selectScript,
                keys: keys,
                arguments: [
                    String(id), String(needed), String(KeyPoolState.milliseconds(leaseTTL)),
                    String(KeyPoolState.milliseconds(idleExpiry)), now.map(String.init) ?? "",
                    String(KeyPoolState.heldBack(heldBack)),
                ] + perKey
            ).checked()
            let numbers = RedisAdmission.AdmitReply.integers(reply)
            switch numbers?.first {
            case 2 where numbers!.count == 1:
                continue
            case 1 where numbers!.count == 2 && candidates.indices.contains(numbers![1] - 1):
                let keyID = candidates[numbers![1] - 1].id
                return .selected(KeyLease(pool: pool, keyID: keyID, reservedTokens: needed, id: id))
            case 0 where numbers!.count == 2:
                return .exhausted(retryAfter: numbers![1] < 0 ? nil : .milliseconds(numbers![1]))
            default:
                throw RedisError.protocolError("the select script answered \(reply)")
            }
        }
        throw RedisError.protocolError("the select script kept finding lease ids in use")
    }

    /// Releases at once and says whether the lease was in flight and the cooldown applied:
    /// for tests, which compare them with `KeyPoolState`.
    @discardableResult
    func releaseImmediately(_ lease: KeyLease, actualTokens: Int?, outcome: KeyOutcome, at now: Int?) async throws -> Released {
        try await send(PendingRelease(lease: lease, actualTokens: actualTokens, effect: KeyPoolState.Effect(outcome), now: now))
    }

    /// Queues a release at a given Redis instant, whatever its outcome: for tests only.
    func enqueueRelease(_ lease: KeyLease, actualTokens: Int?, outcome: KeyOutcome, at now: Int) {
        enqueue(PendingRelease(lease: lease, actualTokens: actualTokens, effect: KeyPoolState.Effect(outcome), now: now))
    }

    /// ``status(pool:keyIDs:)`` at `now`, or at Redis's `TIME` when nil.
    func status(pool: String, keyIDs: [String], at now: Int?) async throws -> [String: KeyLiveStatus] {
        let unique = Array(Set(keyIDs))
        guard !unique.isEmpty else { return [:] }
        let reply = try await client.evalSHA(
            script: Self.statusScript,
            keys: unique.flatMap { Keys(pool: pool, keyID: $0).all },
            arguments: [now.map(String.init) ?? ""]
        ).checked()
        guard let values = reply.array, values.count == 7 * unique.count else {
            throw RedisError.protocolError("the status script answered \(reply)")
        }
        var statuses: [String: KeyLiveStatus] = [:]
        for (index, keyID) in unique.enumerated() {
            let fields = Array(values[(7 * index)..<(7 * index + 7)])
            guard let inFlight = fields[0].integer, let cooling = fields[1].integer, let errorAt = fields[4].integer,
                  let used = fields[5].integer, let lastMinute = fields[6].integer
            else { throw RedisError.protocolError("the status script answered \(reply)") }
            func date(_ milliseconds: Int) -> Date? { milliseconds < 0 ? nil : KeyPoolState.date(milliseconds) }
            statuses[keyID] = KeyLiveStatus(
                inFlight: inFlight, coolingDownUntil: date(cooling), disabledReason: fields[2].string,
                lastError: fields[3].string, lastErrorAt: date(errorAt), lastUsedAt: date(used),
                requestsLastMinute: lastMinute
            )
        }
        return statuses
    }

    /// ``reset(pool:keyID:)`` at `now`, or at Redis's `TIME` when nil.
    func reset(pool: String, keyID: String, at now: Int?) async throws {
        _ = try await client.evalSHA(
            script: Self.resetScript,
            keys: Keys(pool: pool, keyID: keyID).all,
            arguments: [String(KeyPoolState.milliseconds(idleExpiry)), now.map(String.init) ?? ""]
        ).checked()
    }

    // MARK: Releases

    /// A release waiting to be sent.
    struct PendingRelease: Sendable, Hashable {
        var lease: KeyLease
        var actualTokens: Int?
        var effect: KeyPoolState.Effect
        /// Redis milliseconds to release at, for tests; nil is `TIME`.
        var now: Int?

        func arguments(margin: Int) -> [String] {
            func window(_ window: KeyPoolState.Effect.Window?) -> [String] {
                guard let window else { return ["-1", "-1", "-1"] }
                return [String(window.remaining), RedisKeyPool.argument(window.limit), String(window.resetAfter)]
            }
            return [
                String(lease.id), String(KeyPoolState.count(lease.reservedTokens)),
                actualTokens.map { String(KeyPoolState.count($0)) } ?? "-1",
                String(effect.kind.rawValue), RedisKeyPool.argument(effect.cooldown), effect.reason,
                effect.report == nil ? "0" : "1",
            ] + window(effect.report?.requests) + window(effect.report?.tokens)
                + [String(margin), now.map(String.init) ?? ""]
        }

        /// The `EVALSHA` command, for pipelines.
        func command(margin: Int) -> [String] {
            ["EVALSHA", RedisKeyPool.releaseScript.sha1, "2"] + Keys(pool: lease.pool, keyID: lease.keyID).all
                + arguments(margin: margin)
        }
    }

    /// What the release script answered.
    struct Released: Sendable, Hashable {
        /// Whether the lease was in flight.
        var wasOpen: Bool
        /// For a rate limit, the key's cooldown in milliseconds.
        var cooldown: Int?
    }

    /// Separate from the pool so that the sender's `count` can hold it without holding the
    /// pool that holds the sender. Drops are counted by the sender.
    final class Counters: Sendable {
        let released = Atomic<Int>(0)
        let unmatched = Atomic<Int>(0)

        /// Counts a release script's reply.
        @discardableResult
        func count(_ reply: RedisReply) throws(RedisError) -> Released {
            guard let numbers = RedisAdmission.AdmitReply.integers(reply), numbers.count == 2, numbers[0] == 0 || numbers[0] == 1 else {
                throw .protocolError("the release script answered \(reply)")
            }
            let wasOpen = numbers[0] == 1
            if wasOpen {
                released.add(1, ordering: .relaxed)
            } else {
                unmatched.add(1, ordering: .relaxed)
            }
            return Released(wasOpen: wasOpen, cooldown: numbers[1] < 0 ? nil : numbers[1])
        }
    }

    /// Runs one release now and counts it.
    @discardableResult
    private func send(_ pending: PendingRelease) async throws -> Released {
        let reply = try await client.evalSHA(
            script: Self.releaseScript, keys: Keys(pool: pending.lease.pool, keyID: pending.lease.keyID).all,
            arguments: pending.arguments(margin: KeyPoolState.milliseconds(idleExpiry))
        ).checked()
        return try counters.count(reply)
    }

    /// A limit or count as the scripts take it: -1 when not set.
    static func argument(_ value: Int?) -> String {
        value.map(String.init) ?? "-1"
    }
}
