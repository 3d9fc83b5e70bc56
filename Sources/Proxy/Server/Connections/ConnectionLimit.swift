import Hummingbird
import HummingbirdCore
import Logging

/// Caps the client connections open at once. At the cap Switchyard stops accepting: new
/// connections wait in the listen backlog until one closes (timeouts close quiet ones),
/// so the process never runs out of file descriptors. Reaching the cap is logged once
/// each time, with a metric.
struct ConnectionLimit: AvailableConnectionsDelegate {
    let maximum: Int
    let metrics: ProxyMetrics
    let logger: Logger
    private var open = 0
    private var atLimit = false
    /// When reaching the limit was last logged: at most once a minute, under a flood.
    private var lastWarning: ContinuousClock.Instant?
    private static let warningInterval: Duration = .seconds(60)

    init(maximum: Int, metrics: ProxyMetrics, logger: Logger) {
        self.maximum = maximum
        self.metrics = metrics
        self.logger = logger
    }

    mutating func connectionOpened() {
        open += 1
        metrics.openConnections(open)
        if open >= maximum, !atLimit {
            atLimit = true
            metrics.connectionLimitReached()
            let now = ContinuousClock.now
            if lastWarning.map({ now - $0 >= Self.warningInterval }) ?? true {
                lastWarning = now
                logger.warning(
                    "connection limit reached: new connections wait until one closes (raise --max-connections if this is load, not an attack)",
                    metadata: ["open_connections": "\(open)", "max_connections": "\(maximum)"]
                )
            }
        }
    }

    mutating func connectionClosed() {
        open = max(0, open - 1)
        metrics.openConnections(open)
        if atLimit, open < maximum {
            atLimit = false
            logger.debug("accepting connections again", metadata: ["open_connections": "\(open)"])
        }
    }

    func isAcceptingNewConnections() -> Bool {
        open < maximum
    }
}
