/// The command line of `redis-bench`.
struct BenchOptions: Sendable {
    var host = "127.0.0.1"
    var port = 6379
    /// Calls per sequential run, and in all per concurrent run.
    var calls = 20_000
    /// Rounds of every measurement; figures are medians across rounds.
    var rounds = 5
    /// Concurrent callers for the throughput runs.
    var concurrency = [1, 4, 16, 64]
    /// `RedisClient`'s connections and threads (the proxy uses the default, 4).
    var poolSize = 4

    static let usage = """
        usage: redis-bench --port PORT [--host HOST] [--calls N] [--rounds N]
                           [--concurrency 1,4,16,64] [--pool-size N]
        Times RedisAdmission.admit + settle, and an EVALSHA round trip through RedisClient
        (blocking hiredis on a thread pool) and through a SwiftNIO channel prototype, against
        a redis-server that nothing else uses (it runs SCRIPT LOAD and CONFIG RESETSTAT).
        """

    init(_ arguments: some Sequence<String>) throws {
        var iterator = arguments.makeIterator()
        while let name = iterator.next() {
            if name == "--help" || name == "-h" { throw BenchError(Self.usage) }
            guard let value = iterator.next() else { throw BenchError("\(name) needs a value\n\(Self.usage)") }
            switch name {
            case "--host": host = value
            case "--port": port = try Self.number(value, name)
            case "--calls": calls = try Self.number(value, name)
            case "--rounds": rounds = try Self.number(value, name)
            case "--pool-size": poolSize = try Self.number(value, name)
            case "--concurrency":
                concurrency = try value.split(separator: ",").map { try Self.number(String($0), name) }
            default: throw BenchError("unknown option \(name)\n\(Self.usage)")
            }
        }
    }

    private static func number(_ text: String, _ name: String) throws -> Int {
        guard let value = Int(text), value > 0 else { throw BenchError("\(name) takes a positive number, not '\(text)'") }
        return value
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}
