import Foundation
import Testing

@testable import Pools

@Suite("InProcessKeyPool")
struct InProcessKeyPoolTests {
    private let start = 1_750_000_020_000

    @Test("through the KeyPool protocol: select, release with an outcome, status, reset")
    func protocolRoundTrip() async throws {
        let pool: any KeyPool = InProcessKeyPool()
        let keys = [PooledKey(id: "a", weight: 3), PooledKey(id: "b")]
        let lease = try #require(try await pool.select(pool: "openai", candidates: keys, tokens: 100, excluding: []).lease)
        #expect(lease.pool == "openai")
        #expect(lease.keyID == "a")
        #expect(lease.reservedTokens == 100)
        #expect(try await pool.status(pool: "openai", keyIDs: ["a", "b"])["a"]?.inFlight == 1)

        #expect(await pool.release(lease, actualTokens: 80, outcome: .rateLimited(retryAfter: nil, nil)) == .seconds(1))
        let status = try #require(try await pool.status(pool: "openai", keyIDs: ["a"])["a"])
        #expect(status.inFlight == 0)
        let until = try #require(status.coolingDownUntil)
        let cooldown = until.timeIntervalSince(try #require(status.lastUsedAt))
        #expect(abs(cooldown - 1) < 0.001, "the first default cooldown")
        for _ in 0..<10 {
            #expect(try await pool.select(pool: "openai", candidates: keys, tokens: 1, excluding: []).lease?.keyID == "b")
        }
        let other = try #require(try await pool.select(pool: "openai", candidates: keys, tokens: 1, excluding: []).lease)
        pool.finish(other, actualTokens: nil, outcome: .failed(reason: "connection reset"))
        #expect(try await pool.status(pool: "openai", keyIDs: ["b"])["b"]?.lastError == "connection reset", "finished at once")
        try await pool.reset(pool: "openai", keyID: "a")
        #expect(try await pool.status(pool: "openai", keyIDs: ["a"])["a"]?.coolingDownUntil == nil)
        #expect(try await pool.select(pool: "openai", candidates: keys, tokens: 1, excluding: ["b"]).lease?.keyID == "a")
    }

    @Test("pools are independent, even for keys with the same id")
    func poolsIndependent() throws {
        let pool = InProcessKeyPool()
        let key = PooledKey(id: "env:openai")
        let lease = try #require(pool.select(pool: "openai", candidates: [key], tokens: 0, excluding: [], at: start).lease)
        _ = pool.release(lease, actualTokens: nil, outcome: .rejected(reason: "401"), at: start)
        #expect(pool.select(pool: "openai", candidates: [key], tokens: 0, excluding: [], at: start) == .exhausted(retryAfter: nil))
        #expect(pool.select(pool: "azure", candidates: [key], tokens: 0, excluding: [], at: start).lease?.pool == "azure")
        #expect(pool.status(pool: "azure", keyIDs: ["env:openai"], at: start)["env:openai"]?.disabledReason == nil)
        #expect(pool.status(pool: "openai", keyIDs: ["env:openai"], at: start)["env:openai"]?.disabledReason == "401")
    }

    @Test("concurrent selections never take more than the keys' request limits, and lease ids are unique")
    func concurrentSelections() async throws {
        let pool = InProcessKeyPool()
        let keys = [PooledKey(id: "a", requestsPerMinute: 5), PooledKey(id: "b", requestsPerMinute: 7)]
        let start = self.start
        let leases = await withTaskGroup(of: KeyLease?.self) { group in
            for _ in 0..<200 {
                group.addTask { pool.select(pool: "openai", candidates: keys, tokens: 1, excluding: [], at: start).lease }
            }
            return await group.reduce(into: [KeyLease]()) { if let lease = $1 { $0.append(lease) } }
        }
        #expect(leases.count { $0.keyID == "a" } == 5)
        #expect(leases.count { $0.keyID == "b" } == 7)
        #expect(Set(leases.map(\.id)).count == 12)
        let status = pool.status(pool: "openai", keyIDs: ["a", "b"], at: start)
        #expect(status["a"]?.inFlight == 5)
        #expect(status["b"]?.requestsLastMinute == 7)
    }

    @Test("a release goes to its lease's pool and key, once; an unreleased lease expires after the TTL")
    func releaseOnce() throws {
        let pool = InProcessKeyPool(leaseTTL: .seconds(60))
        let key = PooledKey(id: "a")
        let lease = try #require(pool.select(pool: "p", candidates: [key], tokens: 0, excluding: [], at: start).lease)
        #expect(pool.release(lease, actualTokens: 0, outcome: .succeeded(nil), at: start + 1_000).wasOpen == true)
        #expect(pool.release(lease, actualTokens: 0, outcome: .succeeded(nil), at: start + 1_000).wasOpen == false)
        let stranger = KeyLease(pool: "q", keyID: "a", reservedTokens: 0, id: lease.id)
        #expect(pool.release(stranger, actualTokens: 0, outcome: .failed(reason: "reset"), at: start).wasOpen == false)
        #expect(pool.status(pool: "q", keyIDs: ["a"], at: start)["a"]?.lastError == "reset")

        let forgotten = try #require(pool.select(pool: "p", candidates: [key], tokens: 0, excluding: [], at: start + 2_000).lease)
        #expect(pool.status(pool: "p", keyIDs: ["a"], at: start + 61_999)["a"]?.inFlight == 1)
        #expect(pool.status(pool: "p", keyIDs: ["a"], at: start + 62_000)["a"]?.inFlight == 0, "the configured lease TTL")
        #expect(pool.release(forgotten, actualTokens: 0, outcome: .succeeded(nil), at: start + 62_000).wasOpen == false)
    }
}
