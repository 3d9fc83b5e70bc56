import Testing

@testable import Providers

@Suite("ProviderEndpoint")
struct ProviderEndpointTests {
    private func headers(_ endpoint: ProviderEndpoint) -> [String] {
        endpoint.credentialHeaders.map { "\($0.name): \($0.value)" }
    }

    // MARK: URLs

    @Test(
        "OpenAI and engines append the operation path to the base URL",
        arguments: [ProviderKind.openai, .engine]
    )
    func openAIStyleURLs(kind: ProviderKind) throws {
        let endpoint = ProviderEndpoint(kind: kind, baseURL: "http://10.0.0.5:8000/v1")
        #expect(try endpoint.url(for: .chatCompletions, upstreamModel: "m") == "http://10.0.0.5:8000/v1/chat/completions")
        #expect(try endpoint.url(for: .completions, upstreamModel: "m") == "http://10.0.0.5:8000/v1/completions")
        #expect(try endpoint.url(for: .embeddings, upstreamModel: "m") == "http://10.0.0.5:8000/v1/embeddings")
    }

    @Test("drops a trailing slash from the base URL")
    func trailingSlash() throws {
        let endpoint = ProviderEndpoint(kind: .openai, baseURL: "https://api.openai.com/v1/")
        #expect(endpoint.baseURL == "https://api.openai.com/v1")
        #expect(try endpoint.url(for: .chatCompletions, upstreamModel: "gpt-4o") == "https://api.openai.com/v1/chat/completions")
    }

    @Test("Azure puts the deployment in the path and the api-version in the query")
    func azureURLs() throws {
        let endpoint = ProviderEndpoint(kind: .azureOpenAI, baseURL: "https://acme.openai.azure.com/", apiVersion: "2024-06-01")
        #expect(
            try endpoint.url(for: .chatCompletions, upstreamModel: "gpt4o-prod")
                == "https://acme.openai.azure.com/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-06-01"
        )
        #expect(
            try endpoint.url(for: .embeddings, upstreamModel: "embed-3")
                == "https://acme.openai.azure.com/openai/deployments/embed-3/embeddings?api-version=2024-06-01"
        )
        let defaultVersion = ProviderEndpoint(kind: .azureOpenAI, baseURL: "https://acme.openai.azure.com")
        #expect(
            try defaultVersion.url(for: .completions, upstreamModel: "d")
                == "https://acme.openai.azure.com/openai/deployments/d/completions?api-version=2024-10-21"
        )
    }

    @Test("Anthropic and Gemini deployments answer 501 for now", arguments: [ProviderKind.anthropic, .gemini])
    func unsupportedKinds(kind: ProviderKind) {
        let endpoint = ProviderEndpoint(kind: kind, baseURL: "https://example.com", apiKey: "k")
        for operation in InferenceEndpoint.allCases {
            do throws(OpenAIError) {
                let url = try endpoint.url(for: operation, upstreamModel: "m")
                Issue.record("got \(url)")
            } catch {
                #expect(error.status == 501)
                #expect(error.code == "provider_not_supported")
                #expect(error.message.contains(kind.rawValue))
            }
        }
    }

    // MARK: Credentials

    @Test("OpenAI sends a bearer token and the optional organization and project")
    func openAIHeaders() {
        let endpoint = ProviderEndpoint(kind: .openai, baseURL: "https://api.openai.com/v1", apiKey: "sk-1", organization: "org-2", project: "proj-3")
        #expect(headers(endpoint) == ["authorization: Bearer sk-1", "openai-organization: org-2", "openai-project: proj-3"])
        #expect(headers(ProviderEndpoint(kind: .openai, baseURL: "x", apiKey: "sk-1")) == ["authorization: Bearer sk-1"])
    }

    @Test("each provider kind carries its key in its own header")
    func headersPerKind() {
        #expect(headers(ProviderEndpoint(kind: .engine, baseURL: "x")) == [])
        #expect(headers(ProviderEndpoint(kind: .engine, baseURL: "x", apiKey: "e")) == ["authorization: Bearer e"])
        #expect(headers(ProviderEndpoint(kind: .azureOpenAI, baseURL: "x", apiKey: "a", organization: "o")) == ["api-key: a"])
        #expect(headers(ProviderEndpoint(kind: .anthropic, baseURL: "x", apiKey: "c")) == ["x-api-key: c"])
        #expect(headers(ProviderEndpoint(kind: .gemini, baseURL: "x", apiKey: "g")) == ["x-goog-api-key: g"])
        for kind in ProviderKind.allCases {
            #expect(headers(ProviderEndpoint(kind: kind, baseURL: "x")) == [], "\(kind) without a key sends no credential")
        }
    }

    @Test("provider kinds: raw values and which speak OpenAI's format")
    func kinds() {
        #expect(ProviderKind(rawValue: "azure-openai") == .azureOpenAI)
        #expect(ProviderKind.allCases.filter(\.speaksOpenAIFormat) == [.openai, .azureOpenAI, .engine])
        #expect(InferenceEndpoint.chatCompletions.path == "chat/completions")
        #expect(InferenceEndpoint.allCases.filter(\.canStream) == [.chatCompletions, .completions])
    }
}
