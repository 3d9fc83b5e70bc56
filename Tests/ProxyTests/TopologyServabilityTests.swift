import Foundation
import Testing

@testable import Proxy

@Suite("Topology servability")
struct TopologyServabilityTests {
    static func shippedTopology(environment: [String: String] = [:]) throws -> Topology {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let configuration = try SwitchyardConfiguration.load(path: root.appendingPathComponent("providers.json").path)
        return Topology(configuration: configuration, environment: environment)
    }

    @Test func deploymentsWithoutAProviderKeyAreUnavailableWithTheirProviderAndVariable() throws {
        let topology = try Self.shippedTopology()
        let models = topology.servability(isServable: { !$0.usesKeyPool })
        #expect(models.map(\.model) == ["chat-fast", "chat-large", "chat-small", "embed-small"])
        #expect(models.filter(\.isServed).map(\.model) == ["chat-small", "embed-small"])
        let small = try #require(models.first { $0.model == "chat-small" })
        #expect(small.serving == ["local-llama-8b"])
        #expect(small.unavailable == [.init(deployment: "openai-gpt-4o-mini", reason: .noProviderKey(provider: "openai", variable: "OPENAI_API_KEY"))])
        let large = try #require(models.first { $0.model == "chat-large" })
        #expect(large.serving.isEmpty)
        // In the configuration's order, not by price: the log names them as written.
        #expect(large.unavailable.map(\.deployment) == ["openai-gpt-4o", "azure-gpt-4o", "anthropic-sonnet"])
    }

    @Test func theReasonFollowsWhatKindOfDeploymentItIs() throws {
        let topology = try Self.shippedTopology(environment: ["OPENAI_API_KEY": "sk-test-1234"])
        // The predicate judges; a set variable is not named as the way to add a key.
        let models = topology.servability(isServable: { _ in false })
        let small = try #require(models.first { $0.model == "chat-small" })
        #expect(small.unavailable == [
            .init(deployment: "local-llama-8b", reason: .noReplica(pool: "local-gpu")),
            .init(deployment: "openai-gpt-4o-mini", reason: .noProviderKey(provider: "openai", variable: nil)),
        ])
    }

    @Test func theStartUpLineNamesEachDeploymentItsProviderAndTheWayToAddAKey() {
        let text = SwitchyardServer.reasons([
            .init(deployment: "openai-gpt-4o", reason: .noProviderKey(provider: "openai", variable: "OPENAI_API_KEY")),
            .init(deployment: "anthropic-sonnet", reason: .noProviderKey(provider: "anthropic", variable: nil)),
        ])
        #expect(text == """
            no provider key for deployments openai-gpt-4o (provider openai), anthropic-sonnet (provider anthropic); \
            add one with `switchyard provider-key add --provider openai|anthropic` and it serves at once, without a restart, \
            or set OPENAI_API_KEY and restart
            """)
    }
}
