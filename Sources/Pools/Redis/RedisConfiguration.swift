/// Where Redis is and how to talk to it: address, credentials, database, timeouts and
/// the size of the client's connection pool.
///
/// Its `description` hides the password, so a configuration can be logged.
public struct RedisConfiguration: Sendable, Hashable, CustomStringConvertible {
    /// A host name or IP address (IPv6 without brackets).
    public var host: String
    public var port: Int
    /// The database selected with `SELECT` on connect; 0 needs no `SELECT`.
    public var database: Int
    /// The ACL user (Redis 6+); nil authenticates as `default` with `password`.
    public var username: String?
    /// Sent with `AUTH` on connect; nil sends no `AUTH`.
    public var password: String?
    /// The longest a TCP connect may take. Name resolution is not bounded by it.
    public var connectTimeout: Duration
    /// The longest a command may take to be written and answered; a pipeline gets this
    /// much per reply.
    public var commandTimeout: Duration
    /// Connections, and threads that run blocking hiredis calls: at most this many
    /// commands are in flight at once; more wait their turn.
    public var poolSize: Int

    /// - Parameters:
    ///   - host: a host name or IP address.
    ///   - port: the TCP port; 6379 by default.
    ///   - database: the database number; 0 by default.
    ///   - username: the ACL user, if any.
    ///   - password: the password sent with `AUTH`, if any.
    ///   - connectTimeout: the longest a connect may take; 1 s by default.
    ///   - commandTimeout: the longest a command may take; 1 s by default.
    ///   - poolSize: connections and threads; at least 1, 4 by default.
    public init(
        host: String = "127.0.0.1",
        port: Int = 6379,
        database: Int = 0,
        username: String? = nil,
        password: String? = nil,
        connectTimeout: Duration = .seconds(1),
        commandTimeout: Duration = .seconds(1),
        poolSize: Int = 4
    ) {
        self.host = host
        self.port = port
        self.database = database
        self.username = username
        self.password = password
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.poolSize = max(1, poolSize)
    }

    /// The configuration as a `redis://` URL with the password replaced by `***`.
    public var description: String {
        var credentials = ""
        if let password {
            credentials = "\(username ?? ""):\(password.isEmpty ? "" : "***")@"
        }
        let address = host.contains(":") ? "[\(host)]" : host
        return "redis://\(credentials)\(address):\(port)/\(database)"
    }
}
