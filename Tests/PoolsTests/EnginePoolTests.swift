import Testing

@testable import Pools

@Suite("EnginePool")
struct EnginePoolTests {
    private let start = ContinuousClock.now

    private func free(_ state: EnginePoolState) -> [Int] {
        zip(state.slots, state.inFlight).map { $0 - $1 }
    }

    // MARK: Placement

    @Test("places on the replica with the most free slots")
    func mostFreeSlots() {
        var state = EnginePoolState(slots: [2, 4, 3])
        #expect(state.acquire(now: start) == 1)
        #expect(state.inFlight == [0, 1, 0])
        // A mix of acquisitions and releases: every placement takes a replica with the most free slots.
        for step in 0..<200 {
            let busy = state.inFlight.indices.filter { state.inFlight[$0] > 0 }
            if step % 3 == 2, !busy.isEmpty {
                state.release(busy[(step * 7) % busy.count])
                continue
            }
            let before = free(state)
            let chosen = state.acquire(now: start)
            #expect(before[chosen] == before.max(), "step \(step): chose \(chosen) with free \(before)")
        }
    }

    @Test("rotates among replicas that tie")
    func rotatesTies() {
        var state = EnginePoolState(slots: [4, 4, 4])
        var chosen: [Int] = []
        for _ in 0..<7 {
            let index = state.acquire(now: start)
            chosen.append(index)
            state.release(index)
        }
        #expect(chosen == [0, 1, 2, 0, 1, 2, 0])
        #expect(state.inFlight == [0, 0, 0])
    }

    @Test("fills replicas evenly, then keeps placing on the least loaded when all are full")
    func fillsEvenly() {
        var state = EnginePoolState(slots: [2, 2])
        let placements = (0..<6).map { _ in state.acquire(now: start) }
        #expect(placements.filter { $0 == 0 }.count == 3)
        #expect(placements.filter { $0 == 1 }.count == 3)
        #expect(state.inFlight == [3, 3])
    }

    @Test("release frees a slot for the next placement")
    func releaseFrees() {
        var state = EnginePoolState(slots: [1, 1, 1])
        #expect(Set((0..<3).map { _ in state.acquire(now: start) }) == [0, 1, 2])
        state.release(1)
        #expect(state.inFlight == [1, 0, 1])
        #expect(state.acquire(now: start) == 1)
        state.release(2)
        #expect(state.acquire(now: start) == 2)
    }

    @Test("release never goes below zero")
    func releaseFloor() {
        var state = EnginePoolState(slots: [2, 2])
        state.release(0)
        state.release(0)
        #expect(state.inFlight == [0, 0])
        #expect(state.acquire(now: start) == 0)
        #expect(state.inFlight == [1, 0])
    }

    // MARK: Unreachable replicas

    @Test("avoids an unreachable replica until its backoff has passed")
    func backoff() {
        var state = EnginePoolState(slots: [8, 2])
        state.markUnreachable(0, until: start + .seconds(5))
        // Even when the reachable replica is over its slots, the avoided one is not used.
        for _ in 0..<5 {
            #expect(state.acquire(now: start) == 1)
        }
        #expect(state.acquire(now: start + .milliseconds(4_999)) == 1)
        #expect(state.inFlight == [0, 6])
        // From the end of the backoff on, it takes requests again.
        #expect(state.acquire(now: start + .seconds(5)) == 0)
        #expect(state.acquire(now: start + .seconds(60)) == 0)
    }

    @Test("with every replica unreachable, picks the one that recovers first")
    func allUnreachable() {
        var state = EnginePoolState(slots: [4, 4, 4])
        state.markUnreachable(0, until: start + .seconds(10))
        state.markUnreachable(1, until: start + .seconds(3))
        state.markUnreachable(2, until: start + .seconds(7))
        #expect(state.acquire(now: start) == 1)
        #expect(state.acquire(now: start + .seconds(2)) == 1)
        // Once replica 1 recovers it is the only reachable one.
        #expect(state.acquire(now: start + .seconds(3)) == 1)
        #expect(state.acquire(now: start + .seconds(8)) != 0)
        #expect(state.acquire(now: start + .seconds(10)) == 0)
    }

    @Test("marking a replica again moves its backoff")
    func remark() {
        var state = EnginePoolState(slots: [4, 4])
        state.markUnreachable(0, until: start + .seconds(10))
        state.markUnreachable(0, until: start + .seconds(1))
        #expect(state.acquire(now: start + .seconds(2)) == 0)
    }

    // MARK: The pool

    private static let demand = EnginePool.Demand(tenant: "t", contract: Contract(tier: "standard", band: 10))

    private func lease(_ pool: EnginePool, now: ContinuousClock.Instant = .now) -> EnginePool.Lease {
        guard let lease = pool.tryAcquire(Self.demand, now: now) else {
            Issue.record("no slot was free")
            return EnginePool.Lease(replica: -1, baseURL: "", tier: "", grantedAt: now, waited: .zero)
        }
        return lease
    }

