import Foundation
import GRDB

/// The running totals, billed amounts and alerts of one write transaction. What several
/// events of a batch need (their budgets, their tenant's webhooks) is read once.
struct BudgetTally {
    /// The time crossings and deliveries are recorded at.
    let now: Date
    private var budgets: [BudgetScope: Budget?] = [:]
    private var webhooks: [String: [WebhookRecord]] = [:]

    /// A running total of one scope and period, as this transaction has it.
    private struct TotalKey: Hashable {
        var scope: BudgetScope
        var periodStart: Int64
    }

    /// The totals read (or made) so far, nil for one the table does not have; each is read
    /// once per transaction and written back by ``write(in:)`` when changed.
    private var totals: [TotalKey: BudgetUsage?] = [:]
    private var changed: Set<TotalKey> = []
    /// The last period of each kind worked out: the events of a batch nearly always fall
    /// in the same day, week and month, and the calendar is slow to ask.
    private var periods: [BudgetPeriod: DateInterval] = [:]

    private mutating func period(_ kind: BudgetPeriod, containing date: Date) -> DateInterval {
        if let known = periods[kind], known.start <= date, date < known.end { return known }
        let interval = kind.interval(containing: date)
        periods[kind] = interval
        return interval
    }

    init(now: Date) {
        self.now = now.roundedToLedgerMilliseconds
    }

    // MARK: Usage events

    /// Adds an event just inserted into `usage_events` to the running totals of its tier
    /// quota and its budgets, and records the alerts it raises.
    /// - Returns: what the tenant is billed for it, nil when it carries no terms.
    mutating func meter(_ event: UsageEvent, in db: Database) throws -> Int64? {
        let (tokens, overflow) = event.promptTokens.addingReportingOverflow(event.completionTokens)
        let use = BudgetUsage(tokens: overflow ? .max : tokens, micros: event.costMicros)
        let billed = try meterQuota(event, use: use, in: db)
        var scopes = [BudgetScope.tenant(event.tenantID)]
        if let keyID = event.tenantKeyID { scopes.append(.key(keyID)) }
        for scope in scopes {
            guard let budget = try budget(scope, in: db) else { continue }
            let interval = period(budget.period, containing: event.startedAt.roundedToLedgerMilliseconds)
            guard let (before, after) = try add(use, to: scope, tenantID: budget.tenantID, interval: interval, seeding: true, in: db) else {
                continue
            }
            for (alert, threshold) in budget.alerts(from: before, to: after) {
                let crossing = BudgetCrossing(
                    alert: alert, scope: scope, tenantID: budget.tenantID, period: budget.period, interval: interval,
                    threshold: threshold, limitTokens: budget.limitTokens, limitMicros: budget.limitMicros, used: after
                )
                try record(crossing, in: db)
            }
        }
        return billed
    }

    private mutating func meterQuota(_ event: UsageEvent, use: BudgetUsage, in db: Database) throws -> Int64? {
        let scope = BudgetScope.quota(event.tenantID)
        let month = period(.month, containing: event.startedAt.roundedToLedgerMilliseconds)
        guard let terms = event.terms else {
            // Counted all the same where a total exists, so it stays the sum `budgetUsage`
            // would compute when the tenant's events of a month carry terms only in part.
            _ = try add(use, to: scope, tenantID: event.tenantID, interval: month, seeding: false, in: db)
            return nil
        }
        guard let (before, after) = try add(use, to: scope, tenantID: event.tenantID, interval: month, seeding: true, in: db) else {
            return nil
        }
        if let quota = terms.monthlyQuotaTokens, before.tokens < quota, quota <= after.tokens {
            let crossing = BudgetCrossing(
                alert: .quotaExhausted, scope: scope, tenantID: event.tenantID, period: .month, interval: month,
                limitTokens: quota, limitMicros: nil, used: after
            )
            try record(crossing, in: db)
        }
        return terms.billedMicros(tokens: use.tokens, before: before.tokens, currency: event.currency)
    }

    // MARK: Running totals

    /// Adds `use` to a scope's total for the period starting `interval.start`.
    ///
    /// A missing total is made (with `seeding`) from the events of the period in
    /// `usage_events`, which already hold the one being added: usually that one alone, as
    /// the first of its period, but also any that arrived while no total was kept.
    /// - Returns: the total before and after, or nil when there is none and `seeding` is off.
    private mutating func add(
        _ use: BudgetUsage,
        to scope: BudgetScope,
        tenantID: String,
        interval: DateInterval,
        seeding: Bool,
        in db: Database
    ) throws -> (before: BudgetUsage, after: BudgetUsage)? {
        let key = TotalKey(scope: scope, periodStart: interval.start.ledgerMilliseconds)
        let known: BudgetUsage?
        if let cached = totals[key] {
            known = cached
        } else {
            let read = try db.cachedStatement(sql: """
                SELECT used_tokens, used_micros FROM budget_usage
                WHERE scope_kind = ? AND scope_id = ? AND period_start = ?
                """)
            known = try Row.fetchOne(read, arguments: [scope.kind, scope.id, key.periodStart])
                .map { BudgetUsage(tokens: $0[0], micros: $0[1]) }
            totals[key] = .some(known)
        }
        if let before = known {
            let after = before.adding(use)
            totals[key] = .some(after)
            changed.insert(key)
            return (before, after)
        }
        guard seeding else { return nil }
        let after = try Self.summedUsage(of: scope, tenantID: tenantID, in: interval, db)
        totals[key] = .some(after)
        changed.insert(key)
        return (after.subtracting(use), after)
    }

