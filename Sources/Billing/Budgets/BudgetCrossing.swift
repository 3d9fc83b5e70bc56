import Foundation

/// One alert a scope raised in one period: a row of `budget_crossings`, and the `data` of
/// the payload every subscribed webhook receives about it.
struct BudgetCrossing: Sendable, Equatable {
    var alert: BudgetAlert
    var scope: BudgetScope
    var tenantID: String
    var period: BudgetPeriod
    var interval: DateInterval
    /// The soft threshold passed; 0 for the other alerts, as the table stores them.
    var threshold: Double = 0
    var limitTokens: Int?
    var limitMicros: Int64?
    /// The scope's usage in the period once the alert was raised.
    var used: BudgetUsage

    /// The JSON body of the delivery `deliveryID`: compact, keys sorted, nulls written out.
    func payload(deliveryID: String, now: Date) throws -> String {
        let body = Body(created: Int64(now.timeIntervalSince1970.rounded(.down)), data: self, id: deliveryID, tenantID: tenantID, type: alert.rawValue)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(body), as: UTF8.self)
    }

    private struct Body: Encodable {
        var created: Int64
        var data: BudgetCrossing
        var id: String
        var tenantID: String
        var type: String

        enum CodingKeys: String, CodingKey {
            case created, data, id, tenantID = "tenant_id", type
        }
    }
}

extension BudgetCrossing: Encodable {
    private enum CodingKeys: String, CodingKey {
        case keyID = "key_id", limitMicros = "limit_micros", limitTokens = "limit_tokens", period
        case periodStart = "period_start", resetsAt = "resets_at", scope, threshold
        case usedMicros = "used_micros", usedTokens = "used_tokens"
    }

    /// The payload's `data`: every key always present, so receivers see one shape; `key_id`
    /// is null unless the scope is a key, `threshold` null unless a soft threshold was passed.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        let keyID: String? = if case .key(let id) = scope { id } else { nil }
        try container.encode(keyID, forKey: .keyID)
        try container.encode(limitMicros, forKey: .limitMicros)
        try container.encode(limitTokens, forKey: .limitTokens)
        try container.encode(period.rawValue, forKey: .period)
        try container.encode(interval.start.formatted(.iso8601), forKey: .periodStart)
        try container.encode(interval.end.formatted(.iso8601), forKey: .resetsAt)
        try container.encode(scope.kind, forKey: .scope)
        try container.encode(alert == .thresholdReached ? threshold : nil, forKey: .threshold)
        try container.encode(used.micros, forKey: .usedMicros)
        try container.encode(used.tokens, forKey: .usedTokens)
    }
}
