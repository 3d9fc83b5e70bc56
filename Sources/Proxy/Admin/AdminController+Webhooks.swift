import Directory
import Billing
import Foundation
import HTTPTypes
import Hummingbird
import Providers

/// `/admin/v1/tenants/{id}/webhooks`: where a tenant's budget and quota alerts are sent,
/// signed with a secret returned once, at creation.
extension AdminController {
    func addWebhookRoutes(to admin: ManagementRoutes) {
        admin.post("tenants/:id/webhooks", .tenant(.manageSettings)) { request, context in
            try await createWebhook(request, tenant: try await requireTenant(context), context: context)
        }
        admin.get("tenants/:id/webhooks", .tenant(.manageSettings)) { _, context in
            let tenant = try await requireTenant(context)
            let webhooks = try await ledger.webhooks(tenantID: tenant.id).map(AdminResources.WebhookBody.init)
            return try json(AdminResources.ListBody(data: webhooks))
        }
        admin.delete("tenants/:id/webhooks/:webhook", .tenant(.manageSettings)) { _, context in
            let webhook = try await requireWebhook(context)
            let id = webhook.id
            _ = try await context.record("webhook_deleted", target: { _ in id }) { db in try Ledger.deleteWebhook(id: id, in: db) }
            return try json(AdminResources.WebhookBody(webhook))
        }
        admin.get("tenants/:id/webhooks/:webhook/deliveries", .tenant(.manageSettings)) { request, context in
            let webhook = try await requireWebhook(context)
            let limit = try Self.limit(request.uri.queryParameters["limit"].map(String.init))
            let deliveries = try await ledger.deliveries(webhookID: webhook.id, limit: limit)
            return try json(AdminResources.ListBody(data: deliveries.map(AdminResources.DeliveryBody.init)))
        }
    }

    private func createWebhook(_ request: Request, tenant: Tenant, context: ManagementContext) async throws -> Response {
        let body: AdminResources.CreateWebhook = try await decode(request, context)
        guard body.url.utf8.count <= 2048, let url = URL(string: body.url), let scheme = url.scheme?.lowercased(),
              ["http", "https"].contains(scheme), url.host?.isEmpty == false
        else {
            throw OpenAIError.invalidRequest("'url' must be an http or https URL of at most 2048 bytes.", param: "url")
        }
        // Tenants' own admins may not aim Switchyard's requests inside its network; the
        // platform's operators may (their receivers often live there).
        if !context.principal.role.isGlobal, let host = url.host, Self.isInternal(host: host) {
            throw OpenAIError.invalidRequest(
                "'url' must point at a public host; loopback, private and link-local addresses are for the platform's operators.",
                param: "url"
            )
        }
        let known = BudgetAlert.allCases.map(\.rawValue)
        let events = body.events ?? known
        guard !events.isEmpty else {
            throw OpenAIError.invalidRequest("'events' needs at least one of \(known.joined(separator: ", ")).", param: "events")
        }
        for event in events where !known.contains(event) {
            throw OpenAIError.invalidRequest(
                "'\(event.prefix(DisplayName.longest))' is not an event; events are \(known.joined(separator: ", ")).",
                param: "events"
            )
        }
        let id = Identifier.make(prefix: "whk")
        let secret = "whsec_" + Identifier.randomBase62(length: 32)
        let record: WebhookRecord
        do {
            let (tenantID, url, sealed) = (tenant.id, body.url, try cipher.seal(secret, keyID: id))
            let subscribed = Array(Set(events)).sorted()
            record = try await context.record("webhook_created", target: { _ in id }) { db in
                try Ledger.createWebhook(
                    tenantID: tenantID, url: url, events: subscribed, sealedSecret: sealed, id: id, now: Date(), in: db
                )
            }
        } catch let error as LedgerError {
            throw OpenAIError(ledger: error)
        }
        var created = AdminResources.WebhookBody(record)
        created.secret = secret
        return try json(created, status: .created)
    }

