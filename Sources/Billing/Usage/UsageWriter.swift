import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Takes usage events from the request path and delivers them in batches to a sink (the
/// ledger, or the usage stream), so no request waits for the disk or for Redis.
///
/// With a spool, `record` first appends the event to it: one `write`, so a killed process
/// loses nothing. Each flush seals the spool's current segment with the events it holds,
/// delivers them, and removes the segment; a failed delivery keeps both and is tried
/// again at the next flush (the events stay on disk however long the sink is away). At
/// start the segments a previous process left are delivered first. Memory holds the
/// events of undelivered segments up to `capacity`; beyond it they are read back from
/// the spool when their turn comes.
///
/// Without a spool (or when the spool cannot be written: the disk is full), events wait
/// in memory only, up to `capacity`; beyond it they are dropped, counted and logged.
///
/// Runs as a `Service`; on graceful shutdown it delivers what is pending before returning.
public final class UsageWriter: Service, Sendable {
    /// The events of one spool segment (or, without a spool, of one flush interval).
    private struct Batch {
        var segment: UsageSpool.Segment?
        /// The segment's events, while memory holds them; nil: read them from the segment.
        var cached: [UsageEvent]? = []
        /// Events that are in memory only: the spool is off or could not be written.
        var unspooled: [UsageEvent] = []
        var count = 0
    }

    private struct State {
        var current = Batch()
        /// Sealed batches waiting for delivery, oldest first.
        var sealed: [Batch] = []
        /// Events held in memory, over every batch.
        var held = 0
        var spoolFailures = 0
        var lastSpoolFailureLog: ContinuousClock.Instant?
    }

    private let sink: any UsageSink
    private let spool: UsageSpool?
    private let flushInterval: Duration
    private let capacity: Int
    private let logger: Logger
    private let state: Mutex<State>
    private let written = Atomic<Int>(0)
    private let dropped = Atomic<Int>(0)
    private let pendingCount = Atomic<Int>(0)
    private let spoolFailureCount = Atomic<Int>(0)
    /// One delivery at a time, so batches reach the sink in order and once.
    private let delivering = DeliveryLock()

    /// Events delivered so far, dropped so far, waiting now (on disk or in memory), and how
    /// many the spool could not take (held in memory only).
    public var statistics: (written: Int, dropped: Int, pending: Int, spoolFailures: Int) {
        (
            written.load(ordering: .relaxed), dropped.load(ordering: .relaxed), pendingCount.load(ordering: .relaxed),
            spoolFailureCount.load(ordering: .relaxed)
        )
    }

    /// - Parameters:
    ///   - sink: where batches go.
    ///   - spool: the replica's spool; nil keeps events in memory only (a crash loses them).
    ///   - flushInterval: how long an event may wait before it is delivered.
    ///   - capacity: most events held in memory; see the type's notes.
    public init(
        sink: any UsageSink, spool: UsageSpool?, flushInterval: Duration = .milliseconds(250), capacity: Int = 1_000_000,
        logger: Logger
    ) {
        self.sink = sink
        self.spool = spool
        self.flushInterval = flushInterval
        self.capacity = capacity
        self.logger = logger
        var state = State()
        // What a previous process left is delivered first, read back from the disk; it is
        // pending from now on.
        state.sealed = (spool?.leftOver ?? []).map { segment in
            Batch(segment: segment, cached: nil, count: spool?.lineCount(segment) ?? 0)
        }
        self.state = Mutex(state)
        pendingCount.store(state.sealed.reduce(0) { $0 + $1.count }, ordering: .relaxed)
        if let spool, !spool.leftOver.isEmpty {
            logger.notice(
                "the usage spool holds events from before; delivering them first",
                metadata: ["spool": "\(spool.directory)", "segments": "\(spool.leftOver.count)"]
            )
        }
    }

    /// A writer straight into the ledger, without a spool.
    public convenience init(ledger: Ledger, flushInterval: Duration = .milliseconds(250), capacity: Int = 1_000_000, logger: Logger) {
        self.init(sink: LedgerSink(ledger: ledger), spool: nil, flushInterval: flushInterval, capacity: capacity, logger: logger)
    }

    /// Takes one event: appends it to the spool, and returns. Never waits for the disk.
    public func record(_ event: UsageEvent) {
        var line: [UInt8]?
        if spool != nil {
            line = event.wireJSON()
            line?.append(UInt8(ascii: "\n"))
        }
        let failure: Int? = state.withLock { state -> Int? in
            var spooled = false
            if let spool, let line {
                spooled = spool.append(line)
            }
            if spooled {
                // On disk: memory keeps a copy while there is room, else it is read back.
                if state.current.cached != nil, state.held < capacity {
                    state.current.cached?.append(event)
                    state.held += 1
                } else if let cached = state.current.cached {
                    state.held -= cached.count
                    state.current.cached = nil
                }
                state.current.count += 1
                pendingCount.add(1, ordering: .relaxed)
                return nil
            }
            if state.held < capacity {
                state.current.unspooled.append(event)
                state.held += 1
                state.current.count += 1
                pendingCount.add(1, ordering: .relaxed)
            } else {
                dropped.add(1, ordering: .relaxed)
            }
            guard spool != nil else { return nil }
            // The spool could not take it: count it, and say so loudly, every 10 s at most.
            spoolFailureCount.add(1, ordering: .relaxed)
            state.spoolFailures += 1
            let now = ContinuousClock.now
            if let last = state.lastSpoolFailureLog, now - last < .seconds(10) { return nil }
            state.lastSpoolFailureLog = now
            defer { state.spoolFailures = 0 }
            return state.spoolFailures
        }
        if let failure, let spool {
            logger.critical(
                "USAGE SPOOL CANNOT BE WRITTEN (is the disk full?): usage events are held in memory only, where a crash would lose them, and dropped once memory is full",
                metadata: [
                    "spool": "\(spool.directory)", "events": "\(failure)",
                    "dropped_so_far": "\(dropped.load(ordering: .relaxed))",
                ]
            )
        }
    }

    public func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            if let spool {
                group.addTask { await spool.syncInBackground(every: .seconds(1)) }
            }
            while !Task.isShuttingDownGracefully, !Task.isCancelled {
                await flush()
                try? await cancelWhenGracefulShutdown {
                    try await Task.sleep(for: self.flushInterval)
                }
            }
            group.cancelAll()
        }
        // The last delivery runs even when this task was cancelled; what it cannot deliver
        // stays in the spool for the next start.
        await Task { await self.flush() }.value
        sink.finish()
        if statistics.pending > 0 {
            logger.warning(
                "usage events not delivered at shutdown",
                metadata: ["events": "\(statistics.pending)", "spool": "\(spool?.directory ?? "none: they are lost")"]
            )
        }
    }

    /// Delivers everything taken so far, oldest first; stops at the first failure, which
    /// keeps the rest for the next flush.
    public func flush() async {
        await delivering.run {
            var batches = takeBatches()
            while !batches.isEmpty {
                let batch = batches.removeFirst()
                do {
                    try await deliver(batch)
                } catch {
                    logger.error(
                        "delivering usage events failed; will retry",
                        metadata: ["error": "\(error)", "events": "\(batches.reduce(batch.count) { $0 + $1.count })"]
                    )
                    // They may wait on disk a while: make sure the disk has them.
                    for waiting in [batch] + batches { if let segment = waiting.segment { spool?.sync(segment) } }
                    putBack([batch] + batches)
                    return
                }
            }
        }
    }

    private func deliver(_ batch: Batch) async throws {
        var events: [UsageEvent]
        if let cached = batch.cached {
            events = cached
        } else if let segment = batch.segment, let spool {
            let read = try spool.read(segment)
            if read.unreadable > 0 {
                dropped.add(read.unreadable, ordering: .relaxed)
                logger.critical(
                    "usage spool lines could not be read: those events are lost",
                    metadata: ["segment": "\(segment.path)", "lines": "\(read.unreadable)"]
                )
            }
            events = read.events
        } else {
            events = []
        }
        events += batch.unspooled
        if !events.isEmpty { try await sink.deliver(events) }
        if let segment = batch.segment { spool?.remove(segment) }
        let inMemory = (batch.cached?.count ?? 0) + batch.unspooled.count
        state.withLock { $0.held -= inMemory }
        written.add(events.count, ordering: .relaxed)
        pendingCount.subtract(batch.count, ordering: .relaxed)
    }

    /// Seals the current batch and takes it with every batch waiting before it.
    private func takeBatches() -> [Batch] {
        state.withLock { state -> [Batch] in
            if state.current.count > 0 {
                var batch = state.current
                // Sealed under the lock, so the segment holds exactly the batch's events.
                batch.segment = spool?.seal()
                state.sealed.append(batch)
                state.current = Batch()
            }
            defer { state.sealed = [] }
            return state.sealed
        }
    }

    private func putBack(_ batches: [Batch]) {
        state.withLock { state in
            state.sealed = batches + state.sealed
        }
    }
}

/// Runs one body at a time, in the order they ask.
private actor DeliveryLock {
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func run(_ body: @Sendable () async -> Void) async {
        if busy {
            await withCheckedContinuation { waiters.append($0) }
        }
        busy = true
        await body()
        if waiters.isEmpty {
            busy = false
        } else {
            waiters.removeFirst().resume()
        }
    }
}
