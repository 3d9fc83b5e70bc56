import Foundation
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

