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

    @Flag(help: "Print JSON for scripts instead of a table.")
    var json = false

    func client() throws -> AdminClient {
        let environment = ProcessInfo.processInfo.environment
        let base = server ?? environment["SWITCHYARD_URL"] ?? "http://127.0.0.1:8080"
        var resolved = token ?? environment["SWITCHYARD_ADMIN_TOKEN"]
        if resolved == nil || resolved!.isEmpty {
            let path = tokenFile ?? environment["SWITCHYARD_ADMIN_TOKEN_FILE"] ?? "var/switchyard.admin-token"
            resolved = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard let resolved, !resolved.isEmpty else {
            throw ValidationError("No admin token: pass --token, set SWITCHYARD_ADMIN_TOKEN, or point --token-file at the token file.")
        }
        return AdminClient(baseURL: base.hasSuffix("/") ? String(base.dropLast()) : base, token: resolved)
    }
}

/// A small client of the management API.
struct AdminClient {
    let baseURL: String
    let token: String

    /// Sends a request and returns the decoded JSON object; exits with the server's
    /// message on an error status.
    func send(_ method: HTTPMethod, _ path: String, body: [String: Any]? = nil) async throws -> [String: Any] {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        request.headers.add(name: "authorization", value: "Bearer \(token)")
        if let body {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        }
        let response: HTTPClientResponse
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        } catch {
            throw CLIError("cannot reach Switchyard at \(baseURL): \(error)")
        }
        let data = Data(buffer: try await response.body.collect(upTo: 64 << 20))
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        guard (200..<300).contains(response.status.code) else {
            let message = (object["error"] as? [String: Any])?["message"] as? String ?? "status \(response.status.code)"
            throw CLIError("\(message) (HTTP \(response.status.code))")
        }
        return object
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
