import Billing
import Directory
import Foundation
import GRDB
import Testing

@testable import Proxy

/// The one database file: opened once, migrated by the directory and the ledger, and
/// older files brought forward without loss.
@Suite("Switchyard database")
struct SwitchyardDatabaseTests {
    /// A fresh temporary folder, removed at the end of the test.
    private struct Folder {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("switchyard-database-\(UUID().uuidString)")
        var path: String { url.appendingPathComponent("switchyard.sqlite").path }
        func remove() { try? FileManager.default.removeItem(at: url) }
    }

    private func event(_ requestID: String, tenant: String, at startedAt: Date = Date(timeIntervalSince1970: 1_772_000_000)) -> UsageEvent {
        UsageEvent(
            requestID: requestID, tenantID: tenant, tenantKeyID: nil, model: "chat-large", deployment: "openai-gpt-4o",
            provider: "openai", promptTokens: 100, cachedTokens: 0, completionTokens: 50, reasoningTokens: 0,
            tokensEstimated: false, costMicros: 1_000, currency: "USD", status: 200, startedAt: startedAt,
            timeToFirstTokenMilliseconds: 120, durationMilliseconds: 900, streamed: true
        )
    }

    @Test("creates its folder and file, and reopens what the directory and the ledger wrote")
    func reopen() async throws {
        let folder = Folder()
        defer { folder.remove() }
        let path = folder.url.appendingPathComponent("nested/deeper/switchyard.sqlite").path
        let tenantID: String
        do {
            let database = try SwitchyardDatabase(path: path)
            tenantID = try await database.directory.createTenant(name: "Acme", tier: "enterprise").id
            try await database.ledger.record([event("req-1", tenant: tenantID)])
            try database.ledger.checkpoint()
        }
        #expect(FileManager.default.fileExists(atPath: path))
        let reopened = try SwitchyardDatabase(path: path)
        #expect(try await reopened.directory.tenant(id: tenantID)?.name == "Acme")
        #expect(try await reopened.ledger.usageEvent(requestID: "req-1")?.tenantID == tenantID)
    }

    /// The schema as SQLite describes it: every table's columns (name, type, NOT NULL,
    /// default, key), foreign keys and indexes, independent of how the DDL was written.
    private func schema(_ path: String) throws -> [String] {
        let queue = try DatabaseQueue(path: path)
        return try queue.read { db in
            let tables = try String.fetchAll(
                db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != 'grdb_migrations' ORDER BY name"
            )
            var lines: [String] = []
            for table in tables {
                for column in try Row.fetchAll(db, sql: "PRAGMA table_xinfo(\(table))") {
                    lines.append("\(table) column \(column["cid"] as Int) \(column["name"] as String) \(column["type"] as String) notnull=\(column["notnull"] as Int) default=\(column["dflt_value"] as String? ?? "-") pk=\(column["pk"] as Int)")
                }
                for key in try Row.fetchAll(db, sql: "PRAGMA foreign_key_list(\(table))") {
                    lines.append("\(table) references \(key["table"] as String)(\(key["to"] as String? ?? "-")) from \(key["from"] as String)")
                }
                let withoutRowID = try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE name = ?", arguments: [table])?
                    .uppercased().contains("WITHOUT ROWID") ?? false
                lines.append("\(table) without rowid=\(withoutRowID)")
            }
            for index in try Row.fetchAll(db, sql: "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name") {
                let sql = (index["sql"] as String?).map { $0.split(whereSeparator: \.isWhitespace).joined(separator: " ") } ?? "(automatic)"
                lines.append("index \(index["name"] as String) on \(index["tbl_name"] as String): \(sql)")
            }
            return lines
        }
    }

    @Test("a new database has exactly the schema the ledger's old migrations built")
    func freshSchemaEqualsLegacy() throws {
        let fresh = Folder(), legacy = Folder()
        defer { fresh.remove(); legacy.remove() }
        _ = try SwitchyardDatabase(path: fresh.path)
        try FileManager.default.createDirectory(at: legacy.url, withIntermediateDirectories: true)
        try SwitchyardDatabase.legacyMigrator.migrate(DatabaseQueue(path: legacy.path))
        _ = try SwitchyardDatabase(path: legacy.path)
        let freshSchema = try schema(fresh.path)
        #expect(freshSchema.count > 60)
        #expect(freshSchema == (try schema(legacy.path)))
    }

