import Billing
import Foundation
import Logging
import Proxy

/// `ledger-bench`: how fast the ledger takes usage events, and how fast the allocation
/// report reads them, on a real SQLite file (WAL, as the proxy opens it).
///
///   ledger-bench --db PATH [--events N] [--batch N] [--report-events N]
///
/// Figures go to stdout, progress to stderr.
@main
struct LedgerBench {
    static func main() async throws {
        var options = Options()
        var arguments = CommandLine.arguments.dropFirst().makeIterator()
        while let name = arguments.next() {
            guard let value = arguments.next() else { fail("\(name) needs a value") }
            switch name {
            case "--db": options.path = value
            case "--events": options.events = number(value, name)
            case "--batch": options.batch = number(value, name)
            case "--report-events": options.reportEvents = number(value, name)
            default: fail("unknown option \(name)")
            }
        }
        guard !options.path.isEmpty else { fail("usage: ledger-bench --db PATH [--events N] [--batch N] [--report-events N]") }
        try await run(options)
    }

    struct Options {
        var path = ""
        /// Events of the ingest runs.
        var events = 200_000
        /// Events per transaction: the meter's default batch.
        var batch = 20_000
        /// Events in the ledger the report runs read.
        var reportEvents = 1_000_000
    }

    static func run(_ options: Options) async throws {
        let start = Date(timeIntervalSince1970: 1_790_000_000)
        var generator = Generator(seed: 7)

        // 1. Ingest: Ledger.record in batches (rollups and budget totals included), at the
        //    meter's default batch and at a quarter of it. The writer's batch is whatever
        //    arrived in 250 ms: 20,000 events at 80,000 a second.
        // A busy hour's traffic: what arrives at 100,000 events a second spans seconds, not days.
        let events = (0..<options.events).map { event($0, of: options.events, over: 3_600, start: start, using: &generator) }
        let clock = ContinuousClock()
        for (run, batchSize) in [options.batch / 4, options.batch].enumerated() {
            let ledger = try open(options.path + ".ingest\(run)")
            let cpuBefore = processCPUSeconds()
            let ingest = try await clock.measure {
                for batch in stride(from: 0, to: events.count, by: batchSize) {
                    try await ledger.record(Array(events[batch..<min(batch + batchSize, events.count)]))
                }
            }
            let ingestCPU = processCPUSeconds() - cpuBefore
            print(
                "ledger ingest: \(options.events) events in batches of \(batchSize): \(format(ingest)) wall = "
                    + "\(Int(Double(options.events) / ingest.seconds)) events/s; "
                    + String(format: "%.3f s CPU = %d events per CPU-second", ingestCPU, Int(Double(options.events) / ingestCPU))
            )
        }

        // 2. The spool's side: encoding an event for the spool or the stream, and reading it
        //    back. One thread: its CPU time is the cost, whatever else the machine does.
        let sample = min(100_000, events.count)
        let encode = threadCPUSeconds {
            var bytes = 0
            for event in events.prefix(sample) { bytes &+= event.wireJSON().count }
            precondition(bytes > 0)
        }
        let lines = events.prefix(sample).map { $0.wireJSON() }
        let decode = try threadCPUSeconds {
            for line in lines { _ = try UsageEvent(wireJSON: line) }
        }
        print(String(
            format: "wire JSON (CPU time): encode %.2f µs/event (request path), decode %.2f µs/event (writer, meter)",
            encode * 1e6 / Double(sample), decode * 1e6 / Double(sample)
        ))

        // 3. What the spool adds to a request: UsageWriter.record with the spool (encode,
        //    one write(2) under the writer's lock) and without, in CPU time of the caller.
        let logger = Logger(label: "ledger-bench")
        let spoolRoot = options.path + ".spool"
        try? FileManager.default.removeItem(atPath: spoolRoot)
        for spooled in [false, true] {
            let sink = LedgerSink(ledger: try open(options.path + ".record"))
            let writer = UsageWriter(sink: sink, spool: spooled ? try UsageSpool(root: spoolRoot) : nil, logger: logger)
            let cpu = threadCPUSeconds {
                for event in events.prefix(sample) { writer.record(event) }
            }
            print(String(
                format: "UsageWriter.record (CPU time of the request's thread), spool %@: %.2f µs/event",
                spooled ? "on" : "off", cpu * 1e6 / Double(sample)
            ))
        }
        try? FileManager.default.removeItem(atPath: spoolRoot)

        try await reportRuns(options, start: start, using: &generator)
    }

    /// A fresh database opened as the proxy and the meter open theirs.
    static func open(_ path: String) throws -> Ledger {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        return try SwitchyardDatabase(path: path).ledger
    }

    /// A plausible event: 50 tenants with 4 keys each (one user per key); each key is an
    /// application that sends nine requests in ten to its own model (of 6) and the rest to
    /// another; a third of the requests go to an engine pool, the others to OpenAI on one
    /// of 3 provider keys; 1 in 20 is refused (429).
    /// - Parameter span: the seconds `count` events cover, in arrival order.
    static func event(
        _ index: Int, of count: Int, over span: Double = 30 * 86_400, start: Date, using generator: inout Generator
    ) -> UsageEvent {
        let tenant = Int(generator.next() % 50)
        let key = Int(generator.next() % 4)
        let model = generator.next() % 10 == 0 ? Int(generator.next() % 6) : (tenant + key) % 6
        let onEngine = generator.next() % 3 == 0
        return UsageEvent(
            requestID: "req-\(index)",
            tenantID: "ten_\(tenant)",
            tenantKeyID: "key_\(tenant)_\(key)",
            model: "model-\(model)",
            deployment: onEngine ? "engine-a" : "openai-gpt-4o",
            provider: onEngine ? "engine" : "openai",
            providerKeyID: onEngine ? nil : "pk_\(generator.next() % 3)",
            promptTokens: Int(generator.next() % 4_000),
            completionTokens: Int(generator.next() % 1_000),
            costMicros: Int64(generator.next() % 50_000),
            status: generator.next() % 20 == 0 ? 429 : 200,
            // In arrival order, as a ledger receives them.
            startedAt: start.addingTimeInterval(Double(index) * span / Double(count)),
            durationMilliseconds: Int(generator.next() % 5_000),
            streamed: generator.next() % 2 == 0,
            enginePool: onEngine ? "gpu-a" : nil,
            slotMilliseconds: onEngine ? Int(generator.next() % 5_000) : nil,
            userID: "usr_\(tenant)_\(key)"
        )
    }

    /// CPU seconds (user + system) of the whole process so far: every thread, GRDB's writer included.
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    /// The CPU seconds the calling thread spends in `body`.
    static func threadCPUSeconds(_ body: () throws -> Void) rethrows -> Double {
        func now() -> Double {
            var time = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
            return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
        }
        let start = now()
        try body()
        return now() - start
    }

    static func format(_ duration: Duration) -> String {
        String(format: "%.3f s", duration.seconds)
    }

    static func number(_ text: String, _ name: String) -> Int {
        guard let value = Int(text), value > 0 else { fail("\(name) takes a positive number, not '\(text)'") }
        return value
    }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("ledger-bench: \(message)\n".utf8))
        exit(2)
    }
}

/// SplitMix64: the same events every run.
struct Generator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
