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
/// the portal) call.
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
    let authentication: AdminMiddleware
    let logger: Logger
    let maximumBodyBytes = 64 << 10

    func addRoutes(to router: KnownRoutes) {
        let admin = router.group("admin/v1").add(middleware: authentication)
        admin.post("tenants") { request, context in try await createTenant(request, context: context) }
        admin.get("tenants") { _, context in try await listTenants(context: context) }
        admin.get("tenants/:id") { _, context in try await showTenant(context: context) }
        admin.put("tenants/:id/limits") { request, context in try await setTenantLimits(request, context: context) }
        admin.put("tenants/:id/pinning") { request, context in try await setTenantPinning(request, context: context) }
        admin.get("pools") { _, context in try await pools(context: context) }
        admin.post("tenants/:id/keys") { request, context in try await createKey(request, context: context) }
        admin.get("tenants/:id/keys") { _, context in try await listKeys(context: context) }
        admin.delete("keys/:id") { _, context in try await revokeKey(context: context) }
        admin.get("usage") { request, context in try await usage(request, context: context) }
        addProviderKeyRoutes(to: admin)
        addBudgetRoutes(to: admin)
        addWebhookRoutes(to: admin)
    }

    // MARK: Tenants

    private func createTenant(_ request: Request, context: SwitchyardRequestContext) async throws -> Response {
        try context.admin?.require(.admin)
        let body: AdminResources.CreateTenant = try await decode(request)
        let name = try DisplayName.validated(body.name, field: "name")
        guard topology.contracts[body.tier] != nil else {
            let known = topology.contracts.keys.sorted().joined(separator: ", ")
            throw OpenAIError.invalidRequest("Unknown tier '\(body.tier)'; configured tiers: \(known).", param: "tier")
        }
        do {
            let tenant = try await directory.createTenant(name: name, tier: body.tier)
            return try json(tenantBody(tenant), status: .created)
        } catch let error as DirectoryError where error.code == .duplicateName {
            throw OpenAIError(status: 409, message: "A tenant named '\(name)' already exists.", type: "invalid_request_error", param: "name", code: "conflict")
        }
    }

    private func listTenants(context: SwitchyardRequestContext) async throws -> Response {
        try context.admin?.require(.analyst)
        let tenants = try await directory.tenants().map(tenantBody)
        return try json(AdminResources.ListBody(data: tenants))
    }

    private func showTenant(context: SwitchyardRequestContext) async throws -> Response {
        try context.admin?.require(.analyst)
        return try json(tenantBody(try await requireTenant(context)))
    }

    private func setTenantLimits(_ request: Request, context: SwitchyardRequestContext) async throws -> Response {
        try context.admin?.require(.operator_)
        let tenant = try await requireTenant(context)
        let body: AdminResources.TenantLimitsBody = try await decode(request)
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
        guard let updated = try await directory.setTenantLimits(id: tenant.id, overrides) else {
            throw OpenAIError(status: 404, message: "No tenant has id '\(tenant.id)'.", type: "invalid_request_error", code: "not_found")
        }
        tenantAuthenticator.invalidate(tenantID: tenant.id)
        return try json(tenantBody(updated))
    }

    /// `PUT /admin/v1/tenants/{id}/pinning`: `{ "chat-small": "local-llama-8b" }` pins each
    /// model named to one of its deployments (a null value unpins it); a null body clears
    /// every pin. The body replaces the tenant's pinning.
    private func setTenantPinning(_ request: Request, context: SwitchyardRequestContext) async throws -> Response {
        try context.admin?.require(.operator_)
        let tenant = try await requireTenant(context)
        let body: [String: String?]? = try await decode(request)
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
        guard let updated = try await directory.setTenantPinning(id: tenant.id, pinning) else {
            throw OpenAIError(status: 404, message: "No tenant has id '\(tenant.id)'.", type: "invalid_request_error", code: "not_found")
        }
        tenantAuthenticator.invalidate(tenantID: tenant.id)
        return try json(tenantBody(updated))
    }

    /// `GET /admin/v1/pools`: per engine pool, its slots, what is in flight and queued per
    /// tier, the measured service time and each tier's predicted start.
    private func pools(context: SwitchyardRequestContext) async throws -> Response {
        try context.admin?.require(.analyst)
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

    private func createKey(_ request: Request, context: SwitchyardRequestContext) async throws -> Response {
        try context.admin?.require(.admin)
        let tenant = try await requireTenant(context)
        let body: AdminResources.CreateKey = try await decode(request)
        let name = try DisplayName.validated(body.name, field: "name")
        if let expiresAt = body.expiresAt, expiresAt <= Date() {
            throw OpenAIError.invalidRequest("'expires_at' must be in the future.", param: "expires_at")
        }
        let secret = TenantKeySecret.generate()
        let record = try await directory.createKey(
            tenantID: tenant.id, name: name, prefix: secret.prefix, secretHash: secret.hash, expiresAt: body.expiresAt
        )
        return try json(
            AdminResources.CreatedKeyBody(
                id: record.id, tenantId: tenant.id, name: name, prefix: record.prefix, key: secret.secret,
                createdAt: record.createdAt, expiresAt: record.expiresAt
            ),
            status: .created
        )
    }

    private func listKeys(context: SwitchyardRequestContext) async throws -> Response {
        try context.admin?.require(.analyst)
        let tenant = try await requireTenant(context)
        let keys = try await directory.keys(tenantID: tenant.id).map { AdminResources.KeyBody($0) }
        return try json(AdminResources.ListBody(data: keys))
    }

    private func revokeKey(context: SwitchyardRequestContext) async throws -> Response {
        try context.admin?.require(.admin)
        let id = context.parameters.get("id") ?? ""
        guard let record = try await directory.revokeKey(id: id) else {
            throw OpenAIError(status: 404, message: "No tenant key has id '\(id)'.", type: "invalid_request_error", code: "not_found")
        }
        tenantAuthenticator.invalidate(keyID: record.id)
        return try json(AdminResources.KeyBody(record))
    }

    // MARK: Usage

    private func usage(_ request: Request, context: SwitchyardRequestContext) async throws -> Response {
        try context.admin?.require(.analyst)
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
        let tenant = parameters["tenant"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
        let rows = try await ledger.usageSummary(UsageQuery(tenantID: tenant, from: from, to: to, groupBy: groupBy))
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

    func requireTenant(_ context: SwitchyardRequestContext) async throws -> Tenant {
        let id = context.parameters.get("id") ?? ""
        guard let tenant = try await directory.tenant(id: id) else {
            throw OpenAIError(status: 404, message: "No tenant has id '\(id)'.", type: "invalid_request_error", code: "not_found")
        }
        return tenant
    }

    func decode<T: Decodable>(_ request: Request) async throws -> T {
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: maximumBodyBytes)
        } catch is NIOTooManyBytesError {
            throw OpenAIError.bodyTooLarge(limit: maximumBodyBytes)
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
        do {
            return try AdminResources.decoder.decode(T.self, from: Data(buffer: body))
        } catch {
            throw OpenAIError(decoding: error)
        }
    }

    func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try AdminResources.encoder.encode(value)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
