import CHiredis

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One blocking connection to Redis: the only owner of a hiredis `redisContext`.
///
/// Every call blocks its thread until Redis answers or the configured timeout passes, so
/// it belongs on a thread that may block (``RedisClient`` runs it on its own thread pool),
/// never on Swift concurrency's cooperative threads. After any I/O or protocol error the
/// context is unusable; ``isBroken`` turns true and the owner must drop the connection.
///
/// `@unchecked Sendable` because a hiredis context is not thread-safe but may move between
/// threads: ``RedisConnectionPool`` hands each connection to one work item at a time and
/// takes it back only when that work item is done with it, so it is never used from two
/// threads at once.
final class RedisConnection: @unchecked Sendable {
    private let context: UnsafeMutablePointer<redisContext>
    private let commandTimeout: Duration

    /// Connects, sets the command timeout, and authenticates and selects the database if
    /// the configuration asks for it.
    ///
    /// - Throws: ``RedisError/connectionFailed``, ``RedisError/timeout``,
    ///   ``RedisError/authenticationFailed`` or ``RedisError/databaseSelectionFailed``.
    init(configuration: RedisConfiguration) throws(RedisError) {
        guard let context = redisConnectWithTimeout(
            configuration.host, Int32(configuration.port), timeval(configuration.connectTimeout)
        ) else {
            throw .connectionFailed("hiredis could not allocate a context")
        }
        // From here on a throw runs deinit, which frees the context.
        self.context = context
        self.commandTimeout = configuration.commandTimeout
        let connectErrno = errno
        guard context.pointee.err == 0 else {
            let error = failure(
                errno: connectErrno,
                doing: "connect to \(configuration.host):\(configuration.port)",
                within: configuration.connectTimeout
            )
            throw error == .timeout ? error : .connectionFailed(error.detail ?? "")
        }
        guard redisSetTimeout(context, timeval(configuration.commandTimeout)) == REDIS_OK else {
            throw .connectionFailed("could not set the socket timeout: \(errorText)")
        }
        #if canImport(Darwin)
        // Darwin has no MSG_NOSIGNAL for hiredis's write(); ask the socket not to raise SIGPIPE.
        var on: Int32 = 1
        setsockopt(context.pointee.fd, SOL_SOCKET, SO_NOSIGPIPE, &on, socklen_t(MemoryLayout<Int32>.size))
        #endif
        try handshake(configuration)
    }

    deinit {
        redisFree(context)
    }

    /// True once hiredis has reported an error: the connection must not be used again.
    var isBroken: Bool { context.pointee.err != 0 }

    /// True when an idle connection can be used: no error so far, and nothing to read.
    ///
    /// Every reply of a healthy connection has been read, so anything readable on an idle
    /// socket means Redis closed it (a restart, a `CLIENT KILL`, an idle timeout). Checking
    /// costs one `poll` and saves a command from failing on a connection known to be dead.
    var isReusable: Bool {
        guard !isBroken else { return false }
        var descriptor = pollfd(fd: context.pointee.fd, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 0) == 0
    }

    // MARK: - Commands

    /// Sends one command and waits for its reply.
    ///
    /// - Parameter arguments: the command and its arguments, sent binary-safe (spaces,
    ///   newlines and NUL bytes are kept).
    /// - Returns: the reply; an error reply is `.error`, not a throw.
    /// - Throws: ``RedisError`` if the command could not be sent or answered in time.
    func command(_ arguments: [String]) throws(RedisError) -> RedisReply {
        try Self.validate(arguments)
        let reply = HiredisArguments.withArgv(arguments) { argc, argv, lengths in
            redisCommandArgv(context, argc, argv, lengths)
        }
        let callErrno = errno
        guard let reply else {
            throw failure(errno: callErrno, doing: "run \(Self.name(of: arguments))")
        }
        defer { freeReplyObject(reply) }
        return RedisReply(copying: reply.assumingMemoryBound(to: redisReply.self))
    }

