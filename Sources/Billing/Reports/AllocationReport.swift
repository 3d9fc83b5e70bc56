import Foundation

/// Usage and cost summed per group over a window, one page of its rows, and the totals of
/// the whole window per currency.
public struct AllocationReport: Sendable, Equatable {
    public var from: Date
    public var to: Date
    public var groupBy: [AllocationDimension]
    /// Whether pool costs by occupancy replace the token cost of requests on costed pools.
    public var includeGPU: Bool
    /// This page's rows, in sort order: groups by their values, then idle pools.
    public var rows: [AllocationRow]
    /// One row per currency over the whole query, not the page.
    public var totals: [AllocationRow]
    /// Where the next page starts; nil on the last page.
    public var nextCursor: String?
}

/// One row of an allocation report: a group, a pool's idle capacity, or a currency's total.
public struct AllocationRow: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        /// Usage of one combination of the grouping columns.
        case group
        /// The cost of a pool's slots no request held (with `includeGPU`, unfiltered).
        case idle
        /// The sum of every row of one currency.
        case total
    }

    public var kind: Kind
    /// The group's values, in `groupBy` order; empty for idle and total rows.
    public var groupValues: [String]
    /// The engine pool an idle row is the idle capacity of.
    public var pool: String?
    public var currency: String
    public var sums: AllocationSums

    public init(kind: Kind, groupValues: [String], pool: String? = nil, currency: String, sums: AllocationSums) {
        self.kind = kind
        self.groupValues = groupValues
        self.pool = pool
        self.currency = currency
        self.sums = sums
    }
}

/// The sums of a row. Amounts are integer micro-units of the row's currency.
public struct AllocationSums: Sendable, Equatable {
    public var requests = 0
    public var promptTokens = 0
    public var cachedTokens = 0
    public var completionTokens = 0
    public var reasoningTokens = 0
    /// Requests whose token counts were estimated.
    public var estimatedRequests = 0
    /// The token cost from the price table; with `includeGPU`, without the requests served
    /// by costed pools (their cost is `gpuCostMicros`).
    public var costMicros: Int64 = 0
    /// The share of pool costs by occupancy (only with `includeGPU`).
    public var gpuCostMicros: Int64 = 0
    /// What was billed, summed over the requests that were billed.
    public var billedSumMicros: Int64 = 0
    /// How many requests had a billed amount.
    public var billedRequests = 0
    /// Milliseconds of engine slots held.
    public var slotMilliseconds: Int64 = 0

    public init() {}

    /// What was billed; nil when no request of the row was billed through Switchyard.
    public var billedMicros: Int64? { billedRequests == 0 ? nil : billedSumMicros }

    /// Billed (0 when nil) minus the token cost and the pool cost.
    public var marginMicros: Int64 { billedSumMicros &- costMicros &- gpuCostMicros }

    /// Adds `other`'s sums to these.
    mutating func add(_ other: AllocationSums) {
        requests &+= other.requests
        promptTokens &+= other.promptTokens
        cachedTokens &+= other.cachedTokens
        completionTokens &+= other.completionTokens
        reasoningTokens &+= other.reasoningTokens
        estimatedRequests &+= other.estimatedRequests
        costMicros &+= other.costMicros
        gpuCostMicros &+= other.gpuCostMicros
        billedSumMicros &+= other.billedSumMicros
        billedRequests &+= other.billedRequests
        slotMilliseconds &+= other.slotMilliseconds
    }
}
