import Foundation
import GRDB

/// A tenant's webhook: where budget and quota alerts are POSTed, and the secret that signs
/// them, sealed by the proxy (Billing never sees the plain secret).
public struct WebhookRecord: Sendable, Equatable {
    /// `whk_` followed by random base62 characters.
    public var id: String
    /// The tenant whose alerts it receives.
    public var tenantID: String
    /// Where deliveries are POSTed.
    public var url: String
    /// The `BudgetAlert` names the webhook receives, sorted.
    public var events: [String]
    /// The sealed signing secret, opaque to Billing.
    public var sealedSecret: [UInt8]
    /// When the webhook was added.
    public var createdAt: Date

    /// Whether the webhook receives `alert`.
    public func subscribes(to alert: BudgetAlert) -> Bool {
        events.contains(alert.rawValue)
    }
}

/// A row of `webhooks`.
struct WebhookRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "webhooks"

    var id: String
    var tenantID: String
    var url: String
    var events: String
    var sealedSecret: Data
    var createdAt: Int64

    enum CodingKeys: String, CodingKey {
        case id, tenantID = "tenant_id", url, events, sealedSecret = "sealed_secret", createdAt = "created_at"
    }

    init(_ webhook: WebhookRecord) throws {
        id = webhook.id
        tenantID = webhook.tenantID
        url = webhook.url
        events = try Ledger.encodeList(webhook.events)
        sealedSecret = Data(webhook.sealedSecret)
        createdAt = webhook.createdAt.ledgerMilliseconds
    }

    func webhook() throws -> WebhookRecord {
        WebhookRecord(
            id: id,
            tenantID: tenantID,
            url: url,
            events: try Ledger.decodeList(events),
            sealedSecret: Array(sealedSecret),
            createdAt: Date(ledgerMilliseconds: createdAt)
        )
    }
}
