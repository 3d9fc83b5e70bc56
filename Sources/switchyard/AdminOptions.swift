import ArgumentParser
import Foundation

/// Which Switchyard a command talks to, how long it waits, and how it prints.
struct ServerOptions: ParsableArguments {
    @Option(help: "Switchyard's base URL (env SWITCHYARD_URL; default http://127.0.0.1:8080).")
    var server: String?

    @Option(help: "Seconds to wait for Switchyard's answer.")
    var timeout: Int = 30

    @Flag(help: "Print JSON for scripts instead of a table.")
    var json = false

    // Checked while parsing, so a mistake shows the usage of the command it was made in.
    func validate() throws {
        let url = server ?? Self.defaultServer
        guard let components = URLComponents(string: url), ["http", "https"].contains(components.scheme?.lowercased() ?? ""),
              !(components.host ?? "").isEmpty
        else {
            throw ValidationError("--server must be an http:// or https:// URL, not '\(url)'.")
        }
        guard (1...3600).contains(timeout) else {
            throw ValidationError("--timeout must be from 1 to 3600 seconds, not \(timeout).")
        }
    }

    /// The server's URL in one spelling (scheme and host lower-cased, no trailing slash):
    /// requests are made under it, and `switchyard login` remembers sessions by it.
    var baseURL: String {
        let url = server ?? Self.defaultServer
        guard var components = URLComponents(string: url) else { return url }
        components.scheme = components.scheme?.lowercased()
        components.host = components.host?.lowercased()
        while components.path.hasSuffix("/") { components.path.removeLast() }
        return components.string ?? url
    }

    /// A client that sends `credential` (nil for the routes that need none, like signing in).
    func client(_ credential: BearerCredential?) -> AdminClient {
        AdminClient(baseURL: baseURL, credential: credential, timeout: .seconds(Int64(timeout)))
    }

    private static var defaultServer: String {
        ProcessInfo.processInfo.environment["SWITCHYARD_URL"] ?? "http://127.0.0.1:8080"
    }
}

/// How the management commands reach the API and prove who they are.
///
/// The credential is the first of: `--token`, `SWITCHYARD_TOKEN`, `SWITCHYARD_ADMIN_TOKEN`,
/// `--token-file` (or `SWITCHYARD_ADMIN_TOKEN_FILE`), the session `switchyard login` saved
/// for the server, and last the admin token file a local `switchyard serve` writes.
/// Explicit choices win over the saved session; the default file comes after it, so a
/// signed-in user is not silently turned into the administrator of a server run nearby.
struct AdminOptions: ParsableArguments {
    @OptionGroup var endpoint: ServerOptions

    @Option(help: "A session, access token (sy-pat-…) or the admin token (env SWITCHYARD_TOKEN or SWITCHYARD_ADMIN_TOKEN; default: the session of `switchyard login`).")
    var token: String?

    @Option(help: "A file holding the token (env SWITCHYARD_ADMIN_TOKEN_FILE). Without one, var/switchyard.admin-token is tried after the saved session.")
    var tokenFile: String?

    var json: Bool { endpoint.json }

    static let defaultTokenFile = "var/switchyard.admin-token"

    // Checked while parsing, like the server options, so the error comes with the usage.
    func validate() throws {
        do {
            guard try credential() != nil else {
                throw ValidationError("""
                    No token: run `switchyard login --server \(endpoint.baseURL)`, or pass --token, set \
                    SWITCHYARD_TOKEN or SWITCHYARD_ADMIN_TOKEN, or point --token-file at the token file.
                    """)
            }
        } catch let error as CLIError {
            throw ValidationError(error.description)
        }
    }

    func client() throws -> AdminClient {
        guard let credential = try credential() else { throw CLIError("not signed in; run switchyard login or pass --token") }
        // A header cannot carry these; say so rather than fail deep in the HTTP client.
        guard credential.token.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
            throw CLIError("\(credential) holds spaces, line breaks or other characters no token has")
        }
        if case .storedSession(let session) = credential.source, session.hasEnded() {
            throw CLIError("your session on \(endpoint.baseURL) has ended; run switchyard login")
        }
        return endpoint.client(credential)
    }

    /// The credential the precedence above picks, or nil when there is none.
    /// - Throws: `CLIError` when the credentials file exists but cannot be read.
    func credential() throws -> BearerCredential? {
        let environment = ProcessInfo.processInfo.environment
        func nonEmpty(_ value: String?) -> String? {
            value.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.flatMap { $0.isEmpty ? nil : $0 }
        }
        if let token = nonEmpty(token) { return BearerCredential(token: token, source: .flag) }
        for name in ["SWITCHYARD_TOKEN", "SWITCHYARD_ADMIN_TOKEN"] {
            if let token = nonEmpty(environment[name]) { return BearerCredential(token: token, source: .environment(name)) }
        }
        if let path = tokenFile ?? environment["SWITCHYARD_ADMIN_TOKEN_FILE"] {
            guard let token = nonEmpty(try? String(contentsOfFile: path, encoding: .utf8)) else {
                throw CLIError("cannot read a token from \(path)")
            }
            return BearerCredential(token: token, source: .file(path))
        }
        if let session = try CredentialStore().session(for: endpoint.baseURL) {
            return BearerCredential(token: session.token, source: .storedSession(session))
        }
        if let token = nonEmpty(try? String(contentsOfFile: Self.defaultTokenFile, encoding: .utf8)) {
            return BearerCredential(token: token, source: .file(Self.defaultTokenFile))
        }
        return nil
    }
}

/// A bearer token and where it came from, which decides how a 401 is explained.
struct BearerCredential: Sendable, CustomStringConvertible {
    enum Source: Sendable {
        case flag
        case environment(String)
        case file(String)
        case storedSession(CredentialStore.Session)
    }

    let token: String
    let source: Source

    /// Where the token came from, in words; never the token.
    var description: String {
        switch source {
        case .flag: "the token given with --token"
        case .environment(let name): "the token in \(name)"
        case .file(let path): "the token in \(path)"
        case .storedSession(let session): "the session of \(session.email)"
        }
    }
}