    /// Writes back the totals this transaction changed.
    func write(in db: Database) throws {
        for key in changed {
            guard let total = totals[key], let total else { continue }
            try Self.store(total, of: key.scope, periodStart: Date(ledgerMilliseconds: key.periodStart), in: db)
        }
    }

    /// Writes a scope's total for the period starting `periodStart`, replacing any.
    static func store(_ usage: BudgetUsage, of scope: BudgetScope, periodStart: Date, in db: Database) throws {
        let write = try db.cachedStatement(sql: """
            INSERT OR REPLACE INTO budget_usage (scope_kind, scope_id, period_start, used_tokens, used_micros)
            VALUES (?, ?, ?, ?, ?)
            """)
        try write.execute(arguments: [scope.kind, scope.id, periodStart.ledgerMilliseconds, usage.tokens, usage.micros])
    }

    /// The usage of a scope over `interval`, summed from `usage_events`. A key's events are
    /// found through its tenant's time index when `tenantID` is known.
    static func summedUsage(of scope: BudgetScope, tenantID: String?, in interval: DateInterval, _ db: Database) throws -> BudgetUsage {
        let sums = "coalesce(sum(prompt_tokens + completion_tokens), 0), coalesce(sum(cost_micros), 0)"
        let range: StatementArguments = [interval.start.ledgerMilliseconds, interval.end.ledgerMilliseconds]
        let statement: Statement
        let arguments: StatementArguments
        switch (scope, tenantID) {
        case (.tenant(let id), _), (.quota(let id), _):
            statement = try db.cachedStatement(sql: """
                SELECT \(sums) FROM usage_events WHERE tenant_id = ? AND started_at >= ? AND started_at < ?
                """)
            arguments = [id] + range
        case (.key(let id), let tenantID?):
            statement = try db.cachedStatement(sql: """
                SELECT \(sums) FROM usage_events
                WHERE tenant_id = ? AND tenant_key_id = ? AND started_at >= ? AND started_at < ?
                """)
            arguments = [tenantID, id] + range
        case (.key(let id), nil):
            statement = try db.cachedStatement(sql: """
                SELECT \(sums) FROM usage_events WHERE tenant_key_id = ? AND started_at >= ? AND started_at < ?
                """)
            arguments = [id] + range
        }
        guard let row = try Row.fetchOne(statement, arguments: arguments) else { return .zero }
        return BudgetUsage(tokens: row[0], micros: row[1])
    }

    // MARK: Alerts

    /// Records `crossing` unless it was recorded before; a new one is delivered to every
    /// webhook of its tenant that subscribes to its alert, in the same transaction, so no
    /// alert is recorded without its deliveries nor delivered twice.
    /// - Returns: whether the crossing was new.
    @discardableResult
    mutating func record(_ crossing: BudgetCrossing, in db: Database) throws -> Bool {
        let insert = try db.cachedStatement(sql: """
            INSERT OR IGNORE INTO budget_crossings (scope_kind, scope_id, period_start, event, threshold, created_at)
            VALUES (?, ?, ?, ?, ?, ?)
            """)
        try insert.execute(arguments: [
            crossing.scope.kind, crossing.scope.id, crossing.interval.start.ledgerMilliseconds,
            crossing.alert.rawValue, crossing.threshold, now.ledgerMilliseconds,
        ])
        guard db.changesCount == 1 else { return false }
        for webhook in try webhooks(of: crossing.tenantID, in: db) where webhook.subscribes(to: crossing.alert) {
            // 122 random bits; the id also goes out in the payload, for receivers to de-duplicate.
            let id = "dlv_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
            let delivery = WebhookDeliveryRow(
                id: id,
                webhookID: webhook.id,
                tenantID: crossing.tenantID,
                event: crossing.alert.rawValue,
                payload: try crossing.payload(deliveryID: id, now: now),
                createdAt: now.ledgerMilliseconds,
                nextAttemptAt: now.ledgerMilliseconds
            )
            try delivery.insert(db)
        }
        return true
    }

    // MARK: Reads, once per transaction

    private mutating func budget(_ scope: BudgetScope, in db: Database) throws -> Budget? {
        if let known = budgets[scope] { return known }
        let statement = try db.cachedStatement(sql: "SELECT * FROM budgets WHERE scope_kind = ? AND scope_id = ?")
        let budget = try BudgetRow.fetchOne(statement, arguments: [scope.kind, scope.id])?.budget()
        budgets[scope] = .some(budget)
        return budget
    }

    private mutating func webhooks(of tenantID: String, in db: Database) throws -> [WebhookRecord] {
        if let known = webhooks[tenantID] { return known }
        let statement = try db.cachedStatement(sql: "SELECT * FROM webhooks WHERE tenant_id = ? ORDER BY created_at, id")
        let found = try WebhookRow.fetchAll(statement, arguments: [tenantID]).map { try $0.webhook() }
        webhooks[tenantID] = found
        return found
    }
}
