import Logging
import Synchronization

/// The slots of engine pools held in Redis, so that replicas pointed at the same Redis
/// together never hold more of a pool's slots than it has.
///
/// A pool's leases are one sorted set, `sy:{pool:<pool>}:slots` (lease id -> expiry in
/// Redis milliseconds; hash-tagged, so Cluster-safe). Taking a slot is one script: expired
/// leases are dropped, and a new lease is added when fewer than the pool's slots are held.
/// A lease expires after `leaseTTL` if its replica dies holding it. Giving one back is
/// queued and sent in pipelined batches by ``run()``, like key-pool releases.
public final class RedisSlotLeases: Sendable {
    public let client: RedisClient
    /// How long an unreleased lease holds its slot: the longest an upstream request may run.
    public let leaseTTL: Duration
    private let sender: RedisBatchSender<Give>
    private let nextID: Atomic<UInt64>
    private let instance: UInt64

    struct Give: Sendable {
        var pool: String
        var lease: String
    }

    public init(client: RedisClient, leaseTTL: Duration, logger: Logger) {
        self.client = client
        self.leaseTTL = leaseTTL
        self.instance = UInt64.random(in: 1...UInt64.max >> 1)
        self.nextID = Atomic(0)
        self.sender = RedisBatchSender(
            client: client,
            script: Self.giveScript,
            capacity: 100_000,
            batchSize: 256,
            wording: .init(
                sending: "giving back engine slots in Redis",
                dropped: "engine slot releases dropped: the queue is full",
                abandoned: "engine slot releases left unsent at shutdown: Redis failed",
                script: "the slot release script"
            ),
            logger: logger,
            command: { give in ["EVALSHA", Self.giveScript.sha1, "1", Self.key(pool: give.pool), give.lease] },
            count: { reply in
                guard case .integer = reply else { throw RedisError.protocolError("the slot script answered \(reply)") }
            }
        )
    }

    /// The sorted set of a pool's leases.
    public static func key(pool: String) -> String {
        "sy:{pool:\(pool)}:slots"
    }

    /// Takes one of the pool's `capacity` slots; nil when all are held.
    ///
    /// - Throws: ``RedisError`` when Redis cannot be reached.
    public func take(pool: String, capacity: Int) async throws -> String? {
        let lease = String(instance &+ nextID.wrappingAdd(1, ordering: .relaxed).newValue, radix: 36)
        let ttl = RedisAdmission.milliseconds(leaseTTL)
        let reply: RedisReply
        do {
            reply = try await client.evalSHA(
                script: Self.takeScript, keys: [Self.key(pool: pool)], arguments: [String(capacity), String(ttl), lease]
            ).checked()
        } catch {
            // The script may have run with its answer lost: the lease would hold a slot
            // until it expires. Giving back a lease Redis never added changes nothing.
            give(pool: pool, lease: lease)
            throw error
        }
        guard case .integer(let taken) = reply else { throw RedisError.protocolError("the slot script answered \(reply)") }
        return taken == 1 ? lease : nil
    }

    /// How many of the pool's slots are held now, by every replica.
    public func held(pool: String) async throws -> Int {
        let reply = try await client.evalSHA(script: Self.countScript, keys: [Self.key(pool: pool)], arguments: []).checked()
        guard case .integer(let count) = reply else { throw RedisError.protocolError("the slot script answered \(reply)") }
        return count
    }

    /// Gives a lease back; sent by ``run()``.
    public func give(pool: String, lease: String) {
        sender.enqueue(Give(pool: pool, lease: lease))
    }

    /// Sends queued gives until ``shutdown()``.
    public func run() async {
        await sender.run()
    }

    /// Sends what is queued and stops.
    public func shutdown() async {
        await sender.shutdown()
    }

    /// Waits until every give queued so far has been sent.
    public func flush() async {
        await sender.flush()
    }

    // MARK: Scripts

    private static let prelude = #"""
        if redis.replicate_commands then redis.replicate_commands() end
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)

        """#

    /// ARGV: capacity, lease TTL (ms), lease id. Returns 1 when taken, 0 when all are held.
    static let takeScript = RedisScript(prelude + #"""
        if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
        local ttl = tonumber(ARGV[2])
        redis.call('ZADD', KEYS[1], now + ttl, ARGV[3])
        redis.call('PEXPIRE', KEYS[1], ttl)
        return 1
        """#)

    /// The leases held, expired ones dropped.
    static let countScript = RedisScript(prelude + "return redis.call('ZCARD', KEYS[1])\n")

    /// ARGV: lease id. Returns 1 when it was held, 0 when it had expired or was given back.
    static let giveScript = RedisScript("return redis.call('ZREM', KEYS[1], ARGV[1])\n")
}
