import Foundation
import GRDB

extension Ledger {
    // MARK: Webhooks

    /// Adds a webhook to a tenant.
    /// - Parameters:
    ///   - tenantID: the tenant whose alerts it receives.
    ///   - url: where deliveries are POSTed (the proxy checks it).
    ///   - events: the `BudgetAlert` names it receives; stored sorted and unique.
    ///   - sealedSecret: the signing secret, sealed by the proxy.
    ///   - id: `whk_…`, chosen by the caller so the sealed secret can be bound to it.
    ///   - now: the creation time.
    /// - Throws: `LedgerError` `.tenantNotFound`, or `.invalidWebhook` for no or unknown events.
    public func createWebhook(
        tenantID: String,
        url: String,
        events: [String],
        sealedSecret: [UInt8],
        id: String,
        now: Date = Date()
    ) async throws -> WebhookRecord {
        try await pool.write { db in
            try Self.createWebhook(tenantID: tenantID, url: url, events: events, sealedSecret: sealedSecret, id: id, now: now, in: db)
        }
    }

    /// `createWebhook(tenantID:url:events:sealedSecret:id:now:)` within the caller's transaction.
    public static func createWebhook(
        tenantID: String, url: String, events: [String], sealedSecret: [UInt8], id: String, now: Date, in db: GRDB.Database
    ) throws -> WebhookRecord {
        let events = Array(Set(events)).sorted()
        guard !events.isEmpty, events.allSatisfy({ BudgetAlert(rawValue: $0) != nil }) else {
            throw LedgerError.invalidWebhook
        }
        let webhook = WebhookRecord(
            id: id, tenantID: tenantID, url: url, events: events, sealedSecret: sealedSecret,
            createdAt: now.roundedToLedgerMilliseconds
        )
        let row = try WebhookRow(webhook)
        try LedgerError.mappingUnknownTenant { try row.insert(db) }
        return webhook
    }

    /// A tenant's webhooks, oldest first.
    public func webhooks(tenantID: String) async throws -> [WebhookRecord] {
        try await pool.read { db in
            try WebhookRow.fetchAll(
                db,
                sql: "SELECT * FROM webhooks WHERE tenant_id = ? ORDER BY created_at, id",
                arguments: [tenantID]
            ).map { try $0.webhook() }
        }
    }

    /// The webhook with `id`, or nil.
    public func webhook(id: String) async throws -> WebhookRecord? {
        try await pool.read { db in try WebhookRow.fetchOne(db, key: id)?.webhook() }
    }

    /// Removes a webhook with all its deliveries, pending or not: nothing is sent to it
    /// again, and its sealed secret is overwritten on disk.
    /// - Returns: whether there was one.
    public func deleteWebhook(id: String) async throws -> Bool {
        try await pool.write { db in try Self.deleteWebhook(id: id, in: db) }
    }

    /// `deleteWebhook(id:)` within the caller's transaction.
    public static func deleteWebhook(id: String, in db: GRDB.Database) throws -> Bool {
        var removed = false
        try withSecureDelete(db) {
            try db.execute(sql: "DELETE FROM webhook_deliveries WHERE webhook_id = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM webhooks WHERE id = ?", arguments: [id])
            removed = db.changesCount == 1
        }
        return removed
    }

