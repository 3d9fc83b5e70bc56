import Foundation
import Logging
import ServiceLifecycle
import Testing

@testable import Billing

@Suite("UsagePruner")
struct UsagePrunerTests {
    private let logger = Logger(label: "BillingTests.UsagePruner")
    private let now = date("2026-06-01T12:00:00Z")

    /// Events 500, 401, 399 and 10 days old: the first two are past a 400-day retention.
    private func recordAges(_ ledger: Ledger) async throws {
        let day: TimeInterval = 86_400
        var events: [UsageEvent] = []
        for index in 1...7 { events.append(usageEvent("old-\(index)", at: now.addingTimeInterval(-500 * day), prompt: index)) }
        events.append(usageEvent("old-8", at: now.addingTimeInterval(-401 * day)))
        events.append(usageEvent("kept-1", at: now.addingTimeInterval(-399 * day)))
        events.append(usageEvent("kept-2", at: now.addingTimeInterval(-10 * day)))
        try await ledger.record(events)
    }

    private func rollupTotals(_ ledger: Ledger) async throws -> [String] {
        try await ledger.rows("SELECT hour, requests, prompt_tokens, cost_micros FROM usage_rollups ORDER BY hour")
    }

    @Test("events older than the retention are pruned, in chunks; recent events and every rollup stay")
    func pruneOldEvents() async throws {
        try await withLedger { ledger, _ async throws in
            try await recordAges(ledger)
            let rollups = try await rollupTotals(ledger)
            #expect(rollups.count == 4)

            let pruned = try await ledger.pruneUsageEvents(olderThanDays: 400, now: now, chunkSize: 3)
            #expect(pruned == 8)
            #expect(try await ledger.integer("SELECT count(*) FROM usage_events") == 2)
            #expect(try await ledger.usageEvent(requestID: "old-1") == nil)
            #expect(try await ledger.usageEvent(requestID: "old-8") == nil)
            #expect(try await ledger.usageEvent(requestID: "kept-1") != nil)
            #expect(try await ledger.usageEvent(requestID: "kept-2") != nil)
            #expect(try await rollupTotals(ledger) == rollups, "rollups outlive the events they sum")

            #expect(try await ledger.pruneUsageEvents(olderThanDays: 400, now: now) == 0, "nothing left to prune")
        }
    }

    @Test("one chunk deletes at most its limit")
    func chunkLimit() async throws {
        try await withLedger { ledger, _ async throws in
            try await recordAges(ledger)
            let cutoff = Ledger.retentionCutoff(days: 400, now: now)
            #expect(try await ledger.pruneUsageEvents(startedBefore: cutoff, limit: 5) == 5)
            #expect(try await ledger.pruneUsageEvents(startedBefore: cutoff, limit: 5) == 3)
            #expect(try await ledger.pruneUsageEvents(startedBefore: cutoff, limit: 5) == 0)
            #expect(try await ledger.integer("SELECT count(*) FROM usage_events") == 2)
        }
    }

    @Test("a pruned request id is forgotten: the ledger stores it anew, a kept one it still ignores")
    func prunedIDsAreGone() async throws {
        try await withLedger { ledger, _ async throws in
            try await recordAges(ledger)
            _ = try await ledger.pruneUsageEvents(olderThanDays: 400, now: now)
            // The ledger's idempotence reaches back as far as the retention: a copy of an
            // event older than that is stored (and rolled up) again.
            #expect(try await ledger.record([usageEvent("kept-2", at: now)]) == 0)
            #expect(try await ledger.record([usageEvent("old-1", at: now)]) == 1)
        }
    }

    @Test("the pruner service prunes shortly after it starts")
    func service() async throws {
        try await withLedger { ledger, _ async throws in
            let day: TimeInterval = 86_400
            try await ledger.record([
                usageEvent("old", at: Date().addingTimeInterval(-40 * day)),
                usageEvent("recent", at: Date().addingTimeInterval(-1 * day)),
            ])
            let pruner = UsagePruner(ledger: ledger, retainDays: 30, firstRunAfter: .milliseconds(10), chunkSize: 1, logger: logger)
            let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [.init(service: pruner)], logger: logger))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                let deadline = ContinuousClock.now + .seconds(10)
                while ContinuousClock.now < deadline, try await ledger.integer("SELECT count(*) FROM usage_events") != 1 {
                    try await Task.sleep(for: .milliseconds(20))
                }
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
            #expect(try await ledger.usageEvent(requestID: "old") == nil)
            #expect(try await ledger.usageEvent(requestID: "recent") != nil)
            #expect(await pruner.prune() == 0)
        }
    }
}
