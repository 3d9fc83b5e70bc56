import Foundation
import GRDB

/// What a budget does once its limit is reached (the proxy enforces it).
public enum BudgetAction: String, Sendable, Codable, CaseIterable {
    /// Refuses requests until the period ends.
    case block
    /// Admits requests at a reduced rate until the period ends.
    case throttle
}

/// A spending limit on a tenant or one of its keys, per calendar period in UTC.
public struct Budget: Sendable, Equatable {
    /// `.tenant` or `.key`; the tier quota is not a budget.
    public var scope: BudgetScope
    /// The tenant the budget (or its key) belongs to.
    public var tenantID: String
    /// The calendar period the limits apply to.
    public var period: BudgetPeriod
    /// Most tokens per period (prompt and completion); nil for no token limit, 0 to allow none.
    public var limitTokens: Int?
    /// Most cost per period in micro-units; nil for no cost limit.
    public var limitMicros: Int64?
    /// Fractions of the limits that alert when usage passes them: sorted ascending,
    /// unique, each `0 < t < 1`, to a millionth.
    public var softThresholds: [Double]
    /// What the proxy does once a limit is reached.
    public var action: BudgetAction
    /// When the budget was first set; kept when it is set again.
    public var createdAt: Date
    /// When the budget was last set.
    public var updatedAt: Date

    /// A budget; `setBudget` validates it and sets its times.
    public init(
        scope: BudgetScope,
        tenantID: String,
        period: BudgetPeriod,
        limitTokens: Int? = nil,
        limitMicros: Int64? = nil,
        softThresholds: [Double] = [],
        action: BudgetAction = .block,
        createdAt: Date = Date(),
        updatedAt: Date = Date()
    ) {
        self.scope = scope
        self.tenantID = tenantID
        self.period = period
        self.limitTokens = limitTokens
        self.limitMicros = limitMicros
        self.softThresholds = softThresholds
        self.action = action
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// The budget with its thresholds sorted and unique.
    /// - Throws: `LedgerError` `.invalidBudget` for a quota scope, a tenant scope naming
    ///   another tenant, no limit, a negative limit, or a threshold outside `(0, 1)`.
    func validated() throws -> Budget {
        switch scope {
        case .tenant(let id) where id != tenantID:
            throw LedgerError.invalidBudget("a tenant budget's scope names its own tenant")
        case .quota:
            throw LedgerError.invalidBudget("a budget is on a tenant or a tenant key")
        case .tenant, .key:
            break
        }
        guard limitTokens != nil || limitMicros != nil else {
            throw LedgerError.invalidBudget("a budget limits tokens, cost or both")
        }
        guard (limitTokens ?? 0) >= 0, (limitMicros ?? 0) >= 0 else {
            throw LedgerError.invalidBudget("a budget's limits are not negative")
        }
        guard softThresholds.allSatisfy({ $0 > 0 && $0 < 1 }) else {
            throw LedgerError.invalidBudget("soft thresholds are fractions between 0 and 1")
        }
        var budget = self
        budget.softThresholds = Array(Set(softThresholds)).sorted()
        return budget
    }

    // MARK: Alerts

    /// The alerts usage growing from `before` to `after` within one period raises: each
    /// soft threshold it passes (on either limit, once), then `exceeded` if it reaches a limit.
    func alerts(from before: BudgetUsage, to after: BudgetUsage) -> [(alert: BudgetAlert, threshold: Double)] {
        let tokens = (Int64(before.tokens), Int64(after.tokens), limitTokens.map(Int64.init))
        let micros = (before.micros, after.micros, limitMicros)
        func passes(_ fraction: Double?) -> Bool {
            [tokens, micros].contains { before, after, limit in
                guard let limit else { return false }
                let point = fraction.map { Self.point($0, of: limit) } ?? limit
                return before < point && point <= after
            }
        }
        var alerts = softThresholds.filter(passes).map { (alert: BudgetAlert.thresholdReached, threshold: $0) }
        if passes(nil) { alerts.append((.exceeded, 0)) }
        return alerts
    }

    /// The least whole amount at or above `fraction` of `limit`, with the fraction taken
    /// to a millionth and computed in integers, so 0.7 of 100 is 70 and not 71.
    static func point(_ fraction: Double, of limit: Int64) -> Int64 {
        let millionths = Int64((fraction * 1_000_000).rounded())
        let (whole, rest) = limit.quotientAndRemainder(dividingBy: 1_000_000)
        // whole < 2^63 / 10^6 and millionths < 10^6, so neither product overflows.
        let (carried, remainder) = (rest * millionths).quotientAndRemainder(dividingBy: 1_000_000)
        return whole * millionths + carried + (remainder > 0 ? 1 : 0)
    }
}

/// A row of `budgets`.
struct BudgetRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "budgets"

    var scopeKind: String
    var scopeID: String
    var tenantID: String
    var period: String
    var limitTokens: Int?
    var limitMicros: Int64?
    var softThresholds: String
    var action: String
    var createdAt: Int64
    var updatedAt: Int64

    enum CodingKeys: String, CodingKey {
        case scopeKind = "scope_kind", scopeID = "scope_id", tenantID = "tenant_id", period
        case limitTokens = "limit_tokens", limitMicros = "limit_micros", softThresholds = "soft_thresholds", action
        case createdAt = "created_at", updatedAt = "updated_at"
    }

    init(_ budget: Budget) throws {
        scopeKind = budget.scope.kind
        scopeID = budget.scope.id
        tenantID = budget.tenantID
        period = budget.period.rawValue
        limitTokens = budget.limitTokens
        limitMicros = budget.limitMicros
        softThresholds = String(decoding: try JSONEncoder().encode(budget.softThresholds), as: UTF8.self)
        action = budget.action.rawValue
        createdAt = budget.createdAt.ledgerMilliseconds
        updatedAt = budget.updatedAt.ledgerMilliseconds
    }

    func budget() throws -> Budget {
        guard let scope = BudgetScope(kind: scopeKind, id: scopeID),
              let period = BudgetPeriod(rawValue: period),
              let action = BudgetAction(rawValue: action)
        else {
            throw DatabaseError(message: "budget \(scopeKind):\(scopeID) has an unknown scope, period or action")
        }
        return Budget(
            scope: scope,
            tenantID: tenantID,
            period: period,
            limitTokens: limitTokens,
            limitMicros: limitMicros,
            softThresholds: try JSONDecoder().decode([Double].self, from: Data(softThresholds.utf8)),
            action: action,
            createdAt: Date(ledgerMilliseconds: createdAt),
            updatedAt: Date(ledgerMilliseconds: updatedAt)
        )
    }
}
