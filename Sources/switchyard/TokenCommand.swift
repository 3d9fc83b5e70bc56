import ArgumentParser
import Foundation

/// `switchyard token`: personal access tokens, for scripts that act as the signed-in user.
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Create, list and revoke your personal access tokens (sy-pat-…).",
        discussion: """
            An access token acts as you, with your role, for scripts: pass it with --token or \
            SWITCHYARD_TOKEN. It needs a signed-in user: the admin token has none.
            """,
        subcommands: [Create.self, List.self, Revoke.self]
    )

    static let columns = ["id", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an access token; it is shown this once.")

        @OptionGroup var connection: AdminOptions

        @Option(help: "A name for the token, e.g. the script using it.")
        var name: String

        @Option(help: "When the token stops working (RFC 3339), if ever.")
        var expiresAt: String?

        func run() async throws {
            try await reportingErrors {
                var body: [String: Any] = ["name": name]
                if let expiresAt { body["expires_at"] = expiresAt }
                let token = try await connection.client().send(.POST, "/auth/tokens", body: body)
                if connection.json { return Output.printJSON(token) }
                Output.printTable([token], columns: ["id", "name", "prefix", "expires_at"])
                print("""

                    Token (shown once, store it now; anyone holding it acts as you):
                      \(Output.text(token["token"]))
                    """)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List your access tokens (never their secrets).")

        @OptionGroup var connection: AdminOptions

        func run() async throws {
            try await reportingErrors {
                let list = try await connection.client().send(.GET, "/auth/tokens")
                if connection.json { return Output.printJSON(list) }
                Output.printTable(list["data"] as? [[String: Any]] ?? [], columns: TokenCommand.columns)
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke one of your access tokens at once.")

        @OptionGroup var connection: AdminOptions

        @Argument(help: "The token's id (pat_…).")
        var id: String

        func run() async throws {
            try await reportingErrors {
                let token = try await connection.client().send(.DELETE, "/auth/tokens/\(AdminClient.pathSegment(id))")
                if connection.json { return Output.printJSON(token) }
                Output.printTable([token], columns: ["id", "name", "prefix", "revoked_at"])
            }
        }
    }
}
