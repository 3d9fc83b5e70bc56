import Directory
import ArgumentParser
import Foundation

struct TenantCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tenant",
        abstract: "Create and list tenants, set a tenant's own limits and pinning, and show its live figures.",
        subcommands: [Create.self, List.self, SetLimits.self, SetPinning.self, Metrics.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a tenant.")

        @OptionGroup var connection: AdminOptions

        @Option(help: "The tenant's name (unique).")
        var name: String

        @Option(help: "The tenant's tier, as named in providers.json.")
        var tier: String

        func run() async throws {
            try await reportingErrors {
                let tenant = try await connection.client().send(.POST, "/admin/v1/tenants", body: ["name": name, "tier": tier])
                if connection.json { return Output.printJSON(tenant) }
                Output.printTable([tenant], columns: ["id", "name", "tier", "created_at"])
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tenants.")

        @OptionGroup var connection: AdminOptions

        func run() async throws {
            try await reportingErrors {
                let list = try await connection.client().send(.GET, "/admin/v1/tenants")
                if connection.json { return Output.printJSON(list) }
                Output.printTable(list["data"] as? [[String: Any]] ?? [], columns: ["id", "name", "tier", "created_at"])
            }
        }
    }
}

extension TenantCommand {
    struct SetLimits: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-limits",
            abstract: "Set a tenant's own limits in place of its tier's.",
            discussion: "Each limit not given falls back to the tier's; `--clear` returns every limit to the tier's."
        )

        @OptionGroup var connection: AdminOptions

        @Argument(help: "The tenant's id or name.")
        var tenant: String

        @Option(help: "Requests per minute.")
        var rpm: Int?

        @Option(help: "Tokens per minute (prompt plus maximum output, reserved at admission).")
        var tpm: Int?

        @Option(help: "Requests in flight at once.")
        var concurrent: Int?

        @Flag(help: "Use the tier's limits again.")
        var clear = false

        func validate() throws {
            if clear, rpm != nil || tpm != nil || concurrent != nil {
                throw ValidationError("--clear takes no limits.")
            }
            if !clear, rpm == nil, tpm == nil, concurrent == nil {
                throw ValidationError("Give at least one of --rpm, --tpm, --concurrent, or --clear.")
            }
        }

        func run() async throws {
            try await reportingErrors {
                var body: [String: Any] = [:]
                if let rpm { body["requests_per_minute"] = rpm }
                if let tpm { body["tokens_per_minute"] = tpm }
                if let concurrent { body["concurrent_requests"] = concurrent }
                let client = try connection.client()
                let tenantID = try await client.tenantID(tenant)
                let updated = try await client.send(.PUT, "/admin/v1/tenants/\(tenantID)/limits", body: body)
                if connection.json { return Output.printJSON(updated) }
                let limits = updated["limits"] as? [String: Any] ?? [:]
                let overrides = updated["limit_overrides"] as? [String: Any] ?? [:]
                let rows = ["requests_per_minute", "tokens_per_minute", "concurrent_requests"].map { name -> [String: Any] in
                    [
                        "limit": name,
                        "in_force": limits[name].map { $0 is NSNull ? "unlimited" : Output.text($0) } ?? "unlimited",
                        "source": (overrides[name].map { !($0 is NSNull) } ?? false) ? "tenant" : "tier",
                    ]
                }
                print("Tenant \(Output.text(updated["id"])) (\(Output.text(updated["name"])), tier \(Output.text(updated["tier"]))):")
                Output.printTable(rows, columns: ["limit", "in_force", "source"])
            }
        }
    }
}

extension TenantCommand {
    struct Metrics: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a tenant's live figures on the server answering: traffic, errors, what waits and where it stands.",
            discussion: "Figures are those of the replica that answers (GET /admin/v1/tenants/{id}/metrics)."
        )

        @OptionGroup var connection: AdminOptions

        @Option(help: "The tenant's id or name (default: your own, for an org role).")
        var tenant: String?

        func run() async throws {
            try await reportingErrors {
                let client = try connection.client()
                let figures = try await client.send(.GET, "/admin/v1/tenants/\(try await client.tenantID(tenant))/metrics")
                if connection.json { return Output.printJSON(figures) }
                let windows = [("last minute", "last_minute"), ("last hour", "last_hour")].map { label, key -> [String: Any] in
                    var row = figures[key] as? [String: Any] ?? [:]
                    row["window"] = label
                    let errors = row["errors"] as? [String: Any] ?? [:]
                    row["errors"] = errors.isEmpty ? "0" : errors.keys.sorted().map { "\($0) \(Output.text(errors[$0]))" }.joined(separator: ", ")
                    return row
                }
                print("Tenant \(Output.text(figures["tenant_id"])):")
                Output.printTable(
                    windows, columns: ["window", "requests", "prompt_tokens", "completion_tokens", "errors", "decode_time_ms"]
                )
                print("In flight: \(Output.text(figures["in_flight"])); queued: \(Output.text(figures["queued"]))")
                if let position = figures["queue_position"], !(position is NSNull) {
                    let start = figures["predicted_start_ms"].flatMap { $0 is NSNull ? nil : Output.text($0) }
                    print("""
                        Oldest waiting request: position \(Output.text(position)) in pool \(Output.text(figures["queue_pool"])), \
                        waiting \(Output.text(figures["queued_for_ms"])) ms, \
                        \(start.map { "predicted to start in \($0) ms" } ?? "start not yet predictable")
                        """)
                }
            }
        }
    }
}

/// Runs an admin command, turning its failure into a one-line message and exit code 1.
func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as CLIError {
        FileHandle.standardError.write(Data("switchyard: \(error)\n".utf8))
        throw ExitCode.failure
    }
}
