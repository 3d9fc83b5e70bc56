import ArgumentParser
import Foundation

/// `switchyard whoami`: who the server takes the command's credential for.
struct WhoamiCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "whoami",
        abstract: "Show who the credential in use signs in as: role, tenant, user, kind of credential."
    )

    @OptionGroup var connection: AdminOptions

    func run() async throws {
        try await reportingErrors {
            let client = try connection.client()
            let principal = try await client.send(.GET, "/auth/me")
            if connection.json { return Output.printJSON(principal) }
            var tenant = "none (a platform role)"
            if let tenantID = principal["tenant_id"] as? String {
                let name = try? await client.send(.GET, "/admin/v1/tenants/\(AdminClient.pathSegment(tenantID))")["name"]
                tenant = name.map { "\(Output.text($0)) (\(tenantID))" } ?? tenantID
            }
            let user = (principal["user"] as? [String: Any]).map {
                "\(Output.text($0["name"])) <\(Output.text($0["email"]))> (\(Output.text($0["id"])))"
            }
            let rows: [(String, String)] = [
                ("Server", client.baseURL),
                ("Role", Output.text(principal["role"])),
                ("Tenant", tenant),
                ("User", user ?? "none (the admin token has no account)"),
                ("Credential", "\(Output.text(principal["credential"])), \(client.credential.map(\.description) ?? "none")"),
            ]
            for (label, value) in rows { print("\((label + ":").padding(toLength: 12, withPad: " ", startingAt: 0))\(value)") }
        }
    }
}
