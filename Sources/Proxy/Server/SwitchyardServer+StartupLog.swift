import Logging

extension SwitchyardServer {
    /// Logs, once at start, the models that can be served and why each of the others, or
    /// each fallback of a served one, cannot: judged as requests are, against the provider
    /// keys in the ledger's catalogue and the environment.
    public func logServableModels() {
        let keys = ProviderKeys(catalogue: keyCatalogue, pool: keyPool, directory: directory, metrics: metrics, logger: logger)
        let models = topology.servability(isServable: keys.isServable)
        for model in models where !model.unavailable.isEmpty {
            let reasons = Self.reasons(model.unavailable)
            if model.isServed {
                logger.info(
                    "model \(model.model) is served by \(model.serving.joined(separator: ", ")) only: \(reasons)",
                    metadata: ["model": "\(model.model)"]
                )
            } else {
                logger.notice("model \(model.model) is not served: \(reasons)", metadata: ["model": "\(model.model)"])
            }
        }
        let served = models.filter(\.isServed).map(\.model)
        if served.isEmpty {
            logger.warning("no model can be served yet")
        } else {
            logger.info("serving models: \(served.joined(separator: ", "))", metadata: ["models": "\(served.joined(separator: ","))"])
        }
    }

    /// `no provider key for deployment a (provider p), b (provider q); add one with …`.
    static func reasons(_ unavailable: [Topology.ModelServability.Unavailable]) -> String {
        var keyless: [String] = []
        var providers: [String] = []
        var variables: [String] = []
        var replicaless: [String] = []
        for entry in unavailable {
            switch entry.reason {
            case .noProviderKey(let provider, let variable):
                keyless.append("\(entry.deployment) (provider \(provider))")
                if !providers.contains(provider) { providers.append(provider) }
                if let variable, !variables.contains(variable) { variables.append(variable) }
            case .noReplica(let pool):
                replicaless.append("\(entry.deployment) (engine pool \(pool))")
            }
        }
        var parts: [String] = []
        if !keyless.isEmpty {
            let setting = variables.isEmpty ? "" : ", or set \(variables.joined(separator: " or ")) and restart"
            parts.append(
                "no provider key for deployment\(keyless.count == 1 ? "" : "s") \(keyless.joined(separator: ", ")); "
                    + "add one with `switchyard provider-key add --provider \(providers.joined(separator: "|"))` "
                    + "and it serves at once, without a restart\(setting)"
            )
        }
        if !replicaless.isEmpty {
            parts.append("no replica can take a request for \(replicaless.joined(separator: ", "))")
        }
        return parts.joined(separator: "; ")
    }
}
