import Billing
import Directory
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Pools
import Providers

/// The management API under `/admin/v1`: the source of truth that the CLI (and later
/// the portal) call. Every route declares its permission (`ManagementRoutes`), and every
/// write records its audit entry in the transaction of its change.
struct AdminController {
    let directory: Directory
    let ledger: Ledger
    let topology: Topology
    let tenantAuthenticator: TenantAuthenticator
    let keyCatalogue: ProviderKeyCatalogue
    let keyPool: any KeyPool
    /// Where budgets' live figures are read.
    let admission: any TenantAdmission
    let cipher: ProviderKeyCipher
    let authenticator: ManagementAuthenticator
    let accounts: Accounts
    /// Each tenant's live figures on this instance.
    let activity: TenantActivity
    let logger: Logger
    let maximumBodyBytes = 64 << 10

    func addRoutes(to router: KnownRoutes) {
        let admin = ManagementRoutes(routes: router, prefix: "admin/v1", authenticator: authenticator)
        admin.post("tenants", .platform(.manageTenants)) { request, context in try await createTenant(request, context: context) }
        admin.get("tenants", .platform(.viewSystemUsage)) { _, _ in
            try json(AdminResources.ListBody(data: try await directory.tenants().map(tenantBody)))
        }
        admin.get("tenants/:id", .tenant(.viewTenantUsage)) { _, context in
            try json(tenantBody(try await requireTenant(context)))
        }
        admin.put("tenants/:id/limits", .tenant(.manageSettings)) { request, context in try await setTenantLimits(request, context: context) }
        admin.put("tenants/:id/pinning", .tenant(.manageSettings)) { request, context in try await setTenantPinning(request, context: context) }
        admin.get("pools", .platform(.manageCatalogue)) { _, _ in try pools() }
        admin.post("tenants/:id/keys", .tenant(.createKey)) { request, context in try await createKey(request, context: context) }
        admin.get("tenants/:id/keys", .tenant(.manageKeys)) { _, context in try await listKeys(context: context) }
        admin.delete("keys/:id", .resource(.manageKeys, keyOwner)) { _, context in try await revokeKey(context: context) }
        admin.get("usage", .tenantQuery(.viewTenantUsage, platform: .viewSystemUsage)) { request, context in
            try await usage(request, context: context)
        }
        addProviderKeyRoutes(to: admin)
        addBudgetRoutes(to: admin)
        addWebhookRoutes(to: admin)
        addUserRoutes(to: admin)
        addAuditRoutes(to: admin)
        addReportRoutes(to: admin)
        addTenantMetricsRoutes(to: admin)
    }

    /// The tenant and owner of the tenant key `:id`, for authorising what is done to it.
    var keyOwner: @Sendable (Parameters) async throws -> ResourceOwner? {
        { [directory] parameters in
            guard let key = try await directory.key(id: parameters.get("id") ?? "") else { return nil }
            return ResourceOwner(tenantID: key.tenantID, owner: .user(key.userID))
        }
    }

    // MARK: Tenants

    private func createTenant(_ request: Request, context: ManagementContext) async throws -> Response {
        let body: AdminResources.CreateTenant = try await decode(request, context)
        let name = try DisplayName.validated(body.name, field: "name")
        guard topology.contracts[body.tier] != nil else {
            let known = topology.contracts.keys.sorted().joined(separator: ", ")
            throw OpenAIError.invalidRequest("Unknown tier '\(body.tier)'; configured tiers: \(known).", param: "tier")
        }
        do {
            let tier = body.tier
            let tenant = try await context.record("tenant_created", tenant: \.id, target: \.id) { db in
                try Directory.createTenant(name: name, tier: tier, now: Date(), in: db)
            }
            return try json(tenantBody(tenant), status: .created)
        } catch let error as DirectoryError where error.code == .duplicateName {
            throw OpenAIError(status: 409, message: "A tenant named '\(name)' already exists.", type: "invalid_request_error", param: "name", code: "conflict")
        }
    }

    private func setTenantLimits(_ request: Request, context: ManagementContext) async throws -> Response {
        let tenant = try await requireTenant(context)
        let body: AdminResources.TenantLimitsBody = try await decode(request, context)
        let fields = [
            ("requests_per_minute", body.requestsPerMinute), ("tokens_per_minute", body.tokensPerMinute),
            ("concurrent_requests", body.concurrentRequests),
        ]
        for (name, value) in fields {
            if let value, value < 1 || value > TenantLimits.largestLimit {
                throw OpenAIError.invalidRequest("'\(name)' must be between 1 and 1000000000, or null for the tier's limit.", param: name)
            }
        }
        let overrides = TenantLimitOverrides(
            requestsPerMinute: body.requestsPerMinute, tokensPerMinute: body.tokensPerMinute,
            concurrentRequests: body.concurrentRequests
        )
        let id = tenant.id
        guard let updated = try await context.record("limits_changed", target: { _ in id }, { db in
            try Directory.updateTenant(id: id, in: db) { $0.limitOverrides = overrides }
        }) else {
            throw OpenAIError(status: 404, message: "No tenant has id '\(tenant.id)'.", type: "invalid_request_error", code: "not_found")
        }
        tenantAuthenticator.invalidate(tenantID: tenant.id)
        return try json(tenantBody(updated))
    }

