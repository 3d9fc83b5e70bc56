import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import Providers

/// Guards one client connection, between the HTTP/1.1 codec and the application:
///
/// - closes connections that stay quiet too long (`ConnectionTimeouts`), and fails a
///   request whose body stalls with a 408;
/// - answers `Expect: 100-continue`, and refuses at once a body announced too large;
/// - answers requests that are not HTTP/1.1 with an OpenAI-shaped 400 (431 for
///   oversized headers) carrying an `x-request-id`, then closes;
/// - closes after a response that says `connection: close`, or that answered a request
///   before its body was read;
/// - tells the requests on the connection when the client leaves.
final class ClientConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    struct Configuration: Sendable {
        var timeouts: ConnectionTimeouts.Configuration
        var maximumBodyBytes: Int
        /// How long a closing connection's input is still read, so the client can read
        /// the answer before the socket closes under it.
        var lingerTime: TimeAmount = .seconds(2)
    }

    /// What the requests on this connection see of it.
    let connection = ClientConnection()
    private let configuration: Configuration
    private let metrics: ProxyMetrics
    private let logger: Logger
    private var state: StateMachine
    private var timeouts: ConnectionTimeouts
    private var timer: Scheduled<Void>?
    /// Closes a closing connection once the client had time to read the answer.
    private var lingerTimer: Scheduled<Void>?
    private var started = false

    init(configuration: Configuration, metrics: ProxyMetrics, logger: Logger) {
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        self.state = StateMachine(maximumBodyBytes: configuration.maximumBodyBytes)
        self.timeouts = ConnectionTimeouts(configuration: configuration.timeouts, openedAt: .now())
    }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        lingerTimer?.cancel()
        lingerTimer = nil
        connection.clientLeft()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        lingerTimer?.cancel()
        lingerTimer = nil
    }

    private func start(context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        apply(timeouts.start(), context: context)
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            let contentLength = head.headerFields[.contentLength].flatMap { Int($0) }
            switch state.requestHead(method: head.method.rawValue, expect: head.headerFields[.expect], contentLength: contentLength) {
            case .forward:
                apply(timeouts.requestHead(now: .now()), context: context)
                context.fireChannelRead(data)
            case .forwardAfterContinue:
                apply(timeouts.requestHead(now: .now()), context: context)
                writeContinue(context: context)
                context.fireChannelRead(data)
            case .reject(let error):
                reject(error, context: context)
            case .drop:
                break
            }
        case .body(let bytes):
            if state.requestPart(isEnd: false, bodyBytes: bytes.readableBytes) { context.fireChannelRead(data) }
        case .end:
            guard state.requestPart(isEnd: true) else { return }
            apply(timeouts.requestEnd(), context: context)
            context.fireChannelRead(data)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case let received as ClientBytesReceived:
            if state.isClosing {
                // Lingering: what the client still sends is read and dropped.
                context.read()
                return
            }
            apply(timeouts.bytesReceived(now: .now()), context: context)
            handle(state.bytesRead(received.count), context: context)
        case let channelEvent as ChannelEvent where channelEvent == .inputClosed:
            switch state.inputClosed() {
            case .close:
                context.close(promise: nil)
            case .closeAfterAnswers:
                // A client closing its side is taken as gone (like nginx's 499): work for
                // it is given up, and what is answered anyway is still written.
                connection.clientLeft()
            case .none:
                break
            }
            context.fireUserInboundEventTriggered(event)
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // After a parse error the decoder refuses every later read; that error was
        // answered already, and passing these on would close without lingering.
        if case ByteToMessageDecoderError.dataReceivedInErrorState = error { return }
        guard let rejection = Self.rejection(for: error) else {
            context.fireErrorCaught(error)
            return
        }
        handle(state.malformedRequest(rejection), context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if !state.isClosing {
            apply(timeouts.writabilityChanged(isWritable: context.channel.isWritable, now: .now()), context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    private func handle(_ action: StateMachine.ErrorAction, context: ChannelHandlerContext) {
        switch action {
        case .propagate(let rejection):
            // The request being read fails with the answer it deserves; that answer
            // closes the connection.
            context.fireErrorCaught(rejection)
        case .reject(let error):
            reject(error, context: context)
        case .close:
            close(context: context)
        case .none:
            break
        }
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var response):
            let closes = state.responseHead(
                isInformational: response.status.kind == .informational,
                closesConnection: response.headerFields[.connection]?.lowercased() == "close"
            )
            guard closes, response.headerFields[.connection] == nil else {
                context.write(data, promise: promise)
                return
            }
            response.headerFields[.connection] = "close"
            context.write(wrapOutboundOut(.head(response)), promise: promise)
        case .body:
            context.write(data, promise: promise)
        case .end:
            if !state.isClosing { apply(timeouts.responseEnd(now: .now()), context: context) }
            switch state.responseEnd() {
            case .none:
                context.write(data, promise: promise)
            case .writeContinue:
                context.write(data, promise: promise)
                writeContinue(context: context)
            case .reject(let error):
                context.write(data, promise: promise)
                reject(error, context: context)
            case .close:
                let written = context.eventLoop.makePromise(of: Void.self)
                if let promise { written.futureResult.cascade(to: promise) }
                context.writeAndFlush(data, promise: written)
                close(context: context, after: written.futureResult)
            }
        }
    }

    // MARK: Actions

    private func writeContinue(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
    }

    /// Answers `error` on Switchyard's behalf, then closes.
    private func reject(_ error: OpenAIError, context: ChannelHandlerContext) {
        let requestID = RequestIDs.next()
        let body = error.jsonBody()
        var fields = HTTPFields()
        fields[.contentType] = "application/json"
        fields[.contentLength] = String(body.readableBytes)
        fields[.connection] = "close"
        fields[.requestID] = requestID
        let head = HTTPResponse(status: HTTPResponse.Status(code: error.status), headerFields: fields)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
        metrics.response(status: error.status)
        metrics.connectionClosed(reason: error.code ?? "malformed_request")
        logger.debug(
            "refused a request before it reached a route",
            metadata: ["request_id": "\(requestID)", "status": "\(error.status)", "reason": "\(error.message)"]
        )
        close(context: context, after: written.futureResult)
    }

    /// Closes the connection gracefully: once what was written has gone out, the output
    /// closes; the client's side is still read (and dropped) for a moment so it can read
    /// the answer before the socket closes under it.
    private func close(context: ChannelHandlerContext, after written: EventLoopFuture<Void>? = nil) {
        timer?.cancel()
        timer = nil
        guard lingerTimer == nil else { return }
        let closeOutput = {
            context.close(mode: .output, promise: nil)
            context.read()
        }
        if let written {
            written.assumeIsolated().whenComplete { _ in closeOutput() }
        } else {
            closeOutput()
        }
        lingerTimer = context.eventLoop.assumeIsolated().scheduleTask(in: configuration.lingerTime) {
            context.close(promise: nil)
        }
    }

    private func apply(_ action: ConnectionTimeouts.Action, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .schedule(let deadline):
            timer?.cancel()
            timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
                self.timer = nil
                self.apply(self.timeouts.timerFired(now: .now()), context: context)
            }
        case .expire(let expiry):
            metrics.connectionClosed(reason: expiry.rawValue)
            logger.debug("closing a client connection", metadata: ["reason": "\(expiry.rawValue)"])
            switch expiry {
            case .header, .keepAlive, .send:
                timer?.cancel()
                timer = nil
                context.close(promise: nil)
            case .body:
                let timeout = OpenAIError(
                    status: 408,
                    message: "The request body stopped arriving for \(Self.seconds(configuration.timeouts.body)); send it without pauses.",
                    type: "invalid_request_error",
                    code: "request_timeout"
                )
                errorCaught(context: context, error: RequestBodyTimeout(error: timeout))
            }
        }
    }

    // MARK: Errors

    /// What a protocol error deserves as an answer; nil for errors that are not the
    /// client's request (a reset connection, say), which close the connection as they are.
    static func rejection(for error: any Error) -> OpenAIError? {
        switch error {
        case let timeout as RequestBodyTimeout:
            return timeout.error
        case HTTPParserError.headerOverflow:
            return OpenAIError(
                status: 431,
                message: "The request's headers are too large.",
                type: "invalid_request_error",
                code: "request_header_fields_too_large"
            )
        case let parserError as HTTPParserError:
            return malformed(reason(parserError))
        case let decoderError as NIOHTTPDecoderError:
            return malformed("it is not valid HTTP/1.1 (\(decoderError))")
        case is HTTP10FramingHandler.FaultyFraming:
            return malformed("an HTTP/1.0 request cannot use Transfer-Encoding")
        case is HTTP1TypeConversionError:
            return malformed("its method, target or headers are not valid HTTP")
        default:
            return nil
        }
    }

    private static func reason(_ error: HTTPParserError) -> String {
        switch error {
        case .invalidChunkSize: "a chunk size is not a hexadecimal number"
        case .strictModeAssertion, .lfExpected, .invalidConstant: "its framing (CRLF after a chunk or header) is broken"
        case .invalidMethod: "its method is not valid"
        case .invalidURL: "its request target is not valid"
        case .invalidVersion: "its HTTP version is not valid"
        case .invalidHeaderToken, .invalidCharactersUsed: "a header name or value has characters HTTP does not allow"
        case .invalidContentLength: "its Content-Length is not valid"
        case .unexpectedContentLength: "it has both Content-Length and Transfer-Encoding, or two Content-Lengths"
        case .invalidEOFState: "it ended before its body was complete"
        case .unknown: "its Transfer-Encoding or framing is not valid HTTP/1.1 (only 'chunked' is supported)"
        default: "it is not valid HTTP/1.1 (\(error))"
        }
    }

    private static func malformed(_ reason: String) -> OpenAIError {
        OpenAIError(
            status: 400,
            message: "The request could not be read: \(reason).",
            type: "invalid_request_error",
            code: "malformed_request"
        )
    }

    private static func seconds(_ amount: TimeAmount) -> String {
        let seconds = Double(amount.nanoseconds) / 1e9
        return seconds == seconds.rounded() ? "\(Int(seconds)) s" : "\(seconds) s"
    }
}

/// Fired inbound when a request body stalls, so the request reading it fails with a 408.
struct RequestBodyTimeout: Error {
    var error: OpenAIError
}

@available(*, unavailable)
extension ClientConnectionHandler: Sendable {}