    @Test("a database that stopped at the ledger's v1 is finished by the old migrations, keeping its tenants and keys")
    func partialLegacy() async throws {
        let folder = Folder()
        defer { folder.remove() }
        let hash: [UInt8] = Array(repeating: 0x5A, count: 32)
        try FileManager.default.createDirectory(at: folder.url, withIntermediateDirectories: true)
        do {
            let queue = try DatabaseQueue(path: folder.path)
            try SwitchyardDatabase.legacyMigrator.migrate(queue, upTo: "v1: tenants, tenant keys, usage events")
            try await queue.write { db in
                try db.execute(sql: "INSERT INTO tenants (id, name, tier, created_at) VALUES ('ten_old', 'Old', 'standard', 1772000000000)")
                try db.execute(
                    sql: """
                        INSERT INTO tenant_keys (id, tenant_id, name, prefix, secret_hash, created_at)
                        VALUES ('key_old', 'ten_old', 'a', 'sk-sy-a', ?, 1772000000000)
                        """,
                    arguments: [Data(hash)]
                )
                try db.execute(sql: """
                    INSERT INTO usage_events (
                        request_id, tenant_id, model, prompt_tokens, cached_tokens, completion_tokens, reasoning_tokens,
                        tokens_estimated, cost_micros, currency, status, started_at, duration_ms, streamed, client_aborted
                    ) VALUES ('old', 'ten_old', 'chat-large', 100, 0, 50, 0, 0, 1000, 'USD', 200, 1772000000000, 900, 1, 0)
                    """)
            }
        }
        let database = try SwitchyardDatabase(path: folder.path)
        let old = try #require(try await database.directory.tenant(id: "ten_old"))
        #expect(old.name == "Old")
        #expect(old.createdAt == Date(timeIntervalSince1970: 1_772_000_000))
        #expect(old.limitOverrides.isEmpty)
        #expect(try await database.directory.lookUpKey(secretHash: hash)?.tenant == old)
        #expect(try await database.directory.providerKeys(includeRetired: true).isEmpty)
        let limited = try #require(try await database.directory.setTenantLimits(id: "ten_old", TenantLimitOverrides(concurrentRequests: 1)))
        #expect(limited.limitOverrides.concurrentRequests == 1)
        // The v3 -> v4 step left the old event unbilled; the quota counts it.
        #expect(try await database.ledger.usageEvent(requestID: "old")?.billedMicros == nil)
        let rows = try await database.ledger.usageSummary(UsageQuery(groupBy: .tenant))
        #expect(rows.map(\.billedMicros) == [0])
        #expect(rows.map(\.marginMicros) == [-1_000])
        let month = BudgetPeriod.month.interval(containing: Date(timeIntervalSince1970: 1_772_000_000))
        #expect(try await database.ledger.budgetUsage(.quota("ten_old"), period: month) == BudgetUsage(tokens: 150, micros: 1_000))
        try await database.ledger.record([event("new", tenant: "ten_old")])
        #expect(try await database.ledger.usageEvent(requestID: "new") != nil)
    }

    /// What `Tests/Fixtures/ledger/legacy-v4.json` says is in the fixture database.
    private struct LegacyFixture: Decodable {
        struct TenantEntry: Decodable {
            struct Usage: Decodable { var events: Int; var promptTokens: Int; var completionTokens: Int; var costMicros: Int64 }
            struct Limits: Decodable { var requestsPerMinute: Int?; var tokensPerMinute: Int?; var concurrentRequests: Int? }
            var id: String
            var name: String
            var tier: String
            var limitOverrides: Limits?
            var pinning: [String: String]
            var usage: Usage
        }
        struct KeyEntry: Decodable { var id: String; var tenantId: String; var name: String; var prefix: String; var revoked: Bool; var secret: String? }
        struct ProviderKeyEntry: Decodable { var id: String; var provider: String; var label: String; var state: String; var lastFour: String; var weight: Int }
        struct WebhookEntry: Decodable { var id: String; var tenantId: String; var url: String }
        var tenants: [String: TenantEntry]
        var tenantKeys: [KeyEntry]
        var providerKey: ProviderKeyEntry
        var webhook: WebhookEntry
    }

