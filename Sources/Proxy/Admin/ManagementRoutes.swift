import Directory
import Foundation
import GRDB
import HTTPTypes
import HummingbirdCore
import Hummingbird
import Logging
import Providers
import Synchronization

/// What a management route needs before its handler runs: the action it takes (a row of
/// the permission matrix) and how to find the tenant, and owner, it acts on.
enum Permission: Sendable {
    /// On the platform as a whole: no tenant.
    case platform(Action)
    /// On the tenant whose id is the path's `:id`.
    case tenant(Action)
    /// On a resource the route looks up from its path; nil when there is none (404).
    case resource(Action, @Sendable (Parameters) async throws -> ResourceOwner?)
    /// On the tenant named by `?tenant=`; without it, on the platform (`platform`) for a
    /// global role and on their own tenant for an org role.
    case tenantQuery(Action, platform: Action)
    /// Any signed-in principal, on itself (`/auth/me`).
    case signedIn
}

/// The request as a management handler sees it: who is acting (never optional), what the
/// route acts on, and where the audit entry of a write goes.
struct ManagementContext: Sendable {
    let principal: Principal
    /// The tenant (and owner) acted on; nil for a platform action.
    let resource: ResourceOwner?
    /// Whether the principal sees only what it owns (an org user's keys).
    let ownedOnly: Bool
    let parameters: Parameters
    let requestID: String
    let sourceAddress: String?
    let logger: Logger
    let directory: Directory
    let trail: AuditTrail

    /// The tenant acted on; nil for a platform action.
    var tenantID: String? { resource?.tenantID }

    /// Runs `change` and records its audit entry in one transaction.
    /// - Parameters:
    ///   - action: what the entry says was done (`key_created`).
    ///   - tenant: the tenant of the change, from its result.
    ///   - target: what it was done to, from its result.
    func record<T: Sendable>(
        _ action: String,
        tenant: @escaping @Sendable (T) -> String? = { _ in nil },
        target: @escaping @Sendable (T) -> String?,
        _ change: @escaping @Sendable (GRDB.Database) throws -> T
    ) async throws -> T {
        let entry = entry(action, tenantID: nil, target: nil)
        let fallbackTenant = resource?.tenantID ?? principal.tenantID
        let result = try await directory.recording(change) { result in
            var entry = entry
            entry.tenantID = tenant(result) ?? fallbackTenant
            entry.target = target(result)
            return entry
        }
        trail.markRecorded()
        return result
    }

    /// Records an audit entry for a write that changed nothing stored (enabling a key
    /// that is active already, say): the request is in the log all the same.
    func recordUnchanged(_ action: String, target: String?) async throws {
        try await directory.append(entry(action, tenantID: nil, target: target))
        trail.markRecorded()
    }

    /// An entry for this request, with the principal as actor and the redacted payload.
    func entry(_ action: String, tenantID: String?, target: String?) -> AuditEntry {
        AuditEntry(
            at: Date(), tenantID: tenantID ?? resource?.tenantID ?? principal.tenantID, actor: principal.auditActor, action: action, target: target,
            payload: trail.payload, requestID: requestID, sourceAddress: sourceAddress
        )
    }
}

/// Carries a write's redacted payload to its audit entry, and notes that one was recorded.
final class AuditTrail: Sendable {
    private let state = Mutex<(payload: String?, recorded: Bool)>((nil, false))

    var payload: String? { state.withLock { $0.payload } }
    var recorded: Bool { state.withLock { $0.recorded } }

    func setPayload(_ payload: String?) { state.withLock { $0.payload = payload } }
    func markRecorded() { state.withLock { $0.recorded = true } }
}

/// Registers management routes: each must declare its permission, and runs only for a
/// principal the permission matrix allows. There is no other way onto the management API.
struct ManagementRoutes {
    let routes: KnownRoutes
    let prefix: String
    let authenticator: ManagementAuthenticator

    typealias Handler = @Sendable (Request, ManagementContext) async throws -> Response

    func get(_ path: String, _ permission: Permission, _ handler: @escaping Handler) { on(.get, path, permission, handler) }
    func post(_ path: String, _ permission: Permission, _ handler: @escaping Handler) { on(.post, path, permission, handler) }
    func put(_ path: String, _ permission: Permission, _ handler: @escaping Handler) { on(.put, path, permission, handler) }
    func delete(_ path: String, _ permission: Permission, _ handler: @escaping Handler) { on(.delete, path, permission, handler) }

    func on(_ method: HTTPRequest.Method, _ path: String, _ permission: Permission, _ handler: @escaping Handler) {
        let authenticator = self.authenticator
        let fullPath = prefix.isEmpty ? path : "\(prefix)/\(path)"
        routes.on(RouterPath(fullPath), method: method) { request, context in
            let principal = try await authenticator.authenticate(request.headers, method: request.method)
            let (resource, ownedOnly) = try await Self.authorize(principal, permission, context: context, query: request.uri.queryParameters)
            let management = ManagementContext(
                principal: principal, resource: resource, ownedOnly: ownedOnly, parameters: context.parameters,
                requestID: context.requestID, sourceAddress: context.remoteAddress, logger: context.logger,
                directory: authenticator.directory, trail: AuditTrail()
            )
            let response = try await handler(request, management)
            if method != .get, method != .head, (200..<300).contains(response.status.code), !management.trail.recorded {
                // Every write is in the audit log: a handler that forgot its entry is a bug,
                // and the log still gets one (outside the change's transaction).
                context.logger.error("a management write recorded no audit entry", metadata: ["path": "\(fullPath)"])
                _ = try? await authenticator.directory.append(
                    management.entry("\(method.rawValue.lowercased()) \(fullPath)", tenantID: nil, target: nil)
                )
            }
            return response
        }
    }

    /// Registers a route that needs no credentials (signing in, accepting an invite): its
    /// handler is the whole of its authorisation, and records its own audit entries.
    func unauthenticated(
        _ method: HTTPRequest.Method, _ path: String,
        _ handler: @escaping @Sendable (Request, SwitchyardRequestContext) async throws -> Response
    ) {
        routes.on(RouterPath(prefix.isEmpty ? path : "\(prefix)/\(path)"), method: method, use: handler)
    }

    private static func authorize(
        _ principal: Principal, _ permission: Permission, context: SwitchyardRequestContext, query: FlatDictionary<Substring, Substring>
    ) async throws -> (ResourceOwner?, Bool) {
        let action: Action
        let resource: ResourceOwner?
        switch permission {
        case .signedIn:
            return (nil, false)
        case .platform(let platformAction):
            action = platformAction
            resource = nil
        case .tenant(let tenantAction):
            action = tenantAction
            resource = ResourceOwner(tenantID: context.parameters.get("id") ?? "")
        case .resource(let resourceAction, let lookUp):
            action = resourceAction
            guard let found = try await lookUp(context.parameters) else { throw OpenAIError.managementNotFound }
            resource = found
        case .tenantQuery(let tenantAction, let platformAction):
            if let tenant = query["tenant"].map(String.init), !tenant.isEmpty {
                action = tenantAction
                resource = ResourceOwner(tenantID: tenant)
            } else if let own = principal.tenantID {
                action = tenantAction
                resource = ResourceOwner(tenantID: own)
            } else {
                action = platformAction
                resource = nil
            }
        }
        do {
            return (resource, try principal.authorize(action, on: resource))
        } catch .hidden {
            throw OpenAIError.managementNotFound
        } catch .forbidden {
            throw OpenAIError.permissionDenied(action, role: principal.role)
        }
    }
}
