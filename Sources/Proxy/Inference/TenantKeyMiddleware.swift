import Directory
import Foundation
import Hummingbird
import Providers

/// Authenticates the tenant key on inference routes. On `/tenants/{tenant}/v1/...` the
/// key must belong to that tenant (by id or name), else 404 exactly as for an unknown
/// URL, so the answer reveals nothing about which tenants exist.
struct TenantKeyMiddleware: RouterMiddleware {
    typealias Context = SwitchyardRequestContext

    let authenticator: TenantAuthenticator
    let keyUses: KeyUseRecorder

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let now = Date()
        let tenant = try await authenticator.authenticate(authorization: request.headers[.authorization], now: now)
        if let scope = context.parameters.get("tenant"), scope != tenant.tenantID, scope != tenant.tenantName {
            throw HTTPError(.notFound)
        }
        keyUses.record(keyID: tenant.keyID, at: now)
        var context = context
        context.tenant = tenant
        context.logger[metadataKey: "tenant"] = .string(tenant.tenantID)
        return try await next(request, context)
    }
}
