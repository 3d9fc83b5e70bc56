/// The deterministic output of the simulated engine for one prompt: the completion's tokens
/// (one vocabulary word each) and the token counts that usage reports.
///
/// The same prompt always yields the same words, and a shorter limit yields a prefix of a
/// longer one, so tests can compare streamed and whole responses and benchmarks are repeatable.
struct Generation: Sendable, Equatable {
    /// Upper bound on a completion's length, whatever the request asks for.
    static let maximumTokens = 4096

    /// The completion as ids into ``Vocabulary/tokens``: a word, spaced except the first.
    let tokenIDs: [Int]
    /// Tokens in the prompt, as counted by ``PromptDigest``.
    let promptTokens: Int
    /// `"length"` when the request set a token limit (the completion always runs to it),
    /// `"stop"` when the engine's default length applied.
    let finishReason: String

    var completionTokens: Int { tokenIDs.count }
    var totalTokens: Int { promptTokens + completionTokens }
    /// The text of each token.
    var tokens: [String] { tokenIDs.map { Vocabulary.tokens[$0] } }
    /// The whole completion text.
    var text: String { tokens.joined() }

    /// Generates the completion for a prompt.
    /// - Parameters:
    ///   - prompt: Words and hash of the prompt.
    ///   - requestedTokens: `max_completion_tokens ?? max_tokens` from the request, if any.
    ///   - defaultMaxTokens: Length used when the request names none.
    init(prompt: PromptDigest, requestedTokens: Int?, defaultMaxTokens: Int) {
        let length = min(max(requestedTokens ?? defaultMaxTokens, 1), Self.maximumTokens)
        var random = SplitMix64(seed: prompt.hash)
        var tokenIDs: [Int] = []
        tokenIDs.reserveCapacity(length)
        for index in 0..<length {
            let word = Int(random.next() % UInt64(Vocabulary.words.count))
            tokenIDs.append(index == 0 ? word : word + Vocabulary.words.count)
        }
        self.tokenIDs = tokenIDs
        self.promptTokens = prompt.tokens
        self.finishReason = requestedTokens == nil ? "stop" : "length"
    }

    /// A deterministic unit vector for one embedding input.
    /// - Parameters:
    ///   - input: Words and hash of the input.
    ///   - dimensions: Length of the vector.
    static func embedding(for input: PromptDigest, dimensions: Int = 8) -> [Float] {
        var random = SplitMix64(seed: input.hash)
        var vector = (0..<dimensions).map { _ in
            // The top 24 bits give a float in [-1, 1) without rounding bias.
            Float(random.next() >> 40) / Float(1 << 23) - 1
        }
        let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
        if norm > 0 {
            vector = vector.map { $0 / norm }
        } else {
            vector[0] = 1
        }
        return vector
    }
}

// MARK: - Prompt digest

/// Token count and hash of a prompt, accumulated piece by piece so a chat's messages need
/// not be joined into one string.
///
/// A token is a whitespace-separated word (ASCII whitespace); a chat message adds 3 more for
/// its framing, as OpenAI's counting roughly does.
struct PromptDigest: Sendable {
    private(set) var tokens = 0
    private(set) var hash: UInt64 = FNV1a.offsetBasis

    /// Tokens a chat adds per message for role and separators.
    static let tokensPerMessage = 3

    /// Adds a piece of prompt text.
    mutating func add(text: String) {
        var inWord = false
        var words = 0
        var hash = self.hash
        for byte in text.utf8 {
            hash = FNV1a.combine(hash, byte)
            let isSpace = byte == 0x20 || (byte >= 0x09 && byte <= 0x0D)
            if !isSpace && !inWord { words += 1 }
            inWord = !isSpace
        }
        self.hash = hash
        self.tokens += words
    }

    /// Adds a prompt given as token ids: each id is one token.
    mutating func add(tokenIDs: [Int]) {
        for id in tokenIDs {
            var value = UInt64(bitPattern: Int64(id))
            for _ in 0..<8 {
                hash = FNV1a.combine(hash, UInt8(truncatingIfNeeded: value))
                value >>= 8
            }
        }
        tokens += tokenIDs.count
    }

    /// Ends one chat message: counts its framing tokens and separates it in the hash, so
    /// `["a b"]` and `["a", "b"]` differ.
    mutating func endMessage() {
        tokens += Self.tokensPerMessage
        hash = FNV1a.combine(hash, 0x1E)
    }
}

// MARK: - Hashing and randomness

/// 64-bit FNV-1a: tiny, fast and stable across runs and platforms (unlike `Hasher`).
enum FNV1a {
    static let offsetBasis: UInt64 = 0xcbf2_9ce4_8422_2325
    static let prime: UInt64 = 0x0000_0100_0000_01b3

    static func combine(_ hash: UInt64, _ byte: UInt8) -> UInt64 {
        (hash ^ UInt64(byte)) &* prime
    }

    static func hash(_ text: String) -> UInt64 {
        text.utf8.reduce(offsetBasis, combine)
    }
}

/// SplitMix64: spreads a seed into a well-mixed stream, so similar prompts get unrelated words.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        self.state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }
}

// MARK: - Vocabulary

/// The words completions are drawn from: plain ASCII, so they never need JSON escaping.
enum Vocabulary {
    static let words: [String] = [
        "the", "engine", "routes", "every", "request", "through", "a", "pool",
        "of", "replicas", "while", "tokens", "stream", "back", "to", "tenants",
        "and", "budgets", "settle", "after", "each", "call", "quietly", "fast",
        "model", "slot", "queue", "waits", "for", "capacity", "when", "demand",
        "rises", "cost", "is", "metered", "in", "micro", "units", "ledger",
        "keys", "rotate", "health", "checks", "pass", "latency", "stays", "low",
        "prompt", "cache", "warms", "up", "batch", "grows", "throughput", "peaks",
        "switchyard", "signals", "trains", "tracks", "yard", "moves", "freight", "on",
    ]

    /// Every token text: `words`, then `words` with the leading space that every token but
    /// a completion's first carries. A token id is an index into this array.
    static let tokens: [String] = words + words.map { " " + $0 }
}
