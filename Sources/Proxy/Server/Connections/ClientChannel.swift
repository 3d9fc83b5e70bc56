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
            if let dataPlane {
                // Behind the guard, so its timeouts and limits hold for inference requests too.
                try pipeline.addHandler(InferenceChannelHandler(plane: dataPlane), position: .after(guardHandler))
            }
            return Value(http1: value, connection: guardHandler.connection)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await ClientConnection.$current.withValue(value.connection) {
            await http1.handle(value: value.http1, logger: logger)
        }
    }
}
