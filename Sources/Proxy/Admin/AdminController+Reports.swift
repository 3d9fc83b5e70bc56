import Billing
import Foundation
import Hummingbird
import Providers

extension AdminController {
    /// Reconciliation and the cost analyst's reports.
    func addReportRoutes(to admin: ManagementRoutes) {
        admin.get("usage/events/:id", .resource(.viewTenantUsage, usageEventOwner)) { _, context in
            try await usageEvent(context: context)
        }
    }

    /// The tenant and owner of the metered request `:id`.
    var usageEventOwner: @Sendable (Parameters) async throws -> ResourceOwner? {
        { [ledger] parameters in
            guard let event = try await ledger.usageEvent(requestID: parameters.get("id") ?? "") else { return nil }
            return ResourceOwner(tenantID: event.tenantID, owner: .user(event.userID))
        }
    }

    /// One metered request, as the ledger holds it.
    private func usageEvent(context: ManagementContext) async throws -> Response {
        let id = context.parameters.get("id") ?? ""
        guard let event = try await ledger.usageEvent(requestID: id) else { throw OpenAIError.managementNotFound }
        // An org user sees the requests of the keys they own, as with usage.
        if context.principal.role == .orgUser, event.userID == nil || event.userID != context.principal.user?.id {
            throw OpenAIError.managementNotFound
        }
        return try json(AdminResources.UsageEventBody(event))
    }
}

extension AdminResources {
    /// One metered request: `GET /admin/v1/usage/events/{request_id}`.
    struct UsageEventBody: Codable, Sendable {
        var object = "usage_event"
        var requestId: String
        var tenantId: String
        var tenantKeyId: String?
        var userId: String?
        var model: String
        var deployment: String?
        var provider: String?
        var providerKeyId: String?
        var enginePool: String?
        var promptTokens: Int
        var cachedTokens: Int
        var completionTokens: Int
        var reasoningTokens: Int
        var tokensEstimated: Bool
        var costMicros: Int64
        var billedMicros: Int64?
        var currency: String
        var status: Int
        var errorType: String?
        var startedAt: Date
        var ttftMs: Int?
        var durationMs: Int
        var queueMs: Int?
        var slotMs: Int?
        var streamed: Bool
        var clientAborted: Bool
        var spilled: Bool

        init(_ event: UsageEvent) {
            requestId = event.requestID
            tenantId = event.tenantID
            tenantKeyId = event.tenantKeyID
            userId = event.userID
            model = event.model
            deployment = event.deployment
            provider = event.provider
            providerKeyId = event.providerKeyID
            enginePool = event.enginePool
            promptTokens = event.promptTokens
            cachedTokens = event.cachedTokens
            completionTokens = event.completionTokens
            reasoningTokens = event.reasoningTokens
            tokensEstimated = event.tokensEstimated
            costMicros = event.costMicros
            billedMicros = event.billedMicros
            currency = event.currency
            status = event.status
            errorType = event.errorType
            startedAt = event.startedAt
            ttftMs = event.timeToFirstTokenMilliseconds
            durationMs = event.durationMilliseconds
            queueMs = event.queueMilliseconds
            slotMs = event.slotMilliseconds
            streamed = event.streamed
            clientAborted = event.clientAborted
            spilled = event.spilled
        }
    }
}
