import Logging
import Synchronization
import Testing

@testable import Pools
import RedisTestSupport

@Suite("RedisSlotLeases: engine slots shared by replicas", .timeLimit(.minutes(2)))
struct RedisSlotLeasesTests {
    private static let demand = EnginePool.Demand(tenant: "t", contract: Contract(tier: "standard", band: 10))

    private func replicas(_ count: Int, client: RedisClient, slots: Int) -> (RedisSlotLeases, [EnginePool]) {
        let leases = RedisSlotLeases(client: client, leaseTTL: .seconds(60), logger: Logger(label: "test"))
        let pools = (0..<count).map { _ in
            EnginePool(name: "gpu", replicas: [.init(baseURL: "http://engine", slots: slots)], sharedSlots: leases)
        }
        return (leases, pools)
    }

    @Test("leases are taken up to the pool's slots, and given back")
    func takeAndGive() async throws {
        try await withRedis { _, client in
            let leases = RedisSlotLeases(client: client, leaseTTL: .seconds(60), logger: Logger(label: "test"))
            let first = try #require(try await leases.take(pool: "gpu", capacity: 2))
            let second = try #require(try await leases.take(pool: "gpu", capacity: 2))
            #expect(first != second)
            #expect(try await leases.take(pool: "gpu", capacity: 2) == nil)
            #expect(try await leases.take(pool: "other", capacity: 2) != nil)
            #expect(try await leases.held(pool: "gpu") == 2)
            leases.give(pool: "gpu", lease: first)
            await leases.flush()
            #expect(try await leases.held(pool: "gpu") == 1)
            #expect(try await leases.take(pool: "gpu", capacity: 2) != nil)
        }
    }

    @Test("a lease whose holder died stops counting once it has expired")
    func expiry() async throws {
        try await withRedis { _, client in
            let leases = RedisSlotLeases(client: client, leaseTTL: .seconds(60), logger: Logger(label: "test"))
            // A lease that expired long ago (its score is its expiry, in Redis milliseconds),
            // and one that has not.
            _ = try await client.command(["ZADD", RedisSlotLeases.key(pool: "gpu"), "1", "dead-replica"]).checked()
            #expect(try await leases.held(pool: "gpu") == 0)
            #expect(try await leases.take(pool: "gpu", capacity: 1) != nil)
            #expect(try await leases.take(pool: "gpu", capacity: 1) == nil)
            let ttl = try await client.command(["PTTL", RedisSlotLeases.key(pool: "gpu")]).checked()
            guard case .integer(let milliseconds) = ttl else {
                Issue.record("PTTL answered \(ttl)")
                return
            }
            // The set itself goes when its last lease would have.
            #expect(milliseconds > 50_000 && milliseconds <= 60_000)
        }
    }

    @Test("slots counted alone while Redis was away still count once it is back")
    func outage() async throws {
        let server = try RedisTestServer()
        defer { server.stop() }
        let client = RedisClient(configuration: try server.configuration(commandTimeout: .milliseconds(500)))
        let (leases, pools) = replicas(1, client: client, slots: 2)
        let pool = pools[0]
        server.stop()
        var unshared: [EnginePool.Lease] = []
        for _ in 0..<2 {
            guard case .leased(let lease) = await pool.acquire(Self.demand) else {
                Issue.record("no slot while Redis is away")
                return
            }
            #expect(lease.sharedLease == nil)
            unshared.append(lease)
        }
        try server.start()
        // Redis is back, with no lease in it: the two slots this replica counted alone are
        // still running, so a third request waits rather than leasing a third slot.
        var contract = Contract(tier: "standard", band: 10)
        contract.maximumQueueWait = .milliseconds(200)
        let waited = await pool.acquire(EnginePool.Demand(tenant: "t", contract: contract))
        guard case .refused = waited else {
            Issue.record("the pool ran over its slots: \(waited)")
            return
        }
        for lease in unshared { pool.release(lease) }
        #expect(pool.snapshot.inFlight == 0)
        guard case .leased(let shared) = await pool.acquire(Self.demand) else {
            Issue.record("no slot once Redis was back")
            return
        }
        #expect(shared.sharedLease != nil)
        pool.release(shared)
        await leases.shutdown()
        try await client.shutdown()
    }

    @Test("replicas together never hold more than the pool's slots, and every request is served")
    func replicasShareSlots() async throws {
        try await withRedis { _, client in
            let (leases, pools) = replicas(3, client: client, slots: 2)
            let counts = Counts()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await leases.run() }
                for pool in pools { group.addTask { await pool.run(pollInterval: .milliseconds(2)) } }
                try await withThrowingTaskGroup(of: Void.self) { requests in
                    for index in 0..<60 {
                        let pool = pools[index % pools.count]
                        requests.addTask {
                            guard case .leased(let lease) = await pool.acquire(Self.demand) else {
                                Issue.record("a request without a deadline was refused")
                                return
                            }
                            #expect(lease.sharedLease != nil)
                            counts.enter()
                            try await Task.sleep(for: .milliseconds(5))
                            counts.leave()
                            pool.release(lease)
                        }
                    }
                    try await requests.waitForAll()
                }
                await leases.flush()
                #expect(try await leases.held(pool: "gpu") == 0)
                group.cancelAll()
            }
            #expect(counts.most == 2)
            for pool in pools { #expect(pool.snapshot.inFlight == 0 && pool.snapshot.waiting == 0) }
        }
    }

    @Test("a waiter on one replica gets the slot another replica gives back, in band order")
    func crossReplicaOrder() async throws {
        try await withRedis { _, client in
            let (leases, pools) = replicas(2, client: client, slots: 1)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await leases.run() }
                for pool in pools { group.addTask { await pool.run(pollInterval: .milliseconds(2)) } }
                guard case .leased(let held) = await pools[0].acquire(Self.demand) else {
                    Issue.record("the first request was not served")
                    return
                }
                let order = Order()
                let standard = Task {
                    if case .leased(let lease) = await pools[1].acquire(Self.demand) {
                        order.append("standard")
                        pools[1].release(lease)
                    }
                }
                while pools[1].snapshot.waiting < 1 { try await Task.sleep(for: .milliseconds(1)) }
                let enterprise = Task {
                    let demand = EnginePool.Demand(tenant: "e", contract: Contract(tier: "enterprise", band: 100))
                    if case .leased(let lease) = await pools[1].acquire(demand) {
                        order.append("enterprise")
                        pools[1].release(lease)
                    }
                }
                while pools[1].snapshot.waiting < 2 { try await Task.sleep(for: .milliseconds(1)) }
                pools[0].release(held)
                await standard.value
                await enterprise.value
                #expect(order.names == ["enterprise", "standard"])
                group.cancelAll()
            }
        }
    }
}

/// Requests in flight now, and the most ever.
private final class Counts: Sendable {
    private let state = Mutex((now: 0, most: 0))

    func enter() {
        state.withLock { state in
            state.now += 1
            state.most = max(state.most, state.now)
        }
    }

    func leave() {
        state.withLock { $0.now -= 1 }
    }

    var most: Int { state.withLock { $0.most } }
}

/// The order requests were served in.
private final class Order: Sendable {
    private let state = Mutex<[String]>([])

    func append(_ name: String) {
        state.withLock { $0.append(name) }
    }

    var names: [String] { state.withLock { $0 } }
}
