import Billing
import Foundation
import Pools
import Providers

/// The contents of `providers.json`: providers, engine pools, deployments, public models,
/// prices and tiers. See `providers.schema.json` for the documented format.
public struct SwitchyardConfiguration: Sendable {
    public struct Provider: Sendable, Equatable {
        public var id: String
        public var kind: ProviderKind
        /// For non-engine providers.
        public var baseURL: String?
        /// For engine providers: the engine pool that serves them.
        public var enginePool: String?
        /// The environment variable that holds the provider key.
        public var apiKeyEnv: String?
        public var organization: String?
        public var project: String?
        public var apiVersion: String?
    }

    public struct EnginePool: Sendable, Equatable {
        public struct Replica: Sendable, Equatable {
            public var url: String
            public var slots: Int
        }

        public var id: String
        public var replicas: [Replica]
        /// The most requests that may wait for a slot at once.
        public var maximumQueue: Int = Pools.EnginePool.defaultMaximumQueue
        /// Whether each request's band is passed to the engine as vLLM's `priority`.
        public var forwardPriority = false
        /// Micro-units of the configuration's currency per replica-hour, for allocating the
        /// pool's cost by occupancy; nil when the pool's cost is not allocated.
        public var costPerHour: Int64?
    }

    public struct Deployment: Sendable, Equatable {
        public var id: String
        public var provider: String
        /// The model name the upstream knows.
        public var model: String
        /// Output tokens to ask for when a client sets no limit and the provider needs one.
        public var defaultMaxTokens: Int
        /// The most output tokens the deployment serves; a request asking for more is sent
        /// to another deployment of the model, or refused. nil: `largestOutputTokens`.
        public var maxOutputTokens: Int?
        /// Whether answers carry the model's reasoning (`reasoning_content`) even when the
        /// request did not set `reasoning_effort`.
        public var exposeReasoning: Bool = false
    }

    public struct Model: Sendable, Equatable {
        public enum Routing: String, Sendable, Equatable, CaseIterable {
            /// The routes in their configured order.
            case ordered
            /// The routes by the expected price of each request, cheapest first.
            case cost
        }

        public var name: String
        /// Deployment ids, most preferred first.
        public var routes: [String]
        public var routing: Routing = .ordered
    }

    public struct Tier: Sendable, Equatable {
        public var name: String
        public var priority: Int
        /// The public models this tier may use; nil means every model.
        public var models: [String]?
        /// Requests per minute, tokens per minute and concurrent requests per tenant;
        /// each nil means unlimited.
        public var limits: TenantLimits
        public var weight = 1
        public var reservedShare: Double = 0
        /// Milliseconds; nil waits as long as it takes.
        public var maximumQueueWaitMilliseconds: Int?
        public var spillOver: Contract.SpillOver = .never
        public var spillAfterMilliseconds = 0
        public var maximumSpillPricePerMillion: Int?
        /// Tokens bundled per calendar month (UTC); nil: no quota.
        public var monthlyQuotaTokens: Int?
        /// Micro-units per million tokens beyond the quota (every token, without a quota).
        public var overagePerMillion: Int?
        /// What happens once the quota is used up.
        public var onQuotaExhausted: Contract.Quota.WhenExhausted = .block
        /// Requests per minute while a quota or budget that throttles is spent.
        public var throttledRequestsPerMinute = AdmissionRequest.defaultThrottledRequestsPerMinute

        /// The tier's contract, before any tenant's overrides.
        public var contract: Contract {
            var contract = Contract(
                tier: name,
                band: priority,
                weight: weight,
                limits: limits,
                reservedShare: reservedShare,
                maximumQueueWait: maximumQueueWaitMilliseconds.map { .milliseconds($0) },
                spillOver: spillOver,
                spillAfter: .milliseconds(spillAfterMilliseconds),
                maximumSpillPricePerMillion: maximumSpillPricePerMillion,
                models: models.map(Set.init)
            )
            contract.quota = monthlyQuotaTokens.map { Contract.Quota(monthlyTokens: $0, whenExhausted: onQuotaExhausted) }
            // Overage is billed only where it is served: beyond a quota that serves it, or
            // for every token of a tier without a quota.
            if monthlyQuotaTokens == nil || onQuotaExhausted == .overage {
                contract.overagePerMillion = overagePerMillion.map(Int64.init)
            }
            contract.throttledRequestsPerMinute = throttledRequestsPerMinute
            return contract
        }
    }

    public var currency: String
    public var providers: [Provider]
    public var enginePools: [EnginePool]
    public var deployments: [Deployment]
    public var models: [Model]
    public var prices: [String: Price]
    public var tiers: [Tier]
}

// MARK: - Loading

