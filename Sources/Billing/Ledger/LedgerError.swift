import GRDB

/// Why a ledger write was refused.
public struct LedgerError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        case tenantNotFound
        /// A budget's scope, limits or thresholds are not ones a budget can have.
        case invalidBudget
        /// A webhook subscribes to no event, or to one that does not exist.
        case invalidWebhook
    }

    public var code: Code
    public var description: String

    static let tenantNotFound = LedgerError(code: .tenantNotFound, description: "no such tenant")
    static let invalidWebhook = LedgerError(
        code: .invalidWebhook,
        description: "a webhook subscribes to one or more of: \(BudgetAlert.allCases.map(\.rawValue).joined(separator: ", "))"
    )

    /// Runs a write whose row names its tenant, turning the foreign key's refusal of an
    /// unknown tenant into `.tenantNotFound`.
    static func mappingUnknownTenant<T>(_ write: () throws -> T) throws -> T {
        do {
            return try write()
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_FOREIGNKEY {
            throw tenantNotFound
        }
    }

    static func invalidBudget(_ reason: String) -> LedgerError {
        LedgerError(code: .invalidBudget, description: reason)
    }
}
