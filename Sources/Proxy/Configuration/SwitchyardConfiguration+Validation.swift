extension SwitchyardConfiguration {
    /// Checks that ids are unique and every reference names something that exists.
    func validateReferences() throws(ConfigurationError) {
        try requireUnique(providers.map(\.id), path: "$.providers", field: "id")
        try requireUnique(enginePools.map(\.id), path: "$.engine_pools", field: "id")
        try requireUnique(deployments.map(\.id), path: "$.deployments", field: "id")
        try requireUnique(models.map(\.name), path: "$.models", field: "name")
        try requireUnique(tiers.map(\.name), path: "$.tiers", field: "name")
        guard !tiers.isEmpty else {
            throw ConfigurationError(path: "$.tiers", message: "needs at least one tier")
        }

        let poolIDs = Set(enginePools.map(\.id))
        for (index, provider) in providers.enumerated() {
            if let pool = provider.enginePool, !poolIDs.contains(pool) {
                throw ConfigurationError(path: "$.providers[\(index)].engine_pool", message: "no engine pool has id '\(pool)'")
            }
        }
        let providerIDs = Set(providers.map(\.id))
        for (index, deployment) in deployments.enumerated() where !providerIDs.contains(deployment.provider) {
            throw ConfigurationError(path: "$.deployments[\(index)].provider", message: "no provider has id '\(deployment.provider)'")
        }
        let deploymentIDs = Set(deployments.map(\.id))
        for (index, model) in models.enumerated() {
            for (routeIndex, route) in model.routes.enumerated() where !deploymentIDs.contains(route) {
                throw ConfigurationError(path: "$.models[\(index)].routes[\(routeIndex)]", message: "no deployment has id '\(route)'")
            }
        }
        for deployment in prices.keys.sorted() where !deploymentIDs.contains(deployment) {
            throw ConfigurationError(path: "$.prices.\(deployment)", message: "no deployment has id '\(deployment)'")
        }
        try validateReservedShares()
        try validateMarginFloor()
        let modelNames = Set(models.map(\.name))
        for (index, tier) in tiers.enumerated() {
            for (modelIndex, model) in (tier.models ?? []).enumerated() where !modelNames.contains(model) {
                throw ConfigurationError(path: "$.tiers[\(index)].models[\(modelIndex)]", message: "no model is named '\(model)'")
            }
        }
    }

    /// The margin floor: a tier's overage price is at least the dearest per-million price
    /// (input, cached input or output) of every deployment any of its models can route
    /// to, so that overage never sells below cost.
    func validateMarginFloor() throws(ConfigurationError) {
        for (index, tier) in tiers.enumerated() {
            guard let overage = tier.overagePerMillion else { continue }
            let names = tier.models.map(Set.init)
            var dearest: (price: Int64, deployment: String, model: String, field: String)?
            for model in models where names?.contains(model.name) ?? true {
                for route in model.routes {
                    guard let price = prices[route] else { continue }
                    for (field, value) in [
                        ("input_per_million", price.inputPerMillion), ("cached_input_per_million", price.cachedInputPerMillion),
                        ("output_per_million", price.outputPerMillion),
                    ] where value > (dearest?.price ?? -1) {
                        dearest = (value, route, model.name, field)
                    }
                }
            }
            if let dearest, Int64(overage) < dearest.price {
                throw ConfigurationError(
                    path: "$.tiers[\(index)].overage_per_million",
                    message: "\(overage) is below the \(dearest.field) of deployment '\(dearest.deployment)' (\(dearest.price)), "
                        + "which model '\(dearest.model)' of tier '\(tier.name)' can route to: overage would sell below cost"
                )
            }
        }
    }

    /// Reserved shares are shares of one pool: together they can be at most all of it.
    func validateReservedShares() throws(ConfigurationError) {
        let total = tiers.reduce(0) { $0 + $1.reservedShare }
        guard total <= 1 + 1e-9 else {
            let index = tiers.lastIndex { $0.reservedShare > 0 } ?? 0
            let shares = tiers.filter { $0.reservedShare > 0 }.map { "\($0.name) \($0.reservedShare)" }.joined(separator: ", ")
            throw ConfigurationError(
                path: "$.tiers[\(index)].reserved_share",
                message: "the tiers' reserved shares add up to more than 1 (\(shares))"
            )
        }
    }

    private func requireUnique(_ values: [String], path: String, field: String) throws(ConfigurationError) {
        var seen: Set<String> = []
        for (index, value) in values.enumerated() where !seen.insert(value).inserted {
            throw ConfigurationError(path: "\(path)[\(index)].\(field)", message: "'\(value)' is used twice")
        }
    }
}
