import Foundation
import NIOCore

/// Where mail goes and as whom, from `smtp://[user:password@]host[:port][?from=…&tls_verify=false]`.
///
/// `smtp://` (port 25 by default) upgrades with STARTTLS when the server offers it;
/// `smtps://` (port 465 by default) is TLS from the first byte. `from` defaults to
/// `switchyard@<host>`; `tls_verify=false` turns certificate verification off, for test
/// servers only. The description never shows the password.
public struct SMTPConfiguration: Sendable, CustomStringConvertible {
    /// A login for `AUTH PLAIN`, sent only over TLS.
    public struct Credentials: Sendable, CustomStringConvertible, CustomReflectable {
        public let username: String
        public let password: String
        public var description: String { "\(username):<redacted>" }
        public var customMirror: Mirror { Mirror(self, children: ["username": username]) }
    }

    public let host: String
    public let port: Int
    /// Whether TLS starts with the connection (`smtps://`) rather than by STARTTLS.
    public let implicitTLS: Bool
    /// The envelope sender and `From:` address.
    public let from: String
    public let credentials: Credentials?
    /// Whether the server's certificate goes unchecked (`?tls_verify=false`).
    public let insecureSkipVerify: Bool

    /// Parses an `smtp://` or `smtps://` URL.
    ///
    /// - Throws: `SMTPError` at step `.configuration`; its text never repeats the URL,
    ///   which may hold a password.
    public init(url: String) throws(SMTPError) {
        func invalid(_ reason: String) -> SMTPError { SMTPError(step: .configuration, kind: .invalidURL(reason)) }
        guard let components = URLComponents(string: url) else { throw invalid("not a URL") }
        switch components.scheme?.lowercased() {
        case "smtp": implicitTLS = false
        case "smtps": implicitTLS = true
        default: throw invalid("the scheme must be smtp or smtps")
        }
        var host = components.host ?? ""
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw invalid("there is no host") }
        guard host.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || ".-:".unicodeScalars.contains($0)) }) else {
            throw invalid("the host is not a host name or IP address")
        }
        self.host = host
        port = components.port ?? (implicitTLS ? 465 : 25)
        guard (1...65535).contains(port) else { throw invalid("the port must be from 1 to 65535") }
        guard components.path.isEmpty || components.path == "/", components.fragment == nil else {
            throw invalid("only a host, port, credentials and query are allowed")
        }

        switch (components.user, components.password) {
        case (nil, nil): credentials = nil
        case (let user?, let password?) where !user.isEmpty && !password.isEmpty:
            credentials = Credentials(username: user, password: password)
        default: throw invalid("credentials need both a user and a password")
        }

        var query: [String: String] = [:]
        for item in components.queryItems ?? [] {
            guard ["from", "tls_verify"].contains(item.name) else { throw invalid("unknown query parameter '\(item.name)'") }
            guard query[item.name] == nil else { throw invalid("'\(item.name)' is given twice") }
            query[item.name] = item.value ?? ""
        }
        switch query["tls_verify"] {
        case nil, "true": insecureSkipVerify = false
        case "false": insecureSkipVerify = true
        default: throw invalid("tls_verify must be true or false")
        }
        let domain = !Self.isIPAddress(host) ? host : host.contains(":") ? "[IPv6:\(host)]" : "[\(host)]"
        do {
            from = try Self.checkedAddress(query["from"] ?? "switchyard@\(domain)", field: "from")
        } catch {
            throw SMTPError(step: .configuration, kind: error.kind)
        }
    }

    /// Whether `host` is an IP address literal, which TLS must not send as SNI.
    static func isIPAddress(_ host: String) -> Bool { (try? SocketAddress(ipAddress: host, port: 0)) != nil }

    public var description: String {
        let login = credentials.map { "\($0)@" } ?? ""
        return "\(implicitTLS ? "smtps" : "smtp")://\(login)\(host):\(port) from \(from)"
    }

    /// `address` when it is safe inside `<…>` of an SMTP command and as a header value.
    ///
    /// Line breaks are refused first and by name: they are how headers and commands
    /// would be injected. Addresses are ASCII only, as the server is not asked for SMTPUTF8.
    static func checkedAddress(_ address: String, field: String) throws(SMTPError) -> String {
        guard !address.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" }) else {
            throw SMTPError(step: .message, kind: .unsafeField(field))
        }
        // The domain may be an address literal such as `[IPv6:::1]`; the local part is unquoted.
        func allowed(_ part: Substring, forbidden: String) -> Bool {
            !part.isEmpty && part.unicodeScalars.allSatisfy { (0x21...0x7E).contains($0.value) && !forbidden.unicodeScalars.contains($0) }
        }
        let parts = address.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, allowed(parts[0], forbidden: "<>()[],;:\"\\"), allowed(parts[1], forbidden: "<>\"\\") else {
            throw SMTPError(step: .message, kind: .invalidAddress(field))
        }
        return address
    }
}
