import HTTPTypes
import NIOCore
import NIOHTTPTypes
import NIOPosix
import Providers

/// Takes the inference requests of a client connection off the router's path: sits
/// behind the connection guard (`ClientConnectionHandler`, so every timeout, limit and
/// malformed-framing answer applies alike) and in front of Hummingbird. An inference
/// request (`POST /v1/{operation}` or `POST /tenants/{tenant}/v1/{operation}`) is served
/// here by an `InferenceExchange`, on this connection's event loop, with its upstream on
/// the same loop; every other request goes on to Hummingbird, which serves the management
/// API, the models list and metrics as before.
///
/// HTTP/1.1 answers in request order: a request that arrives while the other path is
/// still answering waits (an inference request arriving while Hummingbird answers goes
/// to Hummingbird).
final class InferenceChannelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let plane: DataPlane
    /// Completed with the first request this hands to Hummingbird, whose task waits for it.
    private var routerNeeded: EventLoopPromise<Void>?
    private var pool: UpstreamPool?
    private var context: ChannelHandlerContext?
    /// The request being served here.
    private var exchange: InferenceExchange?
    /// Whether the request being read goes to Hummingbird (its body and end follow it).
    private var forwardingRequest = false
    /// Requests handed to Hummingbird whose answers have not ended.
    private var hummingbirdAnswers = 0
    /// Parts of requests that arrived while an exchange answers, pipelined.
    private var waiting: CircularBuffer<HTTPRequestPart> = []
    private var waitingBytes = 0
    /// A read held back while too much pipelined input waits.
    private var heldRead = false
    /// The server asked connections to close once idle.
    private var quiescing = false

    init(plane: DataPlane, routerNeeded: EventLoopPromise<Void>) {
        self.plane = plane
        self.routerNeeded = routerNeeded
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        pool = plane.pool(for: context.eventLoop)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        route(unwrapInboundIn(data), context: context)
    }

    private func route(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        if let exchange, exchange.isReadingRequest {
            exchange.requestPart(part)
            return
        }
        if forwardingRequest {
            if case .end = part { forwardingRequest = false }
            context.fireChannelRead(wrapInboundOut(part))
            return
        }
        if exchange != nil {
            // Pipelined behind the answer being written.
            waiting.append(part)
            if case .body(let bytes) = part { waitingBytes += bytes.readableBytes }
            return
        }
        guard case .head(let head) = part else {
            // The rest of a request answered early (its body after a refusal): dropped.
            return
        }
        if hummingbirdAnswers == 0, head.method == .post, let target = head.path, let route = InferenceRoute(target: target),
           let pool {
            let exchange = InferenceExchange(plane: plane, pool: pool, handler: self, route: route, request: head)
            self.exchange = exchange
            exchange.start()
            return
        }
        forwardingRequest = true
        hummingbirdAnswers += 1
        if let routerNeeded {
            self.routerNeeded = nil
            routerNeeded.succeed()
        }
        context.fireChannelRead(wrapInboundOut(part))
    }

    func channelInactive(context: ChannelHandlerContext) {
        exchange?.clientLeft()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case let channelEvent as ChannelEvent where channelEvent == .inputClosed:
            // A client closing its side is taken as gone (like nginx's 499).
            exchange?.clientLeft()
            context.fireUserInboundEventTriggered(event)
        case is ChannelShouldQuiesceEvent where exchange != nil:
            // Passed on once the answer in progress has ended: then the connection is idle.
            quiescing = true
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A rejection of the request being read (its body too slow or too large) fails
        // that request with the answer it deserves.
        if let exchange, exchange.isReadingRequest,
           let rejection = error as? OpenAIError ?? ClientConnectionHandler.rejection(for: error) {
            exchange.rejected(rejection)
            return
        }
        context.fireErrorCaught(error)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { exchange?.clientWritable() }
        context.fireChannelWritabilityChanged()
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { hummingbirdAnswers = max(0, hummingbirdAnswers - 1) }
        context.write(data, promise: promise)
    }

    func read(context: ChannelHandlerContext) {
        guard waitingBytes < Self.mostWaitingBytes, waiting.count < Self.mostWaitingParts else {
            heldRead = true
            return
        }
        context.read()
    }

    /// Pipelined input held while an answer is written, beyond which reading pauses.
    static let mostWaitingBytes = 1 << 20
    static let mostWaitingParts = 64

    // MARK: For the exchange

    var isClientWritable: Bool { context?.channel.isWritable ?? false }

    func writeResponse(_ part: HTTPResponsePart, flush: Bool = false, promise: EventLoopPromise<Void>? = nil) {
        guard let context else { return }
        if flush {
            context.writeAndFlush(wrapOutboundOut(part), promise: promise)
        } else {
            context.write(wrapOutboundOut(part), promise: promise)
        }
    }

    func flush() {
        context?.flush()
    }

    /// Closes the client connection (a whole answer the upstream cut short).
    func closeClient() {
        context?.close(promise: nil)
    }

    /// The exchange wrote its answer's end: what waited goes on.
    func exchangeEnded(_ ended: InferenceExchange) {
        guard exchange === ended, let context else { return }
        // An exchange answered before its body was read leaves the rest of that request
        // to be dropped (`route` drops parts that are not a head); the guard closes the
        // connection after such an answer.
        exchange = nil
        while exchange == nil, let part = waiting.popFirst() {
            if case .body(let bytes) = part { waitingBytes -= bytes.readableBytes }
            route(part, context: context)
        }
        if heldRead, waitingBytes < Self.mostWaitingBytes, waiting.count < Self.mostWaitingParts {
            heldRead = false
            context.read()
        }
        if quiescing, exchange == nil {
            quiescing = false
            context.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
    }
}

@available(*, unavailable)
extension InferenceChannelHandler: Sendable {}
