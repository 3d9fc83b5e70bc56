import Foundation
import GRDB
import Testing

@testable import Billing

@Suite("Ledger")
struct LedgerTests {
    @Test("creates its folder and database file, and reopens what it wrote")
    func reopen() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.url.appendingPathComponent("nested/deeper/ledger.sqlite").path

        let tenantID: String
        do {
            let ledger = try Ledger(path: path)
            tenantID = try await ledger.createTenant(name: "Acme", tier: "enterprise", now: date("2026-01-01T00:00:00Z")).id
            try await ledger.record([usageEvent("req-1", tenant: tenantID)])
            try ledger.checkpoint()
        }
        #expect(FileManager.default.fileExists(atPath: path))

        // Opening again runs the (already applied) migrations and finds the data.
        let reopened = try Ledger(path: path)
        #expect(try await reopened.tenant(id: tenantID)?.name == "Acme")
        #expect(try await reopened.usageEvent(requestID: "req-1")?.tenantID == tenantID)
    }

    @Test("a v3 database migrates to v4 keeping its events, which were not billed")
    func migrateToV4() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        do {
            let pool = try DatabasePool(path: folder.ledgerPath)
            try Ledger.migrator.migrate(pool, upTo: "v3: queue wait and spill-over of usage events, tenant pinning")
            try await pool.write { db in
                try db.execute(sql: """
                    INSERT INTO usage_events (
                        request_id, tenant_id, model, prompt_tokens, cached_tokens, completion_tokens, reasoning_tokens,
                        tokens_estimated, cost_micros, currency, status, started_at, duration_ms, streamed, client_aborted
                    ) VALUES ('old', 'ten_a', 'chat-large', 100, 0, 50, 0, 0, 1000, 'USD', 200, 1772000000000, 900, 1, 0)
                    """)
            }
        }
        let ledger = try Ledger(path: folder.ledgerPath)
        #expect(try await ledger.usageEvent(requestID: "old")?.billedMicros == nil)
        let rows = try await ledger.usageSummary(UsageQuery(groupBy: .tenant))
        #expect(rows.map(\.billedMicros) == [0])
        #expect(rows.map(\.marginMicros) == [-1_000])
        let month = BudgetPeriod.month.interval(containing: Date(ledgerMilliseconds: 1_772_000_000_000))
        #expect(try await ledger.budgetUsage(.quota("ten_a"), period: month) == BudgetUsage(tokens: 150, micros: 1_000))
    }

    @Test("a checkpoint empties the write-ahead log")
    func checkpoint() async throws {
        try await withLedger { ledger, folder async throws in
            try await ledger.record([usageEvent("req-1")])
            try ledger.checkpoint()
            let wal = folder.ledgerPath + "-wal"
            let size = (try? FileManager.default.attributesOfItem(atPath: wal)[.size] as? Int) ?? 0
            #expect(size == 0)
            #expect(try await ledger.usageEvent(requestID: "req-1") != nil)
        }
    }

    @Test("stores times as whole milliseconds")
    func milliseconds() {
        let instant = Date(timeIntervalSince1970: 1_772_000_000.1234)
        #expect(instant.ledgerMilliseconds == 1_772_000_000_123)
        #expect(Date(ledgerMilliseconds: 1_772_000_000_123).ledgerMilliseconds == 1_772_000_000_123)
    }

    @Test("a new database, its -wal and -shm are 0600, and folders made for it 0700, whatever the umask")
    func privateFiles() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let previous = umask(0o022)
        defer { umask(previous) }
        let path = folder.url.appendingPathComponent("var/ledger.sqlite").path
        let ledger = try Ledger(path: path)
        try await ledger.record([usageEvent("req-1")])
        func mode(_ path: String) throws -> Int {
            try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
        }
        #expect(try mode(path) == 0o600)
        #expect(try mode(path + "-wal") == 0o600)
        #expect(try mode(path + "-shm") == 0o600)
        #expect(try mode(folder.url.appendingPathComponent("var").path) == 0o700)
        #expect(PrivateFiles.exposedDatabaseFiles(path).isEmpty)

        chmod(path, 0o644)
        #expect(PrivateFiles.exposedDatabaseFiles(path).map(\.path) == [path])
        #expect(PrivateFiles.exposedDatabaseFiles(path).first?.mode == 0o644)
    }
}

