import Billing
import Foundation

extension LedgerBench {
    /// The allocation report over a ledger of `options.reportEvents` events spread over
    /// 30 days: several groupings, each read in full (every page), plus one with the GPU
    /// pool's occupancy cost.
    static func reportRuns(_ options: Options, start: Date, using generator: inout Generator) async throws {
        let ledger = try open(options.path + ".report")
        FileHandle.standardError.write(Data("==> filling a ledger with \(options.reportEvents) events\n".utf8))
        var made = 0
        while made < options.reportEvents {
            let count = min(options.batch * 4, options.reportEvents - made)
            try await ledger.record((made..<(made + count)).map {
                event($0, of: options.reportEvents, start: start, using: &generator)
            })
            made += count
        }
        // Whole UTC days, as a monthly report asks (and one grouping by hour, which cannot
        // use the daily rollups).
        let from = Date(timeIntervalSince1970: (start.timeIntervalSince1970 / 86_400).rounded(.down) * 86_400)
        let to = from.addingTimeInterval(31 * 86_400)
        let pool = EnginePoolCost(pool: "gpu-a", replicas: 2, slots: 16, costPerHourMicros: 2_500_000, currency: "USD")
        let groupings: [([AllocationDimension], Bool)] = [
            ([.tenant], false), ([.tenant, .model], false), ([.tenant, .key, .model, .provider, .status], false),
            ([.day, .tenant], false), ([.tenant], true), ([.tenant, .model], true), ([.hour, .tenant], false),
        ]
        let clock = ContinuousClock()
        for (groupBy, includeGPU) in groupings {
            var rows = 0
            var pages = 0
            let elapsed = try await clock.measure {
                var cursor: String?
                repeat {
                    let report = try await ledger.allocationReport(AllocationQuery(
                        from: from, to: to, groupBy: groupBy, includeGPU: includeGPU, poolCosts: [pool],
                        limit: AllocationQuery.maximumLimit, cursor: cursor
                    ))
                    rows += report.rows.count
                    pages += 1
                    cursor = report.nextCursor
                } while cursor != nil
            }
            let names = groupBy.map(\.rawValue).joined(separator: ",") + (includeGPU ? " include_gpu" : "")
            print("allocation report over \(options.reportEvents) events, group_by=\(names): \(format(elapsed)) (\(rows) rows, \(pages) pages)")
        }
    }
}
