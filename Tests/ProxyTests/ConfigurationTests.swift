import Billing
import Foundation
import Pools
import Testing

@testable import Proxy

@Suite("providers.json")
struct ConfigurationTests {
    static let valid = LiveHarness.configurationJSON(fastPort: 8001, slowPort: 8002)

    func parse(_ json: String) throws(ConfigurationError) -> SwitchyardConfiguration {
        try SwitchyardConfiguration.parse(Data(json.utf8))
    }

    func error(_ json: String) -> ConfigurationError? {
        do {
            _ = try parse(json)
            return nil
        } catch {
            return error
        }
    }

    @Test func theShippedConfigurationIsValid() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let configuration = try SwitchyardConfiguration.load(path: root.appendingPathComponent("providers.json").path)
        #expect(configuration.providers.count >= 5)
        #expect(Set(configuration.providers.map(\.kind.rawValue)) == ["engine", "openai", "azure-openai", "anthropic", "gemini"])
        // Without key variables the external providers have empty key pools: only the
        // local engine's models are servable until keys are added.
        let topology = Topology(configuration: configuration, environment: [:])
        #expect(topology.keylessProviders.map(\.missingVariable).sorted() == ["ANTHROPIC_API_KEY", "AZURE_OPENAI_API_KEY", "GEMINI_API_KEY", "OPENAI_API_KEY"])
        #expect(topology.environmentKeys.isEmpty)
        #expect(topology.models(for: topology.contract(tier: "enterprise"), isServable: { !$0.usesKeyPool }) == ["chat-small", "embed-small"])
        let withKey = Topology(configuration: configuration, environment: ["OPENAI_API_KEY": "sk-test-1234"])
        #expect(withKey.environmentKeys.map(\.id) == ["env:openai"])
        #expect(withKey.environmentKeys.first?.lastFour == "1234")
        #expect(withKey.deployments["openai-gpt-4o"]?.usesKeyPool == true)
        // The key rides with the pool's choice, not in the endpoint.
        if case .provider(let endpoint) = withKey.deployments["openai-gpt-4o"]?.target {
            #expect(endpoint.apiKey == nil)
        } else {
            Issue.record("openai-gpt-4o is not a provider deployment")
        }
    }

    @Test func errorsNameTheJSONPath() {
        let cases: [(String, String, String)] = [
            (#""kind": "engine", "engine_pool": "fast""#, #""kind": "opnai", "engine_pool": "fast""#, "$.providers[0].kind"),
            (#""routes": ["sim-llama"]"#, #""routes": ["sim-lama"]"#, "$.models[0].routes[0]"),
            (#""slots": 4 }] },"#, #""slots": 0 }] },"#, "$.engine_pools[0].replicas[0].slots"),
            (#""priority": 100"#, #""priority": "high""#, "$.tiers[0].priority"),
            (#""url": "http://127.0.0.1:8001/v1""#, #""url": "ftp://x""#, "$.engine_pools[0].replicas[0].url"),
            (#"{ "id": "sim", "kind""#, #"{ "id": "sim", "colour": "red", "kind""#, "$.providers[0].colour"),
            (#""output_per_million": 2000000"#, #""output_per_million": 2.5"#, "$.prices.sim-llama.output_per_million"),
            (#"{ "name": "standard", "priority": 10, "models": ["chat-small"] }"#, #"{ "name": "enterprise", "priority": 10 }"#, "$.tiers[1].name"),
            // Numbers far beyond any real value, which sums with token counts could overflow.
            (#""slots": 4 }] },"#, #""slots": 4000000 }] },"#, "$.engine_pools[0].replicas[0].slots"),
            (#""output_per_million": 2000000"#, #""output_per_million": 9223372036854775807"#, "$.prices.sim-llama.output_per_million"),
            (#""priority": 100"#, #""priority": 1000000000000"#, "$.tiers[0].priority"),
            (#""model": "upstream-llama" }"#, #""model": "upstream-llama", "max_output_tokens": 16777217 }"#, "$.deployments[0].max_output_tokens"),
            (#""model": "upstream-llama" }"#, #""model": "upstream-llama", "default_max_tokens": 99999999999 }"#, "$.deployments[0].default_max_tokens"),
            // Contract terms.
            (#""priority": 100"#, #""priority": 100, "reserved_share": 1.5"#, "$.tiers[0].reserved_share"),
            (#""priority": 100"#, #""priority": 100, "reserved_share": "half""#, "$.tiers[0].reserved_share"),
            (
                #"{ "name": "enterprise", "priority": 100 }"#,
                #"{ "name": "enterprise", "priority": 100, "reserved_share": 0.7 }, { "name": "gold", "priority": 90, "reserved_share": 0.4 }"#,
                "$.tiers[1].reserved_share"
            ),
            (#""priority": 100"#, #""priority": 100, "weight": 0"#, "$.tiers[0].weight"),
            (#""priority": 100"#, #""priority": 100, "spill_over": "always""#, "$.tiers[0].spill_over"),
            (#""priority": 100"#, #""priority": 100, "max_queue_wait_ms": -1"#, "$.tiers[0].max_queue_wait_ms"),
            (#""priority": 100"#, #""priority": 100, "spill_after_ms": 100000000000"#, "$.tiers[0].spill_after_ms"),
            (#""routes": ["sim-llama"]"#, #""routes": ["sim-llama"], "routing": "cheapest""#, "$.models[0].routing"),
            (#""slots": 4 }] },"#, #""slots": 4 }], "max_queue": -3 },"#, "$.engine_pools[0].max_queue"),
            (#""slots": 4 }] },"#, #""slots": 4 }], "forward_priority": "yes" },"#, "$.engine_pools[0].forward_priority"),
            (#"{ "id": "slow", "replicas""#, #"{ "id": "slow", "cost_per_hour": -1, "replicas""#, "$.engine_pools[1].cost_per_hour"),
            (#"{ "id": "slow", "replicas""#, #"{ "id": "slow", "cost_per_hour": 1.5, "replicas""#, "$.engine_pools[1].cost_per_hour"),
        ]
        for (original, replacement, path) in cases {
            let json = Self.valid.replacingOccurrences(of: original, with: replacement)
            #expect(json != Self.valid, "fixture did not change for \(path)")
            let failure = error(json)
            #expect(failure?.path == path, "\(String(describing: failure))")
            #expect(failure?.message.isEmpty == false)
        }
        #expect(error("{")?.path == "$")
        #expect(error("[]")?.path == "$")
        #expect(error(#"{"providers":[],"deployments":[],"models":[]}"#)?.path == "$.tiers")
    }

    @Test func contractTermsAreReadAndReservedSharesAddUpToAtMostOne() throws {
        let json = Self.valid
            .replacingOccurrences(
                of: #"{ "name": "enterprise", "priority": 100 }"#,
                with: #"{ "name": "enterprise", "priority": 100, "weight": 3, "reserved_share": 0.6, "max_queue_wait_ms": 2500, "spill_over": "when_saturated", "spill_after_ms": 400, "max_spill_price_per_million": 900000 }"#
            )
            .replacingOccurrences(
                of: #"{ "name": "standard", "priority": 10, "models": ["chat-small"] }"#,
                with: #"{ "name": "standard", "priority": 10, "models": ["chat-small"], "reserved_share": 0.4 }"#
            )
            .replacingOccurrences(of: #"{ "name": "chat-small", "routes": ["sim-llama"] }"#, with: #"{ "name": "chat-small", "routes": ["sim-llama"], "routing": "cost" }"#)
            .replacingOccurrences(of: #""slots": 4 }] },"#, with: #""slots": 4 }], "max_queue": 7, "forward_priority": true },"#)
        let topology = Topology(configuration: try parse(json), environment: [:])
        let enterprise = topology.contract(tier: "enterprise")
        #expect(enterprise.band == 100 && enterprise.weight == 3 && enterprise.reservedShare == 0.6)
        #expect(enterprise.maximumQueueWait == .milliseconds(2500) && enterprise.spillAfter == .milliseconds(400))
        #expect(enterprise.spillOver == .whenSaturated && enterprise.maximumSpillPricePerMillion == 900_000)
        let standard = topology.contract(tier: "standard")
        #expect(standard.weight == 1 && standard.spillOver == .never && standard.maximumQueueWait == nil)
        // What the other tiers reserve: what each may not use of a provider key's windows.
        #expect(abs(enterprise.reservedForOtherTiers - 0.4) < 1e-9 && abs(standard.reservedForOtherTiers - 0.6) < 1e-9)
        #expect(abs(topology.contract(tier: "three-per-minute").reservedForOtherTiers - 1.0) < 1e-9)
        #expect(topology.costRoutedModels == ["chat-small"])
        #expect(topology.enginePools["fast"]?.maximumQueue == 7 && topology.enginePools["dead"]?.maximumQueue == EnginePool.defaultMaximumQueue)
        #expect(topology.enginePools["fast"]?.capacity == 4)
        #expect(topology.enginePools["fast"]?.forwardsPriority == true && topology.enginePools["dead"]?.forwardsPriority == false)
        #expect(EnginePool.enginePriority(band: enterprise.band) == -100)
        // A tenant's overrides replace limits and add pinning; the rest is the tier's.
        let overridden = topology.contract(
            tier: "enterprise", overrides: .init(concurrentRequests: 2, pinning: ["chat-small": "sim-llama"])
        )
        #expect(overridden.limits.concurrentRequests == 2 && overridden.pinning == ["chat-small": "sim-llama"])
        #expect(overridden.weight == 3 && overridden.reservedShare == 0.6)
    }

    @Test func enginePoolCostsAreReadIntoTheTopology() throws {
        let json = Self.valid.replacingOccurrences(
            of: #"{ "id": "half-dead", "replicas""#, with: #"{ "id": "half-dead", "cost_per_hour": 0, "replicas""#
        )
        let topology = Topology(configuration: try parse(json), environment: [:])
        // Per replica-hour, in the configuration's currency; slots over every replica.
        #expect(topology.enginePoolCosts["fast"] == EnginePoolCost(pool: "fast", replicas: 1, slots: 4, costPerHourMicros: 3_600_000, currency: "USD"))
        #expect(topology.enginePoolCosts["half-dead"] == EnginePoolCost(pool: "half-dead", replicas: 2, slots: 2, costPerHourMicros: 0, currency: "USD"))
        #expect(topology.enginePoolCosts["slow"] == nil)
    }

    @Test func quotaTermsAreReadIntoTheContract() throws {
        let json = Self.valid.replacingOccurrences(
            of: #"{ "name": "standard", "priority": 10, "models": ["chat-small"] }"#,
            with: #"{ "name": "standard", "priority": 10, "models": ["chat-small"], "monthly_quota_tokens": 5000, "overage_per_million": 2000000, "throttled_requests_per_minute": 3 }"#
        )
        let topology = Topology(configuration: try parse(json), environment: [:])
        let standard = topology.contract(tier: "standard")
        // With an overage price the quota serves and bills when exhausted, by default.
        #expect(standard.quota == Contract.Quota(monthlyTokens: 5000, whenExhausted: .overage))
        #expect(standard.overagePerMillion == 2_000_000)
        #expect(standard.throttledRequestsPerMinute == 3)
        #expect(standard.throttled.band == Contract.throttledBand && standard.throttled.reservedShare == 0)
        let enterprise = topology.contract(tier: "enterprise")
        #expect(enterprise.quota == nil && enterprise.overagePerMillion == nil)
        #expect(enterprise.throttledRequestsPerMinute == AdmissionRequest.defaultThrottledRequestsPerMinute)

        // Blocking: the overage price is not billed, as nothing beyond the quota is served.
        let blocking = Self.valid.replacingOccurrences(
            of: #"{ "name": "standard", "priority": 10, "models": ["chat-small"] }"#,
            with: #"{ "name": "standard", "priority": 10, "models": ["chat-small"], "monthly_quota_tokens": 5000, "overage_per_million": 2000000, "on_quota_exhausted": "block" }"#
        )
        let blocked = Topology(configuration: try parse(blocking), environment: [:]).contract(tier: "standard")
        #expect(blocked.quota?.whenExhausted == .block && blocked.overagePerMillion == nil)
    }

    @Test func quotaMistakesNameTheirPath() {
        func tier(_ terms: String) -> String {
            Self.valid.replacingOccurrences(
                of: #"{ "name": "standard", "priority": 10, "models": ["chat-small"] }"#,
                with: #"{ "name": "standard", "priority": 10, "models": ["chat-small"], \#(terms) }"#
            )
        }
        // sim-llama's output price, 2000000 per million, is the dearest chat-small can reach.
        let floor = error(tier(#""monthly_quota_tokens": 10, "overage_per_million": 1999999"#))
        #expect(floor?.path == "$.tiers[1].overage_per_million")
        #expect(floor?.message.contains("output_per_million of deployment 'sim-llama' (2000000)") == true)
        #expect(floor?.message.contains("below cost") == true)
        #expect(error(tier(#""monthly_quota_tokens": 10, "overage_per_million": 2000000"#)) == nil)
        #expect(error(tier(#""on_quota_exhausted": "block""#))?.path == "$.tiers[1].on_quota_exhausted")
        #expect(error(tier(#""monthly_quota_tokens": 10, "on_quota_exhausted": "overage""#))?.path == "$.tiers[1].on_quota_exhausted")
        #expect(error(tier(#""monthly_quota_tokens": 10, "on_quota_exhausted": "sometimes""#))?.path == "$.tiers[1].on_quota_exhausted")
        #expect(error(tier(#""monthly_quota_tokens": -1"#))?.path == "$.tiers[1].monthly_quota_tokens")
        #expect(error(tier(#""throttled_requests_per_minute": -1"#))?.path == "$.tiers[1].throttled_requests_per_minute")
        // Without a quota every token is overage, and the floor holds all the same.
        #expect(error(tier(#""overage_per_million": 5"#))?.path == "$.tiers[1].overage_per_million")
    }

    @Test func tiersLimitModels() throws {
        let topology = Topology(configuration: try parse(Self.valid), environment: [:])
        #expect(topology.models(for: topology.contract(tier: "standard")) == ["chat-small"])
        #expect(topology.deployments(for: "chat-slow", contract: topology.contract(tier: "standard")) == nil)
        #expect(topology.deployments(for: "chat-fallback", contract: topology.contract(tier: "enterprise"))?.map(\.id) == ["dead-llama", "sim-llama"])
        #expect(topology.deployments(for: "chat-small", contract: topology.contract(tier: "no-such-tier")) == nil)
        #expect(topology.contract(tier: "enterprise").band == 100)
    }
}

@Suite("Tenant key secrets")
struct TenantKeySecretTests {
    @Test func generatedKeysAreWellFormedAndHashed() {
        let first = TenantKeySecret.generate()
        let second = TenantKeySecret.generate()
        #expect(first.secret != second.secret)
        #expect(first.secret.hasPrefix("sk-sy-"))
        #expect(TenantKeySecret.isWellFormed(Substring(first.secret)))
        #expect(first.hash == TenantKeySecret.hash(first.secret))
        #expect(first.hash.count == 32)
        #expect(first.prefix == String(first.secret.prefix(12)))
        #expect(!TenantKeySecret.isWellFormed("sk-sy-abc"))
        #expect(!TenantKeySecret.isWellFormed(Substring(first.secret.dropLast() + "!")))
    }

    @Test func constantTimeComparison() {
        #expect(constantTimeEqual([1, 2, 3], [1, 2, 3]))
        #expect(!constantTimeEqual([1, 2, 3], [1, 2, 4]))
        #expect(!constantTimeEqual([1, 2], [1, 2, 3]))
    }
}
