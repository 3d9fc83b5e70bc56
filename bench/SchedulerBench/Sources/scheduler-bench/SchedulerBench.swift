import Foundation
import Pools
import Synchronization

/// Benchmark (not a test): what an engine pool's scheduler costs per request, through
/// EnginePool's public API only, in process (no HTTP, no engine):
///
/// - the uncontended path (a slot is free): `tryAcquire` + `release`, with
///   `--scheduling contract` (the admission queue's bookkeeping) and `fifo` (replica
///   placement only), on one thread and on two threads sharing the pool; and `await
///   acquire` + `release`, the call the proxy makes;
/// - the contended path: more tasks than slots, each holding its slot across a
///   `Task.yield()`, so that most acquisitions queue and are granted by a release
///   (enqueue, dispatch by band / reserved share / fair share, resume); against the same
///   tasks yielding with no pool, the cost of the task switches alone.
///
/// Each run is repeated `--rounds` times; the figures are medians. CPU is the process's
/// (every thread), per operation. Progress goes to stderr, figures to stdout.
@main
struct SchedulerBench {
    struct Options {
        var iterations = 2_000_000
        var rounds = 5
        var slots = 4
        var waiters = 64
        var handoffs = 200_000

        init(_ arguments: ArraySlice<String>) throws {
            var arguments = arguments
            while let name = arguments.popFirst() {
                guard let text = arguments.popFirst(), let value = Int(text), value > 0 else {
                    throw Failure("\(name) needs a positive number")
                }
                switch name {
                case "--iterations": iterations = value
                case "--rounds": rounds = value
                case "--slots": slots = value
                case "--waiters": waiters = value
                case "--handoffs": handoffs = value
                default: throw Failure("unknown option \(name)")
                }
            }
        }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// One measured round: operations, wall and process CPU time, acquisitions that queued.
    struct Round {
        var operations: Int
        var wall: Duration
        var cpu: Duration
        /// Acquisitions that waited in the queue; nil where nothing can wait.
        var queued: Int?
    }

    static let enterprise = Contract(tier: "enterprise", band: 100, reservedShare: 0.25)
    static let standard = Contract(tier: "standard", band: 10, reservedShare: 0.25)
    /// Tenant ids shaped like the ledger's (heap-allocated strings, not small ones).
    static let tenants = (0..<8).map { String(format: "tn_01JD8X3K5Q7R9T%010d", $0) }

    static func main() async {
        do {
            try await run(Options(CommandLine.arguments.dropFirst()))
        } catch {
            FileHandle.standardError.write(Data("scheduler-bench: \(error)\n".utf8))
            exit(1)
        }
    }

    static func run(_ options: Options) async throws {
        progress("scheduler-bench: \(options.iterations) acquire+release per uncontended run, \(options.handoffs) per contended run, \(options.rounds) rounds")
        var rows: [(String, [Round])] = []
        func measure(_ name: String, _ body: () async -> Round) async {
            progress("  \(name)")
            _ = await body() // warm-up
            var rounds: [Round] = []
            for _ in 0..<options.rounds { rounds.append(await body()) }
            rows.append((name, rounds))
        }

        for scheduling in [EnginePool.Scheduling.contract, .fifo] {
            await measure("tryAcquire+release  \(scheduling.rawValue)  1 thread") {
                uncontended(scheduling: scheduling, threads: 1, iterations: options.iterations)
            }
            await measure("tryAcquire+release  \(scheduling.rawValue)  2 threads") {
                uncontended(scheduling: scheduling, threads: 2, iterations: options.iterations)
            }
        }
        await measure("await acquire+release  contract  1 task") {
            await uncontendedAsync(iterations: options.iterations)
        }
        await measure("contended: \(options.waiters) tasks, \(options.slots) slots, contract") {
            await contended(slots: options.slots, tasks: options.waiters, handoffs: options.handoffs)
        }
        await measure("  same tasks, a FIFO semaphore, same wait shape") {
            await contendedSemaphore(slots: options.slots, tasks: options.waiters, handoffs: options.handoffs)
        }
        await measure("  same tasks, Task.yield only (no pool)") {
            await yieldsOnly(tasks: options.waiters, handoffs: options.handoffs)
        }

        print("")
        print("\("run".padding(toLength: 50, withPad: " ", startingAt: 0))\(pad("operations", 12))\(pad("wall ns/op", 12))\(pad("CPU ns/op", 12))\(pad("queued", 9))")
        var medians: [String: (wall: Double, cpu: Double)] = [:]
        for (name, rounds) in rows {
            let wall = median(rounds.map { nanoseconds($0.wall) / Double($0.operations) })
            let cpu = median(rounds.map { nanoseconds($0.cpu) / Double($0.operations) })
            let queued = rounds[0].queued == nil ? nil : median(rounds.map { Double($0.queued ?? 0) / Double($0.operations) })
            medians[name] = (wall, cpu)
            let queuedText = queued.map { String(format: "%.0f%%", $0 * 100) } ?? "-"
            print("\(name.padding(toLength: 50, withPad: " ", startingAt: 0))\(pad("\(rounds[0].operations)", 12))\(pad(String(format: "%.0f", wall), 12))\(pad(String(format: "%.0f", cpu), 12))\(pad(queuedText, 9))")
        }
        print("")
        if let contract = medians["tryAcquire+release  contract  1 thread"], let fifo = medians["tryAcquire+release  fifo  1 thread"] {
            print(String(format: "uncontended, 1 thread: contract %.0f ns CPU per acquire+release (%.3f us; target < 10 us), %.0f ns more than fifo",
                         contract.cpu, contract.cpu / 1000, contract.cpu - fifo.cpu))
        }
        if let contended = medians["contended: \(options.waiters) tasks, \(options.slots) slots, contract"],
           let semaphore = medians["  same tasks, a FIFO semaphore, same wait shape"],
           let yields = medians["  same tasks, Task.yield only (no pool)"] {
            print(String(format: "contended: %.0f ns CPU per acquire+release; beyond the tasks' own switching %.0f ns; beyond a FIFO semaphore that waits the same way %.0f ns",
                         contended.cpu, contended.cpu - yields.cpu, contended.cpu - semaphore.cpu))
        }
        print("rounds: \(options.rounds) (medians); cooperative threads: \(ProcessInfo.processInfo.activeProcessorCount) cores")
    }

