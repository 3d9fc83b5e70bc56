import Foundation
import Logging
import ServiceLifecycle
import Testing

@testable import Billing

@Suite("UsageWriter")
struct UsageWriterTests {
    private let logger = Logger(label: "BillingTests.UsageWriter")

    private func writer(_ ledger: Ledger, flushInterval: Duration = .seconds(3_600), capacity: Int = 1_000_000) -> UsageWriter {
        UsageWriter(ledger: ledger, flushInterval: flushInterval, capacity: capacity, logger: logger)
    }

    private func requests(_ ledger: Ledger) async throws -> Int {
        try await ledger.usageSummary(UsageQuery(groupBy: .tenant)).reduce(0) { $0 + $1.requests }
    }

    @Test("flush writes the queued events to the ledger")
    func flush() async throws {
        try await withLedger { ledger, _ async throws in
            let writer = writer(ledger)
            let events = (1...25).map { usageEvent("req-\($0)", prompt: $0) }
            events.forEach(writer.record)
            #expect(try await requests(ledger) == 0, "nothing is written before a flush")
            #expect(writer.statistics.pending == 25)
            #expect(writer.statistics.written == 0)

            await writer.flush()
            #expect(try await requests(ledger) == 25)
            #expect(writer.statistics.pending == 0)
            #expect(writer.statistics.written == 25)
            for event in events {
                #expect(try await ledger.usageEvent(requestID: event.requestID) == event)
            }

            // A second flush with nothing queued changes nothing; new events go in the next one.
            await writer.flush()
            writer.record(usageEvent("req-26"))
            await writer.flush()
            #expect(try await requests(ledger) == 26)
        }
    }

    @Test("beyond its capacity the writer drops new events, keeping the first")
    func capacity() async throws {
        try await withLedger { ledger, _ async throws in
            let writer = writer(ledger, capacity: 3)
            (1...5).forEach { writer.record(usageEvent("req-\($0)")) }
            await writer.flush()
            #expect(try await requests(ledger) == 3)
            #expect(writer.statistics.written == 3)
            #expect(writer.statistics.dropped == 2)
            #expect(try await ledger.usageEvent(requestID: "req-3") != nil)
            #expect(try await ledger.usageEvent(requestID: "req-4") == nil)

            // After a flush there is room again.
            writer.record(usageEvent("req-6"))
            await writer.flush()
            #expect(try await ledger.usageEvent(requestID: "req-6") != nil)
        }
    }

    @Test("events recorded from many tasks are all written once")
    func concurrentRecording() async throws {
        try await withLedger { ledger, _ async throws in
            let writer = writer(ledger)
            await withTaskGroup(of: Void.self) { group in
                for task in 0..<8 {
                    group.addTask {
                        for index in 0..<50 {
                            writer.record(usageEvent("req-\(task)-\(index)"))
                            if index % 10 == 0 { await writer.flush() }
                        }
                    }
                }
            }
            await writer.flush()
            #expect(try await requests(ledger) == 400)
        }
    }

    // MARK: As a service

    @Test("graceful shutdown of its service group writes what is pending")
    func gracefulShutdown() async throws {
        try await withLedger { ledger, folder async throws in
            // An hour between flushes: only the shutdown can write these events.
            let writer = writer(ledger)
            let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [writer], logger: logger))
            let events = (1...10).map { usageEvent("req-\($0)") }

            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                events.prefix(5).forEach(writer.record)
                await writer.flush()
                #expect(try await requests(ledger) == 5)

                events.dropFirst(5).forEach(writer.record)
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }

            #expect(try await requests(ledger) == 10)
            #expect(writer.statistics.written == 10)
            #expect(writer.statistics.pending == 0)
            for event in events {
                #expect(try await ledger.usageEvent(requestID: event.requestID) == event)
            }
            // The last act of the writer folds the write-ahead log into the database file.
            let wal = folder.ledgerPath + "-wal"
            let size = (try? FileManager.default.attributesOfItem(atPath: wal)[.size] as? Int) ?? 0
            #expect(size == 0)
        }
    }

    @Test("a shutdown requested before the group runs still writes what is pending")
    func shutdownBeforeRun() async throws {
        try await withLedger { ledger, _ async throws in
            let writer = writer(ledger)
            let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [writer], logger: logger))
            writer.record(usageEvent("req-early"))
            await group.triggerGracefulShutdown()
            try await group.run()
            #expect(try await ledger.usageEvent(requestID: "req-early") != nil)
        }
    }

    @Test("the running service writes on its own every flush interval", .timeLimit(.minutes(1)))
    func periodicFlush() async throws {
        try await withLedger { ledger, _ async throws in
            let writer = writer(ledger, flushInterval: .milliseconds(10))
            let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [writer], logger: logger))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                writer.record(usageEvent("req-1"))
                // Wait for the writer's own flush, however long the machine takes.
                while try await ledger.usageEvent(requestID: "req-1") == nil {
                    try await Task.sleep(for: .milliseconds(5))
                }
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
            #expect(try await ledger.usageEvent(requestID: "req-1") != nil)
        }
    }
}
