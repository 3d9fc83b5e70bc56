extension RedisConfiguration {
    /// Reads a `redis://[user:password@]host[:port][/database]` URL, the form `--redis`
    /// and `SWITCHYARD_REDIS_URL` take.
    ///
    /// As with `redis-cli -u`, user info without a colon is a password alone, and the user
    /// and password are percent-decoded. The port defaults to 6379 and the database to 0.
    /// Errors name the part that is wrong and never repeat the password.
    ///
    /// - Parameters:
    ///   - url: the URL.
    ///   - connectTimeout: the longest a connect may take.
    ///   - commandTimeout: the longest a command may take.
    ///   - poolSize: connections and threads.
    /// - Throws: ``RedisError/invalidURL``.
    public init(
        url: String,
        connectTimeout: Duration = .seconds(1),
        commandTimeout: Duration = .seconds(1),
        poolSize: Int = 4
    ) throws(RedisError) {
        guard let schemeEnd = url.firstRange(of: "://") else {
            throw .invalidURL("missing scheme: expected redis://host:port/database")
        }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "redis" else {
            if scheme == "rediss" { throw .invalidURL("rediss:// (TLS) is not supported; use redis://") }
            throw .invalidURL("scheme '\(scheme)' is not redis")
        }
        var rest = url[schemeEnd.upperBound...]
        if rest.contains("?") || rest.contains("#") {
            throw .invalidURL("query parameters and fragments are not supported")
        }

        var path = Substring("")
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }

        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                let user = try Self.percentDecoded(userInfo[..<colon], part: "user")
                username = user.isEmpty ? nil : user
                password = try Self.percentDecoded(userInfo[userInfo.index(after: colon)...], part: "password")
            } else {
                password = try Self.percentDecoded(userInfo, part: "password")
            }
        }

        let (host, port) = try Self.hostAndPort(rest)
        self.init(
            host: host,
            port: port,
            database: try Self.database(path),
            username: username,
            password: password,
            connectTimeout: connectTimeout,
            commandTimeout: commandTimeout,
            poolSize: poolSize
        )
    }

    private static func hostAndPort(_ authority: Substring) throws(RedisError) -> (String, Int) {
        var host = authority
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                throw .invalidURL("IPv6 host is missing its closing ']'")
            }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw .invalidURL("unexpected text after the IPv6 host") }
                portText = after.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        }
        guard !host.isEmpty else { throw .invalidURL("host is missing") }
        guard let portText else { return (String(host), 6379) }
        guard let port = Int(portText), portText.allSatisfy(\.isASCIIDigit) else {
            throw .invalidURL("port '\(portText)' is not a number")
        }
        guard (1...65535).contains(port) else { throw .invalidURL("port \(port) is not between 1 and 65535") }
        return (String(host), port)
    }

    private static func database(_ path: Substring) throws(RedisError) -> Int {
        guard !path.isEmpty else { return 0 }
        guard path.allSatisfy(\.isASCIIDigit), let database = Int(path) else {
            throw .invalidURL("database '\(path)' is not a non-negative number")
        }
        return database
    }

    private static func percentDecoded(_ text: Substring, part: String) throws(RedisError) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                throw .invalidURL("\(part) has a malformed percent escape")
            }
            bytes.append(high << 4 | low)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
