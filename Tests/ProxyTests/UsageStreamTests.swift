import Billing
import Foundation
import Logging
import Pools
import ServiceLifecycle
import Testing

@testable import Proxy
import RedisTestSupport

/// The usage stream end to end, on real parts: a `UsageWriter` with its spool XADDs events
/// to a real `redis-server`, and `UsageMeter`s move them into a real SQLite ledger.
@Suite("Usage stream")
struct UsageStreamTests {
    private let logger = Logger(label: "ProxyTests.UsageStream")

    /// A fresh temporary folder for the database and the spool.
    private struct Folder {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("switchyard-stream-\(UUID().uuidString)")
        var databasePath: String { url.appendingPathComponent("switchyard.sqlite").path }
        var spoolPath: String { url.appendingPathComponent("spool").path }
        func remove() { try? FileManager.default.removeItem(at: url) }

        /// The spool's segment files, in every replica directory.
        func spoolSegments() -> [String] {
            let names = FileManager.default.enumerator(atPath: spoolPath)?.allObjects as? [String] ?? []
            return names.filter { $0.hasSuffix(".events") }
        }
    }

    private func event(_ requestID: String, prompt: Int = 100) -> UsageEvent {
        UsageEvent(
            requestID: requestID, tenantID: "ten_a", tenantKeyID: "key_a", model: "chat-large", deployment: "openai-gpt-4o",
            provider: "openai", promptTokens: prompt, completionTokens: 50, costMicros: 1_000, status: 200,
            startedAt: Date(ledgerMilliseconds: Date().ledgerMilliseconds), timeToFirstTokenMilliseconds: 120,
            durationMilliseconds: 900, streamed: true
        )
    }

    /// Runs `body` with a fresh redis-server and a client for it, a database in a fresh
    /// folder, and the usage stream on that client; removes the folder afterwards.
    private func withStream(
        _ body: (RedisTestServer, RedisClient, Folder, SwitchyardDatabase, RedisUsageStream) async throws -> Void
    ) async throws {
        let folder = Folder()
        defer { folder.remove() }
        try await withRedis { server, client async throws in
            let database = try SwitchyardDatabase(path: folder.databasePath)
            try await body(server, client, folder, database, RedisUsageStream(client: client, logger: logger))
        }
    }

    /// A meter on a client of its own, quick to notice new entries and idle ones.
    private func meter(
        _ server: RedisTestServer, _ ledger: Ledger, consumer: String, minimumIdle: Duration = .seconds(60),
        claimInterval: Duration = .seconds(30)
    ) throws -> (UsageMeter, RedisClient) {
        let client = try RedisUsageStream.meterClient(url: server.url(), block: .milliseconds(100))
        let meter = UsageMeter(
            source: RedisUsageStream(client: client, logger: logger), ledger: ledger, consumer: consumer, batchSize: 50,
            block: .milliseconds(100), claimInterval: claimInterval, minimumIdle: minimumIdle, logger: logger
        )
        return (meter, client)
    }

