import Foundation
import Logging
import Synchronization
import Testing

@testable import Pools
import RedisTestSupport

/// `RedisKeyPool` against a real redis-server: replicas sharing one Redis, queued
/// releases, key names and lifetimes, and `FailoverKeyPool` when Redis goes away.
@Suite("RedisKeyPool", .timeLimit(.minutes(2)))
struct RedisKeyPoolTests {
    /// Redis milliseconds for fixed instants; any value works.
    private let start = 1_750_000_020_000
    private let a = PooledKey(id: "a")
    private let b = PooledKey(id: "b")

    // MARK: Replicas

    @Test("three replicas see each other's cooldowns, disables and resets at once")
    func replicasShareOutcomes() async throws {
        let server = try RedisTestServer()
        defer { server.stop() }
        try await withKeyPoolReplicas(server, count: 3) { replicas in
            let keys = [a, b]
            let lease = try #require(try await replicas[0].select(pool: "openai", candidates: [a], tokens: 10, excluding: []).lease)
            await replicas[0].release(lease, actualTokens: 5, outcome: .rateLimited(retryAfter: .seconds(600), nil))
            for replica in replicas[1...] {
                for _ in 0..<10 {
                    #expect(try await replica.select(pool: "openai", candidates: keys, tokens: 1, excluding: []).lease?.keyID == "b")
                }
                let exhausted = try await replica.select(pool: "openai", candidates: [a], tokens: 1, excluding: [])
                guard case .exhausted(let retryAfter?) = exhausted else {
                    Issue.record("expected a wait, got \(exhausted)")
                    return
                }
                #expect(retryAfter > .seconds(500) && retryAfter <= .seconds(600))
            }

            let other = try #require(try await replicas[1].select(pool: "openai", candidates: [b], tokens: 1, excluding: []).lease)
            await replicas[1].release(other, actualTokens: nil, outcome: .rejected(reason: "401 invalid key"))
            let wait = try await replicas[2].select(pool: "openai", candidates: keys, tokens: 1, excluding: []).retryAfter
            #expect(wait.map { $0 > .seconds(500) && $0 <= .seconds(600) } == true, "only the cooldown of a can end")
            #expect(try await replicas[0].select(pool: "openai", candidates: [b], tokens: 1, excluding: []) == .exhausted(retryAfter: nil))

            let statuses = try await replicas[2].status(pool: "openai", keyIDs: ["a", "b"])
            #expect(statuses["a"]?.coolingDownUntil != nil)
            #expect(statuses["a"]?.lastError == "rate limited")
            #expect(statuses["b"]?.disabledReason == "401 invalid key")
            #expect(statuses["b"]?.inFlight == 20, "the successful selections were not released")
            // Another replica reads the same; only the trailing-minute estimate may move on.
            var seen = try await replicas[0].status(pool: "openai", keyIDs: ["a", "b"])
            for id in ["a", "b"] { seen[id]?.requestsLastMinute = statuses[id]!.requestsLastMinute }
            #expect(seen == statuses)

            try await replicas[2].reset(pool: "openai", keyID: "a")
            try await replicas[2].reset(pool: "openai", keyID: "b")
            #expect(try await replicas[0].select(pool: "openai", candidates: [a], tokens: 1, excluding: []).lease?.keyID == "a")
            #expect(try await replicas[1].select(pool: "openai", candidates: [b], tokens: 1, excluding: []).lease?.keyID == "b")
        }
    }