    /// `PUT /admin/v1/tenants/{id}/pinning`: `{ "chat-small": "local-llama-8b" }` pins each
    /// model named to one of its deployments (a null value unpins it); a null body clears
    /// every pin. The body replaces the tenant's pinning.
    private func setTenantPinning(_ request: Request, context: ManagementContext) async throws -> Response {
        let tenant = try await requireTenant(context)
        let body: [String: String?]? = try await decode(request, context)
        var pinning: [String: String] = [:]
        for (model, deployment) in (body ?? [:]).sorted(by: { $0.key < $1.key }) {
            // What the operator sent is quoted back, but no more than a name's length of it.
            let quoted = String(model.prefix(DisplayName.longest))
            guard let routes = topology.routes.deployments(for: model) else {
                throw OpenAIError.invalidRequest("No model is named '\(quoted)'.", param: quoted)
            }
            guard let deployment else { continue }
            guard routes.contains(deployment) else {
                throw OpenAIError.invalidRequest(
                    "Model '\(quoted)' has no deployment '\(deployment.prefix(DisplayName.longest))'; its deployments: \(routes.joined(separator: ", ")).",
                    param: quoted
                )
            }
            pinning[model] = deployment
        }
        let id = tenant.id
        let pins = pinning
        guard let updated = try await context.record("pinning_changed", target: { _ in id }, { db in
            try Directory.updateTenant(id: id, in: db) { $0.pinning = pins }
        }) else {
            throw OpenAIError(status: 404, message: "No tenant has id '\(tenant.id)'.", type: "invalid_request_error", code: "not_found")
        }
        tenantAuthenticator.invalidate(tenantID: tenant.id)
        return try json(tenantBody(updated))
    }

    /// `GET /admin/v1/pools`: per engine pool, its slots, what is in flight and queued per
    /// tier, the measured service time and each tier's predicted start.
    private func pools() throws -> Response {
        let contracts = Array(topology.contracts.values)
        let pools = topology.enginePools.values.sorted { $0.name < $1.name }.map {
            AdminResources.PoolBody($0, contracts: contracts)
        }
        return try json(AdminResources.ListBody(data: pools))
    }

    private func tenantBody(_ tenant: Tenant) -> AdminResources.TenantBody {
        AdminResources.TenantBody(tenant, contract: topology.contract(tier: tenant.tier, overrides: .init(tenant)))
    }

    // MARK: Keys

    /// `POST /admin/v1/tenants/{id}/keys`: a key owned by the user who makes it, its
    /// secret shown this once.
    private func createKey(_ request: Request, context: ManagementContext) async throws -> Response {
        let tenant = try await requireTenant(context)
        let body: AdminResources.CreateKey = try await decode(request, context)
        let name = try DisplayName.validated(body.name, field: "name")
        if let expiresAt = body.expiresAt, expiresAt <= Date() {
            throw OpenAIError.invalidRequest("'expires_at' must be in the future.", param: "expires_at")
        }
        let secret = TenantKeySecret.generate()
        let record = Directory.newKey(
            tenantID: tenant.id, name: name, prefix: secret.prefix, secretHash: secret.hash, expiresAt: body.expiresAt,
            userID: context.principal.user?.id, now: Date()
        )
        try await context.record("key_created", target: { _ in record.id }) { db in try Directory.insertKey(record, in: db) }
        return try json(
            AdminResources.CreatedKeyBody(
                id: record.id, tenantId: tenant.id, name: name, prefix: record.prefix, key: secret.secret,
                createdAt: record.createdAt, expiresAt: record.expiresAt, userId: record.userID
            ),
            status: .created
        )
    }

    /// `GET /admin/v1/tenants/{id}/keys`: every key of the tenant, or an org user's own.
    private func listKeys(context: ManagementContext) async throws -> Response {
        let tenant = try await requireTenant(context)
        let owner = context.ownedOnly ? context.principal.user?.id : nil
        let keys = try await directory.keys(tenantID: tenant.id, userID: owner).map { AdminResources.KeyBody($0) }
        return try json(AdminResources.ListBody(data: keys))
    }

    private func revokeKey(context: ManagementContext) async throws -> Response {
        let id = context.parameters.get("id") ?? ""
        guard let record = try await context.record("key_revoked", tenant: { $0?.tenantID }, target: { _ in id }, { db in
            try Directory.revokeKey(id: id, now: Date(), in: db)
        }) else {
            throw OpenAIError(status: 404, message: "No tenant key has id '\(id)'.", type: "invalid_request_error", code: "not_found")
        }
        tenantAuthenticator.invalidate(keyID: record.id)
        return try json(AdminResources.KeyBody(record))
    }

    // MARK: Usage

