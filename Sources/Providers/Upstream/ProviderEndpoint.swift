/// Where and how to call one provider: its base URL and the credential headers it wants.
public struct ProviderEndpoint: Sendable {
    public var kind: ProviderKind
    /// The base URL without a trailing slash, e.g. `https://api.openai.com/v1` or, for
    /// Azure, the resource URL `https://NAME.openai.azure.com`.
    public var baseURL: String
    /// The provider key; nil for engines that need none.
    public var apiKey: String?
    public var organization: String?
    public var project: String?
    /// Azure's `api-version` query value.
    public var apiVersion: String?

    public init(
        kind: ProviderKind,
        baseURL: String,
        apiKey: String? = nil,
        organization: String? = nil,
        project: String? = nil,
        apiVersion: String? = nil
    ) {
        self.kind = kind
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.apiKey = apiKey
        self.organization = organization
        self.project = project
        self.apiVersion = apiVersion
    }

    /// The URL for one operation on one upstream model.
    ///
    /// - Throws: `OpenAIError` (501) for provider kinds whose translation is not available.
    public func url(for endpoint: InferenceEndpoint, upstreamModel: String) throws(OpenAIError) -> String {
        switch kind {
        case .openai, .engine:
            return "\(baseURL)/\(endpoint.path)"
        case .azureOpenAI:
            let version = apiVersion ?? "2024-10-21"
            return "\(baseURL)/openai/deployments/\(upstreamModel)/\(endpoint.path)?api-version=\(version)"
        case .anthropic, .gemini:
            throw OpenAIError(
                status: 501,
                message: "Providers of kind '\(kind.rawValue)' have no OpenAI-style URL; their adapter builds the request.",
                type: "server_error",
                code: "provider_not_supported"
            )
        }
    }

    /// The headers that carry the provider key and account selection.
    public var credentialHeaders: [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = []
        switch kind {
        case .openai, .engine:
            if let apiKey { headers.append(("authorization", "Bearer \(apiKey)")) }
            if let organization { headers.append(("openai-organization", organization)) }
            if let project { headers.append(("openai-project", project)) }
        case .azureOpenAI:
            if let apiKey { headers.append(("api-key", apiKey)) }
        case .anthropic:
            if let apiKey { headers.append(("x-api-key", apiKey)) }
        case .gemini:
            if let apiKey { headers.append(("x-goog-api-key", apiKey)) }
        }
        return headers
    }
}
