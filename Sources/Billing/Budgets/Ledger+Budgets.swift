import Foundation
import GRDB

extension Ledger {
    // MARK: Budgets

    /// Sets the budget of a tenant or tenant key, replacing any (its creation time stays).
    ///
    /// In the same transaction the scope's total for the current period is summed afresh
    /// from the usage events, so a budget set mid-period counts what was already spent, and
    /// the period's threshold and limit alerts are re-armed for the new limits. Points
    /// already behind the usage raise no alert. Changing the period drops the totals kept
    /// for the old one.
    /// - Parameters:
    ///   - budget: the budget; its times are ignored.
    ///   - now: the time of the change, which also picks the current period.
    /// - Returns: the budget as stored, thresholds sorted and unique.
    ///   The caller has checked that a key budget's key belongs to `budget.tenantID`.
    /// - Throws: `LedgerError` `.tenantNotFound`, or `.invalidBudget`.
    public func setBudget(_ budget: Budget, now: Date = Date()) async throws -> Budget {
        try await pool.write { db in try Self.setBudget(budget, now: now, in: db) }
    }

    /// `setBudget(_:now:)` within the caller's transaction (one that also records the
    /// change in the audit log, say).
    public static func setBudget(_ budget: Budget, now: Date, in db: GRDB.Database) throws -> Budget {
        var budget = try budget.validated()
        let now = now.roundedToLedgerMilliseconds
        let existing = try fetchBudget(budget.scope, in: db)
        budget.createdAt = existing?.createdAt ?? now
        budget.updatedAt = now
        try LedgerError.mappingUnknownTenant { try BudgetRow(budget).save(db) }

        let scope: StatementArguments = [budget.scope.kind, budget.scope.id]
        if let existing, existing.period != budget.period {
            // Period starts of different lengths coincide (1 December is a day, a week and a month).
            try db.execute(sql: "DELETE FROM budget_usage WHERE scope_kind = ? AND scope_id = ?", arguments: scope)
        }
        let current = budget.period.interval(containing: now)
        let used = try BudgetTally.summedUsage(of: budget.scope, tenantID: budget.tenantID, in: current, db)
        try BudgetTally.store(used, of: budget.scope, periodStart: current.start, in: db)
        // Usage only grows, so a point already behind it cannot be crossed again:
        // forgetting the period's alerts re-arms only the points still ahead.
        try db.execute(
            sql: """
                DELETE FROM budget_crossings
                WHERE scope_kind = ? AND scope_id = ? AND period_start = ? AND event IN (?, ?)
                """,
            arguments: scope + [current.start.ledgerMilliseconds, BudgetAlert.thresholdReached.rawValue, BudgetAlert.exceeded.rawValue]
        )
        return budget
    }

    /// The budget of a tenant or tenant key, or nil.
    public func budget(_ scope: BudgetScope) async throws -> Budget? {
        try await pool.read { db in try Self.fetchBudget(scope, in: db) }
    }

    /// The budgets of a tenant and of one of its keys, read together for the admission of
    /// a request.
    /// - Parameters:
    ///   - tenantID: the tenant.
    ///   - keyID: the tenant key, or nil to read the tenant's budget only.
    public func budgets(tenantID: String, keyID: String?) async throws -> (tenant: Budget?, key: Budget?) {
        try await pool.read { db in
            let rows = try BudgetRow.fetchAll(
                db,
                sql: """
                    SELECT * FROM budgets
                    WHERE (scope_kind = 'tenant' AND scope_id = ?) OR (scope_kind = 'key' AND scope_id = ?)
                    """,
                arguments: [tenantID, keyID]
            )
            let budgets = try rows.map { try $0.budget() }
            return (
                budgets.first { $0.scope == .tenant(tenantID) },
                keyID.flatMap { keyID in budgets.first { $0.scope == .key(keyID) } }
            )
        }
    }

    /// The budgets of a tenant: its own first, then its keys' in key order.
    public func budgets(tenantID: String) async throws -> [Budget] {
        try await pool.read { db in
            try BudgetRow.fetchAll(
                db,
                sql: "SELECT * FROM budgets WHERE tenant_id = ? ORDER BY scope_kind DESC, scope_id",
                arguments: [tenantID]
            ).map { try $0.budget() }
        }
    }