    /// Sends all commands in one write, then reads their replies in order.
    ///
    /// - Parameter commands: commands, each with its arguments.
    /// - Returns: one reply per command, in the order of `commands`.
    /// - Throws: ``RedisError`` if any command could not be sent or answered in time; the
    ///   commands before it may have run.
    func pipeline(_ commands: [[String]]) throws(RedisError) -> [RedisReply] {
        for arguments in commands { try Self.validate(arguments) }
        for arguments in commands {
            let status = HiredisArguments.withArgv(arguments) { argc, argv, lengths in
                redisAppendCommandArgv(context, argc, argv, lengths)
            }
            let callErrno = errno
            guard status == REDIS_OK else { throw failure(errno: callErrno, doing: "queue a pipeline") }
        }
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        for arguments in commands {
            var reply: UnsafeMutableRawPointer?
            let status = redisGetReply(context, &reply)
            let callErrno = errno
            guard status == REDIS_OK, let reply else {
                throw failure(errno: callErrno, doing: "run \(Self.name(of: arguments)) in a pipeline")
            }
            replies.append(RedisReply(copying: reply.assumingMemoryBound(to: redisReply.self)))
            freeReplyObject(reply)
        }
        return replies
    }

    /// Runs a script by its SHA-1; on `NOSCRIPT`, loads it and runs it once more.
    ///
    /// Both attempts use this connection, so the load and the retry reach the same server.
    func evalSHA(_ script: RedisScript, keys: [String], arguments: [String]) throws(RedisError) -> RedisReply {
        let call = ["EVALSHA", script.sha1, String(keys.count)] + keys + arguments
        let reply = try command(call)
        guard case .error(let message) = reply, message.hasPrefix("NOSCRIPT") else { return reply }
        let loaded = try command(["SCRIPT", "LOAD", script.source])
        if case .error = loaded { return loaded }
        return try command(call)
    }

    // MARK: - Connecting

    /// `AUTH` and `SELECT` in one round trip.
    private func handshake(_ configuration: RedisConfiguration) throws(RedisError) {
        var commands: [[String]] = []
        if let password = configuration.password {
            commands.append(configuration.username.map { ["AUTH", $0, password] } ?? ["AUTH", password])
        }
        if configuration.database != 0 {
            commands.append(["SELECT", String(configuration.database)])
        }
        guard !commands.isEmpty else { return }
        let replies = try pipeline(commands)
        for (arguments, reply) in zip(commands, replies) {
            guard case .error(let message) = reply else { continue }
            throw arguments[0] == "AUTH" ? .authenticationFailed(message) : .databaseSelectionFailed(message)
        }
    }

    // MARK: - Errors

    private var errorText: String {
        withUnsafeBytes(of: context.pointee.errstr) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// Turns the context's error into a ``RedisError``.
    ///
    /// hiredis 0.14 reports a socket timeout as an I/O error with `errno` EAGAIN (read or
    /// write timeout) or ETIMEDOUT (connect); 1.x has `REDIS_ERR_TIMEOUT`. `callErrno` must
    /// be read right after the failing call, before anything else can change it.
    private func failure(errno callErrno: Int32, doing action: String, within timeout: Duration? = nil) -> RedisError {
        let text = errorText
        switch context.pointee.err {
        case REDIS_ERR_TIMEOUT:
            return .timeout("\(action): no answer within \(timeout ?? commandTimeout)")
        case REDIS_ERR_IO where callErrno == EAGAIN || callErrno == EWOULDBLOCK || callErrno == ETIMEDOUT:
            return .timeout("\(action): no answer within \(timeout ?? commandTimeout)")
        case REDIS_ERR_EOF:
            return .connectionClosed("\(action): \(text)")
        case REDIS_ERR_PROTOCOL:
            return .protocolError("\(action): \(text)")
        default:
            return .connectionClosed("\(action): \(text.isEmpty ? "unknown error" : text)")
        }
    }

    // MARK: - Arguments

    private static func validate(_ arguments: [String]) throws(RedisError) {
        // An empty command would be sent as `*0`, which Redis never answers.
        guard !arguments.isEmpty else { throw .invalidCommand("a command needs at least its name") }
        guard arguments.count <= Int(Int32.max) else { throw .invalidCommand("too many arguments") }
    }

    /// The command name, for errors: never the arguments, which may hold secrets.
    private static func name(of arguments: [String]) -> String {
        arguments.first?.uppercased() ?? "nothing"
    }
}

extension timeval {
    /// A socket timeout of `duration`, at least 1 ms: a zero timeval would mean no timeout.
    fileprivate init(_ duration: Duration) {
        let microseconds = max(1000, duration.components.seconds * 1_000_000
            + duration.components.attoseconds / 1_000_000_000_000)
        self.init(
            tv_sec: .init(truncatingIfNeeded: microseconds / 1_000_000),
            tv_usec: .init(truncatingIfNeeded: microseconds % 1_000_000)
        )
    }
}
