import ArgumentParser
import Foundation

struct TenantCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tenant",
        abstract: "Create and list tenants.",
        subcommands: [Create.self, List.self]
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

/// Runs an admin command, turning its failure into a one-line message and exit code 1.
func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as CLIError {
        FileHandle.standardError.write(Data("switchyard: \(error)\n".utf8))
        throw ExitCode.failure
    }
}
