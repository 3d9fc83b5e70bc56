/// The replica placement of an engine pool: which replica a granted slot runs on.
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
