extension Topology {
    /// Which of a model's deployments can serve it now, and why the others cannot.
    public struct ModelServability: Sendable, Equatable {
        /// Why a deployment cannot serve.
        public enum Reason: Sendable, Equatable {
            /// The provider's key pool is empty; `variable` is the environment variable
            /// that would have given it a key, when one is configured and unset.
            case noProviderKey(provider: String, variable: String?)
            /// The engine pool has no replica that can take a request.
            case noReplica(pool: String)
        }

        /// A deployment that cannot serve, and why.
        public struct Unavailable: Sendable, Equatable {
            public var deployment: String
            public var reason: Reason
        }

        public var model: String
        /// The deployments that can serve the model, most preferred first.
        public var serving: [String]
        /// The deployments that cannot, most preferred first.
        public var unavailable: [Unavailable]

        /// Whether any deployment can serve the model.
        public var isServed: Bool { !serving.isEmpty }
    }

    /// Every model's deployments split by `isServable`, the test requests are routed by.
    public func servability(isServable: (Deployment) -> Bool) -> [ModelServability] {
        let missingVariables = Dictionary(keylessProviders.map { ($0.id, $0.missingVariable) }, uniquingKeysWith: { first, _ in first })
        return routes.models.map { model in
            var servability = ModelServability(model: model, serving: [], unavailable: [])
            for id in routes.deployments(for: model) ?? [] {
                guard let deployment = deployments[id] else { continue }
                if isServable(deployment) {
                    servability.serving.append(id)
                } else if let pool = deployment.enginePool {
                    servability.unavailable.append(.init(deployment: id, reason: .noReplica(pool: pool.name)))
                } else {
                    let reason = ModelServability.Reason.noProviderKey(
                        provider: deployment.providerID, variable: missingVariables[deployment.providerID]
                    )
                    servability.unavailable.append(.init(deployment: id, reason: reason))
                }
            }
            return servability
        }
    }
}