    private func requireWebhook(_ context: ManagementContext) async throws -> WebhookRecord {
        let tenant = try await requireTenant(context)
        let id = context.parameters.get("webhook") ?? ""
        // Another tenant's webhook is as unknown as one that does not exist.
        guard let webhook = try await ledger.webhook(id: id), webhook.tenantID == tenant.id else {
            throw OpenAIError(
                status: 404, message: "Tenant '\(tenant.id)' has no webhook '\(id.prefix(DisplayName.longest))'.",
                type: "invalid_request_error", code: "not_found"
            )
        }
        return webhook
    }

    /// Whether `host` names this machine or a private network by its form: `localhost`,
    /// `.localhost`, `.internal`, `.local`, or an IPv4 or IPv6 literal that is loopback,
    /// private, link-local, unique-local, CGNAT or unspecified. (A public name that
    /// resolves to such an address is not caught here.)
    static func isInternal(host: String) -> Bool {
        let host = host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]."))
        if host == "localhost" || ["localhost", "internal", "local"].contains(where: { host.hasSuffix("." + $0) }) { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false).map { UInt8($0) }
        if octets.count == 4, octets.allSatisfy({ $0 != nil }) {
            let a = octets[0]!, b = octets[1]!
            return a == 0 || a == 10 || a == 127 || (a == 169 && b == 254) || (a == 172 && (16...31).contains(b))
                || (a == 192 && b == 168) || (a == 100 && (64...127).contains(b))
        }
        if host.contains(":") {
            if host == "::" || host == "::1" { return true }
            let first = host.split(separator: ":").first.flatMap { UInt16($0, radix: 16) } ?? 0
            if host.hasPrefix("::ffff:") { return isInternal(host: String(host.dropFirst(7))) }
            return (first & 0xFE00) == 0xFC00 || (first & 0xFFC0) == 0xFE80
        }
        // A number the URL parser would read as an IPv4 address (2130706433, 0x7f000001).
        return host.allSatisfy { $0.isHexDigit || $0 == "x" } && host.first?.isNumber == true
    }

    static func limit(_ text: String?) throws(OpenAIError) -> Int {
        guard let text else { return 100 }
        guard let value = Int(text), (1...1000).contains(value) else {
            throw OpenAIError.invalidRequest("'limit' must be a whole number from 1 to 1000.", param: "limit")
        }
        return value
    }
}

extension AdminResources {
    struct CreateWebhook: Decodable, Sendable {
        var url: String
        /// Every event when absent.
        var events: [String]?
    }

    /// A webhook; `secret` only in the answer that creates it.
    struct WebhookBody: Codable, Sendable {
        var object = "webhook"
        var id: String
        var tenantId: String
        var url: String
        var events: [String]
        var secret: String?
        var createdAt: Date

        init(_ webhook: WebhookRecord) {
            id = webhook.id
            tenantId = webhook.tenantID
            url = webhook.url
            events = webhook.events
            createdAt = webhook.createdAt
        }
    }

    /// One alert's delivery to a webhook, without its signature.
    struct DeliveryBody: Codable, Sendable {
        var object = "webhook_delivery"
        var id: String
        var webhookId: String
        var event: String
        var status: String
        var attempts: Int
        var createdAt: Date
        var nextAttemptAt: Date?
        var deliveredAt: Date?
        var failedAt: Date?
        var lastStatus: Int?
        var lastError: String?
        /// The JSON body sent.
        var payload: String

        init(_ delivery: WebhookDelivery) {
            id = delivery.id
            webhookId = delivery.webhookID
            event = delivery.event
            status = delivery.deliveredAt != nil ? "delivered" : (delivery.failedAt != nil ? "failed" : "pending")
            attempts = delivery.attempts
            createdAt = delivery.createdAt
            nextAttemptAt = delivery.isPending ? delivery.nextAttemptAt : nil
            deliveredAt = delivery.deliveredAt
            failedAt = delivery.failedAt
            lastStatus = delivery.lastStatus
            lastError = delivery.lastError
            payload = delivery.payload
        }
    }
}
