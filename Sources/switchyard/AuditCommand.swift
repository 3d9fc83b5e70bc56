import ArgumentParser
import Foundation

/// `switchyard audit`: the management API's record of every write and sign-in.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Read the audit log: who did what, to what, when.",
        subcommands: [List.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List audit entries, newest first.",
            discussion: "An org admin sees their own tenant's entries; the platform roles see every tenant's, or one with --tenant."
        )

        @OptionGroup var connection: AdminOptions

        @Option(help: "Only this tenant's entries (its id or name).")
        var tenant: String?

        @Option(help: "Only this action, e.g. key_created, login_failed.")
        var action: String?

        @Option(help: "Only what this actor did: a user's id, or admin-token.")
        var actor: String?

        @Option(help: "Start, inclusive: a date (2026-11-01) or an RFC 3339 time.")
        var from: String?

        @Option(help: "End, exclusive: a date or an RFC 3339 time.")
        var to: String?

        @Option(help: "Entries per page (the server caps it).")
        var limit: Int?

        @Option(help: "Continue after a page: the next_cursor it ended with.")
        var cursor: String?

        @Flag(help: "Follow next_cursor to the end, fetching every page.")
        var all = false

        func validate() throws {
            if let limit, limit < 1 { throw ValidationError("--limit must be at least 1, not \(limit).") }
        }

        func run() async throws {
            try await reportingErrors {
                let client = try connection.client()
                var filters: [URLQueryItem] = []
                if let tenant { filters.append(URLQueryItem(name: "tenant", value: try await client.tenantID(tenant))) }
                for (name, value) in [("action", action), ("actor", actor), ("from", from), ("to", to), ("limit", limit.map(String.init))] {
                    if let value { filters.append(URLQueryItem(name: name, value: value)) }
                }
                var entries: [[String: Any]] = []
                var next = cursor
                repeat {
                    var query = URLComponents()
                    query.queryItems = filters + (next.map { [URLQueryItem(name: "cursor", value: $0)] } ?? [])
                    let page = try await client.send(.GET, "/admin/v1/audit?" + (query.percentEncodedQuery ?? ""))
                    entries += page["data"] as? [[String: Any]] ?? []
                    next = page["next_cursor"] as? String
                } while all && next != nil
                if connection.json {
                    return Output.printJSON(["object": "list", "data": entries, "next_cursor": next ?? NSNull()] as [String: Any])
                }
                let rows = entries.map { entry -> [String: Any] in
                    let actor = entry["actor"] as? [String: Any] ?? [:]
                    return [
                        "time": entry["at"] ?? NSNull(), "tenant": entry["tenant_id"] ?? NSNull(),
                        "actor": "\(Output.text(actor["id"]))/\(Output.text(actor["role"]))",
                        "action": entry["action"] ?? NSNull(), "target": entry["target"] ?? NSNull(),
                    ]
                }
                Output.printTable(rows, columns: ["time", "tenant", "actor", "action", "target"])
                if let next { print("\nMore entries: add --cursor \(next), or --all for every page.") }
            }
        }
    }
}
