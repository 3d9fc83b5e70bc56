/// Latency percentiles and throughput of one measured run.
struct RunFigures: Sendable {
    /// Per-call latencies, in nanoseconds.
    var p50: Int
    var p90: Int
    var p99: Int
    var calls: Int
    var callsPerSecond: Double

    /// - Parameters:
    ///   - latencies: every call's latency, in nanoseconds.
    ///   - elapsed: the run's wall-clock time.
    init(latencies: [Int], elapsed: Duration) {
        let sorted = latencies.sorted()
        func percentile(_ fraction: Double) -> Int {
            guard !sorted.isEmpty else { return 0 }
            let rank = Int((Double(sorted.count) * fraction).rounded(.up))
            return sorted[min(sorted.count, max(1, rank)) - 1]
        }
        p50 = percentile(0.50)
        p90 = percentile(0.90)
        p99 = percentile(0.99)
        calls = sorted.count
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        callsPerSecond = seconds > 0 ? Double(sorted.count) / seconds : 0
    }
}

/// What repeated rounds of one measurement give: the median and range of each figure.
struct RoundsSummary {
    var runs: [RunFigures]

    /// (median, lowest, highest) of a figure across rounds.
    func spread<Value: Comparable & Numeric>(_ figure: (RunFigures) -> Value) -> (median: Value, low: Value, high: Value) {
        let values = runs.map(figure).sorted()
        return (median(values), values.first ?? 0, values.last ?? 0)
    }
}

/// The median of sorted values: the middle one, or the lower of the middle two (a
/// measured value, never an average of two).
func median<Value: Numeric>(_ sorted: [Value]) -> Value {
    guard !sorted.isEmpty else { return 0 }
    return sorted[(sorted.count - 1) / 2]
}
