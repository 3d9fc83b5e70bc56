/// What a budget, a running total or an alert is about.
public enum BudgetScope: Sendable, Hashable, CustomStringConvertible {
    /// A tenant, by tenant id: all its keys together.
    case tenant(String)
    /// One tenant key, by key id.
    case key(String)
    /// The tier quota of a tenant, by tenant id; its period is always the month.
    case quota(String)

    /// The kind as the ledger stores it: `tenant`, `key` or `quota`.
    public var kind: String {
        switch self {
        case .tenant: "tenant"
        case .key: "key"
        case .quota: "quota"
        }
    }

    /// The tenant id or key id the scope names.
    public var id: String {
        switch self {
        case .tenant(let id), .key(let id), .quota(let id): id
        }
    }

    /// The scope stored as `kind` and `id`, or nil for an unknown kind.
    public init?(kind: String, id: String) {
        switch kind {
        case "tenant": self = .tenant(id)
        case "key": self = .key(id)
        case "quota": self = .quota(id)
        default: return nil
        }
    }

    /// `kind:id`, for logs.
    public var description: String { "\(kind):\(id)" }
}
