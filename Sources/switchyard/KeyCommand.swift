import ArgumentParser
import Foundation

struct KeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Create, list and revoke tenant keys.",
        subcommands: [Create.self, List.self, Revoke.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a tenant key; its secret is shown this once.")

        @OptionGroup var connection: AdminOptions

        @Option(help: "The tenant's id or name (default: your own, for an org role).")
        var tenant: String?

        @Option(help: "A name for the key, e.g. the application using it.")
        var name: String

        @Option(help: "When the key stops working (RFC 3339), if ever.")
        var expiresAt: String?

        func run() async throws {
            try await reportingErrors {
                var body: [String: Any] = ["name": name]
                if let expiresAt { body["expires_at"] = expiresAt }
                let client = try connection.client()
                let tenantID = try await client.tenantID(tenant)
                let key = try await client.send(.POST, "/admin/v1/tenants/\(tenantID)/keys", body: body)
                if connection.json { return Output.printJSON(key) }
                Output.printTable([key], columns: ["id", "name", "prefix", "expires_at"])
                print("\nSecret (shown once, store it now):\n  \(Output.text(key["key"]))")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a tenant's keys (never their secrets).")

        @OptionGroup var connection: AdminOptions

        @Option(help: "The tenant's id or name (default: your own, for an org role).")
        var tenant: String?

        func run() async throws {
            try await reportingErrors {
                let client = try connection.client()
                let list = try await client.send(.GET, "/admin/v1/tenants/\(try await client.tenantID(tenant))/keys")
                if connection.json { return Output.printJSON(list) }
                Output.printTable(
                    list["data"] as? [[String: Any]] ?? [],
                    columns: ["id", "name", "prefix", "status", "created_at", "last_used_at"]
                )
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a tenant key at once.")

        @OptionGroup var connection: AdminOptions

        @Argument(help: "The key's id.")
        var id: String

        func run() async throws {
            try await reportingErrors {
                let key = try await connection.client().send(.DELETE, "/admin/v1/keys/\(id)")
                if connection.json { return Output.printJSON(key) }
                Output.printTable([key], columns: ["id", "name", "prefix", "status", "revoked_at"])
            }
        }
    }
}
