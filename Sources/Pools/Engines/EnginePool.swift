import Synchronization

/// Interchangeable replicas of a self-hosted engine. Places each request on the replica
/// with the most free slots, and steps around replicas that recently refused connections.
public final class EnginePool: Sendable {
    /// One placement of a request on a replica, to be released when the request ends.
    public struct Lease: Sendable, Equatable {
        public var replica: Int
        public var baseURL: String
    }

    public struct Replica: Sendable, Equatable {
        public var baseURL: String
        public var slots: Int

        public init(baseURL: String, slots: Int) {
            self.baseURL = baseURL
            self.slots = max(1, slots)
        }
    }

    public let name: String
    public let replicas: [Replica]
    private let state: Mutex<EnginePoolState>

    public init(name: String, replicas: [Replica]) {
        precondition(!replicas.isEmpty, "an engine pool needs at least one replica")
        self.name = name
        self.replicas = replicas
        self.state = Mutex(EnginePoolState(slots: replicas.map(\.slots)))
    }

    /// Places a request. Always succeeds: when every replica is full the request goes to
    /// the least loaded one and waits in that engine's own queue.
    public func acquire(now: ContinuousClock.Instant = .now) -> Lease {
        let index = state.withLock { $0.acquire(now: now) }
        return Lease(replica: index, baseURL: replicas[index].baseURL)
    }

    public func release(_ lease: Lease) {
        state.withLock { $0.release(lease.replica) }
    }

    /// Records that a replica could not be reached; it is avoided for `backoff`.
    public func markUnreachable(_ lease: Lease, backoff: Duration = .seconds(5), now: ContinuousClock.Instant = .now) {
        state.withLock { $0.markUnreachable(lease.replica, until: now + backoff) }
    }

    /// Requests in flight per replica.
    public var inFlight: [Int] {
        state.withLock { $0.inFlight }
    }
}

/// The placement state machine of an engine pool.
struct EnginePoolState: Sendable {
    let slots: [Int]
    var inFlight: [Int]
    var avoidUntil: [ContinuousClock.Instant?]
    private var nextTieBreak = 0

    init(slots: [Int]) {
        self.slots = slots
        self.inFlight = Array(repeating: 0, count: slots.count)
        self.avoidUntil = Array(repeating: nil, count: slots.count)
    }

    /// Picks the reachable replica with the most free slots (ties rotate); if all are
    /// avoided, the one whose backoff ends first.
    mutating func acquire(now: ContinuousClock.Instant) -> Int {
        var best: Int?
        var bestFree = Int.min
        let count = slots.count
        for step in 0..<count {
            let index = (nextTieBreak + step) % count
            if let until = avoidUntil[index], until > now { continue }
            let free = slots[index] - inFlight[index]
            if free > bestFree {
                best = index
                bestFree = free
            }
        }
        let chosen = best ?? avoidUntil.indices.min { (avoidUntil[$0] ?? now) < (avoidUntil[$1] ?? now) } ?? 0
        nextTieBreak = (chosen + 1) % count
        inFlight[chosen] += 1
        return chosen
    }

    mutating func release(_ index: Int) {
        inFlight[index] = max(0, inFlight[index] - 1)
    }

    mutating func markUnreachable(_ index: Int, until: ContinuousClock.Instant) {
        avoidUntil[index] = until
    }
}
