import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Moves usage events from the usage stream into the ledger: what `switchyard meter`
/// runs (or a replica started with `serve --meter`).
///
/// Each batch is read from the stream through the meters' consumer group, decoded, stored
/// in one ledger transaction, and only then acknowledged and removed from the stream: a
/// meter killed mid-batch leaves the batch pending, and the next read (its own at restart,
/// or another meter's claim once the batch has been idle for `minimumIdle`) stores it
/// again, which the ledger ignores (it stores a request id once).
///
/// An entry that is not a usage event is logged, counted and acknowledged, so it never
/// holds up the stream. While Redis (or the database) fails, the meter logs, waits
/// (100 ms doubling to 5 s) and tries again, forever.
///
/// On graceful shutdown it finishes the batch in hand, then stores what is already in the
/// stream without waiting for more (at most a few seconds' worth), and returns.
public final class UsageMeter: Service, Sendable {
    /// What the meter has done since it started.
    public struct Statistics: Sendable, Equatable {
        /// Entries read, stored (or found stored) and acknowledged, poison included.
        public var consumed = 0
        /// Events the ledger did not have before.
        public var written = 0
        /// Events the ledger already had: delivered twice, or re-read after a failure.
        public var duplicates = 0
        /// Entries that were not usage events: acknowledged and skipped.
        public var poison = 0
        /// Entries taken over from another consumer that left them pending.
        public var claimed = 0

        public init() {}
    }

    private let source: any UsageStreamSource
    private let ledger: Ledger
    private let consumer: String
    private let batchSize: Int
    private let block: Duration
    private let claimInterval: Duration
    private let minimumIdle: Duration
    private let progressInterval: Duration
    private let shutdownDrain: Duration
    private let logger: Logger
    private let counters = Mutex(Statistics())

    /// What the meter has done since it started.
    public var statistics: Statistics { counters.withLock { $0 } }

    /// - Parameters:
    ///   - source: the usage stream.
    ///   - ledger: where the events go.
    ///   - consumer: this meter's name in the consumer group; unique among running meters.
    ///   - batchSize: most entries read and stored in one transaction.
    ///   - block: how long one read waits for new entries.
    ///   - claimInterval: how often to look for entries other consumers left pending.
    ///   - minimumIdle: how long an entry must have been pending with another consumer
    ///     before this one takes it over; well beyond the time a batch takes.
    ///   - progressInterval: at most one progress line this often, while events flow.
    ///   - shutdownDrain: how long, at graceful shutdown, it goes on storing what is
    ///     already in the stream.
    ///   - logger: where progress and failures go.
    public init(
        source: any UsageStreamSource, ledger: Ledger, consumer: String, batchSize: Int = 20_000,
        block: Duration = .seconds(1), claimInterval: Duration = .seconds(30), minimumIdle: Duration = .seconds(60),
        progressInterval: Duration = .seconds(10), shutdownDrain: Duration = .seconds(5), logger: Logger
    ) {
        self.source = source
        self.ledger = ledger
        self.consumer = consumer
        self.batchSize = max(1, batchSize)
        self.block = block
        self.claimInterval = claimInterval
        self.minimumIdle = minimumIdle
        self.progressInterval = progressInterval
        self.shutdownDrain = shutdownDrain
        self.logger = logger
    }

    // MARK: Running

