import Testing

@testable import EngineSim

@Suite struct TokenPacerTests {
    @Test func firstTokenAfterTTFTThenOneEveryInterval() {
        let pacer = TokenPacer(timeToFirstToken: .milliseconds(200), tokensPerSecond: 50)
        #expect(pacer.offset(ofToken: 0) == .milliseconds(200))
        #expect(pacer.offset(ofToken: 1) == .milliseconds(220))
        #expect(pacer.offset(ofToken: 10) == .milliseconds(400))
        #expect(pacer.completionOffset(tokenCount: 11) == .milliseconds(400))
    }

    @Test func noPacingWhenRateAndTTFTAreZero() {
        let pacer = TokenPacer(timeToFirstToken: .zero, tokensPerSecond: 0)
        #expect(pacer.offset(ofToken: 0) == nil)
        #expect(pacer.offset(ofToken: 5) == nil)
        #expect(pacer.completionOffset(tokenCount: 16) == .zero)
    }

    @Test func ttftOnlyDelaysTheFirstToken() {
        let pacer = TokenPacer(timeToFirstToken: .milliseconds(50), tokensPerSecond: -1)
        #expect(pacer.offset(ofToken: 0) == .milliseconds(50))
        #expect(pacer.offset(ofToken: 3) == nil)
        #expect(pacer.completionOffset(tokenCount: 16) == .milliseconds(50))
    }

    @Test func rateWithoutTTFTEmitsTheFirstTokenAtOnce() {
        let pacer = TokenPacer(timeToFirstToken: .zero, tokensPerSecond: 10)
        #expect(pacer.offset(ofToken: 0) == nil)
        #expect(pacer.offset(ofToken: 2) == .milliseconds(200))
        #expect(pacer.completionOffset(tokenCount: 0) == .zero)
    }

    @Test func absurdRatesDoNotOverflow() {
        #expect(TokenPacer(timeToFirstToken: .zero, tokensPerSecond: 1e-30).interTokenDelay == .seconds(86_400))
        #expect(TokenPacer(timeToFirstToken: .zero, tokensPerSecond: .infinity).interTokenDelay == nil)
        #expect(TokenPacer(timeToFirstToken: .zero, tokensPerSecond: .nan).interTokenDelay == nil)
    }
}
