import Foundation
import GRDB
import Testing

@testable import Billing
import Directory

/// A fresh folder under the system's temporary directory, removed by `remove()`.
struct TemporaryFolder {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("switchyard-billing-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    var ledgerPath: String { url.appendingPathComponent("ledger.sqlite").path }

    func remove() {
        try? FileManager.default.removeItem(at: url)
    }
}

/// The ledger in a real SQLite file at `path`, beside the directory whose tenants its
/// budgets and webhooks name, as the proxy opens them.
func openLedger(_ path: String) throws -> Ledger {
    var configuration = Configuration()
    configuration.busyMode = .timeout(5)
    let pool = try DatabasePool(path: path, configuration: configuration)
    _ = try Directory(pool: pool)
    return try Ledger(pool: pool)
}

/// Runs `body` with a ledger on a real SQLite file in a fresh temporary folder.
func withLedger<Result>(_ body: (Ledger, TemporaryFolder) async throws -> Result) async throws -> Result {
    let folder = try TemporaryFolder()
    defer { folder.remove() }
    return try await body(try openLedger(folder.ledgerPath), folder)
}

/// A date on whole milliseconds, as the ledger stores them, so round trips compare equal.
func date(_ iso: String) -> Date {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    if let date = formatter.date(from: iso) { return millisecondDate(date) }
    formatter.formatOptions = [.withInternetDateTime]
    guard let date = formatter.date(from: iso) else { fatalError("bad test date \(iso)") }
    return millisecondDate(date)
}

func millisecondDate(_ date: Date) -> Date {
    Date(timeIntervalSince1970: Double(Int64((date.timeIntervalSince1970 * 1000).rounded())) / 1000)
}

/// A usage event with the fields tests vary, and plausible values for the rest.
func usageEvent(
    _ requestID: String,
    tenant: String = "ten_a",
    key: String? = "key_a",
    model: String = "chat-large",
    at startedAt: Date = date("2026-03-01T10:00:00Z"),
    prompt: Int = 100,
    cached: Int = 0,
    completion: Int = 50,
    estimated: Bool = false,
    cost: Int64 = 1_000,
    currency: String = "USD",
    status: Int = 200
) -> UsageEvent {
    UsageEvent(
        requestID: requestID,
        tenantID: tenant,
        tenantKeyID: key,
        model: model,
        deployment: "openai-gpt-4o",
        provider: "openai",
        promptTokens: prompt,
        cachedTokens: cached,
        completionTokens: completion,
        reasoningTokens: 0,
        tokensEstimated: estimated,
        costMicros: cost,
        currency: currency,
        status: status,
        startedAt: startedAt,
        timeToFirstTokenMilliseconds: 120,
        durationMilliseconds: 900,
        streamed: true
    )
}

/// A tenant and one key of it, made in the ledger.
func makeTenantAndKey(_ ledger: Ledger, name: String = "Acme", now: Date = date("2026-01-01T00:00:00Z")) async throws -> (tenant: String, key: String) {
    let tenant = try await ledger.directory.createTenant(name: name, tier: "standard", now: now)
    let key = try await ledger.directory.createKey(
        tenantID: tenant.id, name: "default", prefix: "sk-\(name.prefix(3))", secretHash: Array(name.utf8) + [0x01], now: now
    )
    return (tenant.id, key.id)
}

/// `event` billed under `terms`.
func billed(_ event: UsageEvent, _ terms: BillingTerms?) -> UsageEvent {
    var event = event
    event.terms = terms
    return event
}

extension Ledger {
    /// The directory in the ledger's database, for the tenants and keys tests need.
    var directory: Directory {
        get throws { try Directory(pool: pool) }
    }

    /// The single integer `sql` selects, for looking at tables no API reads.
    func integer(_ sql: String, _ arguments: StatementArguments = []) async throws -> Int64? {
        try await pool.read { db in try Int64.fetchOne(db, sql: sql, arguments: arguments) }
    }

    /// The rows `sql` selects, as text, for comparing whole tables.
    func rows(_ sql: String, _ arguments: StatementArguments = []) async throws -> [String] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
                row.databaseValues.map { value in
                    switch value.storage {
                    case .null: "NULL"
                    case .int64(let integer): "\(integer)"
                    case .double(let double): "\(double)"
                    case .string(let string): string
                    case .blob(let data): "\(data.count) bytes"
                    }
                }.joined(separator: "|")
            }
        }
    }
}
