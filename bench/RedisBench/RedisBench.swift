import Foundation
import NIOCore
import NIOPosix
import Pools

/// Benchmark (not a test): what tenant admission in Redis costs per request, and whether
/// Redis calls are faster as blocking hiredis calls on a thread pool (`RedisClient`) or
/// over a non-blocking SwiftNIO channel (``NIORedisConnection``, a prototype).
///
/// Progress goes to stderr, figures to stdout. `bench/redis.sh` builds it in release and
/// runs it against a redis-server of its own.
@main
struct RedisBench {
    /// An `EVALSHA` with the admit script's shape (3 keys, 9 arguments, an array of 11
    /// integers back) and none of its work: the round trip through each client alone.
    static let probe = RedisScript("return {1, 0, 0, 0, 0, -1, -1, -1, -1, -1, -1}")
    /// Limits so large that admission runs in full on every call and never refuses.
    static let limits = TenantLimits(requestsPerMinute: 1_000_000_000, tokensPerMinute: 10_000_000_000, concurrentRequests: 100_000)
    static let request = AdmissionRequest(promptTokens: 20, maximumOutputTokens: 16)

    static func main() async {
        do {
            try await run(BenchOptions(CommandLine.arguments.dropFirst()))
        } catch {
            FileHandle.standardError.write(Data("redis-bench: \(error)\n".utf8))
            exit(1)
        }
    }

    static func run(_ options: BenchOptions) async throws {
        let client = RedisClient(configuration: RedisConfiguration(host: options.host, port: options.port, poolSize: options.poolSize))
        let connection = try await NIORedisConnection.connect(
            host: options.host, port: options.port, group: MultiThreadedEventLoopGroup.singleton
        )
        let admission = RedisAdmission(client: client)
        let version = try await serverVersion(client)
        _ = try await client.command(["SCRIPT", "LOAD", probe.source]).checked()

        let keys = RedisAdmission.Keys(tenantID: "bench-probe")
        let probeKeys = [keys.buckets, keys.inflight, keys.reserved]
        let probeArguments = ["1", "36", "1000000000", "10000000000", "100000", "600000", "1000", "120000", ""]
        let threadPool = Workload(name: "EVALSHA, RedisClient (thread pool)") {
            _ = try await client.evalSHA(script: probe, keys: probeKeys, arguments: probeArguments).checked()
        }
        let nio = Workload(name: "EVALSHA, NIO channel prototype") {
            _ = try await connection.evalSHA(script: probe, keys: probeKeys, arguments: probeArguments).checked()
        }
        let admit = Workload(name: "RedisAdmission.admit + settle") {
            let decision = try await admission.admit(tenantID: "bench", limits: limits, request: request)
            guard let reservation = decision.reservation else { throw BenchError("admission refused: \(decision)") }
            admission.settle(reservation, actualTokens: 30)
        }

        let outcome: Result<BenchReport, any Error> = await withTaskGroup(of: Void.self) { group in
            group.addTask { await admission.run() }
            defer { group.cancelAll() }
            let outcome: Result<BenchReport, any Error>
            do {
                outcome = .success(try await measure([threadPool, nio, admit], options: options, client: client, admission: admission))
            } catch {
                outcome = .failure(error)
            }
            await admission.shutdown()
            return outcome
        }
        let statistics = admission.statistics
        try await client.shutdown()
        try await connection.close()
        let report = try outcome.get()

        print("""
            redis-bench: Redis \(version) at \(options.host):\(options.port), \(System.coreCount) cores shared with Redis
            RedisClient: hiredis blocking calls on \(options.poolSize) threads and connections (the proxy's default is 4)
            NIO prototype: one connection on MultiThreadedEventLoopGroup.singleton, pipelined
            figures: median of \(options.rounds) rounds [lowest–highest]; \(options.calls) calls per run
            the EVALSHA rows run a script with the admit script's keys, arguments and reply shape that does nothing;
            'Redis µs/call' is Redis's own EVALSHA time per call (INFO commandstats): for admission both scripts

            """)
        print(report.render(baseline: threadPool.name, candidate: nio.name))
        print("""

            admission: \(statistics.settled) settled, \(statistics.unmatched) unmatched, \(statistics.dropped) dropped, \
            \(statistics.pending) pending at the end
            """)
    }