    @Test("a database made by the last release before the directory opens with its tenants, keys, provider keys, budgets and usage intact")
    func legacyFixture() async throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/ledger")
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let expected = try decoder.decode(LegacyFixture.self, from: Data(contentsOf: fixtures.appendingPathComponent("legacy-v4.json")))
        let folder = Folder()
        defer { folder.remove() }
        try FileManager.default.createDirectory(at: folder.url, withIntermediateDirectories: true)
        // A copy: the fixture stands for a database in the field and is never migrated itself.
        try FileManager.default.copyItem(atPath: fixtures.appendingPathComponent("legacy-v4.sqlite").path, toPath: folder.path)

        let database = try SwitchyardDatabase(path: folder.path)
        let tenants = try await database.directory.tenants()
        #expect(Set(tenants.map(\.id)) == Set(expected.tenants.values.map(\.id)))
        let usage = try await database.ledger.usageSummary(UsageQuery(groupBy: .tenant))
        for entry in expected.tenants.values {
            let tenant = try #require(tenants.first { $0.id == entry.id })
            #expect(tenant.name == entry.name)
            #expect(tenant.tier == entry.tier)
            #expect(tenant.pinning == entry.pinning)
            #expect(tenant.limitOverrides.requestsPerMinute == entry.limitOverrides?.requestsPerMinute)
            #expect(tenant.limitOverrides.concurrentRequests == entry.limitOverrides?.concurrentRequests)
            let row = try #require(usage.first { $0.group == entry.id })
            #expect(row.requests == entry.usage.events)
            #expect(row.promptTokens == entry.usage.promptTokens)
            #expect(row.completionTokens == entry.usage.completionTokens)
            #expect(row.costMicros == entry.usage.costMicros)
        }
        for entry in expected.tenantKeys {
            let key = try #require(try await database.directory.key(id: entry.id))
            #expect(key.tenantID == entry.tenantId)
            #expect(key.prefix == entry.prefix)
            #expect((key.revokedAt != nil) == entry.revoked)
            if let secret = entry.secret {
                // The live keys still authenticate: their hash finds them.
                #expect(try await database.directory.lookUpKey(secretHash: TenantKeySecret.hash(secret))?.key.id == entry.id)
            }
        }
        let providerKey = try #require(try await database.directory.providerKey(id: expected.providerKey.id))
        #expect(providerKey.state.rawValue == expected.providerKey.state)
        #expect(providerKey.label == expected.providerKey.label)
        #expect(providerKey.lastFour == expected.providerKey.lastFour)
        #expect(providerKey.weight == expected.providerKey.weight)
        #expect(!providerKey.sealedSecret.isEmpty)
        let webhook = try #require(try await database.ledger.webhook(id: expected.webhook.id))
        #expect(webhook.url == expected.webhook.url)
        let alpha = try #require(expected.tenants["alpha"])
        #expect(try await database.ledger.budget(.tenant(alpha.id)) != nil)
    }

    @Test("a checkpoint empties the write-ahead log")
    func checkpoint() async throws {
        let folder = Folder()
        defer { folder.remove() }
        let database = try SwitchyardDatabase(path: folder.path)
        try await database.ledger.record([event("req-1", tenant: "ten_a")])
        try database.ledger.checkpoint()
        let size = (try? FileManager.default.attributesOfItem(atPath: folder.path + "-wal")[.size] as? Int) ?? 0
        #expect(size == 0)
        #expect(try await database.ledger.usageEvent(requestID: "req-1") != nil)
    }

    @Test("a new database, its -wal and -shm are 0600, and folders made for it 0700, whatever the umask")
    func privateFiles() async throws {
        let folder = Folder()
        defer { folder.remove() }
        let previous = umask(0o022)
        defer { umask(previous) }
        let path = folder.url.appendingPathComponent("var/switchyard.sqlite").path
        let database = try SwitchyardDatabase(path: path)
        try await database.ledger.record([event("req-1", tenant: "ten_a")])
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
