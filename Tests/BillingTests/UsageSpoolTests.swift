import Foundation
import GRDB
import Logging
import Testing

@testable import Billing

@Suite("Usage spool")
struct UsageSpoolTests {
    private let logger = Logger(label: "BillingTests.UsageSpool")

    private func line(_ event: UsageEvent) -> [UInt8] {
        event.wireJSON() + [UInt8(ascii: "\n")]
    }

    private func segmentFiles(_ root: String) -> [String] {
        let enumerator = FileManager.default.enumerator(atPath: root)
        return (enumerator?.allObjects as? [String] ?? []).filter { $0.hasSuffix(".events") }.sorted()
    }

    /// A sink that refuses its first `failures` deliveries, then stores in the ledger: a
    /// stand-in for a ledger or Redis that is away for a while.
    private final class FlakySink: UsageSink, @unchecked Sendable {
        private let ledger: Ledger
        private let lock = NSLock()
        private var failures: Int

        init(ledger: Ledger, failures: Int) {
            self.ledger = ledger
            self.failures = failures
        }

        struct Away: Error {}

        func deliver(_ events: [UsageEvent]) async throws {
            let fail = lock.withLock { () -> Bool in
                guard failures > 0 else { return false }
                failures -= 1
                return true
            }
            if fail { throw Away() }
            try await ledger.record(events)
        }
    }

    @Test("an event's wire form reads back as the same event, terms included")
    func wireRoundTrip() throws {
        var event = usageEvent("req-\"quoted\"\n\u{1}", tenant: "ten_ü", model: "m,odel")
        event.enginePool = "gpu-a"
        event.slotMilliseconds = 1_234
        event.queueMilliseconds = 5
        event.userID = "usr_1"
        event.terms = BillingTerms(monthlyQuotaTokens: 1_000, overagePerMillion: 2_000_000)
        #expect(try UsageEvent(wireJSON: event.wireJSON()) == event)
        event.terms = BillingTerms(monthlyQuotaTokens: nil, overagePerMillion: nil)
        #expect(try UsageEvent(wireJSON: event.wireJSON()) == event)
        event.terms = nil
        #expect(try UsageEvent(wireJSON: event.wireJSON()) == event)
        // What JSONSerialization reads is what the hand-written encoder meant.
        let object = try #require(try JSONSerialization.jsonObject(with: Data(event.wireJSON())) as? [String: Any])
        #expect(object["request_id"] as? String == "req-\"quoted\"\n\u{1}")
        #expect(object["slot_ms"] as? Int == 1_234)
    }

    @Test("the wire reader refuses what is not a whole event, and skips keys it does not know")
    func wireRefusals() throws {
        let line = usageEvent("req-1").wireJSON()
        for cut in [1, 10, line.count / 2, line.count - 1] {
            #expect(throws: UsageEventWireError.self) { try UsageEvent(wireJSON: line.prefix(cut)) }
        }
        for bad in ["", "[]", "null", "{\"request_id\":1}", "{} {}", "{\"request_id\":\"a\\q\"}", "{\"a\":tru}",
                    "{\"a\":\"\u{1}\"}", "{\"cost_micros\":99999999999999999999}", "{\"a\":\"\\ud800\"}"] {
            #expect(throws: UsageEventWireError.self, "\(bad)") { try UsageEvent(wireJSON: Array(bad.utf8)) }
        }
        // JSON that a newer writer might send: spaces, unknown keys, escaped slashes and pairs.
        var text = String(decoding: line, as: UTF8.self)
        text.removeLast()
        text = " " + text.replacingOccurrences(of: ",", with: " , ") + #", "future_field": {"nested": [1, 2]} }"#
        #expect(throws: UsageEventWireError.self, "a nested value is not part of the wire form") {
            try UsageEvent(wireJSON: Array(text.utf8))
        }
        let spaced = " " + String(decoding: line, as: UTF8.self).replacingOccurrences(of: ",", with: " ,\n ")
            .replacingOccurrences(of: "}", with: #", "added_later": "x\/y \ud83d\ude80", "n": null }"#)
        #expect(try UsageEvent(wireJSON: Array(spaced.utf8)) == usageEvent("req-1"))
    }

