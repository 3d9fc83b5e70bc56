import ArgumentParser
import Foundation

/// `switchyard user`: the people who sign in to the management API.
struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user",
        abstract: "Invite, list and remove a tenant's users; create the platform's own users.",
        discussion: """
            A tenant's users (org_admin, org_user) join by invite; the platform's users \
            (system_admin, analyst) are created directly. Without --tenant, an org admin acts \
            on their own tenant.
            """,
        subcommands: [Invite.self, List.self, Remove.self, Create.self]
    )

    static let columns = ["id", "email", "name", "role", "created_at"]

    struct Invite: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Invite someone to a tenant; prints the accept link, and whether it was mailed."
        )

        @OptionGroup var connection: AdminOptions

        @Option(help: "The tenant's id or name (default: your own).")
        var tenant: String?

        @Option(help: "The invitee's email.")
        var email: String

        @Option(help: "org_admin or org_user.")
        var role: String

        func validate() throws {
            guard ["org_admin", "org_user"].contains(role) else {
                throw ValidationError("--role must be org_admin or org_user, not '\(role)' (platform users: switchyard user create).")
            }
        }

        func run() async throws {
            try await reportingErrors {
                let client = try connection.client()
                let tenantID = try await client.tenantID(tenant)
                let invite = try await client.send(
                    .POST, "/admin/v1/tenants/\(AdminClient.pathSegment(tenantID))/invites", body: ["email": email, "role": role]
                )
                if connection.json { return Output.printJSON(invite) }
                print("""
                    Invited \(Output.text(invite["email"])) to tenant \(Output.text(invite["tenant_id"])) as \
                    \(Output.text(invite["role"])); the invite works once, until \(Output.text(invite["expires_at"])).
                    """)
                print("Accept link: \(Output.text(invite["accept_url"]))")
                switch invite["mailed"] as? Bool {
                case true?: print("Mailed: yes.")
                case false?: print("Mailed: no, the mail failed (\(Output.text(invite["mail_error"]))); send the link yourself.")
                case nil: print("Mailed: no, no SMTP server is configured; send the link yourself.")
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a tenant's users, or with --platform the platform's own.")

        @OptionGroup var connection: AdminOptions

        @Option(help: "The tenant's id or name (default: your own).")
        var tenant: String?

        @Flag(help: "List the platform's users (system_admin, analyst) instead of a tenant's.")
        var platform = false

        func validate() throws {
            if platform, tenant != nil { throw ValidationError("--platform takes no --tenant.") }
        }

        func run() async throws {
            try await reportingErrors {
                let client = try connection.client()
                let path = platform
                    ? "/admin/v1/users" : "/admin/v1/tenants/\(AdminClient.pathSegment(try await client.tenantID(tenant)))/users"
                let list = try await client.send(.GET, path)
                if connection.json { return Output.printJSON(list) }
                Output.printTable(list["data"] as? [[String: Any]] ?? [], columns: UserCommand.columns)
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a user from a tenant; their sessions, access tokens and tenant keys stop working."
        )

        @OptionGroup var connection: AdminOptions

        @Option(help: "The tenant's id or name (default: your own).")
        var tenant: String?

        @Argument(help: "The user's id, or their email.")
        var user: String

        func run() async throws {
            try await reportingErrors {
                let client = try connection.client()
                let tenantID = try await client.tenantID(tenant)
                let users = "/admin/v1/tenants/\(AdminClient.pathSegment(tenantID))/users"
                var userID = user
                if user.contains("@") {
                    let list = try await client.send(.GET, users)["data"] as? [[String: Any]] ?? []
                    let email = user.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
                    guard let found = list.first(where: { ($0["email"] as? String)?.lowercased() == email })?["id"] as? String else {
                        throw CLIError("tenant \(tenantID) has no user with email \(user) (see switchyard user list)")
                    }
                    userID = found
                }
                let removed = try await client.send(.DELETE, "\(users)/\(AdminClient.pathSegment(userID))")
                if connection.json { return Output.printJSON(removed) }
                print("Removed \(Output.text(removed["email"])) (\(Output.text(removed["id"]))) from tenant \(tenantID).")
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a platform user (system_admin or analyst).")

        @OptionGroup var connection: AdminOptions

        @Option(help: "Their email.")
        var email: String

        @Option(help: "Their name.")
        var name: String

        @Option(help: "system_admin or analyst.")
        var role: String

        @Flag(help: "Read the password from the first line of standard input instead of asking.")
        var passwordStdin = false

        func validate() throws {
            guard ["system_admin", "analyst"].contains(role) else {
                throw ValidationError("--role must be system_admin or analyst, not '\(role)' (tenant users: switchyard user invite).")
            }
        }

        func run() async throws {
            try await reportingErrors {
                let password = try readPassword()
                let user = try await connection.client().send(
                    .POST, "/admin/v1/users", body: ["email": email, "name": name, "role": role, "password": password]
                )
                if connection.json { return Output.printJSON(user) }
                Output.printTable([user], columns: UserCommand.columns)
            }
        }

        /// From standard input, or asked twice on the terminal: a typo in a hidden
        /// password would lock the new user out.
        private func readPassword() throws -> String {
            if passwordStdin {
                guard let password = Prompt.standardInputLine(), !password.isEmpty else { throw CLIError("no password on standard input") }
                return password
            }
            guard let password = Prompt.hidden("Password for \(email) (input hidden): "), !password.isEmpty else {
                throw CLIError("no password given (no terminal to ask on: pipe it in with --password-stdin)")
            }
            guard Prompt.hidden("The same password again: ") == password else { throw CLIError("the passwords differ") }
            return password
        }
    }
}
