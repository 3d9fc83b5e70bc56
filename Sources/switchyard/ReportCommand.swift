import ArgumentParser
import Foundation
import NIOHTTP1

/// `switchyard report`: the cost analyst's reports over the management API.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Cost-allocation reports: usage and cost by group, and GPU pool cost by occupancy.",
        subcommands: [Allocation.self, GPU.self]
    )

    /// `switchyard report allocation`: every page of `GET /admin/v1/reports/allocation`.
    struct Allocation: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Usage and cost per group over whole UTC hours, with totals per currency.",
            discussion: """
                Fetches every page. An org admin sees their own tenant; an org user the usage of their own keys. \
                --csv prints the server's CSV (RFC 4180) with the header once and the totals at the end.
                """
        )

        @OptionGroup var connection: AdminOptions

        @Option(help: "Start, inclusive, a whole UTC hour: a date (2026-11-01) or an RFC 3339 time (default: 30 days before --to).")
        var from: String?

        @Option(help: "End, exclusive, a whole UTC hour (default: the start of the next hour).")
        var to: String?

        @Option(help: "Comma-separated columns: tenant, key, user, model, deployment, provider, provider_key, engine_pool, status, day, hour.")
        var groupBy: String = "tenant"

        @Option(help: "Only this tenant's usage (its id or name).")
        var tenant: String?

        @Flag(name: .customLong("include-gpu"), help: "Replace the token cost of requests on engine pools with a cost_per_hour by their share of the pool's cost, and show each pool's idle cost.")
        var includeGPU = false

        @Flag(help: "Print CSV instead of a table.")
        var csv = false

        @Option(help: "Rows per page fetched (1 to 10000).")
        var limit: Int?

        func validate() throws {
            if let limit, !(1...10_000).contains(limit) { throw ValidationError("--limit must be from 1 to 10000, not \(limit).") }
        }

        func run() async throws {
            try await reportingErrors {
                let client = try connection.client()
                var filters = [URLQueryItem(name: "group_by", value: groupBy)]
                if let tenant { filters.append(URLQueryItem(name: "tenant", value: try await client.tenantID(tenant))) }
                for (name, value) in [("from", from), ("to", to), ("limit", limit.map(String.init))] {
                    if let value { filters.append(URLQueryItem(name: name, value: value)) }
                }
                if includeGPU { filters.append(URLQueryItem(name: "include_gpu", value: "true")) }
                if csv { return try await printCSV(client, filters: filters) }
                try await printReport(client, filters: filters)
            }
        }

        /// Every page as CSV: the first page's header, each page's rows, the last page's totals.
        private func printCSV(_ client: AdminClient, filters: [URLQueryItem]) async throws {
            var cursor: String?
            var first = true
            repeat {
                let (text, headers) = try await client.text(Self.path(filters + [URLQueryItem(name: "format", value: "csv")], cursor: cursor))
                var page = Substring(text)
                if !first, let end = page.range(of: "\r\n") { page = page[end.upperBound...] }
                print(page, terminator: "")
                first = false
                cursor = headers.first(name: "x-next-cursor")
            } while cursor != nil
        }

        /// Every page as one table (or JSON with --json), the totals last.
        private func printReport(_ client: AdminClient, filters: [URLQueryItem]) async throws {
            var cursor: String?
            var rows: [[String: Any]] = []
            var last: [String: Any] = [:]
            repeat {
                last = try await client.send(.GET, Self.path(filters, cursor: cursor))
                rows += last["data"] as? [[String: Any]] ?? []
                cursor = last["next_cursor"] as? String
            } while cursor != nil
            let totals = last["totals"] as? [[String: Any]] ?? []
            if connection.json {
                var report = last
                report["data"] = rows
                return Output.printJSON(report)
            }
            let groupBy = last["group_by"] as? [String] ?? []
            let gpu = last["include_gpu"] as? Bool ?? false
            var columns = ["row"] + groupBy + (gpu ? ["pool"] : [])
            columns += ["currency", "requests", "prompt_tokens", "completion_tokens", "cost"] + (gpu ? ["gpu_cost"] : [])
            columns += ["billed", "margin", "slot_seconds"]
            Output.printTable((rows + totals).map(Self.readable), columns: columns)
        }

        /// A row with its amounts as decimals of their currency.
        private static func readable(_ row: [String: Any]) -> [String: Any] {
            var row = row
            for (micros, name) in [("cost_micros", "cost"), ("gpu_cost_micros", "gpu_cost"), ("billed_micros", "billed"), ("margin_micros", "margin")] {
                row[name] = (row[micros] as? NSNumber).map { decimal(micros: $0.int64Value) } ?? NSNull()
            }
            return row
        }

        static func path(_ filters: [URLQueryItem], cursor: String?) -> String {
            var query = URLComponents()
            query.queryItems = filters + (cursor.map { [URLQueryItem(name: "cursor", value: $0)] } ?? [])
            return "/admin/v1/reports/allocation?" + (query.percentEncodedQuery ?? "")
        }
    }

    /// `switchyard report gpu`: `GET /admin/v1/reports/gpu`.
    struct GPU: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "gpu",
            abstract: "An engine pool's cost over whole UTC hours, split by the tenants' occupancy of its slots, and the idle rest.",
            discussion: "For the platform's roles (system admin, analyst); the pool needs a cost_per_hour in providers.json."
        )

        @OptionGroup var connection: AdminOptions

        @Option(help: "The engine pool's id.")
        var pool: String

        @Option(help: "Start, inclusive, a whole UTC hour (default: 30 days before --to).")
        var from: String?

        @Option(help: "End, exclusive, a whole UTC hour (default: the start of the next hour).")
        var to: String?

        func run() async throws {
            try await reportingErrors {
                let client = try connection.client()
                var query = URLComponents()
                query.queryItems = [URLQueryItem(name: "pool", value: pool)]
                for (name, value) in [("from", from), ("to", to)] {
                    if let value { query.queryItems?.append(URLQueryItem(name: name, value: value)) }
                }
                let report = try await client.send(.GET, "/admin/v1/reports/gpu?" + (query.percentEncodedQuery ?? ""))
                if connection.json { return Output.printJSON(report) }
                let rows = (report["data"] as? [[String: Any]] ?? []) + [report["totals"] as? [String: Any] ?? [:]]
                let readable = rows.map { row -> [String: Any] in
                    var row = row
                    row["share"] = (row["share"] as? NSNumber).map { String(format: "%.2f%%", $0.doubleValue * 100) } ?? NSNull()
                    return row
                }
                print("""
                    Pool \(Output.text(report["pool"])): \(Output.text(report["replicas"])) replicas, \(Output.text(report["slots"])) slots, \
                    \(decimal(micros: (report["cost_per_hour_micros"] as? NSNumber)?.int64Value ?? 0)) \(Output.text(report["currency"])) \
                    per replica-hour; \(Output.text(report["from"])) to \(Output.text(report["to"])) costs \
                    \(decimal(micros: (report["cost_micros"] as? NSNumber)?.int64Value ?? 0)) \(Output.text(report["currency"])).
                    """)
                Output.printTable(readable, columns: ["row", "tenant", "slot_seconds", "share", "cost"])
            }
        }
    }
}

/// Micro-units as a decimal of the currency, `1.234567`.
private func decimal(micros: Int64) -> String {
    let sign = micros < 0 ? "-" : ""
    let magnitude = micros.magnitude
    let fraction = String(magnitude % 1_000_000)
    return "\(sign)\(magnitude / 1_000_000).\(String(repeating: "0", count: 6 - fraction.count))\(fraction)"
}
