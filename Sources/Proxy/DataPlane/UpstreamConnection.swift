import NIOCore
import NIOHTTP1

/// What receives an upstream answer: the exchange whose request a connection carries.
/// Every call comes on the connection's event loop.
protocol UpstreamReceiver: AnyObject {
    func upstreamHead(_ head: HTTPResponseHead)
    func upstreamBody(_ body: ByteBuffer)
    func upstreamEnd()
    /// The bytes of one read have been delivered.
    func upstreamReadComplete()
    /// The connection failed or closed before the answer was complete.
    func upstreamFailed(_ error: any Error)
}

/// One keep-alive HTTP/1.1 connection to an upstream, on one event loop, carrying one
/// request at a time. It reads only when asked (`read()`), so the reader of the answer
/// sets the pace: a client that stops reading stops the upstream's reads, and the
/// upstream's TCP window closes rather than the proxy buffering the answer.
final class UpstreamConnection {
    let channel: any Channel
    let origin: UpstreamOrigin
    /// Requests it has carried, the current one included.
    private(set) var requests = 0
    /// Whether the answer received any byte yet.
    private(set) var receivedAnything = false
    /// Whether it may carry another request once the answer ends.
    private(set) var isReusable = true
    private(set) weak var receiver: (any UpstreamReceiver)?
    /// Closes it when it has been idle in the pool too long.
    var idleTimer: Scheduled<Void>?

    /// Passes reads on when asked for (set once the pipeline is built).
    fileprivate weak var gate: UpstreamConnectionHandler?

    init(channel: any Channel, origin: UpstreamOrigin) {
        self.channel = channel
        self.origin = origin
    }

    var isActive: Bool { channel.isActive }

    /// Sends a request whose answer goes to `receiver`.
    func send(head: HTTPRequestHead, body: ByteBuffer, to receiver: any UpstreamReceiver) {
        self.receiver = receiver
        requests += 1
        receivedAnything = false
        if head.headers[canonicalForm: "connection"].contains(where: { $0.lowercased() == "close" }) { isReusable = false }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if body.readableBytes > 0 { channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        read()
    }

    /// Asks for the next bytes from the upstream: one read.
    func read() {
        gate?.demandRead()
    }

    /// Gives up the request in progress: the connection closes, and nothing more reaches
    /// its receiver.
    func abandon() {
        receiver = nil
        isReusable = false
        channel.close(promise: nil)
    }

    /// Closes the connection under its request, which fails as the closing is seen.
    func abandonForShutdown() {
        isReusable = false
        channel.close(promise: nil)
    }

    // MARK: From the channel

    fileprivate func received(_ part: HTTPClientResponsePart) {
        receivedAnything = true
        switch part {
        case .head(let head):
            if !head.isKeepAlive { isReusable = false }
            receiver?.upstreamHead(head)
        case .body(let body):
            receiver?.upstreamBody(body)
        case .end:
            let receiver = self.receiver
            self.receiver = nil
            receiver?.upstreamEnd()
        }
    }

    fileprivate func readComplete() {
        receiver?.upstreamReadComplete()
    }

    fileprivate func failed(_ error: any Error) {
        isReusable = false
        let receiver = self.receiver
        self.receiver = nil
        receiver?.upstreamFailed(error)
    }

    /// An idle connection that hears from its server (data, or its closing) is done.
    fileprivate var isIdle: Bool { receiver == nil }
}

/// The last handler of an upstream connection's pipeline: hands the answer's parts to
/// the connection, and passes the channel's reads on only when the connection asks for
/// one (the reader's pace), so the TLS handshake below it still reads as it needs.
final class UpstreamConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart

    let connection: UpstreamConnection
    /// Called when the connection closes, so its pool forgets it.
    private let onClose: (UpstreamConnection) -> Void
    private var context: ChannelHandlerContext?
    /// A read the channel asked for, held until the reader wants one.
    private var heldRead = false
    /// A read the reader wants, passed on when the channel next asks.
    private var wantsRead = false

    init(connection: UpstreamConnection, onClose: @escaping (UpstreamConnection) -> Void) {
        self.connection = connection
        self.onClose = onClose
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        connection.gate = self
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func read(context: ChannelHandlerContext) {
        if wantsRead {
            wantsRead = false
            context.read()
        } else {
            heldRead = true
        }
    }

    fileprivate func demandRead() {
        guard let context else { return }
        if heldRead {
            heldRead = false
            context.read()
        } else {
            wantsRead = true
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if connection.isIdle {
            // Nothing was asked: an idle connection has no business sending.
            connection.abandon()
            return
        }
        connection.received(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        connection.readComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.failed(UpstreamConnectionClosed())
        onClose(connection)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        connection.failed(error)
        context.close(promise: nil)
    }
}

/// The upstream closed the connection before its answer was complete.
struct UpstreamConnectionClosed: Error, CustomStringConvertible {
    var description: String { "the upstream closed the connection" }
}

@available(*, unavailable)
extension UpstreamConnection: Sendable {}

@available(*, unavailable)
extension UpstreamConnectionHandler: Sendable {}