    /// Runs a meter (see `meter`) while `body` runs, then shuts it and its client down.
    /// - Returns: the meter, for its statistics.
    @discardableResult
    private func withMeter(
        _ server: RedisTestServer, _ ledger: Ledger, consumer: String, minimumIdle: Duration = .seconds(60),
        claimInterval: Duration = .seconds(30), _ body: (UsageMeter) async throws -> Void
    ) async throws -> UsageMeter {
        let (meter, client) = try meter(server, ledger, consumer: consumer, minimumIdle: minimumIdle, claimInterval: claimInterval)
        do {
            try await whileRunning([meter]) { try await body(meter) }
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
        return meter
    }

    private func requests(_ ledger: Ledger) async throws -> Int {
        try await ledger.usageSummary(UsageQuery(groupBy: .tenant)).reduce(0) { $0 + $1.requests }
    }

    /// Entries in the stream, and entries handed to a meter and not acknowledged.
    private func streamState(_ client: RedisClient) async throws -> (length: Int, pending: Int) {
        let length = try await client.command(["XLEN", RedisUsageStream.defaultKey]).checked().integer ?? -1
        // No group yet (no meter ran) is nothing pending.
        let pending = try await client.command(["XPENDING", RedisUsageStream.defaultKey, RedisUsageStream.group])
        if case .error = pending { return (length, 0) }
        return (length, pending.array?.first?.integer ?? -1)
    }

    /// Runs `services` in a service group while `body` runs, then shuts them down gracefully.
    private func whileRunning(_ services: [any Service], _ body: () async throws -> Void) async throws {
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(services: services.map { .init(service: $0) }, logger: logger)
        )
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            do {
                try await body()
            } catch {
                await group.triggerGracefulShutdown()
                try? await tasks.waitForAll()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    /// Waits until `condition` holds, for up to `timeout`; true when it did.
    private func eventually(timeout: Duration = .seconds(15), _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return try await condition()
    }

    // MARK: Tests

    @Test("events a writer sends to the stream reach the ledger exactly once, and leave the stream")
    func exactlyOnce() async throws {
        try await withStream { server, client, folder, database, _ async throws in
            let writer = UsageWriter(
                sink: RedisUsageStream(client: client, logger: logger), spool: try UsageSpool(root: folder.spoolPath),
                flushInterval: .seconds(3_600), logger: logger
            )
            let events = (1...120).map { event("req-\($0)", prompt: $0) }
            events.forEach(writer.record)
            await writer.flush()
            #expect(writer.statistics.pending == 0)
            #expect(try await streamState(client).length == 120)
            #expect(folder.spoolSegments().isEmpty, "a delivered segment is removed")

            let meter = try await withMeter(server, database.ledger, consumer: "meter-1") { meter async throws in
                #expect(try await eventually { try await requests(database.ledger) == 120 })
                #expect(try await eventually { try await streamState(client) == (0, 0) })
            }
            #expect(meter.statistics.consumed == 120)
            #expect(meter.statistics.written == 120)
            #expect(meter.statistics.duplicates == 0)
            #expect(meter.statistics.poison == 0)
            for event in events.prefix(5) {
                #expect(try await database.ledger.usageEvent(requestID: event.requestID) == event)
            }
        }
    }

    @Test("a second meter takes over the entries a first one read and never acknowledged")
    func claimFromAnotherMeter() async throws {
        try await withStream { server, client, folder, database, stream async throws in
            try await stream.deliver((1...30).map { event("req-\($0)") })
            // Meter A reads them all, then stops (or hangs) without storing or acknowledging.
            try await stream.createGroup()
            let taken = try await stream.readNew(consumer: "meter-a", count: 100, block: nil)
            #expect(taken.count == 30)
            #expect(try await streamState(client) == (30, 30))

            let meter = try await withMeter(
                server, database.ledger, consumer: "meter-b", minimumIdle: .milliseconds(300), claimInterval: .milliseconds(100)
            ) { _ async throws in
                #expect(try await eventually { try await requests(database.ledger) == 30 })
                #expect(try await eventually { try await streamState(client) == (0, 0) })
            }
            #expect(meter.statistics.claimed == 30)
            #expect(meter.statistics.written == 30)
        }
    }

    @Test("a meter that restarts under the same name stores its own pending entries first")
    func ownPendingFirst() async throws {
        try await withStream { server, client, folder, database, stream async throws in
            try await stream.deliver((1...12).map { event("req-\($0)") })
            try await stream.createGroup()
            #expect(try await stream.readNew(consumer: "meter-1", count: 100, block: nil).count == 12)

            let meter = try await withMeter(server, database.ledger, consumer: "meter-1") { meter async throws in
                #expect(try await eventually { try await requests(database.ledger) == 12 })
                #expect(try await eventually { try await streamState(client) == (0, 0) })
            }
            #expect(meter.statistics.claimed == 0, "its own entries need no claim")
            #expect(meter.statistics.written == 12)
        }
    }

    @Test("the same event added to the stream twice is stored once")
    func duplicates() async throws {
        try await withStream { server, client, folder, database, stream async throws in
            let events = (1...10).map { event("req-\($0)", prompt: $0) }
            // A retried delivery: the writer's first attempt reached Redis, its answer did not.
            try await stream.deliver(events)
            try await stream.deliver(events)
            let meter = try await withMeter(server, database.ledger, consumer: "meter-1") { meter async throws in
                #expect(try await eventually { meter.statistics.consumed == 20 })
                // And once more after the first copies are stored.
                try await stream.deliver(Array(events.prefix(4)))
                #expect(try await eventually { meter.statistics.consumed == 24 })
                #expect(try await eventually { try await streamState(client) == (0, 0) })
            }
            #expect(try await requests(database.ledger) == 10)
            #expect(meter.statistics.written == 10)
            #expect(meter.statistics.duplicates == 14)
            let summary = try await database.ledger.usageSummary(UsageQuery(groupBy: .tenant))
            #expect(summary.first?.promptTokens == (1...10).reduce(0, +), "no total counts a duplicate")
        }
    }

    @Test("an entry that is not a usage event is acknowledged and skipped, and the rest are stored")
    func poison() async throws {
        try await withStream { server, client, folder, database, stream async throws in
            let key = RedisUsageStream.defaultKey
            try await stream.deliver([event("req-1")])
            _ = try await client.command(["XADD", key, "*", "e", "not json at all"]).checked()
            _ = try await client.command(["XADD", key, "*", "e", #"{"request_id":"req-cut-off","tenant_id":"ten_a""#]).checked()
            _ = try await client.command(["XADD", key, "*", "other", "field"]).checked()
            try await stream.deliver([event("req-2"), event("req-3")])

            let meter = try await withMeter(server, database.ledger, consumer: "meter-1") { meter async throws in
                #expect(try await eventually { try await requests(database.ledger) == 3 })
                #expect(try await eventually { try await streamState(client) == (0, 0) })
            }
            #expect(meter.statistics.poison == 3)
            #expect(meter.statistics.consumed == 6)
            #expect(meter.statistics.written == 3)
            #expect(try await database.ledger.usageEvent(requestID: "req-3") != nil)
        }
    }

    @Test("while Redis is down the writer keeps events in its spool, and delivers them once it is back")
    func redisOutage() async throws {
        try await withStream { server, client, folder, database, _ async throws in
            let writer = UsageWriter(
                sink: RedisUsageStream(client: client, logger: logger), spool: try UsageSpool(root: folder.spoolPath),
                flushInterval: .seconds(3_600), logger: logger
            )
            let meter = try await withMeter(server, database.ledger, consumer: "meter-1") { meter async throws in
                (1...5).map { event("before-\($0)") }.forEach(writer.record)
                await writer.flush()
                #expect(try await eventually { try await requests(database.ledger) == 5 })

                server.stop()
                (1...40).map { event("during-\($0)") }.forEach(writer.record)
                await writer.flush()
                #expect(writer.statistics.pending == 40, "the delivery failed: the events wait")
                #expect(!folder.spoolSegments().isEmpty, "on disk, in the spool")
                await writer.flush()
                #expect(writer.statistics.pending == 40)

                // The same port, and (without persistence) an empty Redis: the meter makes
                // its group again.
                try server.start()
                await writer.flush()
                #expect(writer.statistics.pending == 0)
                #expect(folder.spoolSegments().isEmpty)
                #expect(try await eventually(timeout: .seconds(20)) { try await requests(database.ledger) == 45 })
                #expect(try await eventually { try await streamState(client) == (0, 0) })
            }
            #expect(meter.statistics.written == 45)
            #expect(try await database.ledger.usageEvent(requestID: "during-40") != nil)
        }
    }
}
