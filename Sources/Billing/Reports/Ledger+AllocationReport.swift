import Foundation
import GRDB

extension Ledger {
    /// Usage and cost over `query`'s window, summed per group and currency from the hourly
    /// rollups, one page at a time; the totals per currency cover the whole window.
    /// - Throws: `ReportError` for a window that is not whole hours, a limit out of range
    ///   or a cursor this report did not give.
    public func allocationReport(_ query: AllocationQuery) async throws -> AllocationReport {
        let window = try query.validated()
        let cursor = try query.cursor.map { text throws(ReportError) in
            try AllocationCursor(decoding: text, dimensions: query.groupBy.count, allowsIdle: query.includeGPU)
        }
        let filter = RollupFilter(
            from: window.from, to: window.to, tenantID: query.tenantID, userID: query.userID,
            byHour: query.groupBy.contains(.hour)
        )
        var report = AllocationReport(
            from: query.from, to: query.to, groupBy: query.groupBy, includeGPU: query.includeGPU, rows: [], totals: []
        )
        var rows: [AllocationRow]
        if query.includeGPU {
            let all = try await occupancyCostRows(query, filter: filter)
            let after = cursor.map { cursor in all.filter { row in cursor < AllocationCursor(row) } } ?? all
            rows = Array(after.prefix(query.limit + 1))
            report.totals = Self.totals(of: all)
        } else {
            (rows, report.totals) = try await pool.read { db in
                let rows = try Self.groupRows(query, filter: filter, after: cursor, in: db)
                // One page holding every group: its rows are the totals' terms, no second scan.
                let everyGroup = cursor == nil && rows.count <= query.limit
                return (rows, everyGroup ? Self.totals(of: rows) : try Self.totals(filter: filter, in: db))
            }
        }
        if rows.count > query.limit {
            rows.removeLast(rows.count - query.limit)
            report.nextCursor = rows.last.map { AllocationCursor($0).encoded }
        }
        report.rows = rows
        return report
    }

    // MARK: Token cost only, paged in SQL

    /// At most `limit + 1` group rows after `cursor`, in sort order.
    private static func groupRows(
        _ query: AllocationQuery, filter: RollupFilter, after cursor: AllocationCursor?, in db: GRDB.Database
    ) throws -> [AllocationRow] {
        let dimensions = query.groupBy
        let aliases = dimensions.indices.map { "g\($0)" } + ["gc"]
        let selected = dimensions.enumerated().map { "\($0.element.sqlExpression) AS g\($0.offset)" } + ["currency AS gc"]
        let (whereClause, arguments) = filter.clause
        var allArguments = arguments
        var after = ""
        if let cursor {
            after = "WHERE (\(aliases.joined(separator: ", "))) > (\(aliases.map { _ in "?" }.joined(separator: ", ")))"
            allArguments += StatementArguments(cursor.values)
        }
        allArguments += [query.limit + 1]
        let sql = """
            SELECT * FROM (
                SELECT \(selected.joined(separator: ", ")), \(RollupFilter.sumColumns)
                FROM \(filter.table) \(whereClause)
                GROUP BY \(aliases.joined(separator: ", "))
            ) \(after)
            ORDER BY \(aliases.joined(separator: ", "))
            LIMIT ?
            """
        return try Row.fetchAll(db, sql: sql, arguments: allArguments).map { row in
            AllocationRow(
                kind: .group, groupValues: dimensions.indices.map { row["g\($0)"] ?? "" }, currency: row["gc"],
                sums: RollupFilter.sums(from: row)
            )
        }
    }

    /// One total row per currency over the whole filter.
    private static func totals(filter: RollupFilter, in db: GRDB.Database) throws -> [AllocationRow] {
        let (whereClause, arguments) = filter.clause
        let sql = "SELECT currency, \(RollupFilter.sumColumns) FROM \(filter.table) \(whereClause) GROUP BY currency ORDER BY currency"
        return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
            AllocationRow(kind: .total, groupValues: [], currency: row["currency"], sums: RollupFilter.sums(from: row))
        }
    }

    /// One total row per currency of `rows`, in currency order.
    static func totals(of rows: [AllocationRow]) -> [AllocationRow] {
        var byCurrency: [[UInt8]: AllocationSums] = [:]
        for row in rows { byCurrency[Array(row.currency.utf8), default: AllocationSums()].add(row.sums) }
        return byCurrency.sorted { $0.key.lexicographicallyPrecedes($1.key) }.map { currency, sums in
            AllocationRow(kind: .total, groupValues: [], currency: String(decoding: currency, as: UTF8.self), sums: sums)
        }
    }
}
