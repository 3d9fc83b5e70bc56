import Foundation
import Testing

@testable import Billing

@Suite("Ledger webhooks")
struct LedgerWebhooksTests {
    private let t0 = date("2026-03-05T12:00:00Z")

    /// A tenant whose budget of 10 tokens, with a threshold at half, is passed and exceeded
    /// by one event recorded at `t0`: two deliveries to each webhook made beforehand.
    private func raiseAlerts(_ ledger: Ledger, webhooks: Int) async throws -> (tenant: String, webhooks: [WebhookRecord]) {
        let (tenant, key) = try await makeTenantAndKey(ledger)
        _ = try await ledger.setBudget(
            Budget(scope: .tenant(tenant), tenantID: tenant, period: .month, limitTokens: 10, softThresholds: [0.5]),
            now: date("2026-03-01T00:00:00Z")
        )
        var made: [WebhookRecord] = []
        for index in 0..<webhooks {
            made.append(try await ledger.createWebhook(
                tenantID: tenant, url: "https://hooks.example/\(index)", events: ["budget.exceeded", "budget.threshold_reached"],
                sealedSecret: [UInt8(index)], id: "whk_\(index)", now: date("2026-03-01T00:00:00Z")
            ))
        }
        try await ledger.record([usageEvent("r1", tenant: tenant, key: key, at: t0, prompt: 20, completion: 0)], now: t0)
        return (tenant, made)
    }

    // MARK: Webhooks

    @Test("creates, lists, gets and deletes webhooks, with their deliveries")
    func lifecycle() async throws {
        try await withLedger { ledger, _ async throws in
            let (tenant, made) = try await raiseAlerts(ledger, webhooks: 2)
            let stored = try await ledger.webhooks(tenantID: tenant)
            #expect(stored == made)
            #expect(stored.map(\.id) == ["whk_0", "whk_1"])
            #expect(stored.first?.events == ["budget.exceeded", "budget.threshold_reached"])
            #expect(stored.first?.createdAt == date("2026-03-01T00:00:00Z"))
            #expect(try await ledger.webhook(id: "whk_1") == made[1])
            #expect(try await ledger.webhook(id: "whk_none") == nil)
            #expect(try await ledger.webhooks(tenantID: "ten_none").isEmpty)
            #expect(try await ledger.integer("SELECT count(*) FROM webhook_deliveries") == 4)

            #expect(try await ledger.deleteWebhook(id: "whk_0"))
            #expect(try await ledger.deleteWebhook(id: "whk_0") == false)
            #expect(try await ledger.webhooks(tenantID: tenant).map(\.id) == ["whk_1"])
            #expect(try await ledger.deliveries(webhookID: "whk_0").isEmpty)
            #expect(try await ledger.integer("SELECT count(*) FROM webhook_deliveries") == 2)
            // The deleted webhook's deliveries are not claimed either.
            #expect(try await ledger.claimDueDeliveries(now: t0, limit: 10, lease: .seconds(30)).map(\.webhookID) == ["whk_1", "whk_1"])
        }
    }