    /// A webhook's deliveries, newest first.
    /// - Parameters:
    ///   - webhookID: the webhook.
    ///   - limit: most deliveries returned.
    public func deliveries(webhookID: String, limit: Int = 100) async throws -> [WebhookDelivery] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    \(Self.selectDeliveries) WHERE d.webhook_id = ?
                    ORDER BY d.created_at DESC, d.rowid DESC LIMIT ?
                    """,
                arguments: [webhookID, limit]
            ).map(WebhookDeliveryRow.delivery(from:))
        }
    }

    // MARK: Dispatching

    /// Claims up to `limit` pending deliveries that are due at `now` and not held by
    /// another dispatcher, oldest due first, for `lease`: no other process sharing the
    /// database claims them again until the lease ends or they are marked. Claiming
    /// counts an attempt.
    public func claimDueDeliveries(now: Date = Date(), limit: Int, lease: Duration) async throws -> [WebhookDelivery] {
        let now = now.ledgerMilliseconds
        let (seconds, attoseconds) = lease.components
        let until = now + seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return try await pool.write { db in
            // One statement picks and claims, so two dispatchers cannot claim the same row.
            let claimed = try String.fetchAll(
                db,
                sql: """
                    UPDATE webhook_deliveries SET claimed_until = ?, attempts = attempts + 1
                    WHERE id IN (
                        SELECT id FROM webhook_deliveries
                        WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ?
                            AND (claimed_until IS NULL OR claimed_until <= ?)
                        ORDER BY next_attempt_at, rowid LIMIT ?
                    )
                    RETURNING id
                    """,
                arguments: [until, now, now, limit]
            )
            guard !claimed.isEmpty else { return [] }
            return try Row.fetchAll(
                db,
                sql: """
                    \(Self.selectDeliveries) WHERE d.id IN (\(databaseQuestionMarks(count: claimed.count)))
                    ORDER BY d.next_attempt_at, d.rowid
                    """,
                arguments: StatementArguments(claimed)
            ).map(WebhookDeliveryRow.delivery(from:))
        }
    }

    /// Marks a pending delivery delivered; it is never claimed again.
    /// - Parameters:
    ///   - id: the delivery.
    ///   - status: the receiver's HTTP status.
    ///   - now: the time of delivery.
    /// - Returns: whether a pending delivery was marked.
    @discardableResult
    public func markDelivered(id: String, status: Int, now: Date = Date()) async throws -> Bool {
        try await pool.write { db in
            try db.execute(
                sql: """
                    UPDATE webhook_deliveries
                    SET delivered_at = ?, last_status = ?, last_error = NULL, claimed_until = NULL
                    WHERE id = ? AND delivered_at IS NULL AND failed_at IS NULL
                    """,
                arguments: [now.ledgerMilliseconds, status, id]
            )
            return db.changesCount == 1
        }
    }

    /// Notes a failed attempt of a pending delivery and releases its claim.
    /// - Parameters:
    ///   - id: the delivery.
    ///   - status: the receiver's HTTP status, nil when there was no response.
    ///   - error: why the attempt failed.
    ///   - nextAttemptAt: when to try again; nil to give up (the delivery is failed at `now`
    ///     and never claimed again).
    ///   - now: the time of the attempt.
    /// - Returns: whether a pending delivery was marked.
    @discardableResult
    public func markAttemptFailed(
        id: String,
        status: Int?,
        error: String,
        nextAttemptAt: Date?,
        now: Date = Date()
    ) async throws -> Bool {
        try await pool.write { db in
            try db.execute(
                sql: """
                    UPDATE webhook_deliveries
                    SET last_status = ?, last_error = ?, claimed_until = NULL,
                        next_attempt_at = coalesce(?, next_attempt_at), failed_at = ?
                    WHERE id = ? AND delivered_at IS NULL AND failed_at IS NULL
                    """,
                arguments: [
                    status, error, nextAttemptAt?.ledgerMilliseconds,
                    nextAttemptAt == nil ? now.ledgerMilliseconds : nil, id,
                ]
            )
            return db.changesCount == 1
        }
    }

    /// When the next pending delivery can be claimed: its next attempt, or the end of its
    /// claim if one is held; nil when nothing is pending. The dispatcher sleeps until then.
    public func nextDueDate() async throws -> Date? {
        try await pool.read { db in
            try Int64.fetchOne(
                db,
                sql: """
                    SELECT min(max(next_attempt_at, coalesce(claimed_until, 0))) FROM webhook_deliveries
                    WHERE delivered_at IS NULL AND failed_at IS NULL
                    """
            ).map(Date.init(ledgerMilliseconds:))
        }
    }

    // MARK: Rows

    /// Deliveries with their webhook's URL and secret, for `WebhookDeliveryRow.delivery(from:)`.
    static let selectDeliveries = """
        SELECT d.*, w.url AS webhook_url, w.sealed_secret AS webhook_sealed_secret
        FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
        """
}