    @Test("with Redis's own clock, concurrent selections on three replicas never exceed the keys' request limits")
    func replicasNeverOvershoot() async throws {
        let server = try RedisTestServer()
        defer { server.stop() }
        try await withKeyPoolReplicas(server, count: 3) { replicas in
            // Two per minute each: the next refill is 30 s away, far beyond this test.
            let keys = (1...3).map { PooledKey(id: "k\($0)", weight: $0, requestsPerMinute: 2) }
            let leases = try await selected(150, replicas) { replica in
                try await replica.select(pool: "openai", candidates: keys, tokens: 1, excluding: [])
            }
            #expect(leases.count == 6)
            for key in keys { #expect(leases.count { $0.keyID == key.id } == 2) }
            #expect(Set(leases.map(\.id)).count == 6)
        }
    }

    @Test("at one instant, concurrent selections take exactly the request and token limits")
    func exactLimitsAtOneInstant() async throws {
        let server = try RedisTestServer()
        defer { server.stop() }
        try await withKeyPoolReplicas(server, count: 3) { replicas in
            let start = self.start
            let keys = [PooledKey(id: "rpm", requestsPerMinute: 50), PooledKey(id: "tpm", tokensPerMinute: 1000)]
            let leases = try await selected(300, replicas) { replica in
                try await replica.select(pool: "openai", candidates: keys, tokens: 30, excluding: [], at: start)
            }
            #expect(leases.count { $0.keyID == "rpm" } == 50)
            #expect(leases.count { $0.keyID == "tpm" } == 33, "1000 tokens hold 33 requests of 30")
        }
    }

    @Test("a 429 naming no delay cools a key for 1 s, doubling with each in a row to 30 s, whichever replica saw it; a success starts afresh")
    func defaultCooldownGrowsAcrossReplicas() async throws {
        let server = try RedisTestServer()
        defer { server.stop() }
        try await withKeyPoolReplicas(server, count: 2) { replicas in
            var now = start
            for (index, expected) in [1, 2, 4, 8, 16, 30, 30].enumerated() {
                let replica = replicas[index % 2]
                let lease = try #require(try await replica.select(pool: "openai", candidates: [a], tokens: 1, excluding: [], at: now).lease)
                let released = try await replica.releaseImmediately(lease, actualTokens: 0, outcome: .rateLimited(retryAfter: nil, nil), at: now)
                #expect(released.cooldown == expected * 1_000)
                let other = replicas[(index + 1) % 2]
                #expect(try await other.select(pool: "openai", candidates: [a], tokens: 1, excluding: [], at: now) == .exhausted(retryAfter: .seconds(expected)))
                now += expected * 1_000
            }
            // A success on either replica starts the default afresh; a named delay stands as it is.
            let serving = try #require(try await replicas[0].select(pool: "openai", candidates: [a], tokens: 1, excluding: [], at: now).lease)
            try await replicas[0].releaseImmediately(serving, actualTokens: 1, outcome: .succeeded(nil), at: now)
            let named = try #require(try await replicas[1].select(pool: "openai", candidates: [a], tokens: 1, excluding: [], at: now).lease)
            #expect(try await replicas[1].releaseImmediately(named, actualTokens: 0, outcome: .rateLimited(retryAfter: .milliseconds(1_500), nil), at: now).cooldown == 1_500)
            let again = try #require(try await replicas[0].select(pool: "openai", candidates: [a], tokens: 1, excluding: [], at: now + 1_500).lease)
            #expect(try await replicas[0].releaseImmediately(again, actualTokens: 0, outcome: .rateLimited(retryAfter: nil, nil), at: now + 1_500).cooldown == 2_000)

            // Through the KeyPool protocol, on Redis's own clock, the cooldown is returned.
            let fresh = try #require(try await replicas[1].select(pool: "openai", candidates: [b], tokens: 1, excluding: []).lease)
            #expect(await replicas[1].release(fresh, actualTokens: 0, outcome: .rateLimited(retryAfter: nil, nil)) == .seconds(1))
            try await replicas[0].reset(pool: "openai", keyID: "b")
            let reset = try #require(try await replicas[0].select(pool: "openai", candidates: [b], tokens: 1, excluding: []).lease)
            #expect(await replicas[0].release(reset, actualTokens: 0, outcome: .rateLimited(retryAfter: nil, nil)) == .seconds(1), "a reset starts afresh")
            #expect(await replicas[0].release(reset, actualTokens: 0, outcome: .failed(reason: "503")) == nil)
        }
    }

    // MARK: Releases

    @Test("successful releases are queued and sent in pipelines; a lease is released once")
    func queuedReleases() async throws {
        try await withRedis { _, client in
            let pool = RedisKeyPool(client: client)
            let key = PooledKey(id: "a", tokensPerMinute: 1000)
            let first = try #require(try await pool.select(pool: "p", candidates: [key], tokens: 600, excluding: [], at: start).lease)
            #expect(try await pool.select(pool: "p", candidates: [key], tokens: 600, excluding: [], at: start) == .exhausted(retryAfter: .seconds(12)))
            pool.enqueueRelease(first, actualTokens: 100, outcome: .succeeded(nil), at: start)
            pool.enqueueRelease(first, actualTokens: 100, outcome: .succeeded(nil), at: start)
            #expect(pool.statistics.pending == 2)
            await pool.flush()
            #expect(pool.statistics == .init(released: 1, unmatched: 1, dropped: 0, pending: 0))
            #expect(try await pool.select(pool: "p", candidates: [key], tokens: 600, excluding: [], at: start).lease != nil, "500 came back, once")
            let status = try await pool.status(pool: "p", keyIDs: ["a"], at: start)
            #expect(status["a"]?.inFlight == 1)
            #expect(status["a"]?.requestsLastMinute == 2)
        }
    }

    @Test("finish queues any outcome without waiting; the queue delivers it")
    func finishQueues() async throws {
        try await withRedis { _, client in
            let pool = RedisKeyPool(client: client)
            let lease = try #require(try await pool.select(pool: "p", candidates: [a], tokens: 1, excluding: []).lease)
            pool.finish(lease, actualTokens: 1, outcome: .rateLimited(retryAfter: .seconds(600), nil))
            #expect(pool.statistics.pending == 1)
            #expect(try await pool.status(pool: "p", keyIDs: ["a"])["a"]?.inFlight == 1, "not sent yet")
            await pool.flush()
            let status = try #require(try await pool.status(pool: "p", keyIDs: ["a"])["a"])
            #expect(status.inFlight == 0)
            #expect(status.coolingDownUntil != nil)
            #expect(pool.statistics == .init(released: 1, unmatched: 0, dropped: 0, pending: 0))
        }
    }

    @Test("a key's keys share the pool's hash tag, expire when idle, and a disabled key's state never expires")
    func keys() async throws {
        try await withRedis { _, client in
            let pool = RedisKeyPool(client: client, idleExpiry: .seconds(3_600))
            let key = PooledKey(id: "env:openai", requestsPerMinute: 10)
            let lease = try #require(try await pool.select(pool: "openai", candidates: [key], tokens: 0, excluding: []).lease)
            let names = try await client.command(["KEYS", "*"]).array?.compactMap(\.string).sorted()
            #expect(names == ["sy:{pool:openai}:k:env:openai", "sy:{pool:openai}:l:env:openai"])
            for name in names ?? [] {
                let ttl = try #require(try await client.command(["PTTL", name]).integer)
                #expect(ttl > 3_600_000 && ttl <= 4_200_000, "the lease, then the idle margin: \(name) \(ttl) ms")
            }
            await pool.release(lease, actualTokens: nil, outcome: .rejected(reason: "403"))
            let keys = RedisKeyPool.Keys(pool: "openai", keyID: "env:openai")
            #expect(try await client.command(["PTTL", keys.state]) == .integer(-1), "disabled until an operator resets it")
            #expect(try await client.command(["EXISTS", keys.leases]) == .integer(0))
            try await pool.reset(pool: "openai", keyID: "env:openai")
            let ttl = try #require(try await client.command(["PTTL", keys.state]).integer)
            #expect(ttl > 3_590_000 && ttl <= 3_606_000, "the request window refills within 6 s: \(ttl) ms")
            // Resetting a key without state creates none.
            try await pool.reset(pool: "openai", keyID: "ghost")
            #expect(try await client.command(["EXISTS", RedisKeyPool.Keys(pool: "openai", keyID: "ghost").state]) == .integer(0))
        }
    }

    @Test("scripts Redis forgot (SCRIPT FLUSH) are loaded again")
    func scriptsReloaded() async throws {
        try await withRedis { _, client in
            let pool = RedisKeyPool(client: client)
            _ = try await client.command(["SCRIPT", "FLUSH"])
            let lease = try #require(try await pool.select(pool: "p", candidates: [a], tokens: 1, excluding: []).lease)
            _ = try await client.command(["SCRIPT", "FLUSH"])
            await pool.release(lease, actualTokens: 1, outcome: .succeeded(nil))
            await pool.flush()
            #expect(pool.statistics.released == 1)
            _ = try await client.command(["SCRIPT", "FLUSH"])
            #expect(try await pool.status(pool: "p", keyIDs: ["a"])["a"]?.inFlight == 0)
        }
    }

    // MARK: Failover

    @Test("Redis stopped: fail open selects in process and releases there; Redis back: the shared pool again")
    func failOpen() async throws {
        try await withRedis(commandTimeout: .milliseconds(500)) { server, client in
            let redis = RedisKeyPool(client: client)
            let fallback = InProcessKeyPool()
            let failures = Atomic<Int>(0)
            let pool = FailoverKeyPool(
                primary: redis, fallback: fallback, policy: .failOpen, logger: Logger(label: "test"),
                onFailure: { failures.add(1, ordering: .relaxed) }
            )
            let shared = try #require(try await pool.select(pool: "p", candidates: [a], tokens: 1, excluding: []).lease)
            server.stop()
            let local = try #require(try await pool.select(pool: "p", candidates: [a], tokens: 1, excluding: []).lease)
            #expect(failures.load(ordering: .relaxed) == 1)
            #expect(try await pool.status(pool: "p", keyIDs: ["a"])["a"]?.inFlight == 1, "the fallback's view")
            await pool.release(local, actualTokens: 1, outcome: .rejected(reason: "401"))
            #expect(try await fallback.status(pool: "p", keyIDs: ["a"])["a"]?.disabledReason == "401")
            #expect(try await fallback.status(pool: "p", keyIDs: ["a"])["a"]?.inFlight == 0, "released to the side that selected")
            #expect(try await pool.select(pool: "p", candidates: [a], tokens: 1, excluding: []) == .exhausted(retryAfter: nil))

            try server.start()
            // The restarted Redis kept nothing: the key is fresh there.
            let again = try #require(try await pool.select(pool: "p", candidates: [a], tokens: 1, excluding: []).lease)
            await pool.release(again, actualTokens: 1, outcome: .failed(reason: "503"))
            #expect(try await redis.status(pool: "p", keyIDs: ["a"])["a"]?.lastError == "503", "released to Redis, which selected it")
            pool.finish(shared, actualTokens: 1, outcome: .succeeded(nil))
            await redis.flush()
            #expect(redis.statistics.unmatched == 1, "the lease Redis lost on restart")
            #expect(failures.load(ordering: .relaxed) == 3)
        }
    }

    @Test("Redis stopped: fail closed throws LimitStoreUnavailable; Redis back: selects again")
    func failClosed() async throws {
        try await withRedis(commandTimeout: .milliseconds(500)) { server, client in
            let pool = FailoverKeyPool(primary: RedisKeyPool(client: client), policy: .failClosed, logger: Logger(label: "test"))
            #expect(try await pool.select(pool: "p", candidates: [a], tokens: 1, excluding: []).lease != nil)
            server.stop()
            await #expect(throws: LimitStoreUnavailable.self) {
                try await pool.select(pool: "p", candidates: [a], tokens: 1, excluding: [])
            }
            await #expect(throws: LimitStoreUnavailable.self) {
                try await pool.status(pool: "p", keyIDs: ["a"])
            }
            await #expect(throws: LimitStoreUnavailable.self) {
                try await pool.reset(pool: "p", keyID: "a")
            }
            try server.start()
            #expect(try await pool.select(pool: "p", candidates: [a], tokens: 1, excluding: []).lease != nil)
        }
    }

    // MARK: Helpers

    /// Runs `count` selections on `replicas` round-robin, all at once; returns the leases.
    private func selected(
        _ count: Int, _ replicas: [RedisKeyPool],
        _ select: @escaping @Sendable (RedisKeyPool) async throws -> KeySelection
    ) async throws -> [KeyLease] {
        try await withThrowingTaskGroup(of: KeyLease?.self) { group in
            for index in 0..<count {
                let replica = replicas[index % replicas.count]
                group.addTask { try await select(replica).lease }
            }
            return try await group.reduce(into: []) { if let lease = $1 { $0.append(lease) } }
        }
    }
}

