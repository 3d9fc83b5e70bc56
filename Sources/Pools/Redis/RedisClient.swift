import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The Redis client of Switchyard: commands, pipelines and Lua scripts over a small pool
/// of hiredis connections.
///
/// hiredis blocks while it waits for Redis, so every call runs on the client's own
/// `NIOThreadPool`, one thread per connection, and never on Swift concurrency's
/// cooperative threads. Every wait is bounded by the configured timeouts; a connection
/// that breaks is dropped and the next call connects again.
///
/// Cancelling a task drops its command if it is still waiting for a thread; a command
/// already sent runs to its reply or its timeout.
///
/// Call ``shutdown()`` when done: it lets in-flight commands finish and closes the
/// connections.
public final class RedisClient: Sendable {
    public let configuration: RedisConfiguration
    private let threadPool: NIOThreadPool
    private let connections: RedisConnectionPool

    /// Starts the client's threads. Connections are made on first use.
    ///
    /// - Parameter configuration: where Redis is, credentials, timeouts and pool size.
    public init(configuration: RedisConfiguration) {
        self.configuration = configuration
        self.connections = RedisConnectionPool(configuration: configuration)
        self.threadPool = NIOThreadPool(numberOfThreads: configuration.poolSize)
        Self.startWithoutSIGPIPE(threadPool)
    }

    deinit {
        // A forgotten shutdown must not leave threads behind (or trip NIOThreadPool's
        // deinit assertion); shutting down again after shutdown() does nothing.
        threadPool.shutdownGracefully { _ in }
    }

    /// Lets in-flight commands finish, fails queued ones with ``RedisError/clientShutDown``,
    /// stops the threads and closes the connections.
    public func shutdown() async throws {
        try await threadPool.shutdownGracefully()
        connections.closeIdle()
    }

    // MARK: - Commands

    /// Runs one command.
    ///
    /// - Parameter arguments: the command and its arguments, for example
    ///   `["SET", key, value, "PX", "60000"]`; sent binary-safe.
    /// - Returns: the reply; an error reply is `.error` (see ``RedisReply/checked()``).
    /// - Throws: ``RedisError`` when Redis cannot be reached or does not answer in time.
    public func command(_ arguments: [String]) async throws -> RedisReply {
        try await run { connection throws(RedisError) in try connection.command(arguments) }
    }

    /// Runs several commands in one round trip.
    ///
    /// - Parameter commands: commands, each with its arguments.
    /// - Returns: one reply per command, in order; each may be `.error`.
    /// - Throws: ``RedisError`` when Redis cannot be reached or does not answer in time;
    ///   some of the commands may have run.
    public func pipeline(_ commands: [[String]]) async throws -> [RedisReply] {
        guard !commands.isEmpty else { return [] }
        return try await run { connection throws(RedisError) in try connection.pipeline(commands) }
    }

    /// Runs a Lua script with `EVALSHA`; if Redis does not know it (`NOSCRIPT`), loads it
    /// with `SCRIPT LOAD` and runs it once more.
    ///
    /// - Parameters:
    ///   - script: the script.
    ///   - keys: the `KEYS` of the script.
    ///   - arguments: the `ARGV` of the script.
    /// - Returns: the script's reply; a script error is `.error`.
    /// - Throws: ``RedisError`` when Redis cannot be reached or does not answer in time.
    public func evalSHA(script: RedisScript, keys: [String], arguments: [String]) async throws -> RedisReply {
        try await run { connection throws(RedisError) in
            try connection.evalSHA(script, keys: keys, arguments: arguments)
        }
    }

    // MARK: - Threads

    private func run<Result: Sendable>(
        _ body: @escaping @Sendable (RedisConnection) throws(RedisError) -> Result
    ) async throws -> Result {
        let connections = self.connections
        do {
            return try await threadPool.runIfActive {
                try connections.withConnection(body)
            }
        } catch is CancellationError where !Task.isCancelled {
            // NIOThreadPool cancels the work it will not run because it is shutting down.
            throw RedisError.clientShutDown
        }
    }

    /// Starts the threads with SIGPIPE blocked, which they inherit.
    ///
    /// hiredis writes with `write(2)`, and writing to a socket Redis has closed raises
    /// SIGPIPE, which kills the process by default. Blocked on these threads, the signal
    /// stays pending and harmless, and the write fails with EPIPE, which hiredis reports
    /// as an error. The calling thread gets its own signal mask back at once.
    private static func startWithoutSIGPIPE(_ threadPool: NIOThreadPool) {
        var blocked = sigset_t()
        var previous = sigset_t()
        sigemptyset(&blocked)
        sigaddset(&blocked, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &blocked, &previous)
        threadPool.start()
        pthread_sigmask(SIG_SETMASK, &previous, nil)
    }
}