    // MARK: Runs

    static func pool(slots: Int, scheduling: EnginePool.Scheduling) -> EnginePool {
        EnginePool(
            name: "bench", replicas: [EnginePool.Replica(baseURL: "http://127.0.0.1:1/v1", slots: slots)],
            maximumQueue: 100_000, scheduling: scheduling
        )
    }

    /// `threads` threads sharing one pool, `iterations` acquire+release among them. The
    /// pool has a slot per thread, so every tryAcquire succeeds.
    static func uncontended(scheduling: EnginePool.Scheduling, threads: Int, iterations: Int) -> Round {
        let pool = pool(slots: max(8, threads), scheduling: scheduling)
        let perThread = iterations / threads
        let ready = Atomic<Int>(0)
        let failures = Atomic<Int>(0)
        let group = DispatchGroup()
        let (wall, cpu) = timed {
            for index in 0..<threads {
                group.enter()
                let thread = Thread {
                    let tenant = tenants[index % tenants.count]
                    ready.add(1, ordering: .acquiringAndReleasing)
                    while ready.load(ordering: .acquiring) < threads {}
                    for _ in 0..<perThread {
                        // As the proxy does: a Demand per request, from the tenant's contract.
                        guard let lease = pool.tryAcquire(EnginePool.Demand(tenant: tenant, contract: enterprise)) else {
                            failures.add(1, ordering: .relaxed)
                            continue
                        }
                        pool.release(lease)
                    }
                    group.leave()
                }
                thread.start()
            }
            group.wait()
        }
        precondition(failures.load(ordering: .relaxed) == 0, "an uncontended tryAcquire found no slot")
        precondition(pool.snapshot.inFlight == 0)
        return Round(operations: perThread * threads, wall: wall, cpu: cpu)
    }

    /// The proxy's call, `await pool.acquire(demand)`, when a slot is free.
    static func uncontendedAsync(iterations: Int) async -> Round {
        let pool = pool(slots: 8, scheduling: .contract)
        let tenant = tenants[0]
        let start = now()
        for _ in 0..<iterations {
            guard case .leased(let lease) = await pool.acquire(EnginePool.Demand(tenant: tenant, contract: enterprise)) else {
                preconditionFailure("an uncontended acquire got no slot")
            }
            pool.release(lease)
        }
        let (wall, cpu) = since(start)
        return Round(operations: iterations, wall: wall, cpu: cpu)
    }