    @Test("appended events are read back from the sealed segment; nothing appended seals nothing")
    func appendSealRead() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let spool = try UsageSpool(root: folder.url.path + "/spool")
        #expect(spool.seal() == nil)
        let events = (1...20).map { usageEvent("req-\($0)", prompt: $0) }
        for event in events { #expect(spool.append(line(event))) }
        let segment = try #require(spool.seal())
        #expect(spool.seal() == nil)
        let read = try spool.read(segment)
        #expect(read.events == events)
        #expect(read.unreadable == 0)
        spool.remove(segment)
        #expect(segmentFiles(folder.url.path + "/spool").isEmpty)
    }

    @Test("a line cut off mid-write is skipped and counted; the lines around it are read")
    func tornLine() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let root = folder.url.path + "/spool"
        do {
            let spool = try UsageSpool(root: root)
            #expect(spool.append(line(usageEvent("req-1"))))
            #expect(spool.append(Array(line(usageEvent("req-2")).prefix(40))))
            #expect(spool.append(line(usageEvent("req-3"))))
        }
        // The next process finds the segment, torn line and all.
        let spool = try UsageSpool(root: root)
        let segment = try #require(spool.leftOver.first)
        let read = try spool.read(segment)
        // The torn line ran into the one after it (no newline ended it): that one line is
        // unreadable; the first is intact.
        #expect(read.events.map(\.requestID) == ["req-1"])
        #expect(read.unreadable == 1)
    }

    @Test("replicas sharing a root each claim a directory; a free one's segments are adopted")
    func claimsAndAdoption() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let root = folder.url.path + "/spool"
        var first: UsageSpool? = try UsageSpool(root: root)
        var second: UsageSpool? = try UsageSpool(root: root)
        #expect(first?.directory != second?.directory)
        #expect(first?.append(line(usageEvent("req-a"))) == true)
        #expect(second?.append(line(usageEvent("req-b"))) == true)
        #expect(second?.append(line(usageEvent("req-c"))) == true)
        // Both stop without delivering (their locks go with them, as with a killed process).
        first = nil
        second = nil
        let third = try UsageSpool(root: root)
        #expect(third.leftOver.count == 2)
        let ids = try third.leftOver.flatMap { try third.read($0).events.map(\.requestID) }
        #expect(Set(ids) == ["req-a", "req-b", "req-c"])
        // A replica running beside it adopts nothing that is held.
        let fourth = try UsageSpool(root: root)
        #expect(fourth.leftOver.isEmpty)
        #expect(fourth.directory != third.directory)
    }

    @Test("a writer that stops without delivering loses nothing: the next one delivers its spool first")
    func writerRestart() async throws {
        try await withLedger { ledger, folder async throws in
            let root = folder.url.path + "/spool"
            let events = (1...50).map { usageEvent("req-\($0)", prompt: $0) }
            do {
                let writer = UsageWriter(sink: LedgerSink(ledger: ledger), spool: try UsageSpool(root: root), logger: logger)
                events.forEach(writer.record)
                #expect(writer.statistics.pending == 50)
                // No flush: the process "dies" here.
            }
            #expect(try await ledger.usageSummary(UsageQuery(groupBy: .tenant)).first?.requests == nil)
            let writer = UsageWriter(sink: LedgerSink(ledger: ledger), spool: try UsageSpool(root: root), logger: logger)
            #expect(writer.statistics.pending == 50, "what the spool holds is pending from the start")
            await writer.flush()
            for event in events {
                #expect(try await ledger.usageEvent(requestID: event.requestID) == event)
            }
            #expect(writer.statistics.written == 50)
            #expect(writer.statistics.dropped == 0)
            #expect(segmentFiles(root).isEmpty)
        }
    }

    @Test("while the sink is away events stay in the spool, and arrive once it is back")
    func sinkAway() async throws {
        try await withLedger { ledger, folder async throws in
            let root = folder.url.path + "/spool"
            let writer = UsageWriter(sink: FlakySink(ledger: ledger, failures: 3), spool: try UsageSpool(root: root), logger: logger)
            for round in 0..<3 {
                (0..<10).forEach { writer.record(usageEvent("req-\(round)-\($0)")) }
                await writer.flush()
                #expect(writer.statistics.written == 0)
                #expect(writer.statistics.pending == 10 * (round + 1))
                #expect(segmentFiles(root).count == round + 1)
            }
            await writer.flush()
            #expect(writer.statistics.written == 30)
            #expect(writer.statistics.pending == 0)
            #expect(segmentFiles(root).isEmpty)
            #expect(try await ledger.usageSummary(UsageQuery(groupBy: .tenant)).map(\.requests) == [30])
        }
    }

    @Test("beyond its memory capacity a spooled writer reads events back from disk and drops none")
    func capacityWithSpool() async throws {
        try await withLedger { ledger, folder async throws in
            let writer = UsageWriter(
                sink: LedgerSink(ledger: ledger), spool: try UsageSpool(root: folder.url.path + "/spool"), capacity: 3,
                logger: logger
            )
            let events = (1...10).map { usageEvent("req-\($0)") }
            events.forEach(writer.record)
            await writer.flush()
            #expect(writer.statistics.dropped == 0)
            #expect(writer.statistics.written == 10)
            for event in events {
                #expect(try await ledger.usageEvent(requestID: event.requestID) == event)
            }
        }
    }

    @Test("a full disk: events the spool cannot take are held in memory and delivered; only beyond memory are they dropped")
    func diskFull() async throws {
        try await withLedger { ledger, folder async throws in
            let spool = try UsageSpool(root: folder.url.path + "/spool")
            // The next segment is /dev/full: every write to it fails with ENOSPC.
            let segment = spool.directory + "/0000000000000001.events"
            try FileManager.default.createSymbolicLink(atPath: segment, withDestinationPath: "/dev/full")
            let writer = UsageWriter(sink: LedgerSink(ledger: ledger), spool: spool, capacity: 2, logger: logger)
            (1...3).forEach { writer.record(usageEvent("req-\($0)")) }
            #expect(writer.statistics.spoolFailures == 3)
            #expect(writer.statistics.dropped == 1)
            #expect(writer.statistics.pending == 2)
            await writer.flush()
            #expect(writer.statistics.written == 2)
            #expect(try await ledger.usageEvent(requestID: "req-1") != nil)
            #expect(try await ledger.usageEvent(requestID: "req-2") != nil)
            #expect(try await ledger.usageEvent(requestID: "req-3") == nil)
            // The disk has room again: the next events are spooled as usual.
            writer.record(usageEvent("req-4"))
            #expect(writer.statistics.spoolFailures == 3)
            await writer.flush()
            #expect(try await ledger.usageEvent(requestID: "req-4") != nil)
        }
    }

    @Test("hourly and daily rollups equal the sums of the events, however the batches fall")
    func rollupsEqualEvents() async throws {
        try await withLedger { ledger, _ async throws in
            var generator = SeededGenerator(seed: 42)
            let start = date("2026-03-01T00:00:00Z")
            var events: [UsageEvent] = []
            for index in 0..<2_000 {
                var event = usageEvent(
                    "req-\(index % 1_900)",  // some request ids repeat: stored once
                    tenant: ["ten_a", "ten_b", "ten_c"].randomElement(using: &generator) ?? "ten_a",
                    key: ["key_a", "key_b", nil].randomElement(using: &generator) ?? nil,
                    model: ["m1", "m2"].randomElement(using: &generator) ?? "m1",
                    at: start.addingTimeInterval(Double(Int.random(in: 0..<(3 * 86_400), using: &generator))),
                    prompt: Int.random(in: 0..<5_000, using: &generator),
                    completion: Int.random(in: 0..<2_000, using: &generator),
                    cost: Int64.random(in: 0..<1_000_000, using: &generator),
                    currency: ["USD", "EUR"].randomElement(using: &generator) ?? "USD",
                    status: [200, 200, 429, 502].randomElement(using: &generator) ?? 200
                )
                event.slotMilliseconds = Bool.random(using: &generator) ? Int.random(in: 0..<60_000, using: &generator) : nil
                event.enginePool = event.slotMilliseconds == nil ? nil : "gpu-a"
                events.append(event)
            }
            var remaining = events[...]
            while !remaining.isEmpty {
                let size = Int.random(in: 1...300, using: &generator)
                try await ledger.record(Array(remaining.prefix(size)))
                remaining = remaining.dropFirst(size)
            }
            let compare = """
                SELECT
                  (SELECT count(*) FROM usage_events) = (SELECT sum(requests) FROM usage_rollups),
                  (SELECT sum(prompt_tokens) FROM usage_events) = (SELECT sum(prompt_tokens) FROM usage_rollups),
                  (SELECT sum(completion_tokens) FROM usage_events) = (SELECT sum(completion_tokens) FROM usage_rollups),
                  (SELECT sum(cost_micros) FROM usage_events) = (SELECT sum(cost_micros) FROM usage_rollups),
                  (SELECT sum(coalesce(billed_micros, 0)) FROM usage_events) = (SELECT sum(billed_micros) FROM usage_rollups),
                  (SELECT sum(coalesce(slot_ms, 0)) FROM usage_events) = (SELECT sum(slot_ms) FROM usage_rollups),
                  (SELECT count(*) FROM usage_events) = (SELECT sum(requests) FROM usage_rollups_daily),
                  (SELECT sum(cost_micros) FROM usage_events) = (SELECT sum(cost_micros) FROM usage_rollups_daily),
                  (SELECT sum(coalesce(billed_micros, 0)) FROM usage_events) = (SELECT sum(billed_micros) FROM usage_rollups_daily),
                  (SELECT count(*) FROM usage_rollups_daily WHERE hour % 86400000 != 0) = 0
                """
            let daily = """
                SELECT count(*) FROM (
                  SELECT (started_at / 86400000) * 86400000, tenant_id, coalesce(tenant_key_id, ''), model, currency,
                         status, count(*), sum(prompt_tokens), sum(cost_micros), sum(coalesce(slot_ms, 0))
                  FROM usage_events GROUP BY 1, 2, 3, 4, 5, 6
                  EXCEPT
                  SELECT hour, tenant_id, tenant_key_id, model, currency, status, sum(requests), sum(prompt_tokens),
                         sum(cost_micros), sum(slot_ms)
                  FROM usage_rollups_daily GROUP BY 1, 2, 3, 4, 5, 6
                )
                """
            let grouped = """
                SELECT count(*) FROM (
                  SELECT (started_at / 3600000) * 3600000 AS hour, tenant_id, coalesce(tenant_key_id, '') AS k,
                         model, currency, status, count(*) AS n, sum(cost_micros) AS c
                  FROM usage_events GROUP BY 1, 2, 3, 4, 5, 6
                  EXCEPT
                  SELECT hour, tenant_id, tenant_key_id, model, currency, status, sum(requests), sum(cost_micros)
                  FROM usage_rollups GROUP BY 1, 2, 3, 4, 5, 6
                )
                """
            let (equal, mismatches, dailyMismatches) = try await ledger.pool.read { db in
                (try Row.fetchOne(db, sql: compare), try Int.fetchOne(db, sql: grouped), try Int.fetchOne(db, sql: daily))
            }
            let row = try #require(equal)
            for column in 0..<row.count { #expect(row[column] as Int? == 1, "column \(column) of the totals differs") }
            #expect(mismatches == 0)
            #expect(dailyMismatches == 0)
            #expect(try await ledger.pool.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM usage_events") } == 1_900)
        }
    }
}

/// A small deterministic generator (SplitMix64), so a failing case can be run again.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
