/// How long client connections may stay quiet, and how many may be open.
public struct ClientConnectionOptions: Sendable {
    /// The most time from a request's first byte (or the connection opening) until its
    /// whole head has arrived.
    public var headerTimeout: Duration
    /// The longest pause between two reads of a request body; a longer one is a 408.
    public var bodyTimeout: Duration
    /// How long a connection may idle between requests.
    public var keepAliveTimeout: Duration
    /// How long a client may read nothing of what is written to it (its socket stays
    /// unwritable) before the connection is closed.
    public var sendTimeout: Duration
    /// Client connections open at once; beyond it, new ones wait to be accepted.
    public var maximumConnections: Int

    public init(
        headerTimeout: Duration = .seconds(15),
        bodyTimeout: Duration = .seconds(30),
        keepAliveTimeout: Duration = .seconds(60),
        sendTimeout: Duration = .seconds(60),
        maximumConnections: Int = 10_000
    ) {
        self.headerTimeout = headerTimeout
        self.bodyTimeout = bodyTimeout
        self.keepAliveTimeout = keepAliveTimeout
        self.sendTimeout = sendTimeout
        self.maximumConnections = maximumConnections
    }
}
