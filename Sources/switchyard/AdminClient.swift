import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// A small client of the management API.
struct AdminClient {
    let baseURL: String
    /// What the requests carry as `Authorization: Bearer`; nil for the routes that take
    /// none (signing in, accepting an invite).
    let credential: BearerCredential?
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
        let (data, _) = try await exchange(method, path, body: body)
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
    }

    /// Sends a `GET` and returns the answer's body as text with its headers (a CSV
    /// report, say); exits with the server's message on an error status, as `send` does.
    func text(_ path: String) async throws -> (text: String, headers: HTTPHeaders) {
        let (data, headers) = try await exchange(.GET, path, body: nil)
        return (String(decoding: data, as: UTF8.self), headers)
    }

    /// Sends a request and returns the body and headers of a successful answer.
    private func exchange(_ method: HTTPMethod, _ path: String, body: Any?) async throws -> (Data, HTTPHeaders) {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let credential { request.headers.add(name: "authorization", value: "Bearer \(credential.token)") }
        if let body {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body, options: [.fragmentsAllowed])))
        }
        let status: HTTPResponseStatus
        let headers: HTTPHeaders
        let data: Data
        do {
            let response = try await Self.http.execute(request, timeout: timeout)
            status = response.status
            headers = response.headers
            data = Data(buffer: try await response.body.collect(upTo: 64 << 20))
        } catch {
            throw CLIError("cannot reach Switchyard at \(baseURL): \(NetworkFailure.describe(error))")
        }
        guard (200..<300).contains(status.code) else {
            let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
            let message = (object["error"] as? [String: Any])?["message"] as? String ?? "status \(status.code)"
            guard status == .unauthorized, let credential else { throw CLIError("\(message) (HTTP \(status.code))", status: status.code) }
            // Say which credential was refused: with four places to find one, the user
            // cannot otherwise tell which to fix.
            if case .storedSession = credential.source {
                throw CLIError("your session has ended; run switchyard login (\(message))", status: status.code)
            }
            throw CLIError("\(message) (HTTP 401, sending \(credential))", status: status.code)
        }
        return (data, headers)
    }

    /// `text` made safe as one segment of a path, for ids and emails typed by the user.
    static func pathSegment(_ text: String) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove("/")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    /// The id of the tenant `reference` names: the tenant with that id, else the one with
    /// that name. An id wins over a name, as ids are what the API and the ledger use.
    ///
    /// Only the global roles may list tenants, so for an org role (one with a tenant of its
    /// own, as `GET /auth/me` says) the reference must be that tenant, by id or by name, and
    /// no reference (nil) means that tenant.
    func tenantID(_ reference: String?) async throws -> String {
        let principal = try await send(.GET, "/auth/me")
        // Names are stored trimmed and in Unicode's composed form.
        let name = reference?.trimmingCharacters(in: .whitespacesAndNewlines).precomposedStringWithCanonicalMapping
        if let own = principal["tenant_id"] as? String {
            guard let reference, reference != own else { return own }
            let tenant = try await send(.GET, "/admin/v1/tenants/\(Self.pathSegment(own))")
            if tenant["name"] as? String == name { return own }
            throw CLIError("""
                you belong to tenant \(Output.text(tenant["name"])) (\(own)) and can act only on it, not on "\(reference)"
                """)
        }
        guard let reference, let name else {
            throw CLIError("give --tenant: as \(Output.text(principal["role"])) you act on any tenant (see switchyard tenant list)")
        }
        let tenants = try await send(.GET, "/admin/v1/tenants")["data"] as? [[String: Any]] ?? []
        if tenants.contains(where: { $0["id"] as? String == reference }) { return reference }
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
    /// The HTTP status of the server's refusal, when that is what failed.
    var status: UInt?

    init(_ description: String, status: UInt? = nil) {
        self.description = description
        self.status = status
    }
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
