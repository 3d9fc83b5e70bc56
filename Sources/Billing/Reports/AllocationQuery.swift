import Foundation

/// What an allocation report sums, how it groups the sums, and which page it returns.
public struct AllocationQuery: Sendable, Equatable {
    public static let defaultLimit = 1_000
    public static let maximumLimit = 10_000

    /// Start, inclusive; a whole UTC hour.
    public var from: Date
    /// End, exclusive; a whole UTC hour after `from`.
    public var to: Date
    /// Only this tenant's usage, when set.
    public var tenantID: String?
    /// Only the usage of keys this user owns, when set (an org user's own).
    public var userID: String?
    /// The grouping columns, in column order; currency is always one more, after them.
    public var groupBy: [AllocationDimension]
    /// Replace the token cost of requests on the pools in `poolCosts` by their share of
    /// the pool's cost by occupancy, and add each pool's idle cost.
    public var includeGPU: Bool
    /// The engine pools that have a cost per hour; read only with `includeGPU`.
    public var poolCosts: [EnginePoolCost]
    /// Rows per page, 1 to `maximumLimit`.
    public var limit: Int
    /// Where the page starts: the `nextCursor` of the page before; nil for the first.
    public var cursor: String?

    public init(
        from: Date, to: Date, tenantID: String? = nil, userID: String? = nil, groupBy: [AllocationDimension],
        includeGPU: Bool = false, poolCosts: [EnginePoolCost] = [], limit: Int = Self.defaultLimit, cursor: String? = nil
    ) {
        self.from = from
        self.to = to
        self.tenantID = tenantID
        self.userID = userID
        self.groupBy = groupBy
        self.includeGPU = includeGPU
        self.poolCosts = poolCosts
        self.limit = limit
        self.cursor = cursor
    }

    /// Whether `date` falls on a whole UTC hour, as report windows must.
    public static func isWholeHour(_ date: Date) -> Bool {
        date.ledgerMilliseconds % UsageRollup.hourMilliseconds == 0
    }

    /// The window's bounds in ledger milliseconds.
    /// - Throws: `ReportError` when a bound is not a whole hour or the window is empty.
    func window() throws(ReportError) -> (from: Int64, to: Int64) {
        for (name, date) in [("from", from), ("to", to)] where !Self.isWholeHour(date) {
            throw ReportError(
                .invalidWindow, parameter: name,
                "'\(name)' must be a whole UTC hour (such as 2026-11-23T10:00:00Z): reports sum hourly rollups."
            )
        }
        guard from < to else { throw ReportError(.invalidWindow, parameter: "from", "'from' must be before 'to'.") }
        return (from.ledgerMilliseconds, to.ledgerMilliseconds)
    }

    /// Checks everything but the cursor, which is checked as it is read.
    func validated() throws(ReportError) -> (from: Int64, to: Int64) {
        guard (1...Self.maximumLimit).contains(limit) else {
            throw ReportError(.invalidLimit, parameter: "limit", "'limit' must be from 1 to \(Self.maximumLimit).")
        }
        let unique = Set(groupBy)
        guard unique.count == groupBy.count else {
            throw ReportError(.invalidGroupBy, parameter: "group_by", "'group_by' names a dimension twice.")
        }
        return try window()
    }
}
