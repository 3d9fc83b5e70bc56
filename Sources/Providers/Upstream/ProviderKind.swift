/// The wire protocol a provider speaks.
public enum ProviderKind: String, Sendable, Codable, CaseIterable {
    case openai
    case azureOpenAI = "azure-openai"
    case anthropic
    case gemini
    /// A self-hosted OpenAI-compatible engine: vLLM, TGI, llama.cpp server, Ollama's `/v1`.
    case engine

    /// Whether requests and responses go through in OpenAI's format unchanged.
    public var speaksOpenAIFormat: Bool {
        switch self {
        case .openai, .azureOpenAI, .engine: true
        case .anthropic, .gemini: false
        }
    }
}
