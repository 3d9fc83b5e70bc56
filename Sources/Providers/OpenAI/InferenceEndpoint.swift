/// The OpenAI-compatible operations Switchyard serves.
public enum InferenceEndpoint: String, Sendable, CaseIterable {
    case chatCompletions = "chat/completions"
    case completions
    case embeddings

    /// The path below an OpenAI-style base URL (one that ends in `/v1`).
    public var path: String { rawValue }

    /// Whether requests of this kind may ask for a stream.
    public var canStream: Bool { self != .embeddings }
}
