import Foundation
import GRDB

extension Ledger {
    /// Every row of an allocation report with pool costs by occupancy, in sort order: the
    /// groups, their requests on costed pools carrying their share of the pool's cost in
    /// place of their token cost, then (for a report of every tenant) one idle row per pool.
    func occupancyCostRows(_ query: AllocationQuery, filter: RollupFilter) async throws -> [AllocationRow] {
        let costs = Dictionary(query.poolCosts.map { ($0.pool, $0) }, uniquingKeysWith: { first, _ in first })
        let hours = (filter.to - filter.from) / UsageRollup.hourMilliseconds
        let (fetched, occupied) = try await pool.read { db in
            (try Self.groupRowsByPool(query.groupBy, filter: filter, in: db),
             try Self.occupancy(pools: Array(costs.keys), from: filter.from, to: filter.to, in: db))
        }
        // Keys are the values' bytes, as SQL compares them.
        var groups: [[[UInt8]]: AllocationSums] = [:]
        var occupants: [String: [[[UInt8]]: Int64]] = [:]
        for (values, currency, pool, sums) in fetched {
            var sums = sums
            let key = values.map { Array($0.utf8) }
            if costs[pool] != nil {
                sums.costMicros = 0
                occupants[pool, default: [:]][key, default: 0] &+= sums.slotMilliseconds
            }
            groups[key + [Array(currency.utf8)], default: AllocationSums()].add(sums)
        }
        var idle: [AllocationRow] = []
        for cost in costs.values.sorted(by: { $0.pool.utf8.lexicographicallyPrecedes($1.pool.utf8) }) {
            guard let poolCost = cost.cost(hours: hours), let capacity = cost.capacity(milliseconds: filter.to - filter.from) else {
                throw ReportError.overflow
            }
            let shown = (occupants[cost.pool] ?? [:]).sorted { $0.key.lexicographicallyPrecedes($1.key, by: { $0.lexicographicallyPrecedes($1) }) }
            let shownTotal = shown.reduce(Int64(0)) { $0 &+ $1.value }
            let allHeld = occupied[cost.pool] ?? 0
            let split = OccupancySplit.split(
                cost: poolCost, capacity: capacity, occupancy: shown.map(\.value), unshownOccupancy: max(0, allHeld - shownTotal)
            )
            for ((key, _), share) in zip(shown, split.shares) {
                let rowKey = key + [Array(cost.currency.utf8)]
                guard share != 0 || groups[rowKey] != nil else { continue }
                groups[rowKey, default: AllocationSums()].gpuCostMicros &+= share
            }
            // The idle capacity is the platform's: a report of some tenants leaves it out.
            guard !filter.isNarrowed else { continue }
            var sums = AllocationSums()
            sums.gpuCostMicros = split.rest
            sums.slotMilliseconds = max(0, capacity - allHeld)
            idle.append(AllocationRow(kind: .idle, groupValues: [], pool: cost.pool, currency: cost.currency, sums: sums))
        }
        let rows = groups.map { key, sums in
            let text = key.map { String(decoding: $0, as: UTF8.self) }
            return AllocationRow(kind: .group, groupValues: Array(text.dropLast()), currency: text.last ?? "", sums: sums)
        }
        return rows.sorted { AllocationCursor($0) < AllocationCursor($1) } + idle
    }

    /// Every group of `dimensions` and currency, split by engine pool.
    private static func groupRowsByPool(
        _ dimensions: [AllocationDimension], filter: RollupFilter, in db: GRDB.Database
    ) throws -> [(values: [String], currency: String, pool: String, sums: AllocationSums)] {
        let aliases = dimensions.indices.map { "g\($0)" } + ["gc", "gp"]
        let selected = dimensions.enumerated().map { "\($0.element.sqlExpression) AS g\($0.offset)" }
            + ["currency AS gc", "engine_pool AS gp"]
        let (whereClause, arguments) = filter.clause
        let sql = """
            SELECT \(selected.joined(separator: ", ")), \(RollupFilter.sumColumns)
            FROM \(filter.table) \(whereClause)
            GROUP BY \(aliases.joined(separator: ", "))
            """
        return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
            (dimensions.indices.map { row["g\($0)"] ?? "" }, row["gc"], row["gp"], RollupFilter.sums(from: row))
        }
    }

    /// Slot-milliseconds held on each of `pools` over the window, by every tenant.
    private static func occupancy(pools: [String], from: Int64, to: Int64, in db: GRDB.Database) throws -> [String: Int64] {
        guard !pools.isEmpty else { return [:] }
        let placeholders = pools.map { _ in "?" }.joined(separator: ", ")
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT engine_pool, sum(slot_ms) AS slot_ms FROM \(RollupFilter(from: from, to: to, byHour: false).table)
                WHERE hour >= ? AND hour < ? AND engine_pool IN (\(placeholders)) GROUP BY engine_pool
                """,
            arguments: [from, to] + StatementArguments(pools)
        )
        return Dictionary(rows.map { ($0["engine_pool"], $0["slot_ms"]) }, uniquingKeysWith: { first, _ in first })
    }

    // MARK: One pool

    /// What an engine pool cost over `[from, to)` and who occupied it: each tenant's
    /// slot-milliseconds and share of the cost, and the idle capacity's.
    /// - Parameters:
    ///   - pool: the engine pool's id.
    ///   - costs: the pools that have a cost per hour.
    /// - Throws: `ReportError` for a window that is not whole hours, or a pool without a cost.
    public func gpuReport(pool: String, from: Date, to: Date, costs: [EnginePoolCost]) async throws -> GPUReport {
        let window = try AllocationQuery(from: from, to: to, groupBy: []).window()
        guard let cost = costs.first(where: { $0.pool == pool }) else {
            throw ReportError(.noPoolCost, parameter: "pool", "Engine pool '\(pool)' has no cost_per_hour in the configuration.")
        }
        let milliseconds = window.to - window.from
        guard let poolCost = cost.cost(hours: milliseconds / UsageRollup.hourMilliseconds),
              let capacity = cost.capacity(milliseconds: milliseconds)
        else { throw ReportError.overflow }
        let tenants = try await self.pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT tenant_id, sum(slot_ms) AS slot_ms FROM \(RollupFilter(from: window.from, to: window.to, byHour: false).table)
                    WHERE hour >= ? AND hour < ? AND engine_pool = ?
                    GROUP BY tenant_id HAVING sum(slot_ms) > 0 ORDER BY tenant_id
                    """,
                arguments: [window.from, window.to, pool]
            ).map { (tenant: $0["tenant_id"] as String, slotMilliseconds: $0["slot_ms"] as Int64) }
        }
        let occupied = tenants.reduce(Int64(0)) { $0 &+ $1.slotMilliseconds }
        let split = OccupancySplit.split(cost: poolCost, capacity: capacity, occupancy: tenants.map(\.slotMilliseconds))
        var rows = zip(tenants, split.shares).map { tenant, share in
            GPUReportRow(
                kind: .tenant, tenantID: tenant.tenant, slotMilliseconds: tenant.slotMilliseconds,
                share: split.fraction(tenant.slotMilliseconds), costMicros: share
            )
        }
        let idle = max(0, capacity - occupied)
        rows.append(GPUReportRow(kind: .idle, tenantID: nil, slotMilliseconds: idle, share: split.fraction(idle), costMicros: split.rest))
        return GPUReport(
            pool: cost, from: from, to: to, costMicros: poolCost, capacitySlotMilliseconds: capacity,
            occupiedSlotMilliseconds: occupied, rows: rows
        )
    }
}
