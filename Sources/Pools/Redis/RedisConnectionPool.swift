import Synchronization

/// The idle connections of a ``RedisClient``.
///
/// Work items on the client's threads take a connection, use it and give it back. The
/// client has as many threads as the pool may hold connections, and each work item holds
/// one connection at a time, so taking one never waits: it is an idle one or a new one.
/// A connection that broke is dropped, never returned, and the next work item that finds
/// no usable idle connection connects again, which is all reconnecting takes.
final class RedisConnectionPool: Sendable {
    private let configuration: RedisConfiguration
    private let idle: Mutex<[RedisConnection]> = Mutex([])

    init(configuration: RedisConfiguration) {
        self.configuration = configuration
    }

    /// Runs `body` with a connection that is healthy as far as can be told without using
    /// it. Blocks: call it on a thread that may block.
    func withConnection<Result>(_ body: (RedisConnection) throws(RedisError) -> Result) throws(RedisError) -> Result {
        let connection = try checkOut()
        defer { checkIn(connection) }
        return try body(connection)
    }

    /// Closes the idle connections. Connections in use close when they come back broken or
    /// when the pool is released.
    func closeIdle() {
        let closing = idle.withLock { connections in
            defer { connections.removeAll() }
            return connections
        }
        _ = closing
    }

    private func checkOut() throws(RedisError) -> RedisConnection {
        // Most recently used first: the one least likely to have been closed by Redis.
        while let candidate = idle.withLock({ $0.popLast() }) {
            if candidate.isReusable { return candidate }
        }
        return try RedisConnection(configuration: configuration)
    }

    private func checkIn(_ connection: RedisConnection) {
        guard !connection.isBroken else { return }
        idle.withLock { $0.append(connection) }
    }
}
