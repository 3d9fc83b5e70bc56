import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypesHTTP1

/// Switchyard's HTTP/1.1 child channel: Hummingbird's, with the connection guarded
/// (`ClientConnectionHandler`), its inference requests taken by the data plane
/// (`InferenceChannelHandler`), and the connection's `ClientConnection` bound to the task
/// that serves the rest.
struct ClientChannel: ServerChildChannel {
    struct Value: ServerChildChannelValue {
        let http1: HTTP1Channel.Value
        let connection: ClientConnection
        /// Completed when the router has a request of the connection to serve, or the
        /// connection closes (nil: the router reads every request).
        let routerNeeded: EventLoopPromise<Void>?
        var channel: any Channel { http1.channel }
    }

    let http1: HTTP1Channel
    /// Serves the connection's inference requests; nil leaves them to the router.
    let dataPlane: DataPlane?

    /// - Parameters:
    ///   - responder: The application's responder.
    ///   - configuration: Timeouts and the body limit for each connection.
    init(
        responder: @escaping HTTPChannelHandler.Responder,
        configuration: ClientConnectionHandler.Configuration,
        dataPlane: DataPlane?,
        metrics: ProxyMetrics,
        logger: Logger
    ) {
        self.dataPlane = dataPlane
        self.http1 = HTTP1Channel(
            responder: responder,
            configuration: .init(
                additionalChannelHandlers: [
                    ClientConnectionHandler(configuration: configuration, metrics: metrics, logger: logger),
                ],
                // Idle connections are closed by ClientConnectionHandler, by what they are doing.
                idleTimeout: nil,
                httpDecoderConfiguration: .init(
                    maxHeaderFieldSize: Self.largestHeaderBytes,
                    maxHeaderListSize: Self.largestHeaderBytes,
                    maxHeaderFieldCount: Self.mostHeaderFields
                )
            )
        )
    }

    /// Bounds of a request's headers; more is a 431.
    static let largestHeaderBytes = 64 << 10
    static let mostHeaderFields = 256

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        do {
            // First in the pipeline: it sees bytes before the HTTP decoder holds them.
            try channel.pipeline.syncOperations.addHandler(ClientBytesHandler())
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        return http1.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let pipeline = channel.pipeline.syncOperations
            let codec = try pipeline.handler(type: HTTP1ToHTTPServerCodec.self)
            try pipeline.addHandler(HTTP10FramingHandler(), position: .before(codec))
            let guardHandler = try pipeline.handler(type: ClientConnectionHandler.self)
            guard let dataPlane else {
                return Value(http1: value, connection: guardHandler.connection, routerNeeded: nil)
            }
            try channel.syncOptions?.setOption(.recvAllocator, value: DataPlane.receiveBuffers)
            let routerNeeded = channel.eventLoop.makePromise(of: Void.self)
            channel.closeFuture.whenComplete { _ in routerNeeded.succeed() }
            // Behind the guard, so its timeouts and limits hold for inference requests too.
            try pipeline.addHandler(
                InferenceChannelHandler(plane: dataPlane, routerNeeded: routerNeeded), position: .after(guardHandler)
            )
            return Value(http1: value, connection: guardHandler.connection, routerNeeded: routerNeeded)
        }
    }

    func handle(value: Value, logger: Logger) async {
        // A connection that only ever carries inference requests never needs the router's
        // task to read it: the task waits here, shallow, rather than in the router's
        // request loop, whose deeper frames the task would keep for as long as the
        // connection is open. What arrives for the router meanwhile waits in its channel.
        if let routerNeeded = value.routerNeeded {
            // Cancelled (the server stopping past its grace period): on to the router's
            // loop, which closes the connection's input at once.
            await withTaskCancellationHandler {
                try? await routerNeeded.futureResult.get()
            } onCancel: {
                routerNeeded.succeed()
            }
        }
        await ClientConnection.$current.withValue(value.connection) {
            await http1.handle(value: value.http1, logger: logger)
        }
    }
}
