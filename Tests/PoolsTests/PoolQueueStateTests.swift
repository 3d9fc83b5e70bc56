import Testing

@testable import Pools

@Suite("PoolQueueState")
struct PoolQueueStateTests {
    typealias Queue = PoolQueueState<String>
    private let start = ContinuousClock.now

    private static let enterprise = Queue.Demand(tenant: "acme", tier: "enterprise", band: 100)
    private static let standard = Queue.Demand(tenant: "smallco", tier: "standard", band: 10)

    private func fill(_ queue: inout Queue, with demand: Queue.Demand) {
        while queue.inFlight < queue.capacity {
            guard case .granted = queue.acquire(demand, waiter: "filler", maximumWait: nil, now: start) else {
                Issue.record("a free slot was not granted")
                return
            }
        }
    }

    @discardableResult
    private func enqueue(_ queue: inout Queue, _ demand: Queue.Demand, _ name: String, maximumWait: Duration? = nil) -> Queue.ID? {
        guard case .enqueued(let id) = queue.acquire(demand, waiter: name, maximumWait: maximumWait, now: start) else {
            Issue.record("\(name) was not queued")
            return nil
        }
        return id
    }

    /// Releases one slot held by `tier` and returns who got it.
    private func release(_ queue: inout Queue, tier: String, heldFor: Duration? = nil) -> String? {
        queue.release(tier: tier, heldFor: heldFor, now: start + .seconds(1))?.waiter
    }

    // MARK: Order

    @Test("a free slot is granted at once; a full pool queues")
    func freeSlot() {
        var queue = Queue(capacity: 2, maximumQueue: 10)
        fill(&queue, with: Self.standard)
        #expect(queue.inFlight == 2)
        enqueue(&queue, Self.standard, "third")
        #expect(queue.waiting == 1)
        #expect(release(&queue, tier: "standard") == "third")
        #expect(queue.inFlight == 2 && queue.waiting == 0)
        #expect(release(&queue, tier: "standard") == nil)
        #expect(queue.inFlight == 1)
    }

    @Test("the highest band with a waiter is served first, whoever came first")
    func bandOrder() {
        var queue = Queue(capacity: 1, maximumQueue: 10)
        fill(&queue, with: Self.standard)
        enqueue(&queue, Self.standard, "s1")
        enqueue(&queue, Self.standard, "s2")
        enqueue(&queue, .init(tenant: "mid", tier: "professional", band: 50), "p1")
        enqueue(&queue, Self.enterprise, "e1")
        #expect(release(&queue, tier: "standard") == "e1")
        #expect(release(&queue, tier: "enterprise") == "p1")
        #expect(release(&queue, tier: "professional") == "s1")
        #expect(release(&queue, tier: "standard") == "s2")
    }

    @Test("one tenant's requests are served first come, first served")
    func fifoWithinTenant() {
        var queue = Queue(capacity: 1, maximumQueue: 100)
        fill(&queue, with: Self.standard)
        for index in 0..<20 { enqueue(&queue, Self.standard, "r\(index)") }
        let order = (0..<20).compactMap { _ in release(&queue, tier: "standard") }
        #expect(order == (0..<20).map { "r\($0)" })
    }

    @Test("tenants of one band share it by weight, within 5% over 1,000 dispatches", arguments: [
        [1, 1], [3, 1], [1, 2, 5], [10, 1, 1, 4],
    ])
    func fairShare(weights: [Int]) {
        var queue = Queue(capacity: 4, maximumQueue: 10_000)
        let demands = weights.enumerated().map { index, weight in
            Queue.Demand(tenant: "tenant-\(index)", tier: "standard", band: 10, weight: weight)
        }
        fill(&queue, with: demands[0])
        // Every tenant keeps more waiting than can be served: all are backlogged throughout.
        for round in 0..<1_100 {
            for (index, demand) in demands.enumerated() { enqueue(&queue, demand, "\(index)-\(round)") }
        }
        var served = Array(repeating: 0, count: weights.count)
        for _ in 0..<1_000 {
            guard let waiter = release(&queue, tier: "standard"), let index = Int(waiter.split(separator: "-")[0]) else {
                Issue.record("a release granted nobody")
                return
            }
            served[index] += 1
        }
        let total = Double(weights.reduce(0, +))
        for (index, weight) in weights.enumerated() {
            let expected = 1_000 * Double(weight) / total
            #expect(abs(Double(served[index]) - expected) <= 0.05 * expected, "tenant \(index): \(served[index]), expected \(expected)")
        }
    }

