import ArgumentParser
import Foundation

/// `switchyard logout`: ends the saved session on the server and forgets it here.
struct LogoutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logout",
        abstract: "End the session `switchyard login` saved for a server, and forget it."
    )

    @OptionGroup var endpoint: ServerOptions

    func run() async throws {
        try await reportingErrors {
            let store = CredentialStore()
            guard let session = try store.session(for: endpoint.baseURL) else {
                if endpoint.json { return Output.printJSON(["server": endpoint.baseURL, "signed_out": false]) }
                return print("Not signed in to \(endpoint.baseURL); nothing to do.")
            }
            let credential = BearerCredential(token: session.token, source: .storedSession(session))
            // Forget the session whatever the server says: a user who asked to sign out
            // must not stay signed in here because the server was unreachable.
            var serverFailure: CLIError?
            if !session.hasEnded() {
                do {
                    _ = try await endpoint.client(credential).send(.POST, "/auth/logout")
                } catch let error as CLIError where error.status != 401 {
                    serverFailure = error
                } catch is CLIError {
                    // 401: the session had ended already, which is what was asked for.
                }
            }
            try store.remove(server: endpoint.baseURL)
            if endpoint.json {
                var result: [String: Any] = ["server": endpoint.baseURL, "email": session.email, "signed_out": true]
                if let serverFailure { result["server_error"] = serverFailure.description }
                Output.printJSON(result)
            } else {
                print("Signed out of \(endpoint.baseURL) (\(session.email)); the saved session is deleted.")
            }
            if let serverFailure {
                throw CLIError("""
                    the server did not confirm the session's end (\(serverFailure)); it was forgotten here, \
                    but stays valid on the server until it expires
                    """)
            }
        }
    }
}
