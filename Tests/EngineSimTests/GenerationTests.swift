import Testing

@testable import EngineSim

@Suite struct GenerationTests {
    private func digest(_ texts: String...) -> PromptDigest {
        var digest = PromptDigest()
        for text in texts { digest.add(text: text) }
        return digest
    }

    @Test func sameTextForSamePrompt() {
        let first = Generation(prompt: digest("Tell me a story"), requestedTokens: 12, defaultMaxTokens: 16)
        let second = Generation(prompt: digest("Tell me a story"), requestedTokens: 12, defaultMaxTokens: 16)
        #expect(first == second)
        #expect(first.completionTokens == 12)
    }

    @Test func differentPromptsGiveDifferentText() {
        let first = Generation(prompt: digest("Tell me a story"), requestedTokens: 12, defaultMaxTokens: 16)
        let second = Generation(prompt: digest("Tell me a joke"), requestedTokens: 12, defaultMaxTokens: 16)
        #expect(first.text != second.text)
    }

    @Test func tokensAreWordsWithLeadingSpacesAfterTheFirst() {
        let generation = Generation(prompt: digest("hi"), requestedTokens: 20, defaultMaxTokens: 16)
        #expect(!generation.tokens[0].hasPrefix(" "))
        #expect(generation.tokens.dropFirst().allSatisfy { $0.hasPrefix(" ") && $0.count > 1 })
        #expect(generation.text.split(separator: " ").count == 20)
    }

    @Test func shorterLimitGivesPrefix() {
        let short = Generation(prompt: digest("prefix test"), requestedTokens: 5, defaultMaxTokens: 16)
        let long = Generation(prompt: digest("prefix test"), requestedTokens: 50, defaultMaxTokens: 16)
        #expect(Array(long.tokens.prefix(5)) == short.tokens)
    }

    @Test func lengthFollowsLimitOrDefaultAndIsClamped() {
        let prompt = digest("x")
        #expect(Generation(prompt: prompt, requestedTokens: nil, defaultMaxTokens: 7).completionTokens == 7)
        #expect(Generation(prompt: prompt, requestedTokens: 0, defaultMaxTokens: 7).completionTokens == 1)
        #expect(Generation(prompt: prompt, requestedTokens: -3, defaultMaxTokens: 7).completionTokens == 1)
        #expect(Generation(prompt: prompt, requestedTokens: 1_000_000, defaultMaxTokens: 7).completionTokens == Generation.maximumTokens)
    }

    @Test func finishReasonIsLengthOnlyWhenTheRequestSetALimit() {
        #expect(Generation(prompt: digest("x"), requestedTokens: 3, defaultMaxTokens: 7).finishReason == "length")
        #expect(Generation(prompt: digest("x"), requestedTokens: nil, defaultMaxTokens: 7).finishReason == "stop")
    }

    @Test func promptTokensCountWhitespaceSeparatedWords() {
        #expect(digest("").tokens == 0)
        #expect(digest("   ").tokens == 0)
        #expect(digest("one").tokens == 1)
        #expect(digest("  one two\tthree\nfour\r\n five  ").tokens == 5)
        #expect(digest("héllo wörld").tokens == 2)
        #expect(digest("a b", "c").tokens == 3)
    }

    @Test func chatMessagesAddThreeTokensEach() throws {
        let request = try decodeJSON(
            ChatCompletionRequest.self,
            from: body(#"{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hello there"},{"type":"image_url","image_url":{"url":"x"}}]},{"role":"assistant","content":null}]}"#)
        )
        #expect(request.promptDigest().tokens == 2 + 2 + 0 + 3 * 3)
    }

    @Test func messageBoundariesChangeTheHash() {
        var joined = PromptDigest()
        joined.add(text: "a b")
        joined.endMessage()
        var split = PromptDigest()
        split.add(text: "a b")
        split.endMessage()
        split.add(text: "")
        split.endMessage()
        #expect(joined.hash != split.hash)
    }

    @Test func promptInputForms() throws {
        let string = try decodeJSON(TextCompletionRequest.self, from: body(#"{"prompt":"one two three"}"#))
        #expect(string.prompt?.combinedDigest().tokens == 3)
        let strings = try decodeJSON(TextCompletionRequest.self, from: body(#"{"prompt":["one two","three"]}"#))
        #expect(strings.prompt?.combinedDigest().tokens == 3)
        let ids = try decodeJSON(TextCompletionRequest.self, from: body(#"{"prompt":[1,2,3,4]}"#))
        #expect(ids.prompt?.combinedDigest().tokens == 4)
        let batches = try decodeJSON(EmbeddingRequest.self, from: body(#"{"input":[[1,2],[3]]}"#))
        #expect(batches.input?.digests().map(\.tokens) == [2, 1])
    }

    @Test func embeddingsAreDeterministicUnitVectors() {
        let first = Generation.embedding(for: digest("embed me"))
        let again = Generation.embedding(for: digest("embed me"))
        let other = Generation.embedding(for: digest("something else"))
        #expect(first == again)
        #expect(first != other)
        #expect(first.count == 8)
        let norm = first.reduce(0) { $0 + $1 * $1 }.squareRoot()
        #expect(abs(norm - 1) < 1e-5)
    }

    @Test func fnv1aMatchesReferenceValues() {
        #expect(FNV1a.hash("") == 0xcbf2_9ce4_8422_2325)
        #expect(FNV1a.hash("a") == 0xaf63_dc4c_8601_ec8c)
        #expect(FNV1a.hash("foobar") == 0x8594_4171_f739_67e8)
    }
}
