import Providers

/// An inference request's route, read from its request target: which operation, and the
/// tenant named by `/tenants/{tenant}/v1/...`. Only the exact forms are matched; anything
/// else (percent-encoding, extra slashes) is left to the router, which answers as before.
struct InferenceRoute: Equatable, Sendable {
    var endpoint: InferenceEndpoint
    /// The `{tenant}` of a tenant-scoped path.
    var tenant: String?
    /// The path without its query, as error messages name it.
    var path: Substring

    init?(target: String) {
        let path = target.firstIndex(of: "?").map { target[..<$0] } ?? target[...]
        var rest = path
        if rest.hasPrefix("/tenants/") {
            rest = rest.dropFirst(9)
            guard let slash = rest.firstIndex(of: "/") else { return nil }
            let tenant = rest[..<slash]
            guard !tenant.isEmpty, !tenant.contains("%") else { return nil }
            self.tenant = String(tenant)
            rest = rest[slash...]
        } else {
            self.tenant = nil
        }
        guard rest.hasPrefix("/v1/"), let endpoint = InferenceEndpoint(rawValue: String(rest.dropFirst(4))) else { return nil }
        self.endpoint = endpoint
        self.path = path
    }
}
