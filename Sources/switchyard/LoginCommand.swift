import ArgumentParser
import Foundation

/// `switchyard login`: signs in with an email and password and saves the session, so the
/// other commands need no token on the command line.
struct LoginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login",
        abstract: "Sign in to a Switchyard and save the session for the other commands.",
        discussion: """
            The session is saved, per server, in $XDG_CONFIG_HOME/switchyard/credentials \
            (default ~/.config/switchyard/credentials, readable by you alone). It is used when \
            no --token, SWITCHYARD_TOKEN or SWITCHYARD_ADMIN_TOKEN is given, until it expires \
            or `switchyard logout`.
            """
    )

    @OptionGroup var endpoint: ServerOptions

    @Option(help: "Your email; asked for when not given.")
    var email: String?

    @Flag(help: "Read the password from the first line of standard input (for scripts) instead of asking.")
    var passwordStdin = false

    func run() async throws {
        try await reportingErrors {
            let email = try readEmail()
            let password = try readPassword()
            let session = try await endpoint.client(nil).send(.POST, "/auth/login", body: ["email": email, "password": password])
            guard let token = session["token"] as? String else { throw CLIError("the server's answer to the sign-in holds no session token") }
            let user = session["user"] as? [String: Any] ?? [:]
            let signedIn = user["email"] as? String ?? email
            let store = CredentialStore()
            try store.save(CredentialStore.Session(
                server: endpoint.baseURL, token: token, email: signedIn, expiresAt: session["expires_at"] as? String
            ))
            if endpoint.json {
                var shown = session
                shown["token"] = nil
                shown["csrf_token"] = nil
                shown["server"] = endpoint.baseURL
                return Output.printJSON(shown)
            }
            print("Signed in to \(endpoint.baseURL) as \(signedIn) (\(Output.text(user["role"])))")
            print("The session ends at \(Output.text(session["expires_at"])); it is saved in \(store.fileURL.path).")
        }
    }

    private func readEmail() throws -> String {
        let email = (self.email ?? Prompt.line("Email: "))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        guard !email.isEmpty else { throw CLIError("no email given (pass --email)") }
        return email
    }

    private func readPassword() throws -> String {
        let password = passwordStdin ? Prompt.standardInputLine() : Prompt.hidden("Password (input hidden): ")
        guard let password, !password.isEmpty else {
            throw CLIError(passwordStdin
                ? "no password on standard input"
                : "no password given (no terminal to ask on: pipe it in with --password-stdin)")
        }
        return password
    }
}
