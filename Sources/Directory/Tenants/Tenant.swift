import Foundation
import GRDB

/// A customer organisation.
public struct Tenant: Sendable, Equatable, Identifiable {
    public var id: String
    public var name: String
    public var tier: String
    public var createdAt: Date
    /// The tenant's own rate limits; empty when the tier's apply.
    public var limitOverrides: TenantLimitOverrides = TenantLimitOverrides()
    /// Public model -> the one deployment that must serve it (compliance pinning).
    public var pinning: [String: String] = [:]

    public init(
        id: String, name: String, tier: String, createdAt: Date,
        limitOverrides: TenantLimitOverrides = TenantLimitOverrides(), pinning: [String: String] = [:]
    ) {
        self.id = id
        self.name = name
        self.tier = tier
        self.createdAt = createdAt
        self.limitOverrides = limitOverrides
        self.pinning = pinning
    }
}

extension Tenant: FetchableRecord, PersistableRecord {
    public static let databaseTableName = "tenants"

    public enum Columns {
        public static let id = Column("id")
        public static let name = Column("name")
        public static let tier = Column("tier")
        public static let createdAt = Column("created_at")
        public static let requestsPerMinute = Column("requests_per_minute")
        public static let tokensPerMinute = Column("tokens_per_minute")
        public static let concurrentRequests = Column("concurrent_requests")
        public static let pinning = Column("pinning")
    }

    public init(row: Row) throws {
        self.init(
            id: row[Columns.id],
            name: row[Columns.name],
            tier: row[Columns.tier],
            createdAt: Date(millisecondsSince1970: row[Columns.createdAt]),
            limitOverrides: TenantLimitOverrides(
                requestsPerMinute: row[Columns.requestsPerMinute],
                tokensPerMinute: row[Columns.tokensPerMinute],
                concurrentRequests: row[Columns.concurrentRequests]
            ),
            pinning: Self.pinning(from: row[Columns.pinning])
        )
    }

    public func encode(to container: inout PersistenceContainer) throws {
        container[Columns.id] = id
        container[Columns.name] = name
        container[Columns.tier] = tier
        container[Columns.createdAt] = createdAt.millisecondsSince1970
        container[Columns.requestsPerMinute] = limitOverrides.requestsPerMinute
        container[Columns.tokensPerMinute] = limitOverrides.tokensPerMinute
        container[Columns.concurrentRequests] = limitOverrides.concurrentRequests
        container[Columns.pinning] = Self.pinningText(pinning)
    }

    /// The pinning column: sorted JSON, NULL for none.
    static func pinningText(_ pinning: [String: String]) -> String? {
        guard !pinning.isEmpty, let data = try? JSONSerialization.data(withJSONObject: pinning, options: [.sortedKeys]) else {
            return nil
        }
        return String(decoding: data, as: UTF8.self)
    }

    static func pinning(from text: String?) -> [String: String] {
        guard let text, let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: String] else {
            return [:]
        }
        return object
    }
}
