import NIOCore
import NIOPosix
import Pools

/// A prototype of a non-blocking Redis client, for comparison with ``RedisClient``'s
/// blocking hiredis calls on a thread pool: one TCP connection on a SwiftNIO event loop,
/// commands formatted by hiredis, replies parsed by hiredis's reader in
/// ``RedisReplyHandler``, any number of commands in flight (pipelined).
///
/// A benchmark, not a client: no reconnecting, no timeouts, no `AUTH`/`SELECT`.
final class NIORedisConnection: Sendable {
    private let channel: any Channel

    private init(channel: any Channel) {
        self.channel = channel
    }

    /// Connects to Redis (`TCP_NODELAY` on, as hiredis does).
    static func connect(host: String, port: Int, group: any EventLoopGroup) async throws -> NIORedisConnection {
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RedisReplyHandler())
                }
            }
            .connect(host: host, port: port)
            .get()
        return NIORedisConnection(channel: channel)
    }

    /// Sends one command and waits for its reply; other commands may be in flight.
    func command(_ arguments: [String]) async throws -> RedisReply {
        let bytes = try HiredisCommand.format(arguments, allocator: channel.allocator)
        let reply = channel.eventLoop.makePromise(of: RedisReply.self)
        // A write that fails before the handler queued the promise must still fail it;
        // failing a promise the handler already failed does nothing.
        channel.writeAndFlush(RedisReplyHandler.Request(bytes: bytes, reply: reply)).whenFailure { error in
            reply.fail(error)
        }
        return try await reply.futureResult.get()
    }

    /// `EVALSHA` of a script Redis already knows (no `NOSCRIPT` handling).
    func evalSHA(script: RedisScript, keys: [String], arguments: [String]) async throws -> RedisReply {
        try await command(["EVALSHA", script.sha1, String(keys.count)] + keys + arguments)
    }

    func close() async throws {
        try await channel.close()
    }
}
