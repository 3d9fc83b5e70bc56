import ArgumentParser
import Foundation

struct ProviderKeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "provider-key",
        abstract: "Add, list, drain, retire and re-enable provider keys without downtime.",
        discussion: """
            Rotation: add the new key (it takes traffic at once), drain the old one (no new \
            requests; in-flight ones finish), wait until `list` shows it with 0 in flight, \
            then retire it (its encrypted copy is erased).
            """,
        subcommands: [Add.self, List.self, Drain.self, Retire.self, Enable.self]
    )

    static let columns = ["id", "provider", "label", "last_four", "state", "in_flight", "requests_last_minute", "last_used_at", "state_reason"]

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a provider key to its provider's pool; it takes traffic at once.",
            discussion: """
                The key is read from standard input (one line; prompted for without echo on a \
                terminal), from --key-env, or from --key-file: never from the command line, \
                where other users could see it. It is sent once, stored encrypted, and never shown again.
                """
        )

        @OptionGroup var connection: AdminOptions

        @Option(help: "The provider, as named in providers.json (e.g. openai).")
        var provider: String

        @Option(help: "A name for the key, e.g. the account it belongs to.")
        var label: String?

        @Option(help: "Its share of traffic relative to the pool's other keys (1-1000, default 1).")
        var weight: Int?

        @Option(help: "The key's own requests-per-minute limit.")
        var rpm: Int?

        @Option(help: "The key's own tokens-per-minute limit.")
        var tpm: Int?

        @Option(help: "Dedicate the key to a tier (repeatable); default: every tier.")
        var tier: [String] = []

        @Option(help: "Dedicate the key to a tenant, by id or name (repeatable); default: every tenant.")
        var tenant: [String] = []

        @Option(help: "Read the key from this environment variable.")
        var keyEnv: String?

        @Option(help: "Read the key from this file.")
        var keyFile: String?

        func run() async throws {
            try await reportingErrors {
                let secret = try readSecret()
                var body: [String: Any] = ["provider": provider, "key": secret]
                if let label { body["label"] = label }
                if let weight { body["weight"] = weight }
                if let rpm { body["requests_per_minute"] = rpm }
                if let tpm { body["tokens_per_minute"] = tpm }
                if !tier.isEmpty { body["tiers"] = tier }
                let client = try connection.client()
                if !tenant.isEmpty {
                    var tenantIDs: [String] = []
                    for reference in tenant { tenantIDs.append(try await client.tenantID(reference)) }
                    body["tenants"] = tenantIDs
                }
                let key = try await client.send(.POST, "/admin/v1/provider-keys", body: body)
                if connection.json { return Output.printJSON(key) }
                Output.printTable([key], columns: ["id", "provider", "label", "last_four", "weight", "state"])
            }
        }

        private func readSecret() throws -> String {
            let raw: String?
            if let keyEnv {
                guard let value = ProcessInfo.processInfo.environment[keyEnv] else {
                    throw CLIError("environment variable \(keyEnv) is not set")
                }
                raw = value
            } else if let keyFile {
                guard let contents = try? String(contentsOfFile: keyFile, encoding: .utf8) else {
                    throw CLIError("cannot read the key file \(keyFile)")
                }
                raw = contents
            } else if isatty(STDIN_FILENO) == 1 {
                raw = Prompt.hidden("Provider key for \(provider) (input hidden): ")
            } else {
                raw = Prompt.standardInputLine()
            }
            let secret = raw?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            guard !secret.isEmpty else { throw CLIError("no provider key given (pipe it on standard input, or use --key-env or --key-file)") }
            return secret
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List provider keys: state, why, in flight, recent use (never the keys)."
        )

        @OptionGroup var connection: AdminOptions

        @Option(help: "Only this provider's keys.")
        var provider: String?

        @Flag(help: "Include retired keys.")
        var all = false

        func run() async throws {
            try await reportingErrors {
                var query: [String] = []
                if let provider { query.append("provider=\(provider)") }
                if all { query.append("include_retired=true") }
                let path = "/admin/v1/provider-keys" + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
                let list = try await connection.client().send(.GET, path)
                if connection.json { return Output.printJSON(list) }
                Output.printTable(list["data"] as? [[String: Any]] ?? [], columns: ProviderKeyCommand.columns)
            }
        }
    }

    struct Drain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop sending new requests to a key; in-flight ones finish.")
        @OptionGroup var connection: AdminOptions
        @Argument(help: "The key's id.") var id: String
        func run() async throws { try await ProviderKeyCommand.change(id, "drain", connection) }
    }

    struct Retire: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Take a key out of its pool for good and erase its encrypted copy.")
        @OptionGroup var connection: AdminOptions
        @Argument(help: "The key's id.") var id: String
        func run() async throws { try await ProviderKeyCommand.change(id, "retire", connection) }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Put a drained or disabled key back in service; clears a cooldown or a rejection."
        )
        @OptionGroup var connection: AdminOptions
        @Argument(help: "The key's id.") var id: String
        func run() async throws { try await ProviderKeyCommand.change(id, "enable", connection) }
    }

    static func change(_ id: String, _ action: String, _ connection: AdminOptions) async throws {
        try await reportingErrors {
            let key = try await connection.client().send(.POST, "/admin/v1/provider-keys/\(id)/\(action)")
            if connection.json { return Output.printJSON(key) }
            Output.printTable([key], columns: columns)
        }
    }
}
