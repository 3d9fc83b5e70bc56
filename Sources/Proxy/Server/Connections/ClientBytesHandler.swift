import NIOCore

/// Fired by `ClientBytesHandler` for every read from the client, before the bytes are decoded.
struct ClientBytesReceived {
    var count: Int
}

/// The first handler of a client connection: tells the connection handler, behind the
/// HTTP decoder, that bytes arrived, which the decoder does not say until a whole head
/// is in.
final class ClientBytesHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireUserInboundEventTriggered(ClientBytesReceived(count: unwrapInboundIn(data).readableBytes))
        context.fireChannelRead(data)
    }
}

@available(*, unavailable)
extension ClientBytesHandler: Sendable {}