extension SwitchyardConfiguration {
    /// Reads and validates the configuration file at `path`.
    public static func load(path: String) throws(ConfigurationError) -> SwitchyardConfiguration {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ConfigurationError(path: "$", message: "cannot read \(path): \(error.localizedDescription)")
        }
        return try parse(data)
    }

    /// Parses and validates configuration JSON.
    public static func parse(_ data: Data) throws(ConfigurationError) -> SwitchyardConfiguration {
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw ConfigurationError(path: "$", message: "not valid JSON: \(error.localizedDescription)")
        }
        var root = try ConfigObject(json, path: "$")
        let currency = try root.optionalString("currency") ?? "USD"
        let providers = try readList(&root, "providers", read: readProvider)
        let pools = try readList(&root, "engine_pools", required: false, read: readEnginePool)
        let deployments = try readList(&root, "deployments", read: readDeployment)
        let models = try readList(&root, "models", read: readModel)
        let tiers = try readList(&root, "tiers", read: readTier)
        var prices: [String: Price] = [:]
        if var priceObject = try root.object("prices") {
            for deployment in priceObject.keys {
                guard var price = try priceObject.object(deployment) else { continue }
                prices[deployment] = try readPrice(&price, currency: currency)
            }
            try priceObject.rejectUnknownKeys()
        }
        try root.rejectUnknownKeys()
        let configuration = SwitchyardConfiguration(
            currency: currency,
            providers: providers,
            enginePools: pools,
            deployments: deployments,
            models: models,
            prices: prices,
            tiers: tiers
        )
        try configuration.validateReferences()
        return configuration
    }

    private static func readList<T>(
        _ root: inout ConfigObject,
        _ key: String,
        required: Bool = true,
        read: (inout ConfigObject) throws(ConfigurationError) -> T
    ) throws(ConfigurationError) -> [T] {
        var items: [T] = []
        for (index, value) in try root.array(key, required: required).enumerated() {
            var object = try ConfigObject(value, path: "\(root.childPath(key))[\(index)]")
            items.append(try read(&object))
            try object.rejectUnknownKeys()
        }
        return items
    }

    private static func readProvider(_ object: inout ConfigObject) throws(ConfigurationError) -> Provider {
        let id = try object.string("id")
        let kindName = try object.string("kind")
        guard let kind = ProviderKind(rawValue: kindName) else {
            let known = ProviderKind.allCases.map(\.rawValue).joined(separator: ", ")
            throw ConfigurationError(path: object.childPath("kind"), message: "'\(kindName)' is not one of \(known)")
        }
        var provider = Provider(
            id: id,
            kind: kind,
            baseURL: try object.optionalString("base_url"),
            enginePool: try object.optionalString("engine_pool"),
            apiKeyEnv: try object.optionalString("api_key_env"),
            organization: try object.optionalString("organization"),
            project: try object.optionalString("project"),
            apiVersion: try object.optionalString("api_version")
        )
        if kind == .engine {
            guard provider.enginePool != nil else {
                throw ConfigurationError(path: object.childPath("engine_pool"), message: "is required for kind 'engine'")
            }
        } else {
            guard let url = provider.baseURL else {
                throw ConfigurationError(path: object.childPath("base_url"), message: "is required for kind '\(kindName)'")
            }
            try validateURL(url, path: object.childPath("base_url"))
            provider.baseURL = url
        }
        return provider
    }

    private static func readEnginePool(_ object: inout ConfigObject) throws(ConfigurationError) -> EnginePool {
        let id = try object.string("id")
        var replicas: [EnginePool.Replica] = []
        for (index, value) in try object.array("replicas").enumerated() {
            var replica = try ConfigObject(value, path: "\(object.childPath("replicas"))[\(index)]")
            let url = try replica.string("url")
            try validateURL(url, path: replica.childPath("url"))
            let slots = try replica.integer("slots", default: 8, minimum: 1, maximum: Bounds.slots)
            try replica.rejectUnknownKeys()
            replicas.append(.init(url: url, slots: slots))
        }
        guard !replicas.isEmpty else {
            throw ConfigurationError(path: object.childPath("replicas"), message: "needs at least one replica")
        }
        return EnginePool(
            id: id,
            replicas: replicas,
            maximumQueue: try object.integer("max_queue", default: Pools.EnginePool.defaultMaximumQueue, minimum: 0, maximum: Bounds.queue),
            forwardPriority: try object.boolean("forward_priority", default: false),
            costPerHour: object.has("cost_per_hour")
                ? Int64(try object.integer("cost_per_hour", minimum: 0, maximum: Bounds.costPerHour)) : nil
        )
    }

    private static func readDeployment(_ object: inout ConfigObject) throws(ConfigurationError) -> Deployment {
        Deployment(
            id: try object.string("id"),
            provider: try object.string("provider"),
            model: try object.string("model"),
            defaultMaxTokens: try object.integer(
                "default_max_tokens", default: 4096, minimum: 1, maximum: InferenceRequestHead.largestOutputTokens
            ),
            maxOutputTokens: object.has("max_output_tokens")
                ? try object.integer("max_output_tokens", minimum: 1, maximum: InferenceRequestHead.largestOutputTokens)
                : nil,
            exposeReasoning: try object.boolean("expose_reasoning", default: false)
        )
    }

    private static func readModel(_ object: inout ConfigObject) throws(ConfigurationError) -> Model {
        let routing = try object.choice("routing", of: Model.Routing.allCases.map(\.rawValue), default: "ordered")
        let model = Model(
            name: try object.string("name"), routes: try object.stringArray("routes"), routing: Model.Routing(rawValue: routing)!
        )
        guard !model.routes.isEmpty else {
            throw ConfigurationError(path: object.childPath("routes"), message: "needs at least one deployment")
        }
        return model
    }

    private static func readTier(_ object: inout ConfigObject) throws(ConfigurationError) -> Tier {
        let name = try object.string("name")
        let priority = try object.integer("priority", minimum: 0, maximum: Bounds.priority)
        let models = object.has("models") ? try object.stringArray("models") : nil
        func limit(_ key: String) throws(ConfigurationError) -> Int? {
            object.has(key) ? try object.integer(key, minimum: 1, maximum: TenantLimits.largestLimit) : nil
        }
        let limits = TenantLimits(
            requestsPerMinute: try limit("requests_per_minute"),
            tokensPerMinute: try limit("tokens_per_minute"),
            concurrentRequests: try limit("concurrent_requests")
        )
        let spillOver = try object.choice("spill_over", of: Contract.SpillOver.allCases.map(\.rawValue), default: "never")
        let quota = object.has("monthly_quota_tokens")
            ? try object.integer("monthly_quota_tokens", minimum: 0, maximum: Bounds.quotaTokens) : nil
        let overage = object.has("overage_per_million")
            ? try object.integer("overage_per_million", minimum: 0, maximum: Bounds.pricePerMillion) : nil
        let exhaustedPath = object.childPath("on_quota_exhausted")
        let explicitPolicy = object.has("on_quota_exhausted")
        let policy = try object.choice(
            "on_quota_exhausted", of: Contract.Quota.WhenExhausted.allCases.map(\.rawValue),
            default: overage == nil ? "block" : "overage"
        )
        if explicitPolicy, quota == nil {
            throw ConfigurationError(path: exhaustedPath, message: "needs monthly_quota_tokens: there is no quota to exhaust")
        }
        if policy == "overage", quota != nil, overage == nil {
            throw ConfigurationError(path: exhaustedPath, message: "'overage' needs overage_per_million, the price of tokens beyond the quota")
        }
        let throttled = try object.integer(
            "throttled_requests_per_minute", default: AdmissionRequest.defaultThrottledRequestsPerMinute,
            minimum: 0, maximum: TenantLimits.largestLimit
        )
        return Tier(
            name: name,
            priority: priority,
            models: models,
            limits: limits,
            weight: try object.integer("weight", default: 1, minimum: 1, maximum: Bounds.weight),
            reservedShare: try object.fraction("reserved_share", default: 0),
            maximumQueueWaitMilliseconds: object.has("max_queue_wait_ms")
                ? try object.integer("max_queue_wait_ms", minimum: 0, maximum: Bounds.milliseconds) : nil,
            spillOver: Contract.SpillOver(rawValue: spillOver)!,
            spillAfterMilliseconds: try object.integer("spill_after_ms", default: 0, minimum: 0, maximum: Bounds.milliseconds),
            maximumSpillPricePerMillion: object.has("max_spill_price_per_million")
                ? try object.integer("max_spill_price_per_million", minimum: 0, maximum: Bounds.pricePerMillion) : nil,
            monthlyQuotaTokens: quota,
            overagePerMillion: overage,
            onQuotaExhausted: Contract.Quota.WhenExhausted(rawValue: policy)!,
            throttledRequestsPerMinute: throttled
        )
    }

    private static func readPrice(_ object: inout ConfigObject, currency: String) throws(ConfigurationError) -> Price {
        let largest = Bounds.pricePerMillion
        let input = try object.integer("input_per_million", minimum: 0, maximum: largest)
        return Price(
            currency: try object.optionalString("currency") ?? currency,
            inputPerMillion: Int64(input),
            cachedInputPerMillion: Int64(
                try object.integer("cached_input_per_million", default: input, minimum: 0, maximum: largest)
            ),
            outputPerMillion: Int64(try object.integer("output_per_million", minimum: 0, maximum: largest))
        )
    }

    /// Upper bounds of configured numbers: far above any real value, and low enough that
    /// no sum or product of them with token counts can overflow.
    enum Bounds {
        static let slots = 100_000
        static let priority = 1_000_000
        static let weight = 1_000_000
        static let queue = 1_000_000
        /// A day.
        static let milliseconds = 86_400_000
        /// 10,000 currency units per million tokens, in micro-units.
        static let pricePerMillion = 10_000_000_000
        /// A trillion tokens a month.
        static let quotaTokens = 1_000_000_000_000
        /// A million currency units per replica-hour, in micro-units.
        static let costPerHour = 1_000_000_000_000
    }

    private static func validateURL(_ string: String, path: String) throws(ConfigurationError) {
        guard let url = URL(string: string), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            throw ConfigurationError(path: path, message: "'\(string)' is not an http(s) URL")
        }
    }
}
