import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// How the admin commands reach the management API.
struct AdminOptions: ParsableArguments {
    @Option(help: "Switchyard's base URL (env SWITCHYARD_URL; default http://127.0.0.1:8080).")
    var server: String?

    @Option(help: "The admin token (env SWITCHYARD_ADMIN_TOKEN).")
    var token: String?

    @Option(help: "A file holding the admin token (env SWITCHYARD_ADMIN_TOKEN_FILE; default var/switchyard.admin-token).")
    var tokenFile: String?

    @Option(help: "Seconds to wait for Switchyard's answer.")
    var timeout: Int = 30

    @Flag(help: "Print JSON for scripts instead of a table.")
    var json = false

    // Checked while parsing, so a mistake shows the usage of the command it was made in.
    func validate() throws {
        let url = baseURL
        guard let components = URLComponents(string: url), ["http", "https"].contains(components.scheme?.lowercased() ?? ""),
              !(components.host ?? "").isEmpty
        else {
            throw ValidationError("--server must be an http:// or https:// URL, not '\(url)'.")
        }
        guard (1...3600).contains(timeout) else {
            throw ValidationError("--timeout must be from 1 to 3600 seconds, not \(timeout).")
        }
        guard resolvedToken() != nil else {
            throw ValidationError("No admin token: pass --token, set SWITCHYARD_ADMIN_TOKEN, or point --token-file at the token file.")
        }
    }

    func client() throws -> AdminClient {
        guard let token = resolvedToken() else { throw CLIError("no admin token") }
        let base = baseURL
        return AdminClient(baseURL: base.hasSuffix("/") ? String(base.dropLast()) : base, token: token, timeout: .seconds(Int64(timeout)))
    }

    private var baseURL: String {
        server ?? ProcessInfo.processInfo.environment["SWITCHYARD_URL"] ?? "http://127.0.0.1:8080"
    }

    private func resolvedToken() -> String? {
        let environment = ProcessInfo.processInfo.environment
        if let token = token ?? environment["SWITCHYARD_ADMIN_TOKEN"], !token.isEmpty { return token }
        let path = tokenFile ?? environment["SWITCHYARD_ADMIN_TOKEN_FILE"] ?? "var/switchyard.admin-token"
        let token = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        return token.flatMap { $0.isEmpty ? nil : $0 }
    }
}

/// A small client of the management API.
struct AdminClient {
    let baseURL: String
    let token: String
    let timeout: TimeAmount

    /// One client for the process, like `HTTPClient.shared`, but failing at the first
    /// refused connection: the shared one retries until its deadline, so an operator with
    /// a wrong --server waits the whole timeout to learn the connection was refused.
    private static let http: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(10)
        configuration.redirectConfiguration = .disallow
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    /// Sends a request and returns the decoded JSON object (empty for an answer without
    /// one); exits with the server's message on an error status. `body` is any JSON value,
    /// `NSNull()` included.
    func send(_ method: HTTPMethod, _ path: String, body: Any? = nil) async throws -> [String: Any] {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        request.headers.add(name: "authorization", value: "Bearer \(token)")
        if let body {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body, options: [.fragmentsAllowed])))
        }
        let status: HTTPResponseStatus
        let data: Data
        do {
            let response = try await Self.http.execute(request, timeout: timeout)
            status = response.status
            data = Data(buffer: try await response.body.collect(upTo: 64 << 20))
        } catch {
            throw CLIError("cannot reach Switchyard at \(baseURL): \(NetworkFailure.describe(error))")
        }
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        guard (200..<300).contains(status.code) else {
            let message = (object["error"] as? [String: Any])?["message"] as? String ?? "status \(status.code)"
            throw CLIError("\(message) (HTTP \(status.code))")
        }
        return object
    }

    /// The id of the tenant `reference` names: the tenant with that id, else the one with
    /// that name. An id wins over a name, as ids are what the API and the ledger use.
    func tenantID(_ reference: String) async throws -> String {
        let tenants = try await send(.GET, "/admin/v1/tenants")["data"] as? [[String: Any]] ?? []
        if tenants.contains(where: { $0["id"] as? String == reference }) { return reference }
        // Names are stored trimmed and in Unicode's composed form.
        let name = reference.trimmingCharacters(in: .whitespacesAndNewlines).precomposedStringWithCanonicalMapping
        let named = tenants.filter { $0["name"] as? String == name }.compactMap { $0["id"] as? String }
        switch named.count {
        case 0: throw CLIError("no tenant is named or has the id \"\(reference)\" (see switchyard tenant list)")
        case 1: return named[0]
        default: throw CLIError("\(named.count) tenants are named \"\(reference)\": give one of their ids, \(named.joined(separator: ", "))")
        }
    }
}

/// A failure to report on stderr, exiting 1.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

// MARK: - Output

enum Output {
    static func printJSON(_ object: Any) {
        let options: JSONSerialization.WritingOptions = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        if let data = try? JSONSerialization.data(withJSONObject: object, options: options) {
            print(String(decoding: data, as: UTF8.self))
        }
    }

    /// Prints rows as an aligned table under `columns` (JSON keys, shown upper-cased).
    static func printTable(_ rows: [[String: Any]], columns: [String]) {
        let cells = rows.map { row in columns.map { text(row[$0]) } }
        let headers = columns.map { $0.uppercased() }
        var widths = headers.map(\.count)
        for row in cells {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        func line(_ values: [String]) -> String {
            values.enumerated().map { index, value in
                index == values.count - 1 ? value : value.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        print(line(headers))
        for row in cells { print(line(row)) }
        if rows.isEmpty { print("(none)") }
    }

    static func text(_ value: Any?) -> String {
        switch value {
        case nil, is NSNull: "-"
        case let string as String: string
        case let number as NSNumber: number.stringValue
        default: "\(value!)"
        }
    }
}
