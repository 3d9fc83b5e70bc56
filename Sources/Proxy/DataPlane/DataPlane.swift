import Directory
import Logging
import NIOCore
import NIOSSL
import Synchronization

/// The inference data plane: what every client connection's `InferenceChannelHandler`
/// shares. Inference requests run on the event loop of their client connection, from the
/// first byte to the last, with their upstream connection taken from that loop's own
/// `UpstreamPool`; only work that must wait on something else (a directory lookup on a
/// cache miss, Redis, a queued engine slot, a key pool) leaves the loop, and its result
/// comes back to it as a promise.
final class DataPlane: Sendable {
    let pipeline: RequestPipeline
    let authenticator: TenantAuthenticator
    let keyUses: KeyUseRecorder
    let logger: Logger
    private let poolConfiguration: UpstreamPool.Configuration
    private let tlsContext: NIOSSLContext?
    private let pools = Mutex<[ObjectIdentifier: NIOLoopBound<UpstreamPool>]>([:])
    private let requestCount = Atomic<Int>(0)

    init(
        pipeline: RequestPipeline, authenticator: TenantAuthenticator, keyUses: KeyUseRecorder, logger: Logger,
        poolConfiguration: UpstreamPool.Configuration = .init()
    ) {
        self.pipeline = pipeline
        self.authenticator = authenticator
        self.keyUses = keyUses
        self.logger = logger
        self.poolConfiguration = poolConfiguration
        // External providers are reached over TLS, verified against the system's roots.
        self.tlsContext = try? NIOSSLContext(configuration: .makeClientConfiguration())
        if tlsContext == nil { logger.error("TLS could not be set up: providers over https cannot be reached") }
    }

    /// Inference requests this data plane has taken.
    var requestsTaken: Int { requestCount.load(ordering: .relaxed) }

    func tookRequest() {
        requestCount.add(1, ordering: .relaxed)
    }

    /// How a connection of the data plane sizes its reads: each channel keeps its receive
    /// buffer for as long as it is open, so reads start at 1 KB (a request or a stream's
    /// chunk fits) and grow, up to 64 KB, only while reads fill them.
    static let receiveBuffers = AdaptiveRecvByteBufferAllocator(minimum: 256, initial: 1024, maximum: 64 << 10)

    /// The upstream pool of `eventLoop`; called on that loop.
    func pool(for eventLoop: any EventLoop) -> UpstreamPool {
        let id = ObjectIdentifier(eventLoop)
        return pools.withLock { pools in
            if let pool = pools[id] { return pool.value }
            let pool = UpstreamPool(eventLoop: eventLoop, configuration: poolConfiguration, tlsContext: tlsContext)
            pools[id] = NIOLoopBound(pool, eventLoop: eventLoop)
            return pool
        }
    }

    /// Closes every upstream connection, at the end of the shutdown's grace period: each
    /// answer in progress then ends with its final error, and is metered.
    func closeUpstreams() {
        let pools = self.pools.withLock { Array($0.values) }
        for pool in pools {
            pool.eventLoop.execute { pool.value.closeAll() }
        }
    }
}
