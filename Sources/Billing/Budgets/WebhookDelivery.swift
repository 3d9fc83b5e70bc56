import Foundation
import GRDB

/// One alert on its way to one webhook: the outbox row the dispatcher sends and retries.
public struct WebhookDelivery: Sendable, Equatable {
    /// `dlv_` followed by random base62 characters; also the payload's `id`, the
    /// receiver's idempotency key.
    public var id: String
    /// The webhook it goes to.
    public var webhookID: String
    /// The tenant the alert is about.
    public var tenantID: String
    /// The `BudgetAlert` name.
    public var event: String
    /// The exact JSON body to POST.
    public var payload: String
    /// When the alert was raised.
    public var createdAt: Date
    /// When the delivery may next be attempted.
    public var nextAttemptAt: Date
    /// Attempts begun: counted when a dispatcher claims the delivery, so one that dies
    /// while sending still counts its attempt.
    public var attempts: Int
    /// Until when the dispatcher that claimed the delivery holds it; nil when unclaimed.
    public var claimedUntil: Date?
    /// When the receiver accepted it.
    public var deliveredAt: Date?
    /// When the dispatcher gave up on the delivery.
    public var failedAt: Date?
    /// The HTTP status of the last attempt, nil when it got no response.
    public var lastStatus: Int?
    /// Why the last attempt failed.
    public var lastError: String?
    /// The webhook's URL.
    public var url: String
    /// The webhook's sealed signing secret.
    public var sealedSecret: [UInt8]

    /// Neither delivered nor given up on.
    public var isPending: Bool { deliveredAt == nil && failedAt == nil }
}

/// A row of `webhook_deliveries`.
struct WebhookDeliveryRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "webhook_deliveries"

    var id: String
    var webhookID: String
    var tenantID: String
    var event: String
    var payload: String
    var createdAt: Int64
    var nextAttemptAt: Int64
    var attempts: Int = 0
    var claimedUntil: Int64?
    var deliveredAt: Int64?
    var failedAt: Int64?
    var lastStatus: Int?
    var lastError: String?

    enum CodingKeys: String, CodingKey {
        case id, webhookID = "webhook_id", tenantID = "tenant_id", event, payload
        case createdAt = "created_at", nextAttemptAt = "next_attempt_at", attempts, claimedUntil = "claimed_until"
        case deliveredAt = "delivered_at", failedAt = "failed_at", lastStatus = "last_status", lastError = "last_error"
    }

    /// The delivery with its webhook's URL and sealed secret, from a row of
    /// `Ledger.selectDeliveries`.
    static func delivery(from row: Row) throws -> WebhookDelivery {
        let stored = try WebhookDeliveryRow(row: row)
        let secret: Data = row["webhook_sealed_secret"]
        return WebhookDelivery(
            id: stored.id,
            webhookID: stored.webhookID,
            tenantID: stored.tenantID,
            event: stored.event,
            payload: stored.payload,
            createdAt: Date(ledgerMilliseconds: stored.createdAt),
            nextAttemptAt: Date(ledgerMilliseconds: stored.nextAttemptAt),
            attempts: stored.attempts,
            claimedUntil: stored.claimedUntil.map(Date.init(ledgerMilliseconds:)),
            deliveredAt: stored.deliveredAt.map(Date.init(ledgerMilliseconds:)),
            failedAt: stored.failedAt.map(Date.init(ledgerMilliseconds:)),
            lastStatus: stored.lastStatus,
            lastError: stored.lastError,
            url: row["webhook_url"],
            sealedSecret: Array(secret)
        )
    }
}
