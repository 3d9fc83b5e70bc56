import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// The upstream connections of one event loop: a small keep-alive pool per origin, used
/// only by the client connections of that loop, so a request and its upstream never
/// change threads and the pool needs no lock.
final class UpstreamPool {
    struct Configuration: Sendable {
        /// Open connections to one origin from one event loop; more requests wait for one.
        var maximumConnectionsPerOrigin = 1024
        /// Idle connections kept per origin; more are closed as they come back.
        var maximumIdlePerOrigin = 256
        /// How long an idle connection is kept.
        var idleTimeout: TimeAmount = .seconds(60)
        var connectTimeout: TimeAmount = .seconds(5)
    }

    typealias Completion = (Result<UpstreamConnection, any Error>) -> Void

    private struct Waiter {
        var id: Int
        var completion: Completion
    }

    private struct OriginState {
        /// Most recently used last: the warmest connection is taken first.
        var idle: [UpstreamConnection] = []
        /// Connections open or being opened.
        var open = 0
        var waiters = CircularBuffer<Waiter>()
    }

    let eventLoop: any EventLoop
    private let configuration: Configuration
    private let tlsContext: NIOSSLContext?
    private var origins: [UpstreamOrigin: OriginState] = [:]
    /// Every open connection, for closing them all at the end of the grace period.
    private var connections: [ObjectIdentifier: UpstreamConnection] = [:]
    private var nextWaiterID = 0

    init(eventLoop: any EventLoop, configuration: Configuration, tlsContext: NIOSSLContext?) {
        self.eventLoop = eventLoop
        self.configuration = configuration
        self.tlsContext = tlsContext
    }

    /// Open connections (in use, idle or connecting), for tests and metrics.
    var openConnections: Int { origins.values.reduce(0) { $0 + $1.open } }

    /// A connection to `origin`: an idle one at once, else a new one, else (at the limit)
    /// the next one given back. Returns a ticket to cancel the wait with, when it waits.
    @discardableResult
    func lease(_ origin: UpstreamOrigin, _ completion: @escaping Completion) -> Int? {
        var state = origins[origin, default: OriginState()]
        while let connection = state.idle.popLast() {
            connection.idleTimer?.cancel()
            connection.idleTimer = nil
            guard connection.isActive else { continue }
            origins[origin] = state
            completion(.success(connection))
            return nil
        }
        guard state.open < configuration.maximumConnectionsPerOrigin else {
            nextWaiterID += 1
            state.waiters.append(Waiter(id: nextWaiterID, completion: completion))
            origins[origin] = state
            return nextWaiterID
        }
        state.open += 1
        origins[origin] = state
        connect(origin, completion)
        return nil
    }

    /// Stops waiting for a connection.
    func cancelWait(_ ticket: Int, origin: UpstreamOrigin) {
        origins[origin]?.waiters.removeAll { $0.id == ticket }
    }

    /// Takes back a connection whose answer ended: kept for the next request when it can
    /// carry one, else closed.
    func giveBack(_ connection: UpstreamConnection) {
        let origin = connection.origin
        if let waiter = origins[origin]?.waiters.popFirst() {
            if connection.isReusable, connection.isActive {
                waiter.completion(.success(connection))
            } else {
                connection.abandon()
                // Its slot passes to the waiter: a new connection in its place.
                connect(origin, waiter.completion)
                origins[origin]?.open += 1
            }
            return
        }
        guard connection.isReusable, connection.isActive,
              (origins[origin]?.idle.count ?? 0) < configuration.maximumIdlePerOrigin
        else {
            connection.abandon()
            return
        }
        connection.idleTimer = eventLoop.assumeIsolated().scheduleTask(in: configuration.idleTimeout) { [weak connection] in
            connection?.abandon()
        }
        origins[origin]?.idle.append(connection)
        // Reading while idle is how a server's closing of it is noticed.
        connection.read()
    }

    /// Closes every connection, in use or idle: their answers fail at once.
    func closeAll() {
        for connection in connections.values { connection.abandonForShutdown() }
    }

    // MARK: Connecting

    private func connect(_ origin: UpstreamOrigin, _ completion: @escaping Completion) {
        let pool = NIOLoopBound(self, eventLoop: eventLoop)
        let tlsContext = origin.isTLS ? self.tlsContext : nil
        if origin.isTLS, tlsContext == nil {
            closed(origin: origin)
            completion(.failure(NIOSSLError.failedToLoadCertificate))
            return
        }
        ClientBootstrap(group: eventLoop)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.recvAllocator, value: DataPlane.receiveBuffers)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tlsContext {
                        try sync.addHandler(NIOSSLClientHandler(context: tlsContext, serverHostname: origin.host.isIPAddress ? nil : origin.host))
                    }
                    try sync.addHTTPClientHandlers(leftOverBytesStrategy: .fireError)
                    let connection = UpstreamConnection(channel: channel, origin: origin)
                    try sync.addHandler(UpstreamConnectionHandler(connection: connection) { connection in
                        pool.value.closed(connection)
                    })
                }
            }
            .connect(host: origin.host, port: origin.port)
            .assumeIsolated()
            .whenComplete { result in
                let pool = pool.value
                switch result {
                case .success(let channel):
                    do {
                        let connection = try channel.pipeline.syncOperations.handler(type: UpstreamConnectionHandler.self).connection
                        pool.connections[ObjectIdentifier(connection)] = connection
                        completion(.success(connection))
                    } catch {
                        channel.close(promise: nil)
                        completion(.failure(error))
                    }
                case .failure(let error):
                    pool.closed(origin: origin)
                    completion(.failure(error))
                }
            }
    }

    /// A connection closed: its place goes to the next waiter, with a new connection.
    private func closed(_ connection: UpstreamConnection) {
        guard connections.removeValue(forKey: ObjectIdentifier(connection)) != nil else { return }
        connection.idleTimer?.cancel()
        connection.idleTimer = nil
        origins[connection.origin]?.idle.removeAll { $0 === connection }
        closed(origin: connection.origin)
    }

    private func closed(origin: UpstreamOrigin) {
        guard var state = origins[origin] else { return }
        state.open -= 1
        if let waiter = state.waiters.popFirst() {
            state.open += 1
            origins[origin] = state
            connect(origin, waiter.completion)
        } else {
            origins[origin] = state
        }
    }
}

extension String {
    /// Whether the string is an IPv4 or IPv6 literal (no SNI is sent for those).
    fileprivate var isIPAddress: Bool {
        (try? SocketAddress(ipAddress: self, port: 0)) != nil
    }
}

@available(*, unavailable)
extension UpstreamPool: Sendable {}
