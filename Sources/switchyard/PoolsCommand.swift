import Directory
import ArgumentParser
import Foundation

struct PoolsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pools",
        abstract: "Show each engine pool: slots, in flight, queued, service time, and per tier queue and predicted start."
    )

    @OptionGroup var connection: AdminOptions

    func run() async throws {
        try await reportingErrors {
            let list = try await connection.client().send(.GET, "/admin/v1/pools")
            if connection.json { return Output.printJSON(list) }
            let pools = list["data"] as? [[String: Any]] ?? []
            Output.printTable(pools, columns: ["id", "scheduling", "slots", "in_flight", "queued", "max_queue", "service_time_ms"])
            for pool in pools {
                print("\nPool \(Output.text(pool["id"])) by tier:")
                Output.printTable(
                    pool["tiers"] as? [[String: Any]] ?? [],
                    columns: ["name", "band", "reserved_share", "in_flight", "queued", "predicted_start_ms"]
                )
            }
        }
    }
}

extension TenantCommand {
    struct SetPinning: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-pinning",
            abstract: "Pin models to one of their deployments for a tenant (compliance pinning).",
            discussion: """
                Each MODEL=DEPLOYMENT pins the model; the list replaces the tenant's pinning. \
                A pinned model is served by that deployment alone: it never falls back or spills over. \
                `--clear` removes every pin.
                """
        )

        @OptionGroup var connection: AdminOptions

        @Argument(help: "The tenant's id or name.")
        var tenant: String

        @Argument(help: "MODEL=DEPLOYMENT pairs, e.g. chat-small=local-llama-8b.")
        var pins: [String] = []

        @Flag(help: "Remove every pin.")
        var clear = false

        func validate() throws {
            if clear, !pins.isEmpty { throw ValidationError("--clear takes no pins.") }
            if !clear, pins.isEmpty { throw ValidationError("Give at least one MODEL=DEPLOYMENT, or --clear.") }
            for pin in pins where pin.split(separator: "=", omittingEmptySubsequences: false).count != 2 || pin.hasPrefix("=") || pin.hasSuffix("=") {
                throw ValidationError("'\(pin)' is not MODEL=DEPLOYMENT.")
            }
        }

        func run() async throws {
            try await reportingErrors {
                var body: [String: Any] = [:]
                for pin in pins {
                    let parts = pin.split(separator: "=", maxSplits: 1)
                    body[String(parts[0])] = String(parts[1])
                }
                let client = try connection.client()
                let tenantID = try await client.tenantID(tenant)
                let updated = try await client.send(.PUT, "/admin/v1/tenants/\(tenantID)/pinning", body: body)
                if connection.json { return Output.printJSON(updated) }
                let pinning = (updated["pinning"] as? [String: Any] ?? [:]).sorted { $0.key < $1.key }
                print("Tenant \(Output.text(updated["id"])) (\(Output.text(updated["name"]))): \(pinning.isEmpty ? "no model pinned" : "pinned")")
                if !pinning.isEmpty {
                    Output.printTable(pinning.map { ["model": $0.key, "deployment": $0.value] }, columns: ["model", "deployment"])
                }
            }
        }
    }
}
