import Foundation

/// The figures of every round, and the tables printed from them: medians across rounds,
/// with the lowest and highest where the spread matters.
struct BenchReport {
    /// Workload names in the order of the tables.
    let names: [String]
    let concurrency: [Int]
    var sequential: [String: [RunFigures]] = [:]
    /// Redis's own time (`INFO commandstats`, `EVALSHA` usec) per call, each round.
    var serverMicroseconds: [String: [Double]] = [:]
    var concurrent: [String: [Int: [RunFigures]]] = [:]
    /// Redis's own time per admit script and per settle script, each round.
    var scriptMicroseconds: [(admit: Double, settle: Double)] = []

    init(names: [String], concurrency: [Int]) {
        self.names = names
        self.concurrency = concurrency
    }

    mutating func recordSequential(_ name: String, _ figures: RunFigures, serverMicroseconds: Double) {
        sequential[name, default: []].append(figures)
        self.serverMicroseconds[name, default: []].append(serverMicroseconds)
    }

    mutating func recordConcurrent(_ name: String, tasks: Int, _ figures: RunFigures) {
        concurrent[name, default: [:]][tasks, default: []].append(figures)
    }

    // MARK: Printing

    /// The tables, then how `candidate` compares with `baseline`.
    func render(baseline: String, candidate: String) -> String {
        let width = (names.map(\.count).max() ?? 0) + 2
        var lines: [String] = []
        lines.append("sequential, one caller".padded(width)
            + "p50 µs [low–high]".leftPadded(22) + "p90 µs".leftPadded(9) + "p99 µs [low–high]".leftPadded(22)
            + "calls/s".leftPadded(10) + "Redis µs/call".leftPadded(15))
        for name in names {
            let summary = RoundsSummary(runs: sequential[name] ?? [])
            let server = median((serverMicroseconds[name] ?? []).sorted())
            lines.append(name.padded(width)
                + Self.range(summary.spread(\.p50)).leftPadded(22)
                + Self.micro(summary.spread(\.p90).median).leftPadded(9)
                + Self.range(summary.spread(\.p99)).leftPadded(22)
                + String(format: "%.0f", summary.spread(\.callsPerSecond).median).leftPadded(10)
                + String(format: "%.1f", server).leftPadded(15))
        }
        let admit = scriptMicroseconds.map(\.admit).sorted(), settle = scriptMicroseconds.map(\.settle).sorted()
        lines.append(String(
            format: "Redis time per script (INFO commandstats): admit %.1f µs [%.1f–%.1f], settle %.1f µs [%.1f–%.1f]",
            median(admit), admit.first ?? 0, admit.last ?? 0, median(settle), settle.first ?? 0, settle.last ?? 0
        ))
        lines.append("")
        lines.append("concurrent callers".padded(width) + "tasks".leftPadded(6)
            + "calls/s [low–high]".leftPadded(24) + "p50 µs".leftPadded(10) + "p99 µs".leftPadded(10))
        for name in names {
            for tasks in concurrency {
                let summary = RoundsSummary(runs: concurrent[name]?[tasks] ?? [])
                let throughput = summary.spread(\.callsPerSecond)
                lines.append(name.padded(width) + String(tasks).leftPadded(6)
                    + String(format: "%.0f [%.0f–%.0f]", throughput.median, throughput.low, throughput.high).leftPadded(24)
                    + Self.micro(summary.spread(\.p50).median).leftPadded(10)
                    + Self.micro(summary.spread(\.p99).median).leftPadded(10))
            }
        }
        lines.append("")
        lines.append(contentsOf: comparison(baseline: baseline, candidate: candidate))
        return lines.joined(separator: "\n")
    }

    private func comparison(baseline: String, candidate: String) -> [String] {
        func seq(_ name: String, _ figure: KeyPath<RunFigures, Int>) -> Int {
            RoundsSummary(runs: sequential[name] ?? []).spread { $0[keyPath: figure] }.median
        }
        var lines: [String] = []
        for (label, figure) in [("p50", \RunFigures.p50), ("p99", \RunFigures.p99)] {
            let old = seq(baseline, figure), new = seq(candidate, figure)
            lines.append("round trip \(label), one caller: thread pool \(Self.micro(old)) µs, NIO \(Self.micro(new)) µs"
                + " (NIO \(Self.change(from: Double(old), to: Double(new))))")
        }
        for tasks in concurrency {
            let old = RoundsSummary(runs: concurrent[baseline]?[tasks] ?? []).spread(\.callsPerSecond).median
            let new = RoundsSummary(runs: concurrent[candidate]?[tasks] ?? []).spread(\.callsPerSecond).median
            lines.append("throughput, \(tasks) concurrent callers: thread pool \(String(format: "%.0f", old)) calls/s,"
                + " NIO \(String(format: "%.0f", new)) calls/s (NIO \(Self.change(from: old, to: new)))")
        }
        return lines
    }

    private static func micro(_ nanoseconds: Int) -> String {
        String(format: "%.1f", Double(nanoseconds) / 1000)
    }

    private static func range(_ spread: (median: Int, low: Int, high: Int)) -> String {
        "\(micro(spread.median)) [\(micro(spread.low))–\(micro(spread.high))]"
    }

    private static func change(from old: Double, to new: Double) -> String {
        guard old > 0 else { return "n/a" }
        let percent = (new - old) / old * 100
        return (percent >= 0 ? "+" : "") + String(format: "%.0f%%", percent)
    }
}

extension String {
    fileprivate func padded(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }

    fileprivate func leftPadded(_ width: Int) -> String {
        count >= width ? " " + self : String(repeating: " ", count: width - count) + self
    }
}
