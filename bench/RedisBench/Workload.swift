/// One kind of call to Redis, timed call by call: by one caller in a loop, or by several
/// concurrent callers.
struct Workload: Sendable {
    var name: String
    var call: @Sendable () async throws -> Void

    /// `calls` calls one after the other.
    func sequential(calls: Int) async throws -> RunFigures {
        let clock = ContinuousClock()
        let start = clock.now
        let latencies = try await timeCalls(calls, clock: clock)
        return RunFigures(latencies: latencies, elapsed: start.duration(to: clock.now))
    }

    /// `calls` calls in all, made by `tasks` concurrent callers each calling in a loop.
    func concurrent(tasks: Int, calls: Int) async throws -> RunFigures {
        let perTask = max(1, calls / tasks)
        let clock = ContinuousClock()
        let start = clock.now
        let latencies = try await withThrowingTaskGroup(of: [Int].self) { group in
            for _ in 0..<tasks {
                group.addTask { try await timeCalls(perTask, clock: clock) }
            }
            var all: [Int] = []
            all.reserveCapacity(perTask * tasks)
            for try await part in group { all += part }
            return all
        }
        return RunFigures(latencies: latencies, elapsed: start.duration(to: clock.now))
    }

    private func timeCalls(_ calls: Int, clock: ContinuousClock) async throws -> [Int] {
        var latencies: [Int] = []
        latencies.reserveCapacity(calls)
        for _ in 0..<calls {
            let started = clock.now
            try await call()
            latencies.append(Self.nanoseconds(started.duration(to: clock.now)))
        }
        return latencies
    }

    private static func nanoseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds) * 1_000_000_000 + Int(duration.components.attoseconds / 1_000_000_000)
    }
}
