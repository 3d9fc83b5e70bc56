import Testing

@testable import Directory

@Suite("Identifier")
struct IdentifierTests {
    private let alphabet = Set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

    @Test("random base62 text has the asked length and only base62 characters", arguments: [0, 1, 20, 43, 256])
    func lengthAndAlphabet(length: Int) {
        let text = Identifier.randomBase62(length: length)
        #expect(text.count == length)
        #expect(text.utf8.count == length)
        #expect(text.allSatisfy { alphabet.contains($0) })
    }

    @Test("every base62 character turns up, and identifiers do not repeat")
    func coverage() {
        let texts = (0..<1_000).map { _ in Identifier.randomBase62(length: 62) }
        // 62,000 draws: the chance that any character never appears is below 1e-400.
        #expect(Set(texts.joined()) == alphabet)
        #expect(Set(texts).count == texts.count)
    }

    @Test("identifiers are a prefix, an underscore and twenty base62 characters by default")
    func make() {
        let id = Identifier.make(prefix: "ten")
        #expect(id.hasPrefix("ten_"))
        #expect(id.count == 24)
        #expect(id.dropFirst(4).allSatisfy { alphabet.contains($0) })
        #expect(Identifier.make(prefix: "key", length: 8).count == 12)
    }

    @Test("the alphabet is the 62 digits and letters")
    func alphabetTable() {
        #expect(Identifier.alphabet.count == 62)
        #expect(Set(Identifier.alphabet.map { Character(Unicode.Scalar($0)) }) == alphabet)
    }
}
