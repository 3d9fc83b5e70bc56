import Foundation
import Testing

@testable import Billing

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

/// Runs `body` with a ledger on a real SQLite file in a fresh temporary folder.
func withLedger<Result>(_ body: (Ledger, TemporaryFolder) async throws -> Result) async throws -> Result {
    let folder = try TemporaryFolder()
    defer { folder.remove() }
    let ledger = try Ledger(path: folder.ledgerPath)
    return try await body(ledger, folder)
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