    @Test("a pool leases replicas by base URL and counts requests in flight")
    func pool() {
        let pool = EnginePool(name: "llama", replicas: [
            .init(baseURL: "http://a:8000/v1", slots: 2),
            .init(baseURL: "http://b:8000/v1", slots: 4),
        ])
        #expect(pool.name == "llama")
        #expect(pool.capacity == 6)
        let first = lease(pool, now: start)
        #expect(first.replica == 1 && first.baseURL == "http://b:8000/v1" && first.waited == .zero)
        let second = lease(pool, now: start)
        #expect(pool.inFlight.reduce(0, +) == 2)
        pool.release(first)
        pool.release(second)
        #expect(pool.inFlight == [0, 0])
        #expect(pool.snapshot.inFlight == 0)
    }

    @Test("a pool steps around a replica marked unreachable for its backoff")
    func poolBackoff() {
        let pool = EnginePool(name: "tgi", replicas: [
            .init(baseURL: "http://a", slots: 4),
            .init(baseURL: "http://b", slots: 4),
        ])
        let first = lease(pool, now: start)
        #expect(first.baseURL == "http://a")
        pool.markUnreachable(first, backoff: .seconds(30), now: start)
        // The slot moves to the other replica and stays held.
        let moved = pool.relocate(first, now: start)
        #expect(moved.baseURL == "http://b")
        #expect(pool.snapshot.inFlight == 1)
        pool.release(moved)
        for _ in 0..<3 {
            let next = lease(pool, now: start + .seconds(29))
            #expect(next.baseURL == "http://b")
            pool.release(next)
        }
        #expect(lease(pool, now: start + .seconds(30)).baseURL == "http://a")
    }

    @Test("a replica has at least one slot")
    func minimumSlots() {
        #expect(EnginePool.Replica(baseURL: "x", slots: 0).slots == 1)
        #expect(EnginePool.Replica(baseURL: "x", slots: -3).slots == 1)
        #expect(EnginePool.Replica(baseURL: "x", slots: 16).slots == 16)
    }

    @Test("concurrent acquisitions and releases balance out, waiting when the pool is full")
    func concurrentUse() async {
        let pool = EnginePool(name: "p", replicas: (0..<4).map { .init(baseURL: "http://r\($0)", slots: 8) })
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<64 {
                group.addTask {
                    for _ in 0..<50 {
                        guard case .leased(let lease) = await pool.acquire(Self.demand) else {
                            Issue.record("a request without a deadline was refused")
                            return
                        }
                        await Task.yield()
                        pool.release(lease)
                    }
                }
            }
        }
        #expect(pool.inFlight == [0, 0, 0, 0])
        #expect(pool.snapshot.waiting == 0)
        let leases = (0..<32).map { _ in lease(pool) }
        #expect(pool.inFlight == [8, 8, 8, 8])
        #expect(pool.tryAcquire(Self.demand) == nil)
        leases.forEach { pool.release($0) }
        #expect(pool.inFlight == [0, 0, 0, 0])
    }

    @Test("a waiter is granted the slot a release frees, and its wait is measured")
    func waiterGranted() async {
        let pool = EnginePool(name: "p", replicas: [.init(baseURL: "http://a", slots: 1)])
        let held = lease(pool)
        async let waiting = pool.acquire(Self.demand)
        while pool.snapshot.waiting == 0 { await Task.yield() }
        pool.release(held)
        guard case .leased(let granted) = await waiting else {
            Issue.record("the waiter was not granted")
            return
        }
        #expect(granted.waited > .zero)
        #expect(pool.snapshot.inFlight == 1 && pool.snapshot.waiting == 0)
        #expect(pool.snapshot.serviceTime != nil)
        pool.release(granted)
    }

    @Test("a cancelled waiter leaves the queue and takes no slot")
    func cancelledWaiter() async {
        let pool = EnginePool(name: "p", replicas: [.init(baseURL: "http://a", slots: 1)])
        let held = lease(pool)
        let task = Task { await pool.acquire(Self.demand) }
        while pool.snapshot.waiting == 0 { await Task.yield() }
        task.cancel()
        #expect(await task.value == .cancelled)
        #expect(pool.snapshot.waiting == 0)
        pool.release(held)
        #expect(pool.snapshot.inFlight == 0)
    }

    @Test("a waiter still queued at its contract's longest wait is refused")
    func deadline() async {
        var contract = Contract(tier: "standard", band: 10)
        contract.maximumQueueWait = .milliseconds(20)
        let pool = EnginePool(name: "p", replicas: [.init(baseURL: "http://a", slots: 1)])
        let held = lease(pool)
        guard case .refused(.capacityExhausted) = await pool.acquire(.init(tenant: "t", contract: contract)) else {
            Issue.record("the waiter was not refused at its deadline")
            return
        }
        #expect(pool.snapshot.waiting == 0)
        pool.release(held)
        #expect(pool.snapshot.inFlight == 0)
    }

    @Test("a full queue refuses at once")
    func fullQueue() async {
        let pool = EnginePool(name: "p", replicas: [.init(baseURL: "http://a", slots: 1)], maximumQueue: 0)
        let held = lease(pool)
        #expect(await pool.acquire(Self.demand) == .refused(.capacityExhausted(predictedStart: nil)))
        pool.release(held)
    }
}
