import Billing
import Foundation

extension AdminResources {
    /// `GET /admin/v1/reports/allocation` as JSON: one page of rows, the totals of the
    /// whole query per currency, and the cursor of the next page (null on the last).
    struct AllocationReportBody: Encodable, Sendable {
        var tenant: String?
        var from: Date
        var to: Date
        var groupBy: [String]
        var includeGpu: Bool
        /// The currencies of the totals, each a column of its own rows.
        var currencies: [String]
        var data: [AllocationRowBody]
        var totals: [AllocationRowBody]
        var nextCursor: String?

        init(_ report: AllocationReport, tenant: String?) {
            self.tenant = tenant
            from = report.from
            to = report.to
            groupBy = report.groupBy.map(\.rawValue)
            includeGpu = report.includeGPU
            currencies = report.totals.map(\.currency)
            data = report.rows.map { AllocationRowBody($0, groupBy: report.groupBy, includeGPU: report.includeGPU) }
            totals = report.totals.map { AllocationRowBody($0, groupBy: [], includeGPU: report.includeGPU) }
            nextCursor = report.nextCursor
        }

        enum CodingKeys: String, CodingKey {
            case object, tenant, from, to, groupBy, includeGpu, currencies, data, totals, nextCursor
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode("allocation_report", forKey: .object)
            try container.encode(tenant, forKey: .tenant)
            try container.encode(from, forKey: .from)
            try container.encode(to, forKey: .to)
            try container.encode(groupBy, forKey: .groupBy)
            try container.encode(includeGpu, forKey: .includeGpu)
            try container.encode(currencies, forKey: .currencies)
            try container.encode(data, forKey: .data)
            try container.encode(totals, forKey: .totals)
            try container.encode(nextCursor, forKey: .nextCursor)
        }
    }

    /// One row: `row` (`group`, `idle` or `total`), a field per grouping column named by
    /// the dimension, `pool` for an idle row, then the currency and the sums.
    struct AllocationRowBody: Encodable, Sendable {
        var row: AllocationRow
        var groupBy: [AllocationDimension]
        var includeGPU: Bool

        init(_ row: AllocationRow, groupBy: [AllocationDimension], includeGPU: Bool) {
            self.row = row
            self.groupBy = groupBy
            self.includeGPU = includeGPU
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: NamedKey.self)
            try container.encode(row.kind.rawValue, forKey: "row")
            for (index, dimension) in groupBy.enumerated() {
                let value = index < row.groupValues.count ? row.groupValues[index] : ""
                try container.encode(value, forKey: NamedKey(dimension.rawValue))
            }
            if includeGPU { try container.encode(row.pool, forKey: "pool") }
            let sums = row.sums
            try container.encode(row.currency, forKey: "currency")
            try container.encode(sums.requests, forKey: "requests")
            try container.encode(sums.promptTokens, forKey: "prompt_tokens")
            try container.encode(sums.cachedTokens, forKey: "cached_tokens")
            try container.encode(sums.completionTokens, forKey: "completion_tokens")
            try container.encode(sums.reasoningTokens, forKey: "reasoning_tokens")
            try container.encode(sums.estimatedRequests, forKey: "estimated_requests")
            try container.encode(sums.costMicros, forKey: "cost_micros")
            try container.encode(UsageGroupBody.decimal(micros: sums.costMicros), forKey: "cost")
            if includeGPU { try container.encode(sums.gpuCostMicros, forKey: "gpu_cost_micros") }
            try container.encode(sums.billedMicros, forKey: "billed_micros")
            try container.encode(sums.marginMicros, forKey: "margin_micros")
            try container.encode(sums.slotMilliseconds, forKey: "slot_ms")
            try container.encode(Double(sums.slotMilliseconds) / 1000, forKey: "slot_seconds")
        }
    }

    /// `GET /admin/v1/reports/gpu`: a pool's cost over the window, split by occupancy.
    struct GPUReportBody: Encodable, Sendable {
        struct Row: Encodable, Sendable {
            var row: String
            var tenant: String?
            var slotMs: Int64
            var slotSeconds: Double
            var share: Double
            var costMicros: Int64
            var cost: String

            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: NamedKey.self)
                try container.encode(row, forKey: "row")
                try container.encode(tenant, forKey: "tenant")
                try container.encode(slotMs, forKey: "slot_ms")
                try container.encode(slotSeconds, forKey: "slot_seconds")
                try container.encode(share, forKey: "share")
                try container.encode(costMicros, forKey: "cost_micros")
                try container.encode(cost, forKey: "cost")
            }
        }

        var object = "gpu_report"
        var pool: String
        var from: Date
        var to: Date
        var replicas: Int
        var slots: Int
        var costPerHourMicros: Int64
        var currency: String
        var costMicros: Int64
        var capacitySlotMs: Int64
        var occupiedSlotMs: Int64
        var data: [Row]
        var totals: Row

        init(_ report: GPUReport) {
            pool = report.pool.pool
            from = report.from
            to = report.to
            replicas = report.pool.replicas
            slots = report.pool.slots
            costPerHourMicros = report.pool.costPerHourMicros
            currency = report.pool.currency
            costMicros = report.costMicros
            capacitySlotMs = report.capacitySlotMilliseconds
            occupiedSlotMs = report.occupiedSlotMilliseconds
            data = report.rows.map { row in
                Row(
                    row: row.kind.rawValue, tenant: row.tenantID, slotMs: row.slotMilliseconds,
                    slotSeconds: Double(row.slotMilliseconds) / 1000, share: row.share, costMicros: row.costMicros,
                    cost: UsageGroupBody.decimal(micros: row.costMicros)
                )
            }
            let slotMs = report.rows.reduce(Int64(0)) { $0 &+ $1.slotMilliseconds }
            let cost = report.rows.reduce(Int64(0)) { $0 &+ $1.costMicros }
            totals = Row(
                row: "total", tenant: nil, slotMs: slotMs, slotSeconds: Double(slotMs) / 1000,
                share: report.rows.reduce(0) { $0 + $1.share }, costMicros: cost, cost: UsageGroupBody.decimal(micros: cost)
            )
        }
    }
}

/// A JSON key named at run time: a report's grouping columns are the caller's choice.
struct NamedKey: CodingKey, ExpressibleByStringLiteral {
    var stringValue: String
    var intValue: Int? { nil }

    init(_ name: String) { stringValue = name }
    init(stringLiteral name: String) { stringValue = name }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
