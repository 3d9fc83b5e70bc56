import Foundation
import Logging
import ServiceLifecycle

/// Keeps raw usage events for a number of days: shortly after start and then every
/// `interval`, deletes the events that started before then, in chunks of `chunkSize`
/// (one short transaction each), so the writer of new events never waits long. The
/// hourly rollups are kept for good.
///
/// Only the process that writes the ledger runs it: `serve` without Redis, or the meter.
public struct UsagePruner: Service {
    private let ledger: Ledger
    private let retainDays: Int
    private let interval: Duration
    private let firstRunAfter: Duration
    private let chunkSize: Int
    private let logger: Logger

    /// - Parameters:
    ///   - ledger: the ledger whose events are pruned.
    ///   - retainDays: days of raw events to keep.
    ///   - interval: time between two prunes.
    ///   - firstRunAfter: time from start to the first prune.
    ///   - chunkSize: most events deleted in one transaction.
    ///   - logger: where the counts go.
    public init(
        ledger: Ledger, retainDays: Int, interval: Duration = .seconds(3_600), firstRunAfter: Duration = .seconds(30),
        chunkSize: Int = 10_000, logger: Logger
    ) {
        self.ledger = ledger
        self.retainDays = retainDays
        self.interval = interval
        self.firstRunAfter = firstRunAfter
        self.chunkSize = max(1, chunkSize)
        self.logger = logger
    }

    /// Prunes shortly after start, then every `interval`, until graceful shutdown.
    public func run() async throws {
        logger.info(
            "usage events are kept \(retainDays) days (hourly rollups for good)",
            metadata: ["retain_events_days": "\(retainDays)"]
        )
        var wait = firstRunAfter
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            let pause = wait
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
            if Task.isShuttingDownGracefully || Task.isCancelled { break }
            await prune()
            wait = interval
        }
    }

    /// One prune: deletes the events older than the retention, chunk by chunk, until none
    /// is left or shutdown begins. A failure is logged; the next run tries again.
    /// - Returns: how many events were deleted.
    @discardableResult
    public func prune(now: Date = Date()) async -> Int {
        let cutoff = Ledger.retentionCutoff(days: retainDays, now: now)
        var total = 0
        do {
            while !Task.isShuttingDownGracefully, !Task.isCancelled {
                let deleted = try await ledger.pruneUsageEvents(startedBefore: cutoff, limit: chunkSize)
                total += deleted
                if deleted < chunkSize { break }
                // Between chunks the writer gets its turn at the database.
                await Task.yield()
            }
        } catch {
            logger.error("pruning old usage events failed; trying again at the next run", metadata: ["error": "\(error)", "pruned": "\(total)"])
            return total
        }
        if total > 0 {
            logger.info(
                "pruned \(total) usage events older than \(retainDays) days",
                metadata: ["pruned": "\(total)", "started_before": "\(ISO8601DateFormatter().string(from: cutoff))"]
            )
        }
        return total
    }
}
