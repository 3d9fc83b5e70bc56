import Directory
import Billing
import Foundation
import Pools

/// The JSON shapes of the management API.
enum AdminResources {
    struct TenantBody: Codable, Sendable {
        var id: String
        var name: String
        var tier: String
        var createdAt: Date
        /// The contract's limits in force: the tier's, with the tenant's overrides.
        var limits: TenantLimitsBody
        /// The tenant's own limits; null fields take the tier's.
        var limitOverrides: TenantLimitsBody
        /// Public model -> the deployment that must serve it.
        var pinning: [String: String]

        init(_ tenant: Tenant, contract: Contract) {
            self.id = tenant.id
            self.name = tenant.name
            self.tier = tenant.tier
            self.createdAt = tenant.createdAt
            self.limits = TenantLimitsBody(contract.limits)
            self.limitOverrides = TenantLimitsBody(tenant.limitOverrides)
            self.pinning = tenant.pinning
        }
    }

    struct CreateTenant: Decodable, Sendable {
        var name: String
        var tier: String
    }

    struct CreateKey: Decodable, Sendable {
        var name: String
        var expiresAt: Date?
    }

    /// A tenant key without its secret.
    struct KeyBody: Codable, Sendable {
        var id: String
        var tenantId: String
        var name: String
        var prefix: String
        var status: String
        var createdAt: Date
        var expiresAt: Date?
        var revokedAt: Date?
        var lastUsedAt: Date?
        /// The user who owns the key; null for keys made before users existed.
        var userId: String?

        init(_ key: TenantKeyRecord, now: Date = Date()) {
            self.id = key.id
            self.tenantId = key.tenantID
            self.userId = key.userID
            self.name = key.name
            self.prefix = key.prefix
            self.status = key.revokedAt != nil ? "revoked" : (key.isUsable(at: now) ? "active" : "expired")
            self.createdAt = key.createdAt
            self.expiresAt = key.expiresAt
            self.revokedAt = key.revokedAt
            self.lastUsedAt = key.lastUsedAt
        }
    }

    /// A new key: the only answer that ever carries the secret.
    struct CreatedKeyBody: Codable, Sendable {
        var id: String
        var tenantId: String
        var name: String
        var prefix: String
        var key: String
        var createdAt: Date
        var expiresAt: Date?
        var userId: String?
    }

    struct UsageGroupBody: Codable, Sendable {
        var group: String
        var currency: String
        var requests: Int
        var promptTokens: Int
        var cachedTokens: Int
        var completionTokens: Int
        var costMicros: Int64
        /// The cost as a decimal string in `currency`, e.g. "0.001234".
        var cost: String
        /// What the tenants are billed beyond their tiers' quotas: overage.
        var billedMicros: Int64
        /// Billed minus cost.
        var marginMicros: Int64
        var estimatedRequests: Int

        init(_ row: UsageSummaryRow) {
            self.group = row.group
            self.currency = row.currency
            self.requests = row.requests
            self.promptTokens = row.promptTokens
            self.cachedTokens = row.cachedTokens
            self.completionTokens = row.completionTokens
            self.costMicros = row.costMicros
            self.cost = Self.decimal(micros: row.costMicros)
            self.billedMicros = row.billedMicros
            self.marginMicros = row.marginMicros
            self.estimatedRequests = row.estimatedRequests
        }

        static func decimal(micros: Int64) -> String {
            let sign = micros < 0 ? "-" : ""
            let magnitude = micros.magnitude
            let fraction = String(magnitude % 1_000_000)
            return "\(sign)\(magnitude / 1_000_000).\(String(repeating: "0", count: 6 - fraction.count))\(fraction)"
        }
    }

    struct UsageBody: Codable, Sendable {
        var object = "usage_report"
        var tenant: String?
        var from: Date?
        var to: Date?
        var groupBy: String
        var data: [UsageGroupBody]
    }

    struct ListBody<Item: Codable & Sendable>: Codable, Sendable {
        var object = "list"
        var data: [Item]
    }

    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }

    static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        // RFC 3339 only, every field in range: the parser alone would roll 2030-02-30 over
        // into March, and ignore what trails the time.
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }), AdminController.fieldsAreInRange(text),
                  let date = try? Date(text, strategy: .iso8601)
            else {
                throw DecodingError.dataCorruptedError(
                    in: container, debugDescription: "Expected an RFC 3339 time such as 2026-11-23T10:00:00Z."
                )
            }
            return date
        }
        return decoder
    }
}
