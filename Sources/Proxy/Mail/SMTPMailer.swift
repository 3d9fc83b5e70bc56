import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// Sends mail (tenant invites) to one SMTP relay: one connection per message, upgraded
/// with STARTTLS whenever the server offers it, authenticated only once encrypted.
///
/// A class so every send shares one TLS context (loading the trust roots once).
public final class SMTPMailer: Sendable {
    public let configuration: SMTPConfiguration
    private let tlsContext: NIOSSLContext
    private let eventLoopGroup: any EventLoopGroup
    private let connectTimeout: Duration
    private let replyTimeout: Duration
    private let logger: Logger

    /// - Parameters:
    ///   - configuration: The relay, sender and credentials.
    ///   - connectTimeout: The longest wait for the TCP connection.
    ///   - replyTimeout: The longest wait for each reply of the server.
    /// - Throws: When the TLS context (the system's trust roots) cannot be made.
    public init(
        configuration: SMTPConfiguration,
        connectTimeout: Duration = .seconds(10),
        replyTimeout: Duration = .seconds(30),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "switchyard.mail")
    ) throws {
        var tls = TLSConfiguration.makeClientConfiguration()
        if configuration.insecureSkipVerify { tls.certificateVerification = .none }
        self.tlsContext = try NIOSSLContext(configuration: tls)
        self.configuration = configuration
        self.connectTimeout = connectTimeout
        self.replyTimeout = replyTimeout
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
    }

    /// Delivers `message` to the relay; returns once the server has accepted it.
    ///
    /// - Throws: `SMTPError` naming the step that failed (a `CancellationError` if cancelled).
    public func send(_ message: MailMessage) async throws {
        // Rendering refuses unsafe fields, before any connection is made.
        let content = try message.rendered(from: configuration.from, date: Date())
        let serverHostname = SMTPConfiguration.isIPAddress(configuration.host) ? nil : configuration.host
        let tlsContext = self.tlsContext
        let implicitTLS = configuration.implicitTLS

        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await ClientBootstrap(group: eventLoopGroup)
                .connectTimeout(TimeAmount(connectTimeout))
                .connect(host: configuration.host, port: configuration.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if implicitTLS {
                            let tls = try NIOSSLClientHandler(context: tlsContext, serverHostname: serverHostname)
                            try channel.pipeline.syncOperations.addHandler(tls)
                        }
                        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch ChannelError.connectTimeout {
            throw SMTPError(step: .connect, kind: .timedOut)
        } catch {
            throw SMTPError(step: .connect, kind: .transport("\(error)"))
        }

        try await channel.executeThenClose { inbound, outbound in
            var session = SMTPSession(
                channel: channel.channel, inbound: inbound.makeAsyncIterator(), outbound: outbound,
                replyTimeout: TimeAmount(replyTimeout), isEncrypted: implicitTLS, logger: logger
            )
            try await session.reply(step: .greeting, expecting: 220)
            var extensions = try await session.hello()

            if !session.isEncrypted, extensions["STARTTLS"] != nil {
                try await session.startTLS(context: tlsContext, serverHostname: serverHostname)
                extensions = try await session.hello()
            }
            if let credentials = configuration.credentials {
                try await session.authenticate(credentials, extensions: extensions)
            }
            try await session.command("MAIL FROM:<\(configuration.from)>", step: .mailFrom, expecting: 250)
            try await session.command("RCPT TO:<\(message.to)>", step: .recipient, expecting: 250, 251)
            try await session.command("DATA", step: .data, expecting: 354)
            try await session.write(content, step: .data)
            try await session.reply(step: .data, expecting: 250)
            // The mail is accepted: a failed QUIT must not make the caller send it again.
            _ = try? await session.command("QUIT", step: .quit, expecting: 221)
        }
        logger.debug("mail sent", metadata: ["smtp.host": "\(configuration.host)"])
    }
}

// MARK: - Conversation

/// One connection's dialogue: commands out, replies in, each reply within the timeout.
struct SMTPSession {
    let channel: any Channel
    var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    let replyTimeout: TimeAmount
    var isEncrypted: Bool
    let logger: Logger
    var parser = SMTPReplyParser()

    /// Sends EHLO and returns the extensions offered, keyed by upper-cased keyword.
    mutating func hello() async throws(SMTPError) -> [String: [String]] {
        // RFC 5321 4.1.4: without a host name of our own, our address literal.
        let name = switch channel.localAddress {
        case .v4(let address)?: "[\(address.host)]"
        case .v6(let address)?: "[IPv6:\(address.host)]"
        default: "localhost"
        }
        let reply = try await command("EHLO \(name)", step: .ehlo, expecting: 250)
        var extensions: [String: [String]] = [:]
        for line in reply.lines.dropFirst() {
            let words = line.split(separator: " ").map(String.init)
            if let keyword = words.first { extensions[keyword.uppercased()] = Array(words.dropFirst()) }
        }
        return extensions
    }

