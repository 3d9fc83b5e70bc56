/// Where an upstream request goes: the connection's origin, and the request target on it.
struct UpstreamTarget: Sendable, Equatable {
    var origin: UpstreamOrigin
    /// The path and query, as the request line carries them.
    var target: String

    /// An absolute `http` or `https` URL; nil for anything else.
    init?(url: String) {
        let isTLS: Bool
        var rest: Substring
        if url.hasPrefix("http://") {
            isTLS = false
            rest = url.dropFirst(7)
        } else if url.hasPrefix("https://") {
            isTLS = true
            rest = url.dropFirst(8)
        } else {
            return nil
        }
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        rest = rest[authorityEnd...]
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        var host = authority
        var port = isTLS ? 443 : 80
        if authority.hasPrefix("[") {
            // An IPv6 literal: [::1]:8080.
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") {
                guard let parsed = Int(after.dropFirst()), (1...65535).contains(parsed) else { return nil }
                port = parsed
            } else if !after.isEmpty {
                return nil
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            guard let parsed = Int(authority[authority.index(after: colon)...]), (1...65535).contains(parsed) else { return nil }
            port = parsed
        }
        guard !host.isEmpty else { return nil }
        if let fragment = rest.firstIndex(of: "#") { rest = rest[..<fragment] }
        self.origin = UpstreamOrigin(isTLS: isTLS, host: String(host), port: port)
        self.target = rest.isEmpty ? "/" : (rest.hasPrefix("?") ? "/" + rest : String(rest))
    }
}

/// One upstream server, as connections are pooled: scheme, host and port.
struct UpstreamOrigin: Hashable, Sendable, CustomStringConvertible {
    var isTLS: Bool
    var host: String
    var port: Int

    /// The `Host` header of requests to it.
    var hostHeader: String {
        let bracketed = host.contains(":") ? "[\(host)]" : host
        return port == (isTLS ? 443 : 80) ? bracketed : "\(bracketed):\(port)"
    }

    var description: String { (isTLS ? "https://" : "http://") + hostHeader }
}
