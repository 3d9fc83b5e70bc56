import Foundation
import GRDB

extension Ledger {
    /// The start of the events kept when raw events are retained for `days` days.
    public static func retentionCutoff(days: Int, now: Date = Date()) -> Date {
        now.addingTimeInterval(-Double(days) * 86_400)
    }

    /// Deletes at most `limit` usage events that started before `cutoff`, oldest by id
    /// first, in one short transaction, so the writer of new events never waits long.
    /// The hourly rollups are kept: reports still sum the pruned hours.
    /// - Returns: how many events were deleted; fewer than `limit` means none is left.
    public func pruneUsageEvents(startedBefore cutoff: Date, limit: Int = 10_000) async throws -> Int {
        try await pool.write { db in
            try db.execute(
                sql: """
                    DELETE FROM usage_events WHERE id IN (
                        SELECT id FROM usage_events WHERE started_at < ? LIMIT ?
                    )
                    """,
                arguments: [cutoff.ledgerMilliseconds, max(1, limit)]
            )
            return db.changesCount
        }
    }

    /// Deletes every usage event older than `days` days, `chunkSize` events per
    /// transaction; the rollups are kept.
    /// - Returns: how many events were deleted.
    public func pruneUsageEvents(olderThanDays days: Int, now: Date = Date(), chunkSize: Int = 10_000) async throws -> Int {
        let cutoff = Self.retentionCutoff(days: days, now: now)
        var total = 0
        while true {
            let deleted = try await pruneUsageEvents(startedBefore: cutoff, limit: chunkSize)
            total += deleted
            if deleted < max(1, chunkSize) { return total }
        }
    }
}
