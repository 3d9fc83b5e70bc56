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
        /// The most output tokens the deployment serves, when configured.
        public var maxOutputTokens: Int?

        /// The provider's endpoint, before a key or replica is chosen.
        public var endpoint: ProviderEndpoint {
            switch target {
            case .provider(let endpoint), .engine(_, let endpoint): endpoint
            }
        }

        /// The engine pool that serves the deployment, if it is self-hosted.
        public var enginePool: EnginePool? {
            if case .engine(let pool, _) = target { pool } else { nil }
        }

        /// Whether each attempt draws a provider key from the provider's key pool.
        public var usesKeyPool: Bool {
            if case .provider = target { true } else { false }
        }

        /// How many interchangeable upstreams the deployment has.
        public var replicaCount: Int {
            switch target {
            case .provider: 1
            case .engine(let pool, _): pool.replicas.count
            }
        }
    }

    public let deployments: [String: Deployment]
    public let routes: RouteTable
    /// The models whose routes are ranked by expected price.
    public let costRoutedModels: Set<String>
    /// Each model's deployments in order, resolved once so a request does no lookups.
    private let resolvedRoutes: [String: [Deployment]]
    /// Each tier's contract, before any tenant's overrides.
    public let contracts: [String: Contract]
    public let enginePools: [String: EnginePool]
    /// What the engine pools with a `cost_per_hour` cost to run, by pool id: the basis of
    /// GPU cost by occupancy in the reports.
    public let enginePoolCosts: [String: EnginePoolCost]
    /// Every configured provider's kind, by provider id.
    public let providerKinds: [String: ProviderKind]
    /// External providers whose key variable is not set, with the variable's name: they
    /// serve once an operator adds a key to their pool.
    public let keylessProviders: [(id: String, missingVariable: String)]
    /// The provider keys named by environment variables, one per external provider.
    public let environmentKeys: [ProviderKeyCatalogue.Key]

    /// Resolves `configuration` against `environment`.
    /// - Parameters:
    ///   - sharedSlots: Lease engine slots from Redis, shared with other replicas.
    public init(
        configuration: SwitchyardConfiguration,
        environment: [String: String],
        scheduling: EnginePool.Scheduling = .contract,
        sharedSlots: RedisSlotLeases? = nil,
        logger: Logger? = nil
    ) {
        var pools: [String: EnginePool] = [:]
        for pool in configuration.enginePools {
            pools[pool.id] = EnginePool(
                name: pool.id,
                replicas: pool.replicas.map { .init(baseURL: $0.url, slots: $0.slots) },
                maximumQueue: pool.maximumQueue,
                scheduling: scheduling,
                forwardsPriority: pool.forwardPriority,
                sharedSlots: sharedSlots,
                logger: logger
            )
        }
        var endpoints: [String: ProviderEndpoint] = [:]
        var keyless: [(id: String, missingVariable: String)] = []
        var environmentKeys: [ProviderKeyCatalogue.Key] = []
        for provider in configuration.providers {
            let key = provider.apiKeyEnv.flatMap { environment[$0] }.flatMap { $0.isEmpty ? nil : $0 }
            if provider.kind != .engine {
                // External providers draw a key from their key pool on every attempt; the
                // environment's key is one member of that pool.
                if let variable = provider.apiKeyEnv {
                    if let key {
                        environmentKeys.append(.init(environment: variable, provider: provider.id, secret: key))
                    } else {
                        keyless.append((provider.id, variable))
                    }
                }
            }
            endpoints[provider.id] = ProviderEndpoint(
                kind: provider.kind,
                baseURL: provider.baseURL ?? "",
                apiKey: provider.kind == .engine ? key : nil,
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
                settings: DeploymentSettings(
                    upstreamModel: deployment.model, defaultMaxTokens: deployment.defaultMaxTokens,
                    exposeReasoning: deployment.exposeReasoning
                ),
                maxOutputTokens: deployment.maxOutputTokens
            )
        }
        var routes: [String: [String]] = [:]
        for model in configuration.models {
            let enabled = model.routes.filter { deployments[$0] != nil }
            if !enabled.isEmpty { routes[model.name] = enabled }
        }
        var contracts: [String: Contract] = [:]
        let totalReserved = configuration.tiers.reduce(0) { $0 + $1.reservedShare }
        for tier in configuration.tiers {
            var contract = tier.contract
            contract.reservedForOtherTiers = min(1, max(0, totalReserved - tier.reservedShare))
            contracts[tier.name] = contract
        }
        self.deployments = deployments
        self.routes = RouteTable(routes)
        self.costRoutedModels = Set(configuration.models.filter { $0.routing == .cost }.map(\.name))
        self.resolvedRoutes = routes.mapValues { ids in ids.compactMap { deployments[$0] } }
        self.contracts = contracts
        self.enginePools = pools
        self.enginePoolCosts = Self.poolCosts(configuration)
        self.providerKinds = Dictionary(configuration.providers.map { ($0.id, $0.kind) }, uniquingKeysWith: { first, _ in first })
        self.keylessProviders = keyless
        self.environmentKeys = environmentKeys
    }

    /// The cost of each engine pool that has a `cost_per_hour`, in the configuration's currency.
    static func poolCosts(_ configuration: SwitchyardConfiguration) -> [String: EnginePoolCost] {
        var costs: [String: EnginePoolCost] = [:]
        for pool in configuration.enginePools {
            guard let perHour = pool.costPerHour else { continue }
            costs[pool.id] = EnginePoolCost(
                pool: pool.id, replicas: pool.replicas.count, slots: pool.replicas.reduce(0) { $0 + $1.slots },
                costPerHourMicros: perHour, currency: configuration.currency
            )
        }
        return costs
    }

    /// The adapter that translates to and from a provider kind's wire format.
    static func adapter(for kind: ProviderKind) -> any ProviderAdapter {
        switch kind {
        case .openai, .azureOpenAI, .engine: OpenAIAdapter(kind: kind)
        case .anthropic: AnthropicAdapter()
        case .gemini: GeminiAdapter()
        }
    }

    /// A tenant's contract: its tier's, with the tenant's overrides; a tier no longer
    /// configured includes no model.
    public func contract(tier: String, overrides: Contract.Overrides = .init()) -> Contract {
        (contracts[tier] ?? .lapsed(tier: tier)).applying(overrides)
    }

    /// The deployments that may serve `model` under `contract`, most preferred first; nil
    /// when the model is unknown or not in the contract.
    public func deployments(for model: String, contract: Contract) -> [Deployment]? {
        guard contract.allows(model: model) else { return nil }
        return resolvedRoutes[model]
    }

    /// The key pools of `provider`: one per deployment of it, named by the deployment id.
    public func keyPools(ofProvider provider: String) -> [String] {
        deployments.values.filter { $0.usesKeyPool && $0.providerID == provider }.map(\.id).sorted()
    }

    /// The public models `contract` includes, of those with a deployment that
    /// `isServable` accepts (for example, one whose provider has a key).
    public func models(for contract: Contract, isServable: (Deployment) -> Bool = { _ in true }) -> [String] {
        routes.models.filter { model in
            contract.allows(model: model) && (resolvedRoutes[model]?.contains(where: isServable) ?? false)
        }
    }
}