    /// `tasks` tasks (8 tenants, half enterprise, half standard) on `slots` slots, each
    /// holding its slot across a `Task.yield()`: most acquisitions wait in the queue and
    /// are granted by another task's release.
    static func contended(slots: Int, tasks: Int, handoffs: Int) async -> Round {
        let pool = pool(slots: slots, scheduling: .contract)
        let perTask = handoffs / tasks
        let start = now()
        let queued = await withTaskGroup(of: Int.self) { group in
            for index in 0..<tasks {
                group.addTask {
                    let tenant = tenants[index % tenants.count]
                    let contract = index % 2 == 0 ? enterprise : standard
                    var queued = 0
                    for _ in 0..<perTask {
                        guard case .leased(let lease) = await pool.acquire(EnginePool.Demand(tenant: tenant, contract: contract)) else {
                            preconditionFailure("a contended acquire was refused")
                        }
                        if lease.waited > .zero { queued += 1 }
                        await Task.yield()
                        pool.release(lease)
                    }
                    return queued
                }
            }
            return await group.reduce(0, +)
        }
        let (wall, cpu) = since(start)
        precondition(pool.snapshot.inFlight == 0 && pool.snapshot.waiting == 0)
        return Round(operations: perTask * tasks, wall: wall, cpu: cpu, queued: queued)
    }

    /// The tasks of `contended` on a plain FIFO semaphore whose waiters wait the way
    /// EnginePool's do (a task group, a cancellation handler, a checked continuation):
    /// what the waiting costs without the scheduling.
    static func contendedSemaphore(slots: Int, tasks: Int, handoffs: Int) async -> Round {
        let semaphore = FIFOSemaphore(slots: slots)
        let perTask = handoffs / tasks
        let start = now()
        let queued = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<tasks {
                group.addTask {
                    var queued = 0
                    for _ in 0..<perTask {
                        if await semaphore.acquire() { queued += 1 }
                        await Task.yield()
                        semaphore.release()
                    }
                    return queued
                }
            }
            return await group.reduce(0, +)
        }
        let (wall, cpu) = since(start)
        return Round(operations: perTask * tasks, wall: wall, cpu: cpu, queued: queued)
    }

    /// The tasks of `contended` with the pool taken out: what their own switching costs.
    static func yieldsOnly(tasks: Int, handoffs: Int) async -> Round {
        let perTask = handoffs / tasks
        let start = now()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<tasks {
                group.addTask {
                    for _ in 0..<perTask { await Task.yield() }
                }
            }
        }
        let (wall, cpu) = since(start)
        return Round(operations: perTask * tasks, wall: wall, cpu: cpu)
    }

    final class FIFOSemaphore: Sendable {
        typealias Waiter = CheckedContinuation<Bool, Never>
        struct State: ~Copyable {
            var free: Int
            var waiters: [Waiter] = []
            var head = 0
        }

        let state: Mutex<State>

        init(slots: Int) { state = Mutex(State(free: slots)) }

        /// Whether the caller waited.
        func acquire() async -> Bool {
            let took = state.withLock { state -> Bool in
                guard state.free > 0 else { return false }
                state.free -= 1
                return true
            }
            if took { return false }
            return await withTaskGroup(of: Bool.self) { group in
                group.addTask {
                    await withTaskCancellationHandler {
                        await withCheckedContinuation { (continuation: Waiter) in
                            let immediate = self.state.withLock { state -> Bool in
                                if state.free > 0 {
                                    state.free -= 1
                                    return true
                                }
                                state.waiters.append(continuation)
                                return false
                            }
                            if immediate { continuation.resume(returning: true) }
                        }
                    } onCancel: {}
                }
                var outcome = true
                for await result in group {
                    outcome = result
                    break
                }
                group.cancelAll()
                return outcome
            }
        }

        func release() {
            let next = state.withLock { state -> Waiter? in
                guard state.head < state.waiters.count else {
                    state.free += 1
                    return nil
                }
                let waiter = state.waiters[state.head]
                state.head += 1
                if state.head > 1024, state.head * 2 > state.waiters.count {
                    state.waiters.removeFirst(state.head)
                    state.head = 0
                }
                return waiter
            }
            next?.resume(returning: true)
        }
    }

    // MARK: Clocks and figures

    static func cpuTime() -> Duration {
        var time = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
        return .seconds(time.tv_sec) + .nanoseconds(time.tv_nsec)
    }

    static func now() -> (ContinuousClock.Instant, Duration) { (.now, cpuTime()) }

    static func since(_ start: (ContinuousClock.Instant, Duration)) -> (Duration, Duration) {
        (ContinuousClock.now - start.0, cpuTime() - start.1)
    }

    static func timed(_ body: () -> Void) -> (Duration, Duration) {
        let start = now()
        body()
        return since(start)
    }

    static func nanoseconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) * 1e9 + Double(attoseconds) / 1e9
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    static func pad(_ text: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - text.count)) + text
    }

    static func progress(_ message: String) {
        FileHandle.standardError.write(Data("\(message)\n".utf8))
    }
}