    @Test("a webhook needs a known tenant and known events")
    func refusals() async throws {
        try await withLedger { ledger, _ async throws in
            let (tenant, _) = try await makeTenantAndKey(ledger)
            await #expect(throws: LedgerError.tenantNotFound) {
                try await ledger.createWebhook(tenantID: "ten_none", url: "https://a.example", events: ["budget.reset"], sealedSecret: [], id: "whk_a")
            }
            await #expect(throws: LedgerError.invalidWebhook) {
                try await ledger.createWebhook(tenantID: tenant, url: "https://a.example", events: [], sealedSecret: [], id: "whk_a")
            }
            await #expect(throws: LedgerError.invalidWebhook) {
                try await ledger.createWebhook(tenantID: tenant, url: "https://a.example", events: ["budget.reset", "budget.spent"], sealedSecret: [], id: "whk_a")
            }
            let made = try await ledger.createWebhook(tenantID: tenant, url: "https://a.example", events: ["budget.reset", "budget.reset"], sealedSecret: [5], id: "whk_a")
            #expect(made.events == ["budget.reset"])
            #expect(try await ledger.webhooks(tenantID: tenant) == [made])
        }
    }

    // MARK: Dispatching

    @Test("claims lease deliveries; delivered and failed ones are never claimed again")
    func claimCycle() async throws {
        try await withLedger { ledger, _ async throws in
            _ = try await raiseAlerts(ledger, webhooks: 2)
            let lease = Duration.seconds(30)
            func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

            #expect(try await ledger.nextDueDate() == t0)
            #expect(try await ledger.claimDueDeliveries(now: at(-1), limit: 10, lease: lease).isEmpty)

            let first = try await ledger.claimDueDeliveries(now: t0, limit: 3, lease: lease)
            #expect(first.count == 3)
            #expect(first.allSatisfy { $0.attempts == 1 && $0.claimedUntil == at(30) && $0.isPending })
            #expect(first.map(\.url) == ["https://hooks.example/0", "https://hooks.example/1", "https://hooks.example/0"])
            #expect(first.map(\.sealedSecret) == [[0], [1], [0]])
            let second = try await ledger.claimDueDeliveries(now: at(1), limit: 10, lease: lease)
            #expect(second.count == 1)
            #expect(try await ledger.claimDueDeliveries(now: at(2), limit: 10, lease: lease).isEmpty)
            // Everything is held; the first lease ends first.
            #expect(try await ledger.nextDueDate() == at(30))

            let (delivered, retried, abandoned) = (first[0], first[1], first[2])
            #expect(try await ledger.markDelivered(id: delivered.id, status: 204, now: at(3)))
            #expect(try await ledger.markAttemptFailed(id: retried.id, status: 500, error: "the receiver answered 500", nextAttemptAt: at(60), now: at(3)))
            #expect(try await ledger.markAttemptFailed(id: abandoned.id, status: nil, error: "connect timed out", nextAttemptAt: nil, now: at(4)))
            #expect(try await ledger.markDelivered(id: delivered.id, status: 200, now: at(5)) == false)
            #expect(try await ledger.markAttemptFailed(id: abandoned.id, status: 500, error: "again", nextAttemptAt: at(9), now: at(5)) == false)

            // Only the one claimed at 1 s is held now, until 31 s.
            #expect(try await ledger.nextDueDate() == at(31))
            #expect(try await ledger.claimDueDeliveries(now: at(30.999), limit: 10, lease: lease).isEmpty)
            let lapsed = try await ledger.claimDueDeliveries(now: at(31), limit: 10, lease: lease)
            #expect(lapsed.map(\.id) == [second[0].id])
            #expect(lapsed.first?.attempts == 2)
            #expect(try await ledger.markDelivered(id: second[0].id, status: 200, now: at(32)))

            #expect(try await ledger.nextDueDate() == at(60))
            #expect(try await ledger.claimDueDeliveries(now: at(59), limit: 10, lease: lease).isEmpty)
            let again = try await ledger.claimDueDeliveries(now: at(60), limit: 10, lease: lease)
            #expect(again.map(\.id) == [retried.id])
            #expect(again.first?.attempts == 2 && again.first?.lastStatus == 500 && again.first?.lastError == "the receiver answered 500")
            #expect(try await ledger.markDelivered(id: retried.id, status: 200, now: at(61)))

            #expect(try await ledger.nextDueDate() == nil)
            #expect(try await ledger.claimDueDeliveries(now: at(86_400 * 365), limit: 10, lease: lease).isEmpty)

            let all = try await ledger.deliveries(webhookID: "whk_0") + ledger.deliveries(webhookID: "whk_1")
            let byID = Dictionary(uniqueKeysWithValues: all.map { ($0.id, $0) })
            let done = try #require(byID[delivered.id])
            #expect(done.deliveredAt == at(3) && done.lastStatus == 204 && done.lastError == nil && done.claimedUntil == nil && done.attempts == 1)
            let gaveUp = try #require(byID[abandoned.id])
            #expect(gaveUp.failedAt == at(4) && gaveUp.deliveredAt == nil && gaveUp.lastStatus == nil && gaveUp.lastError == "connect timed out")
            let retriedDone = try #require(byID[retried.id])
            #expect(retriedDone.deliveredAt == at(61) && retriedDone.lastError == nil && retriedDone.nextAttemptAt == at(60))
        }
    }

    @Test("lists a webhook's deliveries newest first, up to a limit")
    func listing() async throws {
        try await withLedger { ledger, _ async throws in
            let (tenant, _) = try await raiseAlerts(ledger, webhooks: 1)
            _ = try await ledger.rollOverBudgets(now: date("2026-04-01T00:00:00Z"))
            // Not subscribed to resets: still two.
            #expect(try await ledger.deliveries(webhookID: "whk_0").map(\.event) == ["budget.exceeded", "budget.threshold_reached"])
            _ = try await ledger.createWebhook(tenantID: tenant, url: "https://r.example", events: ["budget.reset"], sealedSecret: [], id: "whk_r")
            _ = try await ledger.rollOverBudgets(now: date("2026-05-01T00:00:00Z"))
            #expect(try await ledger.deliveries(webhookID: "whk_r").map(\.event) == ["budget.reset"])
            #expect(try await ledger.deliveries(webhookID: "whk_0", limit: 1).map(\.event) == ["budget.exceeded"])
        }
    }

    @Test("two handles on one database never claim the same delivery at once")
    func concurrentClaims() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let one = try openLedger(folder.ledgerPath)
        let two = try openLedger(folder.ledgerPath)
        _ = try await raiseAlerts(one, webhooks: 20)
        let claimed = try await withThrowingTaskGroup(of: [String].self) { group in
            for index in 0..<16 {
                let ledger = index.isMultiple(of: 2) ? one : two
                group.addTask { try await ledger.claimDueDeliveries(now: t0, limit: 3, lease: .seconds(60)).map(\.id) }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(claimed.count == 40)
        #expect(Set(claimed).count == 40)
        #expect(try await two.claimDueDeliveries(now: t0, limit: 100, lease: .seconds(60)).isEmpty)
    }
}
