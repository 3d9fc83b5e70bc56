/// Which deployments can serve each public model, in order of preference.
public struct RouteTable: Sendable {
    private let routes: [String: [String]]

    /// - Parameter routes: public model name -> deployment names, most preferred first.
    public init(_ routes: [String: [String]]) {
        self.routes = routes
    }

    /// The public model names, sorted.
    public var models: [String] { routes.keys.sorted() }

    /// The deployments that may serve `model`, most preferred first; nil for an unknown model.
    public func deployments(for model: String) -> [String]? {
        routes[model]
    }
}
