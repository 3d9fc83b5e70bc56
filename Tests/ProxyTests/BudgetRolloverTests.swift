import AsyncHTTPClient
import Billing
import Crypto
import Foundation
import Directory
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Pools
import ServiceLifecycle
import Synchronization
import Testing

@testable import Proxy

/// Budgets across a period's end with an injected clock, and the signed delivery of their
/// alerts to a real HTTP receiver on port 0.
@Suite("Budget periods and webhook delivery")
struct BudgetRolloverTests {
    /// 2026-11-30T23:59:59Z and 2026-12-01T00:00:00Z.
    let lastSecond = Date(timeIntervalSince1970: 1_796_083_199)
    let newMonth = Date(timeIntervalSince1970: 1_796_083_200)

    private func withLedger(_ body: (Ledger, Directory) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("switchyard-budgets-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let database = try SwitchyardDatabase(path: directory.appendingPathComponent("switchyard.sqlite").path)
        try await body(database.ledger, database.directory)
    }

    /// Admits as the pipeline does: asks the ledger for any period the limiter has no state for.
    private func admit(
        _ limiter: InProcessLimiter, ledger: Ledger, tenant: AuthenticatedTenant, at date: Date, now: ContinuousClock.Instant
    ) async throws -> AdmissionDecision {
        var demand = AdmissionRequest(
            promptTokens: 5, maximumOutputTokens: 5, budgets: BudgetAdmission.demands(for: tenant, at: date),
            wallClockMilliseconds: date.ledgerMilliseconds
        )
        while true {
            let decision = limiter.admit(tenantID: tenant.tenantID, limits: .unlimited, request: demand, now: now)
            guard case .needsSeed(let keys) = decision else { return decision }
            for index in demand.budgets.indices where keys.contains(demand.budgets[index].key) {
                let budget = demand.budgets[index]
                let used = try await ledger.budgetUsage(
                    BudgetAdmission.ledgerScope(budget.key.scope, tenantID: tenant.tenantID),
                    period: BudgetAdmission.period(of: budget)
                )
                demand.budgets[index].seed = BudgetAmounts(tokens: used.tokens, micros: used.micros)
            }
        }
    }

    @Test("a spent monthly budget refuses until the month ends, then starts from zero and sends budget.reset")
    func rollover() async throws {
        try await withLedger { ledger, directory in
            let tenant = try await directory.createTenant(name: "acme", tier: "enterprise", now: lastSecond.addingTimeInterval(-86_400 * 20))
            let key = try await directory.createKey(tenantID: tenant.id, name: "app", prefix: "sk-sy-ab", secretHash: Array(repeating: 7, count: 32))
            let budget = try await ledger.setBudget(
                Budget(scope: .tenant(tenant.id), tenantID: tenant.id, period: .month, limitTokens: 100, softThresholds: [0.8]),
                now: lastSecond.addingTimeInterval(-86_400 * 15)
            )
            let webhookID = Identifier.make(prefix: "whk")
            _ = try await ledger.createWebhook(
                tenantID: tenant.id, url: "http://127.0.0.1:9/", events: [BudgetAlert.reset.rawValue], sealedSecret: [1], id: webhookID
            )
            try await ledger.record([UsageEvent(
                requestID: "req_late_november", tenantID: tenant.id, tenantKeyID: key.id, model: "chat-small",
                deployment: "sim-llama", provider: "sim", promptTokens: 40, completionTokens: 60, costMicros: 12,
                status: 200, startedAt: lastSecond, durationMilliseconds: 5, streamed: false
            )])
            let authenticated = AuthenticatedTenant(
                tenantID: tenant.id, tenantName: tenant.name, keyID: key.id,
                contract: Contract(tier: "enterprise", band: 100), budgets: [budget]
            )
            // A restarted process: no state, so November's use comes from the ledger.
            let limiter = InProcessLimiter()
            let start = ContinuousClock.now
            let refused = try await admit(limiter, ledger: ledger, tenant: authenticated, at: lastSecond, now: start)
            let refusal = try #require(refused.refusal)
            #expect(refusal.limit == .budget && refusal.retryAfterSeconds == 1)
            #expect(BudgetAdmission.name(of: try #require(refusal.budget)) == "Your organisation's monthly budget")

            // December: nothing used, and the budget admits again.
            let admitted = try await admit(limiter, ledger: ledger, tenant: authenticated, at: newMonth, now: start + .seconds(1))
            let reservation = try #require(admitted.reservation)
            let december = try #require(reservation.budgets.first)
            #expect(limiter.budgetStatus(tenantID: tenant.id, key: december, now: start + .seconds(1))?.used == .zero)
            #expect(try await ledger.budgetUsage(.tenant(tenant.id), period: BudgetPeriod.month.interval(containing: newMonth)) == .zero)

            // budget.reset is recorded once for the new period, with its delivery.
            #expect(try await ledger.rollOverBudgets(now: lastSecond) == 0)
            #expect(try await ledger.rollOverBudgets(now: newMonth) == 1)
            #expect(try await ledger.rollOverBudgets(now: newMonth.addingTimeInterval(60)) == 0)
            let deliveries = try await ledger.deliveries(webhookID: webhookID)
            #expect(deliveries.map(\.event) == [BudgetAlert.reset.rawValue])
            let first = try #require(deliveries.first)
            let payload = try #require(JSONSerialization.jsonObject(with: Data(first.payload.utf8)) as? [String: Any])
            let data = try #require(payload["data"] as? [String: Any])
            #expect(payload["type"] as? String == "budget.reset")
            #expect(data["period_start"] as? String == "2026-12-01T00:00:00Z")
            #expect(data["resets_at"] as? String == "2027-01-01T00:00:00Z")
        }
    }

    @Test("the dispatcher signs each delivery, retries a failing receiver with growing waits and marks it delivered once")
    func delivery() async throws {
        try await withLedger { ledger, directory in
            let tenant = try await directory.createTenant(name: "acme", tier: "enterprise")
            let cipher = ProviderKeyCipher(masterKey: SymmetricKey(size: .bits256))
            let received = Mutex<[(signature: String, body: String)]>([])
            let failuresLeft = Atomic<Int>(1)
            let router = Router()
            router.post("alerts") { request, _ -> Response in
                var request = request
                let body = try await request.collectBody(upTo: 1 << 20)
                if failuresLeft.subtract(1, ordering: .relaxed).oldValue > 0 {
                    return Response(status: .internalServerError)
                }
                received.withLock {
                    $0.append((request.headers[HTTPField.Name("x-switchyard-signature")!] ?? "", String(buffer: body)))
                }
                return Response(status: .noContent)
            }
            var logger = Logger(label: "BudgetRolloverTests")
            logger.logLevel = .warning
            let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
            let receiver = Application(
                router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) }, logger: logger
            )
            let services = ServiceGroup(configuration: .init(services: [receiver], logger: logger))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await services.run() }
                var iterator = ports.makeAsyncIterator()
                let port = try #require(await iterator.next())
                let secret = "whsec_test"
                let webhookID = Identifier.make(prefix: "whk")
                _ = try await ledger.createWebhook(
                    tenantID: tenant.id, url: "http://127.0.0.1:\(port)/alerts", events: [BudgetAlert.reset.rawValue],
                    sealedSecret: try cipher.seal(secret, keyID: webhookID), id: webhookID
                )
                _ = try await ledger.setBudget(
                    Budget(scope: .tenant(tenant.id), tenantID: tenant.id, period: .day, limitTokens: 10),
                    now: Date().addingTimeInterval(-2 * 86_400)
                )
                #expect(try await ledger.rollOverBudgets(now: Date()) == 1)
                let client = HTTPClient(eventLoopGroupProvider: .singleton)
                let dispatcher = WebhookDispatcher(ledger: ledger, httpClient: client, cipher: cipher, logger: logger)
                // The first attempt meets a 500 and is put off by the first delay, counted
                // from when the attempt ended. Each later step is asked at a time given by
                // what the ledger holds, so how long a step takes on a busy machine does not
                // matter.
                let now = Date()
                #expect(try await dispatcher.sendDue(now: now) == 1)
                let pending = try #require(try await ledger.deliveries(webhookID: webhookID).first)
                #expect(pending.isPending && pending.attempts == 1 && pending.lastStatus == 500)
                #expect(pending.nextAttemptAt > now.addingTimeInterval(0.5))
                #expect(try await dispatcher.sendDue(now: pending.nextAttemptAt.addingTimeInterval(-0.1)) == 0, "not due yet")
                #expect(try await dispatcher.sendDue(now: pending.nextAttemptAt) == 1)
                #expect(try await dispatcher.sendDue(now: pending.nextAttemptAt.addingTimeInterval(3600)) == 0, "delivered once")
                let delivered = try #require(try await ledger.deliveries(webhookID: webhookID).first)
                #expect(delivered.deliveredAt != nil && delivered.lastStatus == 204 && delivered.attempts == 2)

