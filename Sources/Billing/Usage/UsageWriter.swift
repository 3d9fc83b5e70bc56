import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Collects usage events from the request path and writes them to the ledger in batches,
/// so no request waits for the disk. Runs as a `Service`; on graceful shutdown it writes
/// what is pending before returning.
public final class UsageWriter: Service, Sendable {
    private struct Pending {
        var events: [UsageEvent] = []
        var dropped = 0
    }

    private let ledger: Ledger
    private let flushInterval: Duration
    private let capacity: Int
    private let logger: Logger
    private let pending = Mutex(Pending())
    private let written = Atomic<Int>(0)
    private let dropped = Atomic<Int>(0)

    /// Events stored so far, dropped so far, and waiting now.
    public var statistics: (written: Int, dropped: Int, pending: Int) {
        (written.load(ordering: .relaxed), dropped.load(ordering: .relaxed), pending.withLock { $0.events.count })
    }

    /// - Parameters:
    ///   - flushInterval: how long an event may wait before it is written.
    ///   - capacity: most events held while the disk is slow; beyond it events are dropped and logged.
    public init(ledger: Ledger, flushInterval: Duration = .milliseconds(250), capacity: Int = 1_000_000, logger: Logger) {
        self.ledger = ledger
        self.flushInterval = flushInterval
        self.capacity = capacity
        self.logger = logger
    }

    /// Queues one event; returns at once.
    public func record(_ event: UsageEvent) {
        pending.withLock { pending in
            if pending.events.count >= capacity {
                pending.dropped += 1
            } else {
                pending.events.append(event)
            }
        }
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            try? await cancelWhenGracefulShutdown {
                try await Task.sleep(for: self.flushInterval)
            }
            if Task.isCancelled { break }
            await flush()
        }
        flushBlocking()
        try? ledger.checkpoint()
    }

    /// Writes everything queued so far.
    public func flush() async {
        guard let batch = takeBatch() else { return }
        do {
            try await ledger.record(batch.events)
            written.add(batch.events.count, ordering: .relaxed)
        } catch {
            putBack(batch, error: error)
        }
    }

    /// Writes everything queued so far, blocking: the last flush at shutdown.
    func flushBlocking() {
        guard let batch = takeBatch() else { return }
        do {
            try ledger.recordBlocking(batch.events)
            written.add(batch.events.count, ordering: .relaxed)
        } catch {
            logger.error("usage events lost at shutdown", metadata: ["error": "\(error)", "events": "\(batch.events.count)"])
        }
    }

    private func takeBatch() -> Pending? {
        let batch = pending.withLock { pending -> Pending in
            let batch = pending
            pending = Pending()
            return batch
        }
        if batch.dropped > 0 {
            dropped.add(batch.dropped, ordering: .relaxed)
            logger.error("usage events dropped: the ledger fell behind", metadata: ["dropped": "\(batch.dropped)"])
        }
        return batch.events.isEmpty ? nil : batch
    }

    private func putBack(_ batch: Pending, error: any Error) {
        logger.error("writing usage events failed; will retry", metadata: ["error": "\(error)", "events": "\(batch.events.count)"])
        pending.withLock { pending in
            pending.events.insert(contentsOf: batch.events, at: 0)
        }
    }
}
