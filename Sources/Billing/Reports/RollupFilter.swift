import GRDB

/// Which rollup rows a report reads: its window, and the tenant and user it is limited to.
struct RollupFilter {
    var from: Int64
    var to: Int64
    var tenantID: String?
    var userID: String?
    /// The rollup table to read: the daily one when the window is whole UTC days and the
    /// report does not group by hour, else the hourly one.
    var table: String

    init(from: Int64, to: Int64, tenantID: String? = nil, userID: String? = nil, byHour: Bool) {
        self.from = from
        self.to = to
        self.tenantID = tenantID
        self.userID = userID
        let day = UsageRollup.dayMilliseconds
        let wholeDays = from % day == 0 && to % day == 0
        self.table = wholeDays && !byHour ? UsageRollup.dailyTable : UsageRollup.hourlyTable
    }

    /// Whether the report sees only some tenants' usage.
    var isNarrowed: Bool { tenantID != nil || userID != nil }

    /// The `WHERE` clause over `table`, and its arguments.
    var clause: (sql: String, arguments: StatementArguments) {
        var conditions = ["hour >= ?", "hour < ?"]
        var arguments: StatementArguments = [from, to]
        if let tenantID {
            conditions.append("tenant_id = ?")
            arguments += [tenantID]
        }
        if let userID {
            conditions.append("user_id = ?")
            arguments += [userID]
        }
        return ("WHERE " + conditions.joined(separator: " AND "), arguments)
    }

    /// The summed columns every report row selects, named as `sums(from:)` reads them.
    static let sumColumns = """
        sum(requests) AS requests, sum(prompt_tokens) AS prompt_tokens, sum(cached_tokens) AS cached_tokens,
        sum(completion_tokens) AS completion_tokens, sum(reasoning_tokens) AS reasoning_tokens,
        sum(estimated_requests) AS estimated_requests, sum(cost_micros) AS cost_micros,
        sum(billed_micros) AS billed_micros, sum(billed_requests) AS billed_requests, sum(slot_ms) AS slot_ms
        """

    /// The sums of a row selected with `sumColumns`.
    static func sums(from row: Row) -> AllocationSums {
        var sums = AllocationSums()
        sums.requests = row["requests"]
        sums.promptTokens = row["prompt_tokens"]
        sums.cachedTokens = row["cached_tokens"]
        sums.completionTokens = row["completion_tokens"]
        sums.reasoningTokens = row["reasoning_tokens"]
        sums.estimatedRequests = row["estimated_requests"]
        sums.costMicros = row["cost_micros"]
        sums.billedSumMicros = row["billed_micros"]
        sums.billedRequests = row["billed_requests"]
        sums.slotMilliseconds = row["slot_ms"]
        return sums
    }
}
