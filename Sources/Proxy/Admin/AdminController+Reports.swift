import Billing
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import NIOCore
import Providers

extension AdminController {
    /// Reconciliation and the cost analyst's reports.
    func addReportRoutes(to admin: ManagementRoutes) {
        admin.get("usage/events/:id", .resource(.viewTenantUsage, usageEventOwner)) { _, context in
            try await usageEvent(context: context)
        }
        admin.get("reports/allocation", .tenantQuery(.viewTenantUsage, platform: .viewSystemUsage)) { request, context in
            try await allocationReport(request, context: context)
        }
        admin.get("reports/gpu", .platform(.viewSystemUsage)) { request, _ in try await gpuReport(request) }
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

extension AdminController {
    // MARK: Cost allocation

    /// `GET /admin/v1/reports/allocation`: usage and cost per group over whole hours, as
    /// JSON or CSV, a page at a time. An org role sees its own tenant; an org user the
    /// usage of the keys they own.
    private func allocationReport(_ request: Request, context: ManagementContext) async throws -> Response {
        let parameters = request.uri.queryParameters
        let format = parameters["format"].map(String.init) ?? "json"
        guard format == "json" || format == "csv" else {
            throw OpenAIError.invalidRequest("'format' must be json or csv.", param: "format")
        }
        let (from, to) = try Self.reportWindow(parameters)
        let groupBy = try await Self.reporting { try AllocationDimension.parseList(parameters["group_by"].map(String.init) ?? "tenant") }
        var query = AllocationQuery(
            from: from, to: to, tenantID: context.tenantID, groupBy: groupBy,
            includeGPU: try Self.flag(parameters["include_gpu"], param: "include_gpu"),
            poolCosts: Array(topology.enginePoolCosts.values),
            limit: try Self.limit(parameters["limit"]),
            cursor: parameters["cursor"].map(String.init)
        )
        if context.principal.role == .orgUser {
            // An org user sees the usage of the keys they own, as with usage.
            query.userID = context.principal.user?.id ?? ""
        }
        let report = try await Self.reporting { try await ledger.allocationReport(query) }
        if format == "csv" {
            var headers = HTTPFields()
            headers[.contentType] = "text/csv; charset=utf-8"
            headers[.cacheControl] = "no-store"
            headers[.contentDisposition] = "attachment; filename=\"switchyard-allocation.csv\""
            if let next = report.nextCursor, let name = HTTPField.Name("x-next-cursor") { headers[name] = next }
            let text = AllocationCSV.render(report)
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        return try json(AdminResources.AllocationReportBody(report, tenant: context.tenantID))
    }

    /// `GET /admin/v1/reports/gpu?pool=`: an engine pool's cost over the window, split by
    /// the tenants' occupancy of its slots, and its idle capacity's.
    private func gpuReport(_ request: Request) async throws -> Response {
        let parameters = request.uri.queryParameters
        guard let pool = parameters["pool"].map(String.init), !pool.isEmpty else {
            throw OpenAIError.invalidRequest("'pool' is required: the id of an engine pool.", param: "pool")
        }
        guard topology.enginePools[pool] != nil else {
            throw OpenAIError(
                status: 404, message: "No engine pool has id '\(pool.prefix(DisplayName.longest))'.", type: "invalid_request_error",
                param: "pool", code: "not_found"
            )
        }
        guard topology.enginePoolCosts[pool] != nil else {
            throw OpenAIError.invalidRequest(
                "Engine pool '\(pool)' has no cost_per_hour in providers.json, so its cost cannot be allocated.", param: "pool"
            )
        }
        let (from, to) = try Self.reportWindow(parameters)
        let costs = Array(topology.enginePoolCosts.values)
        let report = try await Self.reporting { try await ledger.gpuReport(pool: pool, from: from, to: to, costs: costs) }
        return try json(AdminResources.GPUReportBody(report))
    }

    /// The report's window from `from` and `to`, each a whole UTC hour. Without `to` it
    /// ends at the start of the next hour; without `from` it starts 30 days before the end.
    static func reportWindow(_ parameters: FlatDictionary<Substring, Substring>, now: Date = Date()) throws -> (Date, Date) {
        let from = try parameters["from"].map { try parseTime(String($0), param: "from") }
        let to = try parameters["to"].map { try parseTime(String($0), param: "to") }
        for (name, date) in [("from", from), ("to", to)] {
            guard let date, !AllocationQuery.isWholeHour(date) else { continue }
            throw OpenAIError.invalidRequest(
                "'\(name)' must be a whole UTC hour, such as 2026-11-23 or 2026-11-23T10:00:00Z: reports sum hourly rollups.",
                param: name
            )
        }
        let hour = 3_600_000 as Int64
        let end = to ?? Date(ledgerMilliseconds: (now.ledgerMilliseconds / hour + 1) * hour)
        let start = from ?? end.addingTimeInterval(-30 * 86_400)
        guard start < end else { throw OpenAIError.invalidRequest("'from' must be before 'to'.", param: "from") }
        return (start, end)
    }

    /// `true`/`false` (or `1`/`0`); absent is false.
    static func flag(_ value: Substring?, param: String) throws -> Bool {
        switch value {
        case nil, "false", "0": return false
        case "true", "1", "": return true
        default: throw OpenAIError.invalidRequest("'\(param)' must be true or false.", param: param)
        }
    }

    /// `limit`: rows per page, 1 to 10,000; 1,000 when absent.
    static func limit(_ value: Substring?) throws -> Int {
        guard let value else { return AllocationQuery.defaultLimit }
        guard let limit = Int(value), (1...AllocationQuery.maximumLimit).contains(limit) else {
            throw OpenAIError.invalidRequest("'limit' must be an integer from 1 to \(AllocationQuery.maximumLimit).", param: "limit")
        }
        return limit
    }

    /// Runs `body`, answering a `ReportError` as a 400 naming its parameter.
    static func reporting<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as ReportError {
            throw OpenAIError.invalidRequest(error.message, param: error.parameter)
        }
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
