import Billing
import Logging
import Pools
import Providers

/// What the proxy routes over: the configuration resolved against the environment
/// (which provider keys are set), with live engine pools.
public struct Topology: Sendable {
    /// One concrete upstream target.
    public struct Deployment: Sendable {
        public enum Target: Sendable {
            case provider(ProviderEndpoint)
            /// An engine pool; the endpoint's base URL is replaced by the chosen replica's.
            case engine(EnginePool, ProviderEndpoint)
        }

        public var id: String
        public var providerID: String
        public var upstreamModel: String
        public var target: Target
        public var price: Price
        /// Translates to and from the provider's wire format.
        public var adapter: any ProviderAdapter
        public var settings: DeploymentSettings

        /// How many interchangeable upstreams the deployment has.
        public var replicaCount: Int {
            switch target {
            case .provider: 1
            case .engine(let pool, _): pool.replicas.count
            }
        }
    }

    public struct Tier: Sendable {
        public var name: String
        public var priority: Int
        /// nil: every model.
        public var models: Set<String>?
        public var limits: TenantLimits
    }

    public let deployments: [String: Deployment]
    public let routes: RouteTable
    /// Each model's deployments in order, resolved once so a request does no lookups.
    private let resolvedRoutes: [String: [Deployment]]
    public let tiers: [String: Tier]
    public let enginePools: [String: EnginePool]
    /// Providers left out because their key variable is not set, with the variable's name.
    public let disabledProviders: [(id: String, missingVariable: String)]

    /// Resolves `configuration` against `environment`.
    public init(configuration: SwitchyardConfiguration, environment: [String: String]) {
        var pools: [String: EnginePool] = [:]
        for pool in configuration.enginePools {
            pools[pool.id] = EnginePool(
                name: pool.id,
                replicas: pool.replicas.map { .init(baseURL: $0.url, slots: $0.slots) }
            )
        }
        var endpoints: [String: ProviderEndpoint] = [:]
        var disabled: [(id: String, missingVariable: String)] = []
        for provider in configuration.providers {
            var key: String?
            if let variable = provider.apiKeyEnv {
                key = environment[variable].flatMap { $0.isEmpty ? nil : $0 }
                if key == nil, provider.kind != .engine {
                    disabled.append((provider.id, variable))
                    continue
                }
            }
            endpoints[provider.id] = ProviderEndpoint(
                kind: provider.kind,
                baseURL: provider.baseURL ?? "",
                apiKey: key,
                organization: provider.organization,
                project: provider.project,
                apiVersion: provider.apiVersion
            )
        }
        let providersByID = Dictionary(uniqueKeysWithValues: configuration.providers.map { ($0.id, $0) })
        let prices = PriceTable(configuration.prices, defaultCurrency: configuration.currency)
        var deployments: [String: Deployment] = [:]
        for deployment in configuration.deployments {
            guard let endpoint = endpoints[deployment.provider], let provider = providersByID[deployment.provider] else { continue }
            let target: Deployment.Target
            if let poolID = provider.enginePool, let pool = pools[poolID] {
                target = .engine(pool, endpoint)
            } else {
                target = .provider(endpoint)
            }
            deployments[deployment.id] = Deployment(
                id: deployment.id,
                providerID: deployment.provider,
                upstreamModel: deployment.model,
                target: target,
                price: prices.price(forDeployment: deployment.id),
                adapter: Self.adapter(for: provider.kind),
                settings: DeploymentSettings(upstreamModel: deployment.model, defaultMaxTokens: deployment.defaultMaxTokens)
            )
        }
        var routes: [String: [String]] = [:]
        for model in configuration.models {
            let enabled = model.routes.filter { deployments[$0] != nil }
            if !enabled.isEmpty { routes[model.name] = enabled }
        }
        var tiers: [String: Tier] = [:]
        for tier in configuration.tiers {
            tiers[tier.name] = Tier(name: tier.name, priority: tier.priority, models: tier.models.map(Set.init), limits: tier.limits)
        }
        self.deployments = deployments
        self.routes = RouteTable(routes)
        self.resolvedRoutes = routes.mapValues { ids in ids.compactMap { deployments[$0] } }
        self.tiers = tiers
        self.enginePools = pools
        self.disabledProviders = disabled
    }

    /// The adapter that translates to and from a provider kind's wire format.
    static func adapter(for kind: ProviderKind) -> any ProviderAdapter {
        switch kind {
        case .openai, .azureOpenAI, .engine: OpenAIAdapter(kind: kind)
        case .anthropic: AnthropicAdapter()
        case .gemini: GeminiAdapter()
        }
    }

    /// The deployments that may serve `model` for a tenant of `tier`, most preferred
    /// first; nil when the model is unknown or not in the tier's contract.
    public func deployments(for model: String, tier: String) -> [Deployment]? {
        guard allows(model: model, tier: tier) else { return nil }
        return resolvedRoutes[model]
    }

    /// The public models a tenant of `tier` may use.
    public func models(forTier tier: String) -> [String] {
        routes.models.filter { allows(model: $0, tier: tier) }
    }

    private func allows(model: String, tier: String) -> Bool {
        guard let tier = tiers[tier] else { return false }
        return tier.models?.contains(model) ?? true
    }

    /// Logs which providers are off and why, once at start.
    public func logSummary(_ logger: Logger) {
        for (id, variable) in disabledProviders {
            logger.info("provider disabled until its key variable is set", metadata: ["provider": "\(id)", "variable": "\(variable)"])
        }
        logger.info("serving models", metadata: ["models": "\(routes.models.joined(separator: ", "))"])
    }
}