    mutating func startTLS(context: NIOSSLContext, serverHostname: String?) async throws(SMTPError) {
        try await command("STARTTLS", step: .startTLS, expecting: 220)
        // Anything the server sent after its 220 arrived in clear and would be read as if
        // encrypted (the STARTTLS injection of CVE-2011-0411).
        guard !parser.hasUnreadBytes else {
            throw SMTPError(step: .startTLS, kind: .protocolViolation("the server sent data after agreeing to STARTTLS"))
        }
        // The handshake is awaited here so a refused certificate is reported as such, not as
        // whatever the next write meets on the closed channel.
        let deadline = NIODeadline.now() + replyTimeout
        let timer = closeChannel(at: deadline)
        defer { timer.cancel() }
        do {
            try await channel.eventLoop.flatSubmit { [channel] in
                let handshake = channel.eventLoop.makePromise(of: Void.self)
                do {
                    let tls = try NIOSSLClientHandler(context: context, serverHostname: serverHostname)
                    // Ends as [TLS, handshake watcher, the async channel].
                    try channel.pipeline.syncOperations.addHandler(TLSHandshakeHandler(handshake), position: .first)
                    try channel.pipeline.syncOperations.addHandler(tls, position: .first)
                } catch {
                    handshake.fail(error)
                }
                return handshake.futureResult
            }.get()
        } catch {
            throw SMTPError(step: .startTLS, kind: NIODeadline.now() >= deadline ? .timedOut : .tls("\(error)"))
        }
        isEncrypted = true
    }

    mutating func authenticate(_ credentials: SMTPConfiguration.Credentials, extensions: [String: [String]]) async throws(SMTPError) {
        guard isEncrypted else { throw SMTPError(step: .auth, kind: .cleartextCredentials) }
        guard extensions["AUTH"]?.contains(where: { $0.uppercased() == "PLAIN" }) == true else {
            throw SMTPError(step: .auth, kind: .authUnsupported)
        }
        // RFC 4616: authorisation identity (empty), NUL, user, NUL, password.
        let token = Data("\0\(credentials.username)\0\(credentials.password)".utf8).base64EncodedString()
        try await command("AUTH PLAIN \(token)", step: .auth, expecting: 235)
    }

    /// Sends one command line and reads its reply, which must carry one of `codes`.
    @discardableResult
    mutating func command(_ line: String, step: SMTPError.Step, expecting codes: Int...) async throws(SMTPError) -> SMTPReply {
        try await write(ByteBuffer(string: line + "\r\n"), step: step)
        return try await readReply(step: step, expecting: codes)
    }

    @discardableResult
    mutating func reply(step: SMTPError.Step, expecting codes: Int...) async throws(SMTPError) -> SMTPReply {
        try await readReply(step: step, expecting: codes)
    }

    private mutating func readReply(step: SMTPError.Step, expecting codes: [Int]) async throws(SMTPError) -> SMTPReply {
        let deadline = NIODeadline.now() + replyTimeout
        let timer = closeChannel(at: deadline)
        defer { timer.cancel() }
        while true {
            let next: SMTPReply?
            do { next = try parser.nextReply() } catch {
                throw SMTPError(step: step, kind: .protocolViolation(error.reason))
            }
            if let reply = next {
                logger.debug("SMTP reply", metadata: ["smtp.step": "\(step.rawValue)", "smtp.code": "\(reply.code)"])
                guard codes.contains(reply.code) else { throw SMTPError(step: step, kind: .unexpectedReply, reply: reply) }
                return reply
            }
            do {
                guard let bytes = try await inbound.next() else {
                    throw SMTPError(step: step, kind: NIODeadline.now() >= deadline ? .timedOut : .connectionClosed)
                }
                parser.append(bytes)
            } catch let error as SMTPError {
                throw error
            } catch let error as NIOSSLError {
                throw SMTPError(step: step, kind: .tls("\(error)"))
            } catch let error as NIOSSLExtraError {
                throw SMTPError(step: step, kind: .tls("\(error)"))
            } catch {
                throw SMTPError(step: step, kind: NIODeadline.now() >= deadline ? .timedOut : .transport("\(error)"))
            }
        }
    }

    /// Closing ends any read or handshake under way; the deadline then tells a timeout
    /// from a hang-up.
    private func closeChannel(at deadline: NIODeadline) -> Scheduled<Void> {
        channel.eventLoop.scheduleTask(deadline: deadline) { [channel] in channel.close(promise: nil) }
    }

    func write(_ bytes: ByteBuffer, step: SMTPError.Step) async throws(SMTPError) {
        do { try await outbound.write(bytes) } catch {
            throw SMTPError(step: step, kind: .transport("\(error)"))
        }
    }
}

/// Completes its promise when the TLS handshake in front of it succeeds, fails it when the
/// handshake fails or the connection ends first; passes everything on.
final class TLSHandshakeHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let handshake: EventLoopPromise<Void>

    init(_ handshake: EventLoopPromise<Void>) { self.handshake = handshake }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted? = event as? TLSUserEvent { handshake.succeed() }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        handshake.fail(error)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshake.fail(ChannelError.eof)
        context.fireChannelInactive()
    }
}
