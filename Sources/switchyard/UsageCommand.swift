import ArgumentParser
import Foundation

struct UsageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usage",
        abstract: "Show metered usage and cost, grouped by model, day, key or tenant."
    )

    @OptionGroup var connection: AdminOptions

    @Option(help: "Only this tenant's usage (its id or name).")
    var tenant: String?

    @Option(help: "Start, inclusive: a date (2026-11-01) or an RFC 3339 time.")
    var from: String?

    @Option(help: "End, exclusive: a date or an RFC 3339 time.")
    var to: String?

    @Option(help: "model, day, key (tenant key), tenant or provider_key.")
    var groupBy: String = "model"

    func run() async throws {
        try await reportingErrors {
            let client = try connection.client()
            var query = URLComponents()
            query.queryItems = [URLQueryItem(name: "group_by", value: groupBy)]
            if let tenant { query.queryItems?.append(URLQueryItem(name: "tenant", value: try await client.tenantID(tenant))) }
            if let from { query.queryItems?.append(URLQueryItem(name: "from", value: from)) }
            if let to { query.queryItems?.append(URLQueryItem(name: "to", value: to)) }
            let report = try await client.send(.GET, "/admin/v1/usage?" + (query.percentEncodedQuery ?? ""))
            if connection.json { return Output.printJSON(report) }
            Output.printTable(
                report["data"] as? [[String: Any]] ?? [],
                columns: ["group", "requests", "prompt_tokens", "cached_tokens", "completion_tokens", "cost", "currency"]
            )
        }
    }
}