                let arrivals = received.withLock { $0 }
                #expect(arrivals.count == 1)
                let arrival = try #require(arrivals.first)
                #expect(arrival.body == delivered.payload)
                let fields = Dictionary(uniqueKeysWithValues: arrival.signature.split(separator: ",").map {
                    let parts = $0.split(separator: "=", maxSplits: 1)
                    return (String(parts[0]), String(parts[1]))
                })
                let timestamp = try #require(fields["t"])
                let expected = HMAC<SHA256>.authenticationCode(
                    for: Data("\(timestamp).\(arrival.body)".utf8), using: SymmetricKey(data: Data(secret.utf8))
                ).map { String(format: "%02x", $0) }.joined()
                #expect(fields["v1"] == expected)

                // Growing waits, capped, and none past the retry window.
                var old = delivered
                old.attempts = 3
                #expect(dispatcher.nextAttempt(after: old, now: old.createdAt)?.timeIntervalSince(old.createdAt) == 4)
                old.attempts = 30
                #expect(dispatcher.nextAttempt(after: old, now: old.createdAt)?.timeIntervalSince(old.createdAt) == 3600)
                #expect(dispatcher.nextAttempt(after: old, now: old.createdAt.addingTimeInterval(86_000)) == nil)

                try await client.shutdown()
                await services.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
    }
}