    private func usage(_ request: Request, context: ManagementContext) async throws -> Response {
        let parameters = request.uri.queryParameters
        let groupName = parameters["group_by"].map(String.init) ?? "model"
        guard let groupBy = UsageQuery.GroupBy(rawValue: groupName) else {
            let known = UsageQuery.GroupBy.allCases.map(\.rawValue).joined(separator: ", ")
            throw OpenAIError.invalidRequest("'group_by' must be one of \(known).", param: "group_by")
        }
        let from = try parameters["from"].map { try Self.parseTime(String($0), param: "from") }
        let to = try parameters["to"].map { try Self.parseTime(String($0), param: "to") }
        if let from, let to, from >= to {
            throw OpenAIError.invalidRequest("'from' must be before 'to'.", param: "from")
        }
        // The tenant the permission check settled on: the one asked for, an org role's own, or all.
        let tenant = context.tenantID
        var query = UsageQuery(tenantID: tenant, from: from, to: to, groupBy: groupBy)
        if context.principal.role == .orgUser {
            // An org user sees the usage of the keys they own.
            query.userID = context.principal.user?.id ?? ""
        }
        let rows = try await ledger.usageSummary(query)
        return try json(AdminResources.UsageBody(
            tenant: tenant, from: from, to: to, groupBy: groupBy.rawValue, data: rows.map(AdminResources.UsageGroupBody.init)
        ))
    }

    /// Accepts `2026-11-23` (midnight UTC) or an RFC 3339 time.
    static func parseTime(_ text: String, param: String) throws(OpenAIError) -> Date {
        guard fieldsAreInRange(text) else {
            throw OpenAIError.invalidRequest(
                "'\(param)' is not a real date or time: '\(text)' (a month, day, hour, minute or second is out of range).",
                param: param
            )
        }
        if let date = try? Date(text, strategy: .iso8601) { return date }
        if let date = try? Date(text, strategy: Date.ISO8601FormatStyle().year().month().day()) { return date }
        if let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) { return date }
        throw OpenAIError.invalidRequest("'\(param)' must be a date (2026-11-23) or an RFC 3339 time (2026-11-23T10:00:00Z).", param: param)
    }

    /// Whether the date and time fields of `2026-11-23[THH:MM:SS…]` are in range: the
    /// parser rolls `T25:00` over into the next day instead of refusing it.
    static func fieldsAreInRange(_ text: String) -> Bool {
        let characters = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= characters.count else { return nil }
            var value = 0
            for index in range {
                guard characters[index] >= UInt8(ascii: "0"), characters[index] <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int(characters[index] - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), (1...12).contains(month) else {
            // Not this shape at all: the parser decides.
            return number(0..<4) == nil
        }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        guard (1...days).contains(day) else { return false }
        guard characters.count > 10 else { return true }
        guard let hour = number(11..<13), let minute = number(14..<16) else { return true }
        guard hour < 24, minute < 60 else { return false }
        if let second = number(17..<19), second >= 60 { return false }
        return true
    }

    // MARK: Plumbing

    func requireTenant(_ context: ManagementContext) async throws -> Tenant {
        let id = context.parameters.get("id") ?? ""
        guard let tenant = try await directory.tenant(id: id) else {
            throw OpenAIError(status: 404, message: "No tenant has id '\(id)'.", type: "invalid_request_error", code: "not_found")
        }
        return tenant
    }

    /// Decodes a management request's JSON body, and gives its audit entry the body with
    /// every secret redacted.
    func decode<T: Decodable>(_ request: Request, _ context: ManagementContext) async throws -> T {
        let (value, data): (T, Data) = try await decodeBody(request, limit: maximumBodyBytes)
        context.trail.setPayload(AuditPayload.redacted(data))
        return value
    }

    /// Reads at most `limit` bytes of a JSON body and decodes it, with the body's bytes.
    /// - Throws: `OpenAIError` 413 past the limit, 400 naming what is wrong (and where).
    func decodeBody<T: Decodable>(_ request: Request, limit: Int) async throws -> (T, Data) {
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw OpenAIError.bodyTooLarge(limit: limit)
        }
        // The scanner names what is wrong and where (invalid UTF-8, say), which
        // JSONDecoder's "not valid JSON" does not.
        try body.withUnsafeReadableBytes { raw throws(OpenAIError) in
            do throws(JSONScanError) {
                try JSONScanner(raw).validateDocument()
            } catch {
                if error.reason == .invalidUTF8 {
                    throw OpenAIError.invalidRequest(
                        "The request body is not valid UTF-8 (at byte \(error.offset)); JSON text must be UTF-8.",
                        code: "invalid_utf8"
                    )
                }
                throw OpenAIError.invalidRequest("We could not parse the JSON body of your request (\(error)).")
            }
        }
        let data = Data(buffer: body)
        do {
            return (try AdminResources.decoder.decode(T.self, from: data), data)
        } catch {
            throw OpenAIError(decoding: error)
        }
    }

    func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try AdminResources.encoder.encode(value)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        // Management answers hold secrets shown once and figures that change: no cache keeps them.
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
