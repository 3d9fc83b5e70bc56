import NIOCore

/// Token counts of one request, as the upstream reported them or as estimated.
public struct TokenUsage: Sendable, Equatable {
    public var promptTokens: Int
    /// Prompt tokens served from the provider's cache (a subset of `promptTokens`).
    public var cachedPromptTokens: Int
    public var completionTokens: Int
    /// Reasoning tokens (a subset of `completionTokens`), when reported.
    public var reasoningTokens: Int
    /// True when the upstream reported no usage and these counts are Switchyard's estimate.
    public var estimated: Bool

    /// The most tokens one count may hold. Upstreams report counts as they please; each is
    /// held to `0...largestCount`, so sums of a few counts (and prices times them) cannot
    /// overflow, and no report can credit a tenant with negative usage.
    public static let largestCount = 1 << 32

    public init(promptTokens: Int, cachedPromptTokens: Int = 0, completionTokens: Int, reasoningTokens: Int = 0, estimated: Bool = false) {
        self.promptTokens = Self.clamped(promptTokens)
        self.cachedPromptTokens = Self.clamped(cachedPromptTokens)
        self.completionTokens = Self.clamped(completionTokens)
        self.reasoningTokens = Self.clamped(reasoningTokens)
        self.estimated = estimated
    }

    /// A count held to `0...largestCount`.
    public static func clamped(_ count: Int) -> Int {
        min(max(0, count), largestCount)
    }

    /// The sum of counts as reported (absent ones count 0), each clamped first, so the sum
    /// cannot overflow whatever the upstream sent.
    public static func sum(_ counts: Int?...) -> Int {
        counts.reduce(0) { $0 + clamped($1 ?? 0) }
    }

    /// Prompt and completion tokens together: never overflows, since both are clamped.
    public var totalTokens: Int { promptTokens + completionTokens }

    /// A rough count for text whose tokens nobody reported: about four bytes a token.
    public static func estimateTokens(byteCount: Int) -> Int {
        byteCount <= 0 ? 0 : (byteCount + 3) / 4
    }
}

extension TokenUsage {
    /// Reads OpenAI's `usage` object (whose bytes are `range`), including the cached and
    /// reasoning token details. Returns nil when it is no object or lacks the counts.
    static func read(usageAt range: Range<Int>, scanner: JSONScanner) -> TokenUsage? {
        guard scanner.kind(at: range.lowerBound) == .object,
              let members = try? scanner.members(ofObjectAt: range)
        else { return nil }
        var prompt: Int?
        var completion: Int?
        var cached = 0
        var reasoning = 0
        for member in members {
            if scanner.key(member, equals: "prompt_tokens") {
                prompt = scanner.integer(at: member.value)
            } else if scanner.key(member, equals: "completion_tokens") {
                completion = scanner.integer(at: member.value)
            } else if scanner.key(member, equals: "prompt_tokens_details") {
                cached = detail("cached_tokens", in: member.value, scanner: scanner) ?? 0
            } else if scanner.key(member, equals: "completion_tokens_details") {
                reasoning = detail("reasoning_tokens", in: member.value, scanner: scanner) ?? 0
            }
        }
        guard let prompt else { return nil }
        return TokenUsage(
            promptTokens: prompt,
            cachedPromptTokens: cached,
            completionTokens: completion ?? 0,
            reasoningTokens: reasoning
        )
    }

    private static func detail(_ name: StaticString, in range: Range<Int>, scanner: JSONScanner) -> Int? {
        guard scanner.kind(at: range.lowerBound) == .object,
              let members = try? scanner.members(ofObjectAt: range)
        else { return nil }
        for member in members where scanner.key(member, equals: name) {
            return scanner.integer(at: member.value)
        }
        return nil
    }

    /// Reads the usage of a complete non-streaming OpenAI response body.
    public static func fromResponseBody(_ body: ByteBuffer) -> TokenUsage? {
        body.withUnsafeReadableBytes { raw in
            let scanner = JSONScanner(raw)
            guard let members = try? scanner.topLevelMembers() else { return nil }
            for member in members where scanner.key(member, equals: "usage") {
                return read(usageAt: member.value, scanner: scanner)
            }
            return nil
        }
    }
}