    /// Warms every workload up, then runs the rounds, rotating the workloads' order each
    /// round so that none always runs first (or on a warmer machine).
    static func measure(_ workloads: [Workload], options: BenchOptions, client: RedisClient, admission: RedisAdmission) async throws -> BenchReport {
        var report = BenchReport(names: workloads.map(\.name), concurrency: options.concurrency)
        progress("warming up")
        for workload in workloads {
            _ = try await workload.sequential(calls: min(options.calls, 2000))
            _ = try await workload.concurrent(tasks: options.concurrency.max() ?? 1, calls: min(options.calls, 2000))
        }
        await admission.flush()
        for round in 1...options.rounds {
            let shift = (round - 1) % workloads.count
            let order = Array(workloads[shift...] + workloads[..<shift])
            for workload in order {
                _ = try await client.command(["CONFIG", "RESETSTAT"]).checked()
                let figures = try await workload.sequential(calls: options.calls)
                await admission.flush()
                let serverTime = try await evalSHAMicroseconds(client)
                let perCall = Double(serverTime) / Double(figures.calls)
                report.recordSequential(workload.name, figures, serverMicroseconds: perCall)
                progress("round \(round)/\(options.rounds) sequential  \(workload.name): p50 \(figures.p50 / 1000) µs,"
                    + " p99 \(figures.p99 / 1000) µs, Redis \(Int(perCall)) µs/call")
            }
            let split = try await scriptMicroseconds(admission: admission, client: client, calls: min(options.calls, 2000))
            report.scriptMicroseconds.append(split)
            progress("round \(round)/\(options.rounds) Redis time per script: admit \(Int(split.admit)) µs, settle \(Int(split.settle)) µs")
            for tasks in options.concurrency {
                for workload in order {
                    let figures = try await workload.concurrent(tasks: tasks, calls: options.calls)
                    await admission.flush()
                    report.recordConcurrent(workload.name, tasks: tasks, figures)
                    progress("round \(round)/\(options.rounds) \(tasks) callers  \(workload.name): \(Int(figures.callsPerSecond)) calls/s")
                }
            }
        }
        return report
    }

    /// Redis's own time per admit script and per settle script: `calls` admissions first,
    /// then their settlements (pipelined, as in production).
    static func scriptMicroseconds(admission: RedisAdmission, client: RedisClient, calls: Int) async throws -> (admit: Double, settle: Double) {
        _ = try await client.command(["CONFIG", "RESETSTAT"]).checked()
        var reservations: [Reservation] = []
        reservations.reserveCapacity(calls)
        for _ in 0..<calls {
            let decision = try await admission.admit(tenantID: "bench-split", limits: limits, request: request)
            guard let reservation = decision.reservation else { throw BenchError("admission refused: \(decision)") }
            reservations.append(reservation)
        }
        let admit = try await evalSHAMicroseconds(client)
        _ = try await client.command(["CONFIG", "RESETSTAT"]).checked()
        for reservation in reservations {
            admission.settle(reservation, actualTokens: 30)
        }
        await admission.flush()
        let settle = try await evalSHAMicroseconds(client)
        return (Double(admit) / Double(calls), Double(settle) / Double(calls))
    }

    // MARK: Redis

    static func serverVersion(_ client: RedisClient) async throws -> String {
        let info = try await client.command(["INFO", "server"]).checked().string ?? ""
        return field("redis_version", in: info) ?? "?"
    }

    /// Microseconds Redis spent in `EVALSHA` since the last `CONFIG RESETSTAT`.
    static func evalSHAMicroseconds(_ client: RedisClient) async throws -> Int {
        let info = try await client.command(["INFO", "commandstats"]).checked().string ?? ""
        // cmdstat_evalsha:calls=20000,usec=123456,usec_per_call=6.17,...
        guard let stats = field("cmdstat_evalsha", in: info) else { return 0 }
        let usec = stats.split(separator: ",").first { $0.hasPrefix("usec=") }
        return usec.flatMap { Int($0.dropFirst("usec=".count)) } ?? 0
    }

    private static func field(_ name: String, in info: String) -> String? {
        info.split(whereSeparator: \.isNewline)
            .first { $0.hasPrefix(name + ":") }
            .map { String($0.dropFirst(name.count + 1)) }
    }

    private static func progress(_ line: String) {
        FileHandle.standardError.write(Data("    \(line)\n".utf8))
    }
}
