import CHiredis
import NIOCore
import Pools

/// The channel handler of ``NIORedisConnection``: writes formatted commands, parses the
/// replies with hiredis's reader and completes the callers' promises in order, so any
/// number of commands may be in flight on the connection at once (pipelined).
///
/// Lives on its channel's event loop, like every channel handler: the reader and the
/// queue of promises are only touched there.
final class RedisReplyHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = Request
    typealias OutboundOut = ByteBuffer

    /// One command on its way: its RESP bytes and the promise of its reply.
    struct Request: Sendable {
        var bytes: ByteBuffer
        var reply: EventLoopPromise<RedisReply>
    }

    private let reader: UnsafeMutablePointer<redisReader>
    private var waiting = CircularBuffer<EventLoopPromise<RedisReply>>(initialCapacity: 64)

    init() {
        guard let reader = redisReaderCreate() else { fatalError("hiredis could not allocate a reader") }
        self.reader = reader
    }

    deinit {
        redisReaderFree(reader)
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        // Queued before the write: Redis answers in the order commands reach it.
        waiting.append(request.reply)
        context.write(wrapOutboundOut(request.bytes), promise: promise)
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        let fed = buffer.withUnsafeReadableBytes { bytes in
            redisReaderFeed(reader, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        guard fed == REDIS_OK else { return fail(context, NIORedisError("hiredis could not take the bytes read")) }
        while true {
            var reply: UnsafeMutableRawPointer?
            guard redisReaderGetReply(reader, &reply) == REDIS_OK else {
                return fail(context, NIORedisError("Redis sent something hiredis could not parse"))
            }
            guard let reply else { return }
            let value = RedisReply(copying: reply.assumingMemoryBound(to: redisReply.self))
            freeReplyObject(reply)
            guard let promise = waiting.popFirst() else {
                return fail(context, NIORedisError("Redis sent a reply nobody asked for"))
            }
            promise.succeed(value)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failWaiting(NIORedisError("the connection to Redis closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(context, error)
    }

    // MARK: Failing

    private func fail(_ context: ChannelHandlerContext, _ error: any Error) {
        failWaiting(error)
        context.close(promise: nil)
    }

    private func failWaiting(_ error: any Error) {
        while let promise = waiting.popFirst() {
            promise.fail(error)
        }
    }
}

/// A failure of the prototype NIO connection.
struct NIORedisError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}