    @Test("a tenant that comes back after a pause gets its share, not a burst of catch-up")
    func noCatchUp() {
        var queue = Queue(capacity: 1, maximumQueue: 10_000)
        let busy = Queue.Demand(tenant: "busy", tier: "standard", band: 10)
        let late = Queue.Demand(tenant: "late", tier: "standard", band: 10)
        fill(&queue, with: busy)
        for index in 0..<200 { enqueue(&queue, busy, "busy-\(index)") }
        for _ in 0..<100 { _ = release(&queue, tier: "standard") }
        for index in 0..<100 { enqueue(&queue, late, "late-\(index)") }
        let next = (0..<20).compactMap { _ in release(&queue, tier: "standard") }
        // Alternating from here: the late tenant has no credit for the time it was away.
        #expect(next.filter { $0.hasPrefix("late") }.count == 10)
    }

    @Test("waiters that leave unserved give their share back to their tenant")
    func leavingGivesShareBack() {
        var queue = Queue(capacity: 1, maximumQueue: 1_000)
        let a = Queue.Demand(tenant: "a", tier: "standard", band: 10)
        let b = Queue.Demand(tenant: "b", tier: "standard", band: 10)
        fill(&queue, with: a)
        // A's first hundred waiters give up (in the order they came), then A and B each ask five times.
        let gone = (0..<100).compactMap { enqueue(&queue, a, "gone-\($0)") }
        for id in gone { #expect(queue.remove(id) != nil) }
        for index in 0..<5 {
            enqueue(&queue, a, "a\(index)")
            enqueue(&queue, b, "b\(index)")
        }
        let order = (0..<10).compactMap { _ in release(&queue, tier: "standard") }
        #expect(order == ["a0", "b0", "a1", "b1", "a2", "b2", "a3", "b3", "a4", "b4"])
        // A waiter leaving from the middle of a queue moves the tenant's later ones up.
        fill(&queue, with: a)
        let middle = (0..<3).compactMap { enqueue(&queue, a, "m\($0)") }
        for index in 0..<2 { enqueue(&queue, b, "n\(index)") }
        #expect(queue.remove(middle[1]) == "m1")
        let rest = (0..<4).compactMap { _ in release(&queue, tier: "standard") }
        #expect(rest == ["m0", "n0", "m2", "n1"])
    }

    // MARK: Reserved share

    @Test("a tier below its reserved share takes the next slot ahead of higher bands")
    func reservedShare() {
        var queue = Queue(capacity: 4, maximumQueue: 100)
        let standard = Queue.Demand(tenant: "smallco", tier: "standard", band: 10, reservedShare: 0.25)
        fill(&queue, with: Self.enterprise)
        for index in 0..<10 { enqueue(&queue, Self.enterprise, "e\(index)") }
        enqueue(&queue, standard, "s0")
        enqueue(&queue, standard, "s1")
        // The standard tier holds nothing of its one reserved slot: the next release is its.
        #expect(release(&queue, tier: "enterprise") == "s0")
        // Holding its reserve, it waits behind the higher band again.
        #expect(release(&queue, tier: "enterprise") == "e0")
        #expect(release(&queue, tier: "enterprise") == "e1")
        // Its own slot freed goes back to it.
        #expect(release(&queue, tier: "standard") == "s1")
        #expect(queue.tierCounts["standard"]?.inFlight == 1)
    }

    @Test("idle reserved slots are lent, and the reserving tier gets the very next slot freed")
    func borrowing() {
        var queue = Queue(capacity: 4, maximumQueue: 100)
        let reserving = Queue.Demand(tenant: "acme", tier: "enterprise", band: 100, reservedShare: 0.5)
        // Nobody of the reserving tier asks: the standard tier may take every slot.
        fill(&queue, with: Self.standard)
        #expect(queue.tierCounts["standard"]?.inFlight == 4)
        for index in 0..<8 { enqueue(&queue, Self.standard, "s\(index)") }
        enqueue(&queue, reserving, "e0")
        enqueue(&queue, reserving, "e1")
        enqueue(&queue, reserving, "e2")
        // Its reserve is two slots: it takes the next two freed, then competes by band.
        #expect(release(&queue, tier: "standard") == "e0")
        #expect(release(&queue, tier: "standard") == "e1")
        #expect(release(&queue, tier: "standard") == "e2")
        #expect(release(&queue, tier: "standard") == "s0")
    }

    @Test("a lower band with a reserve is not starved by a higher band's flood")
    func noStarvation() {
        var queue = Queue(capacity: 2, maximumQueue: 10_000)
        let standard = Queue.Demand(tenant: "smallco", tier: "standard", band: 10, reservedShare: 0.5)
        fill(&queue, with: Self.enterprise)
        for index in 0..<500 { enqueue(&queue, Self.enterprise, "e\(index)") }
        for index in 0..<500 { enqueue(&queue, standard, "s\(index)") }
        var held = ["enterprise", "enterprise"]
        var standardServed = 0
        for step in 0..<400 {
            let tier = held.remove(at: step % held.count)
            guard let waiter = release(&queue, tier: tier) else { break }
            held.append(waiter.hasPrefix("s") ? "standard" : "enterprise")
            if waiter.hasPrefix("s") { standardServed += 1 }
        }
        // One slot of two is the standard tier's whenever it waits.
        #expect(standardServed >= 150)
    }

    // MARK: Leaving, deadlines and bounds

    @Test("a removed waiter leaves the queue and takes no slot")
    func removal() {
        var queue = Queue(capacity: 1, maximumQueue: 10)
        fill(&queue, with: Self.standard)
        let gone = enqueue(&queue, Self.standard, "gone")
        enqueue(&queue, Self.standard, "stays")
        #expect(queue.remove(gone!) == "gone")
        #expect(queue.remove(gone!) == nil)
        #expect(queue.waiting == 1)
        #expect(release(&queue, tier: "standard") == "stays")
        #expect(release(&queue, tier: "standard") == nil)
        #expect(queue.inFlight == 0 && queue.waiting == 0)
        #expect(queue.tierCounts["standard"]?.waiting == 0)
    }

    @Test("a granted waiter cannot be removed")
    func removalAfterGrant() {
        var queue = Queue(capacity: 1, maximumQueue: 10)
        fill(&queue, with: Self.standard)
        let id = enqueue(&queue, Self.standard, "w")!
        #expect(release(&queue, tier: "standard") == "w")
        #expect(queue.remove(id) == nil)
        #expect(queue.inFlight == 1)
    }

    @Test("the queue holds at most maximumQueue waiters")
    func maximumQueue() {
        var queue = Queue(capacity: 1, maximumQueue: 3)
        fill(&queue, with: Self.standard)
        for index in 0..<3 { enqueue(&queue, Self.standard, "w\(index)") }
        #expect(queue.acquire(Self.enterprise, waiter: "late", maximumWait: nil, now: start) == .refused(.queueFull(predictedStart: nil)))
        #expect(queue.waiting == 3)
    }

    @Test("the predicted start follows the measured service time and who is ahead")
    func predictedStart() {
        var queue = Queue(capacity: 2, maximumQueue: 100)
        #expect(queue.predictedStart(for: Self.standard) == .zero)
        fill(&queue, with: Self.standard)
        // Nothing measured yet: unknown.
        #expect(queue.predictedStart(for: Self.standard) == nil)
        _ = queue.release(tier: "standard", heldFor: .seconds(2), now: start)
        #expect(queue.serviceTime == .seconds(2))
        _ = queue.acquire(Self.standard, waiter: "x", maximumWait: nil, now: start)
        // Two slots, each held about 2 s: the next one frees in about 1 s.
        #expect(queue.predictedStart(for: Self.standard) == .seconds(1))
        // Three waiting: the next slots free 1 s apart, so the fourth in line starts in about 4 s.
        for index in 0..<3 { enqueue(&queue, Self.standard, "s\(index)") }
        #expect(queue.predictedStart(for: Self.standard) == .seconds(4))
        // A higher band is ahead of the standard waiters.
        #expect(queue.predictedStart(for: Self.enterprise) == .seconds(1))
    }

    @Test("a request whose predicted start is past its longest wait is refused, not queued")
    func tooLate() {
        var queue = Queue(capacity: 1, maximumQueue: 100)
        fill(&queue, with: Self.standard)
        _ = queue.release(tier: "standard", heldFor: .seconds(4), now: start)
        fill(&queue, with: Self.standard)
        #expect(queue.acquire(Self.standard, waiter: "w", maximumWait: .seconds(3), now: start) == .refused(.tooLate(predictedStart: .seconds(4))))
        enqueue(&queue, Self.standard, "patient", maximumWait: .seconds(5))
        #expect(queue.waiting == 1)
    }

    @Test("the service time is a moving average of hold times")
    func serviceTime() {
        var queue = Queue(capacity: 1, maximumQueue: 1)
        for held in [Duration.seconds(1), .seconds(2), .seconds(2), .seconds(2)] {
            fill(&queue, with: Self.standard)
            _ = queue.release(tier: "standard", heldFor: held, now: start)
        }
        let seconds = Double(queue.serviceTime!.components.seconds) + Double(queue.serviceTime!.components.attoseconds) / 1e18
        #expect(abs(seconds - (2 - 0.8 * 0.8 * 0.8)) < 1e-9)
    }

    @Test("the README's worked example")
    func workedExample() {
        var queue = Queue(capacity: 8, maximumQueue: 256)
        let standard = Queue.Demand(tenant: "smallco", tier: "standard", band: 10, reservedShare: 0.1)
        let enterprise = Queue.Demand(tenant: "acme", tier: "enterprise", band: 100, reservedShare: 0.5)
        fill(&queue, with: standard)
        _ = queue.release(tier: "standard", heldFor: .seconds(2), now: start)
        fill(&queue, with: standard)
        for index in 0..<40 { enqueue(&queue, standard, "s\(index)", maximumWait: .seconds(10)) }
        // A new standard request would start after (40 + 1) × 2 s ÷ 8: past its 10 s wait.
        #expect(queue.predictedStart(for: standard) == .milliseconds(10_250))
        #expect(queue.acquire(standard, waiter: "late", maximumWait: .seconds(10), now: start) == .refused(.tooLate(predictedStart: .milliseconds(10_250))))
        // Enterprise holds none of its reserve: the next slot freed is its own, in 2 s ÷ 8.
        #expect(queue.predictedStart(for: enterprise) == .milliseconds(250))
        for index in 0..<10 { enqueue(&queue, enterprise, "e\(index)") }
        var held = Array(repeating: "standard", count: 8)
        var served: [String] = []
        for _ in 0..<12 {
            let tier = held.removeFirst()
            guard let waiter = release(&queue, tier: tier, heldFor: .seconds(2)) else { break }
            served.append(waiter)
            held.append(waiter.hasPrefix("e") ? "enterprise" : "standard")
        }
        // Enterprise takes the slots freed, except that standard, left with none while it
        // waits, is owed its one reserved slot.
        #expect(served.prefix(11) == ["e0", "e1", "e2", "e3", "e4", "e5", "e6", "s0", "e7", "e8", "e9"])
        #expect(served[11] == "s1")
    }

    // MARK: A tenant's place in line

    /// Releases slots (each freed by `tier`) until nobody waits; returns who got them, in order.
    private func drain(_ queue: inout Queue, tier: String = "filler") -> [String] {
        var order: [String] = []
        while queue.waiting > 0, let waiter = release(&queue, tier: tier) { order.append(waiter) }
        return order
    }

    @Test("a tenant with nobody waiting has no place in line")
    func emptyLine() {
        var queue = Queue(capacity: 1, maximumQueue: 10)
        #expect(queue.line(of: "acme") == .init(waiting: 0, oldest: nil))
        fill(&queue, with: Self.standard)
        enqueue(&queue, Self.standard, "s0")
        #expect(queue.line(of: "acme") == .init(waiting: 0, oldest: nil))
        #expect(queue.line(of: "smallco").waiting == 1)
    }

    @Test("the oldest waiter's position is where the freed slots really reach it, across bands")
    func positionAcrossBands() {
        var queue = Queue(capacity: 1, maximumQueue: 10)
        fill(&queue, with: .init(tenant: "filler", tier: "filler", band: 0))
        enqueue(&queue, Self.standard, "s0")
        enqueue(&queue, Self.standard, "s1")
        enqueue(&queue, .init(tenant: "mid", tier: "professional", band: 50), "p0")
        enqueue(&queue, Self.enterprise, "e0")
        enqueue(&queue, Self.enterprise, "e1")
        let standard = queue.line(of: "smallco")
        #expect(standard.waiting == 2)
        #expect(standard.oldest?.position == 4)
        #expect(queue.line(of: "acme").oldest?.position == 1)
        #expect(queue.line(of: "mid").oldest?.position == 3)
        // Asking changes nothing: the order is still the one predicted.
        #expect(queue.waiting == 5)
        #expect(drain(&queue) == ["e0", "e1", "p0", "s0", "s1"])
    }

    @Test("positions follow weighted fair share within a band", arguments: [[1, 1], [3, 1], [1, 2, 5]])
    func positionInFairShare(weights: [Int]) {
        var queue = Queue(capacity: 2, maximumQueue: 1_000)
        let demands = weights.enumerated().map { index, weight in
            Queue.Demand(tenant: "tenant-\(index)", tier: "standard", band: 10, weight: weight)
        }
        fill(&queue, with: demands[0])
        // Tenant 0 is already deep in line; the others arrive after it.
        for round in 0..<6 { enqueue(&queue, demands[0], "0-\(round)") }
        for round in 0..<6 {
            for (index, demand) in demands.enumerated().dropFirst() { enqueue(&queue, demand, "\(index)-\(round)") }
        }
        let predicted = demands.map { queue.line(of: $0.tenant).oldest?.position }
        let order = drain(&queue, tier: "standard")
        for index in demands.indices {
            let actual = order.firstIndex(of: "\(index)-0").map { $0 + 1 }
            #expect(predicted[index] == actual, "tenant \(index) in \(order)")
        }
    }

    @Test("a tier below its reserved share is placed ahead of higher bands")
    func positionWithReservedShare() {
        var queue = Queue(capacity: 4, maximumQueue: 100)
        let standard = Queue.Demand(tenant: "smallco", tier: "standard", band: 10, reservedShare: 0.25)
        fill(&queue, with: Self.enterprise)
        for index in 0..<10 { enqueue(&queue, Self.enterprise, "e\(index)") }
        enqueue(&queue, standard, "s0")
        enqueue(&queue, standard, "s1")
        #expect(queue.line(of: "smallco").oldest?.position == 1)
        #expect(queue.line(of: "acme").oldest?.position == 2)
        #expect(drain(&queue, tier: "enterprise").prefix(2) == ["s0", "e0"])
    }

    @Test("a reserving tier's owed slots come first, then bands and fair share, as the slots really go")
    func positionWithOwedSlotsThenBands() {
        var queue = Queue(capacity: 4, maximumQueue: 100)
        let reserving = Queue.Demand(tenant: "acme", tier: "enterprise", band: 100, reservedShare: 0.5)
        let other = Queue.Demand(tenant: "otherco", tier: "standard", band: 10)
        fill(&queue, with: Self.standard)
        for index in 0..<4 { enqueue(&queue, Self.standard, "s\(index)") }
        for index in 0..<3 { enqueue(&queue, reserving, "e\(index)") }
        for index in 0..<2 { enqueue(&queue, other, "o\(index)") }
        let predicted = ["acme", "smallco", "otherco"].map { queue.line(of: $0).oldest?.position }
        let order = drain(&queue, tier: "standard")
        #expect(order.prefix(4) == ["e0", "e1", "e2", "s0"])
        let actual = ["e0", "s0", "o0"].map { first in order.firstIndex(of: first).map { $0 + 1 } }
        #expect(predicted == actual, "\(order)")
    }

    @Test("in a pool whose slots are leased from Redis, each lease goes where the line says")
    func positionInGatedPool() {
        var queue = Queue(capacity: 2, maximumQueue: 10, gated: true)
        // No lease is held yet: every request waits for one.
        enqueue(&queue, Self.standard, "s0")
        enqueue(&queue, Self.standard, "s1")
        enqueue(&queue, Self.enterprise, "e0")
        #expect(queue.line(of: "acme").oldest?.position == 1)
        #expect(queue.line(of: "smallco").oldest?.position == 2)
        var order: [String] = []
        while let grant = queue.addLeasedSlot(now: start) { order.append(grant.waiter) }
        #expect(order == ["e0", "s0", "s1"])
    }

    @Test("the oldest waiter's predicted start is its position in slots freed at the measured rate")
    func linePredictedStart() {
        var queue = Queue(capacity: 2, maximumQueue: 100)
        fill(&queue, with: Self.enterprise)
        enqueue(&queue, Self.standard, "s0")
        // Nothing measured yet: its place is known, its start is not.
        #expect(queue.line(of: "smallco").oldest?.position == 1)
        #expect(queue.line(of: "smallco").oldest?.predictedStart == nil)
        // A slot held 2 s of two: about one slot freed a second.
        #expect(release(&queue, tier: "enterprise", heldFor: .seconds(2)) == "s0")
        for index in 0..<3 { enqueue(&queue, Self.standard, "s\(index + 1)") }
        enqueue(&queue, Self.enterprise, "e0")
        let line = queue.line(of: "smallco")
        #expect(line.waiting == 3)
        // The enterprise waiter goes first: two slots freed, about 2 s.
        #expect(line.oldest?.position == 2)
        #expect(line.oldest?.predictedStart == .seconds(2))
        #expect(line.oldest?.enqueuedAt == start)
    }

}

extension PoolQueueState.AcquireAction: Equatable where Waiter: Equatable {
    public static func == (lhs: Self, rhs: Self) -> Bool {
        switch (lhs, rhs) {
        case (.granted, .granted): true
        case (.enqueued(let a), .enqueued(let b)): a == b
        case (.refused(let a), .refused(let b)): a == b
        default: false
        }
    }
}
