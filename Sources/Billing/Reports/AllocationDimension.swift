import Foundation

/// A column an allocation report can group by. Every dimension reads as text, so that rows
/// sort, and pages follow each other, in one order: the bytes of their values.
public enum AllocationDimension: String, Sendable, CaseIterable, Hashable {
    case tenant
    /// The tenant key the requests were sent with ('' for none).
    case key
    /// The user who owns the key ('' for keys made before users).
    case user
    /// The public model asked for.
    case model
    case deployment
    case provider
    /// The provider key that served the requests ('' for engines).
    case providerKey = "provider_key"
    /// The engine pool that served the requests ('' for external providers).
    case enginePool = "engine_pool"
    /// The HTTP status answered.
    case status
    /// The UTC day, `2026-11-23`.
    case day
    /// The UTC hour, `2026-11-23T10:00:00Z`.
    case hour

    /// The expression over a rollup table (hourly or daily) that yields the dimension's value as text.
    var sqlExpression: String {
        switch self {
        case .tenant: "tenant_id"
        case .key: "tenant_key_id"
        case .user: "user_id"
        case .model: "model"
        case .deployment: "deployment"
        case .provider: "provider"
        case .providerKey: "provider_key_id"
        case .enginePool: "engine_pool"
        case .status: "CAST(status AS TEXT)"
        case .day: "strftime('%Y-%m-%d', hour / 1000, 'unixepoch')"
        case .hour: "strftime('%Y-%m-%dT%H:00:00Z', hour / 1000, 'unixepoch')"
        }
    }

    /// Parses a comma-separated list such as `tenant,model`; `currency`, always a column,
    /// may be named and is skipped.
    /// - Throws: `ReportError` naming `group_by` for an unknown or repeated dimension.
    public static func parseList(_ text: String) throws(ReportError) -> [AllocationDimension] {
        var dimensions: [AllocationDimension] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let name = part.trimmingCharacters(in: .whitespaces)
            if name.isEmpty || name == "currency" { continue }
            guard let dimension = AllocationDimension(rawValue: name) else {
                let known = allCases.map(\.rawValue).joined(separator: ", ")
                throw ReportError(.invalidGroupBy, parameter: "group_by", "'group_by' names '\(name.prefix(64))'; it takes a comma-separated list of \(known).")
            }
            guard !dimensions.contains(dimension) else {
                throw ReportError(.invalidGroupBy, parameter: "group_by", "'group_by' names '\(name)' twice.")
            }
            dimensions.append(dimension)
        }
        return dimensions
    }
}
