import Foundation
import NIOCore
import Testing

@testable import Providers

@Suite("TokenUsage")
struct TokenUsageTests {
    private func usage(_ json: String) -> TokenUsage? {
        TokenUsage.fromResponseBody(ByteBuffer(string: json))
    }

    @Test("reads the usage of a recorded OpenAI chat completion")
    func recordedResponse() throws {
        let bytes = try Fixtures.bytes("openai/json/vercel.openai-text.json")
        let recorded = try #require(try foundationObject(bytes)["usage"] as? [String: Any])
        let promptDetails = try #require(recorded["prompt_tokens_details"] as? [String: Any])
        let completionDetails = try #require(recorded["completion_tokens_details"] as? [String: Any])
        let expected = TokenUsage(
            promptTokens: try #require(recorded["prompt_tokens"] as? Int),
            cachedPromptTokens: try #require(promptDetails["cached_tokens"] as? Int),
            completionTokens: try #require(recorded["completion_tokens"] as? Int),
            reasoningTokens: try #require(completionDetails["reasoning_tokens"] as? Int)
        )

        var buffer = ByteBuffer()
        buffer.writeBytes(bytes)
        #expect(TokenUsage.fromResponseBody(buffer) == expected)
        #expect(TokenUsage.fromResponseBody(offsetBuffer(bytes)) == expected)
        #expect(expected.promptTokens > 0 && expected.completionTokens > 0)
    }

    @Test("reads cached and reasoning token details")
    func details() {
        let read = usage(#"""
            {"id":"x","usage":{"completion_tokens_details":{"reasoning_tokens":30,"audio_tokens":0},
             "prompt_tokens":100,"completion_tokens":50,"total_tokens":150,
             "prompt_tokens_details":{"audio_tokens":0,"cached_tokens":40}},"choices":[]}
            """#)
        #expect(read == TokenUsage(promptTokens: 100, cachedPromptTokens: 40, completionTokens: 50, reasoningTokens: 30))
        #expect(read?.estimated == false)
    }

    @Test("missing details and completion count default to zero")
    func defaults() {
        #expect(usage(#"{"usage":{"prompt_tokens":8}}"#) == TokenUsage(promptTokens: 8, completionTokens: 0))
        #expect(
            usage(#"{"usage":{"prompt_tokens":8,"completion_tokens":2,"prompt_tokens_details":null,"completion_tokens_details":null}}"#)
                == TokenUsage(promptTokens: 8, completionTokens: 2)
        )
    }

    @Test(
        "is nil when there is no usage to read",
        arguments: [
            #"{"id":"x","choices":[]}"#, #"{"usage":null}"#, #"{"usage":{}}"#, #"{"usage":{"completion_tokens":3}}"#,
            #"{"usage":[1,2]}"#, #"{"usage":{"prompt_tokens":1}"#, "", "not json", #"[{"usage":{"prompt_tokens":1}}]"#,
        ]
    )
    func noUsage(json: String) {
        #expect(usage(json) == nil)
    }

    @Test("only the top-level usage counts")
    func nestedUsageIgnored() {
        #expect(usage(#"{"choices":[{"usage":{"prompt_tokens":99}}]}"#) == nil)
        #expect(
            usage(#"{"meta":{"usage":{"prompt_tokens":99}},"usage":{"prompt_tokens":3,"completion_tokens":4}}"#)
                == TokenUsage(promptTokens: 3, completionTokens: 4)
        )
    }

    @Test(
        "estimates about four bytes a token, rounding up",
        arguments: [(-5, 0), (0, 0), (1, 1), (3, 1), (4, 1), (5, 2), (8, 2), (9, 3), (4_000, 1_000), (4_001, 1_001)]
    )
    func estimate(byteCount: Int, tokens: Int) {
        #expect(TokenUsage.estimateTokens(byteCount: byteCount) == tokens)
    }

    // MARK: Hostile counts

    @Test("counts an upstream reports are held to 0...largestCount, so sums cannot overflow")
    func countsAreClamped() throws {
        let largest = TokenUsage.largestCount
        let read = try #require(self.usage(
            #"{"usage":{"prompt_tokens":9223372036854775807,"completion_tokens":-9223372036854775808,"# +
            #""prompt_tokens_details":{"cached_tokens":-1},"completion_tokens_details":{"reasoning_tokens":9223372036854775807}}}"#
        ))
        #expect(read == TokenUsage(promptTokens: largest, cachedPromptTokens: 0, completionTokens: 0, reasoningTokens: largest))
        #expect(read.totalTokens == largest)
        #expect(TokenUsage.sum(Int.max, Int.max, nil, Int.min) == 2 * largest)
        #expect(TokenUsage(promptTokens: Int.max, completionTokens: Int.max).totalTokens == 2 * largest)
    }
}