extension KeySelection {
    /// The wait of an exhausted selection.
    var retryAfter: Duration? {
        if case .exhausted(let retryAfter) = self { return retryAfter }
        return nil
    }
}

/// Runs `body` with `count` key pools sharing `server`, each on its own client as separate
/// proxy replicas are, with their release loops running; shuts them all down afterwards.
func withKeyPoolReplicas<Result>(
    _ server: RedisTestServer, count: Int, _ body: ([RedisKeyPool]) async throws -> Result
) async throws -> Result {
    var clients: [RedisClient] = []
    for _ in 0..<count {
        clients.append(RedisClient(configuration: try server.configuration()))
    }
    let pools = clients.map { RedisKeyPool(client: $0) }
    let result: Swift.Result<Result, any Error>
    do {
        result = .success(try await withThrowingTaskGroup(of: Void.self, returning: Result.self) { group in
            for pool in pools {
                group.addTask { await pool.run() }
            }
            // Shutting down ends the run loops, which the group waits for either way.
            do {
                let value = try await body(pools)
                for pool in pools { await pool.shutdown() }
                return value
            } catch {
                for pool in pools { await pool.shutdown() }
                throw error
            }
        })
    } catch {
        result = .failure(error)
    }
    for pool in pools { await pool.shutdown() }
    for client in clients { try? await client.shutdown() }
    return try result.get()
}
