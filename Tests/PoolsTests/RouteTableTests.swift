import Testing

@testable import Pools

@Suite("RouteTable")
struct RouteTableTests {
    private let table = RouteTable([
        "chat-small": ["llama-8b-local"],
        "chat-large": ["vllm-70b", "openai-gpt-4o", "azure-gpt-4o"],
        "embed": [],
    ])

    @Test("lists the public models sorted")
    func models() {
        #expect(table.models == ["chat-large", "chat-small", "embed"])
        #expect(RouteTable([:]).models.isEmpty)
    }

    @Test("keeps the order of preference of deployments")
    func deployments() {
        #expect(table.deployments(for: "chat-large") == ["vllm-70b", "openai-gpt-4o", "azure-gpt-4o"])
        #expect(table.deployments(for: "chat-small") == ["llama-8b-local"])
        #expect(table.deployments(for: "embed") == [])
    }

    @Test("an unknown model has no routes; names match exactly")
    func unknownModel() {
        #expect(table.deployments(for: "chat-huge") == nil)
        #expect(table.deployments(for: "Chat-Large") == nil)
        #expect(table.deployments(for: "chat-large ") == nil)
    }
}
