import NIOCore
import NIOHTTP1

/// Sits between the HTTP/1.1 decoder and the conversion to HTTP types, where the
/// request's version is still known: an HTTP/1.0 request with `Transfer-Encoding` has
/// faulty framing (RFC 9112 §6.1), the shape of request smuggling, and is refused.
final class HTTP10FramingHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart

    /// Set once a request was refused: nothing after it on the connection is passed on.
    private var refused = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        if case .head(let head) = unwrapInboundIn(data), head.version.major == 1, head.version.minor == 0,
           head.headers.contains(name: "transfer-encoding") {
            refused = true
            context.fireErrorCaught(FaultyFraming())
            return
        }
        context.fireChannelRead(data)
    }

    struct FaultyFraming: Error {}
}

@available(*, unavailable)
extension HTTP10FramingHandler: Sendable {}