    /// Removes the budget of a tenant or tenant key, with the totals kept for it (they
    /// would go stale while no budget keeps them); its recorded alerts stay.
    /// - Returns: whether there was one.
    public func clearBudget(_ scope: BudgetScope) async throws -> Bool {
        try await pool.write { db in try Self.clearBudget(scope, in: db) }
    }

    /// `clearBudget(_:)` within the caller's transaction.
    public static func clearBudget(_ scope: BudgetScope, in db: GRDB.Database) throws -> Bool {
        let arguments: StatementArguments = [scope.kind, scope.id]
        try db.execute(sql: "DELETE FROM budgets WHERE scope_kind = ? AND scope_id = ?", arguments: arguments)
        let removed = db.changesCount == 1
        if removed {
            try db.execute(sql: "DELETE FROM budget_usage WHERE scope_kind = ? AND scope_id = ?", arguments: arguments)
        }
        return removed
    }

    // MARK: Usage against budgets

    /// What a scope used in `period`, as the ledger knows it: the running total when one is
    /// kept for exactly that period, else the sum of the usage events (a tenant's for
    /// `.tenant` and `.quota`, a key's for `.key`). Reads only; the admission store rebuilds
    /// its counters from it after a restart or a flush.
    /// - Parameters:
    ///   - scope: the tenant, key or tier quota.
    ///   - period: usually `BudgetPeriod.interval(containing:)` of the budget's period.
    public func budgetUsage(_ scope: BudgetScope, period: DateInterval) async throws -> BudgetUsage {
        try await pool.read { db in
            let kept: BudgetPeriod? = switch scope {
            case .quota: .month
            case .tenant, .key: try Self.fetchBudget(scope, in: db)?.period
            }
            if let kept, kept.interval(containing: period.start) == period,
               let row = try Row.fetchOne(
                   db,
                   sql: "SELECT used_tokens, used_micros FROM budget_usage WHERE scope_kind = ? AND scope_id = ? AND period_start = ?",
                   arguments: [scope.kind, scope.id, period.start.ledgerMilliseconds]
               ) {
                return BudgetUsage(tokens: row[0], micros: row[1])
            }
            let tenantID: String? = switch scope {
            case .tenant(let id), .quota(let id): id
            // The key's tenant, as its budget records it, narrows the sum to the tenant's events.
            case .key: try Self.fetchBudget(scope, in: db)?.tenantID
            }
            return try BudgetTally.summedUsage(of: scope, tenantID: tenantID, in: period, db)
        }
    }

    /// Records a `budget.reset` for every budget whose current period (the one containing
    /// `now`) began after the budget was created, and delivers each new one to the
    /// tenant's subscribed webhooks. Run it periodically; it is idempotent. The payload's
    /// usage is the period's so far: zero unless requests were recorded before it ran.
    /// - Returns: how many resets were newly recorded.
    public func rollOverBudgets(now: Date = Date()) async throws -> Int {
        try await pool.write { db in
            var tally = BudgetTally(now: now)
            var recorded = 0
            for row in try BudgetRow.fetchAll(db) {
                let budget = try row.budget()
                let current = budget.period.interval(containing: now)
                guard budget.createdAt < current.start else { continue }
                // Zero unless requests of the new period were recorded before this ran.
                let used = try Row.fetchOne(
                    db,
                    sql: "SELECT used_tokens, used_micros FROM budget_usage WHERE scope_kind = ? AND scope_id = ? AND period_start = ?",
                    arguments: [budget.scope.kind, budget.scope.id, current.start.ledgerMilliseconds]
                ).map { BudgetUsage(tokens: $0[0], micros: $0[1]) } ?? .zero
                let reset = BudgetCrossing(
                    alert: .reset, scope: budget.scope, tenantID: budget.tenantID, period: budget.period, interval: current,
                    limitTokens: budget.limitTokens, limitMicros: budget.limitMicros, used: used
                )
                if try tally.record(reset, in: db) { recorded += 1 }
            }
            return recorded
        }
    }

    // MARK: Rows

    static func fetchBudget(_ scope: BudgetScope, in db: GRDB.Database) throws -> Budget? {
        try BudgetRow.fetchOne(
            db,
            sql: "SELECT * FROM budgets WHERE scope_kind = ? AND scope_id = ?",
            arguments: [scope.kind, scope.id]
        )?.budget()
    }
}