    /// Meters until graceful shutdown (or cancellation); never throws for a failure of
    /// Redis or the database, which it waits out.
    public func run() async throws {
        logger.info(
            "metering the usage stream into the ledger",
            metadata: ["stream": "\(source.location)", "consumer": "\(consumer)", "batch": "\(batchSize)"]
        )
        var failures = FailureBackoff()
        var progress = ProgressLog(interval: progressInterval)
        // Set again after any failure: the group may be gone (a Redis that lost its data)
        // and this consumer's pending entries must be stored before new ones.
        var needsSetup = true
        var lastClaim: ContinuousClock.Instant?
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                if needsSetup {
                    try await source.createGroup()
                    try await storePending()
                    needsSetup = false
                }
                if lastClaim.map({ ContinuousClock.now - $0 >= claimInterval }) ?? true {
                    try await claimIdle()
                    lastClaim = .now
                }
                let entries = try await source.readNew(consumer: consumer, count: batchSize, block: block)
                try await store(entries)
                if let outage = failures.succeeded() {
                    logger.notice(
                        "the usage stream can be read again", metadata: ["failures": "\(outage)", "stream": "\(source.location)"]
                    )
                }
            } catch {
                needsSetup = true
                let (delay, shouldLog) = failures.failed()
                if shouldLog {
                    logger.error(
                        "metering the usage stream failed; retrying",
                        metadata: ["error": "\(error)", "stream": "\(source.location)", "retry_in": "\(delay)"]
                    )
                }
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
            }
            progress.logIfDue(statistics, logger: logger)
        }
        if !Task.isCancelled, !needsSetup { await storeWhatIsLeft() }
        let totals = statistics
        logger.info(
            "the usage meter stopped",
            metadata: [
                "consumed": "\(totals.consumed)", "written": "\(totals.written)", "duplicates": "\(totals.duplicates)",
                "poison": "\(totals.poison)", "claimed": "\(totals.claimed)",
            ]
        )
    }

    /// Stores this consumer's own pending entries, page by page.
    private func storePending() async throws {
        var after = "0"
        while !Task.isCancelled {
            let entries = try await source.readPending(consumer: consumer, after: after, count: batchSize)
            guard let last = entries.last else { return }
            try await store(entries)
            after = last.id
        }
    }

    /// Takes over and stores the entries other consumers left pending too long.
    private func claimIdle() async throws {
        var start = "0-0"
        repeat {
            let (entries, next) = try await source.claimIdle(
                consumer: consumer, minimumIdle: minimumIdle, start: start, count: batchSize
            )
            if !entries.isEmpty {
                logger.notice(
                    "took over usage stream entries another meter left pending",
                    metadata: ["entries": "\(entries.count)", "idle_at_least": "\(minimumIdle)"]
                )
                try await store(entries)
                counters.withLock { $0.claimed += entries.count }
            }
            start = next
        } while start != "0-0" && !Task.isCancelled
    }

    /// At graceful shutdown: stores what the stream holds already, without waiting for
    /// more, until it is empty or `shutdownDrain` has passed. A failure just stops it: the
    /// entries stay in the stream for the next start.
    private func storeWhatIsLeft() async {
        let deadline = ContinuousClock.now + shutdownDrain
        while ContinuousClock.now < deadline, !Task.isCancelled {
            guard let entries = try? await source.readNew(consumer: consumer, count: batchSize, block: nil),
                !entries.isEmpty
            else { return }
            do {
                try await store(entries)
            } catch {
                logger.warning("storing the usage stream at shutdown failed; the rest waits for the next start", metadata: ["error": "\(error)"])
                return
            }
        }
    }

    // MARK: One batch

    /// Stores the events of `entries` in one transaction, then acknowledges every entry,
    /// poison included. Throws before acknowledging anything when the ledger fails.
    private func store(_ entries: [UsageStreamEntry]) async throws {
        guard !entries.isEmpty else { return }
        var events: [UsageEvent] = []
        events.reserveCapacity(entries.count)
        var poison: [(id: String, reason: String)] = []
        var deleted = 0
        for entry in entries {
            switch entry.body {
            case .event(let wire):
                do {
                    events.append(try UsageEvent(wireJSON: wire.utf8))
                } catch {
                    poison.append((entry.id, "not a usage event: \(Self.excerpt(wire))"))
                }
            case .malformed(let found):
                poison.append((entry.id, found))
            case .deleted:
                deleted += 1
            }
        }
        let new = try await ledger.record(events)
        // Counted once the ledger has them, whether or not the acknowledgement arrives (a
        // batch not acknowledged is read again, and then stored as duplicates).
        counters.withLock { counters in
            counters.consumed += entries.count - deleted
            counters.written += new
            counters.duplicates += events.count - new
            counters.poison += poison.count
        }
        try await source.acknowledge(entries.map(\.id))
        for entry in poison {
            logger.critical(
                "USAGE STREAM ENTRY IS NOT A USAGE EVENT: acknowledged and skipped, nothing was metered for it",
                metadata: ["entry": "\(entry.id)", "found": "\(entry.reason)", "stream": "\(source.location)"]
            )
        }
    }

    /// The start of an entry's text, short enough for a log line.
    private static func excerpt(_ text: String) -> String {
        text.count <= 200 ? text : String(text.prefix(200)) + "…"
    }
}

// MARK: - Pacing

/// How long the meter waits after a failure (100 ms, doubling to 5 s), and whether to log
/// it: the first failure of an outage, then one line every 30 s.
struct FailureBackoff {
    private var delay: Duration?
    private var failures = 0
    private var lastLog: ContinuousClock.Instant?

    /// A failure: the delay before the next try, and whether to log this one.
    mutating func failed(now: ContinuousClock.Instant = .now) -> (delay: Duration, log: Bool) {
        let next = delay.map { min($0 * 2, .seconds(5)) } ?? .milliseconds(100)
        delay = next
        failures += 1
        let log = lastLog.map { now - $0 >= .seconds(30) } ?? true
        if log { lastLog = now }
        return (next, log)
    }

    /// A success: ends the outage; returns how many failures it had, nil when there was none.
    mutating func succeeded() -> Int? {
        guard failures > 0 else { return nil }
        defer { self = FailureBackoff() }
        return failures
    }
}

/// One progress line every `interval` at most, and only when something was consumed since
/// the last one: a busy meter logs its rate, an idle one stays quiet.
struct ProgressLog {
    let interval: Duration
    private var last = UsageMeter.Statistics()
    private var lastTime = ContinuousClock.now

    init(interval: Duration) {
        self.interval = interval
    }

    mutating func logIfDue(_ now: UsageMeter.Statistics, logger: Logger) {
        let time = ContinuousClock.now
        guard time - lastTime >= interval else { return }
        defer { (last, lastTime) = (now, time) }
        let consumed = now.consumed - last.consumed
        guard consumed > 0 else { return }
        let elapsed = (time - lastTime).components
        let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
        logger.info(
            "usage stream metered",
            metadata: [
                "consumed": "\(consumed)", "written": "\(now.written - last.written)",
                "duplicates": "\(now.duplicates - last.duplicates)", "poison": "\(now.poison - last.poison)",
                "per_second": "\(Int((Double(consumed) / max(seconds, 0.001)).rounded()))",
                "total_written": "\(now.written)",
            ]
        )
    }
}
