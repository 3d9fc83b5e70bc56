import Directory
import Foundation
import Testing

@testable import Proxy

/// The permission matrix of the users issue, cell by cell, and how a principal's tenant
/// and ownership narrow it.
@Suite("Permission matrix")
struct PermissionMatrixTests {
    /// The matrix as published in the README: "any" (every tenant), "own" (the role's
    /// tenant), "mine" (what the user owns), "-" (never).
    static let matrix: [(Action, [Role: String])] = [
        (.viewSystemUsage, [.systemAdmin: "any", .analyst: "any", .orgAdmin: "-", .orgUser: "-"]),
        (.manageCatalogue, [.systemAdmin: "any", .analyst: "-", .orgAdmin: "-", .orgUser: "-"]),
        (.manageTenants, [.systemAdmin: "any", .analyst: "-", .orgAdmin: "-", .orgUser: "-"]),
        (.viewTenantUsage, [.systemAdmin: "any", .analyst: "any", .orgAdmin: "own", .orgUser: "own"]),
        (.manageUsers, [.systemAdmin: "any", .analyst: "-", .orgAdmin: "own", .orgUser: "-"]),
        (.manageSettings, [.systemAdmin: "any", .analyst: "-", .orgAdmin: "own", .orgUser: "-"]),
        (.createKey, [.systemAdmin: "-", .analyst: "-", .orgAdmin: "own", .orgUser: "own"]),
        (.manageKeys, [.systemAdmin: "any", .analyst: "-", .orgAdmin: "own", .orgUser: "mine"]),
        (.viewAudit, [.systemAdmin: "any", .analyst: "-", .orgAdmin: "own", .orgUser: "-"]),
    ]

    private func principal(_ role: Role) -> Principal {
        let tenant = role.isGlobal ? nil : "ten_home"
        let user = User(id: "usr_me", tenantID: tenant, email: "me@example.com", name: "Me", role: role, passwordHash: "x", createdAt: Date())
        return Principal(credential: .session(id: "ses_1", viaCookie: false), role: role, user: user, tenantID: tenant)
    }

    @Test("every action has a row, and every role a cell")
    func complete() {
        #expect(Set(Self.matrix.map(\.0)) == Set(Action.allCases))
        for (_, cells) in Self.matrix { #expect(Set(cells.keys) == Set(Role.allCases)) }
    }

    @Test("each cell grants exactly what the matrix says", arguments: Role.allCases)
    func cells(role: Role) throws {
        let me = principal(role)
        let home = ResourceOwner(tenantID: "ten_home")
        let elsewhere = ResourceOwner(tenantID: "ten_other")
        for (action, cells) in Self.matrix {
            let cell = try #require(cells[role])
            #expect(action.grant(to: role) == Self.grant(cell), "\(role) \(action)")
            switch cell {
            case "any":
                #expect((try? me.authorize(action, on: elsewhere)) != nil, "\(role) \(action) elsewhere")
                #expect((try? me.authorize(action, on: nil)) != nil, "\(role) \(action) on the platform")
            case "own", "mine":
                #expect((try? me.authorize(action, on: home)) != nil, "\(role) \(action) at home")
                #expect(throws: Denial.hidden) { try me.authorize(action, on: elsewhere) }
                #expect(throws: Denial.forbidden) { try me.authorize(action, on: nil) }
            default:
                #expect(throws: Denial.self) { try me.authorize(action, on: home) }
                if !role.isGlobal {
                    // Another tenant's is hidden, whatever the action.
                    #expect(throws: Denial.hidden) { try me.authorize(action, on: elsewhere) }
                } else {
                    #expect(throws: Denial.forbidden) { try me.authorize(action, on: elsewhere) }
                }
            }
        }
    }

    private static func grant(_ cell: String) -> Action.Grant {
        switch cell {
        case "any": .anyTenant
        case "own": .ownTenant
        case "mine": .ownResources
        default: .none
        }
    }

    @Test("an org user may revoke their own key, not a colleague's, and lists only their own")
    func ownKeys() throws {
        let me = principal(.orgUser)
        #expect(try me.authorize(.manageKeys, on: ResourceOwner(tenantID: "ten_home", owner: .user("usr_me"))))
        #expect(throws: Denial.forbidden) { try me.authorize(.manageKeys, on: ResourceOwner(tenantID: "ten_home", owner: .user("usr_colleague"))) }
        #expect(throws: Denial.forbidden) { try me.authorize(.manageKeys, on: ResourceOwner(tenantID: "ten_home", owner: .user(nil))) }
        // A listing of the tenant's keys is narrowed to the user's own.
        #expect(try me.authorize(.manageKeys, on: ResourceOwner(tenantID: "ten_home")))
        // An org admin sees every key of the org, narrowed to nothing.
        #expect(try !principal(.orgAdmin).authorize(.manageKeys, on: ResourceOwner(tenantID: "ten_home", owner: .user("usr_colleague"))))
    }

    @Test("the admin token is a system admin, which makes no tenant keys")
    func adminToken() {
        #expect(Principal.adminToken.role == .systemAdmin)
        #expect(Principal.adminToken.actorID == "admin-token")
        #expect(throws: Denial.forbidden) { try Principal.adminToken.authorize(.createKey, on: ResourceOwner(tenantID: "ten_home")) }
        #expect((try? Principal.adminToken.authorize(.manageKeys, on: ResourceOwner(tenantID: "ten_home", owner: .user("usr_x")))) != nil)
    }
}
