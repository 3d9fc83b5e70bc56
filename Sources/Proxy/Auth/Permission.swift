import Directory
import Providers

/// The management actions of the permission matrix (README, "Users, roles and the audit
/// log"). Each management route declares one; the matrix says which roles may take it,
/// and whether in any tenant or only their own.
enum Action: String, Sendable, CaseIterable {
    /// Usage and cost across every tenant; the list of tenants.
    case viewSystemUsage = "view system-wide usage"
    /// Models, providers, provider keys, engine pools.
    case manageCatalogue = "manage models, providers, provider keys, engine pools"
    /// Creating tenants (orgs) and the platform's own users.
    case manageTenants = "create / manage tenants (orgs)"
    /// One tenant's usage, budget and quota figures.
    case viewTenantUsage = "view the org's usage"
    /// Inviting and removing the users of a tenant.
    case manageUsers = "invite / remove users of an org"
    /// A tenant's budgets, limits, pinning and webhooks.
    case manageSettings = "set budgets, limits, pinning, webhooks of an org"
    /// Making a tenant key, owned by the user who makes it.
    case createKey = "create a tenant key"
    /// Viewing and revoking tenant keys: an org user only their own.
    case manageKeys = "view / revoke keys"
    /// A tenant's audit log.
    case viewAudit = "view the org's audit log"

    /// What `role` may do with the action.
    func grant(to role: Role) -> Grant {
        switch (role, self) {
        case (.systemAdmin, .createKey): .none
        case (.systemAdmin, _): .anyTenant
        case (.analyst, .viewSystemUsage), (.analyst, .viewTenantUsage): .anyTenant
        case (.analyst, _): .none
        case (.orgAdmin, .viewTenantUsage), (.orgAdmin, .manageUsers), (.orgAdmin, .manageSettings),
             (.orgAdmin, .createKey), (.orgAdmin, .manageKeys), (.orgAdmin, .viewAudit): .ownTenant
        case (.orgAdmin, _): .none
        case (.orgUser, .viewTenantUsage), (.orgUser, .createKey): .ownTenant
        case (.orgUser, .manageKeys): .ownResources
        case (.orgUser, _): .none
        }
    }

    /// How far a role's permission for an action reaches.
    enum Grant: Sendable, Equatable {
        case none
        /// Every tenant (the global roles).
        case anyTenant
        /// The role's own tenant.
        case ownTenant
        /// What the user owns in their own tenant (an org user's keys).
        case ownResources
    }
}

/// What a route acts on, as far as authorisation cares: which tenant, and whose.
struct ResourceOwner: Sendable, Equatable {
    enum Owner: Sendable, Equatable {
        /// The tenant as a whole, or a listing of what is in it.
        case tenant
        /// One thing a user owns (a tenant key); nil for one no user owns.
        case user(String?)
    }

    var tenantID: String
    var owner: Owner = .tenant
}

/// Why a principal may not do what it asked.
enum Denial: Error, Equatable {
    /// 403 `permission_denied`: the principal sees the resource but may not do this.
    case forbidden
    /// 404: the resource is another tenant's, answered as if it did not exist.
    case hidden
}

extension Principal {
    /// Decides whether the principal may take `action` on `resource` (nil for an action
    /// on the platform as a whole). Deny by default: only what the matrix grants passes.
    /// - Returns: whether the principal is limited to what it owns (an org user listing keys).
    @discardableResult
    func authorize(_ action: Action, on resource: ResourceOwner?) throws(Denial) -> Bool {
        let grant = action.grant(to: role)
        if let resource, !role.isGlobal, resource.tenantID != tenantID {
            // Another tenant's: not even its existence is confirmed.
            throw .hidden
        }
        switch grant {
        case .none:
            throw .forbidden
        case .anyTenant:
            return false
        case .ownTenant:
            guard resource != nil, tenantID != nil else { throw .forbidden }
            return false
        case .ownResources:
            guard let resource, tenantID != nil, let userID = user?.id else { throw .forbidden }
            switch resource.owner {
            case .tenant:
                // A listing, narrowed to what the principal owns.
                return true
            case .user(let owner):
                guard owner == userID else { throw .forbidden }
                return true
            }
        }
    }
}

extension OpenAIError {
    /// 403 for an action the principal's role does not allow.
    static func permissionDenied(_ action: Action, role: Role) -> OpenAIError {
        OpenAIError(
            status: 403, message: "Your role (\(role.rawValue)) may not \(action.rawValue).",
            type: "permission_error", code: "permission_denied"
        )
    }

    /// 404 for what does not exist, or is another tenant's.
    static let managementNotFound = OpenAIError(
        status: 404, message: "No such resource.", type: "invalid_request_error", code: "not_found"
    )
}
