import Testing

@testable import Billing

@Suite("Price")
struct PriceTests {
    /// $2.50 / $1.25 cached / $10.00 per million tokens, in micro-dollars.
    private let gpt4o = Price(currency: "USD", inputPerMillion: 2_500_000, cachedInputPerMillion: 1_250_000, outputPerMillion: 10_000_000)

    @Test("charges uncached input, cached input and output at their rates")
    func arithmetic() {
        // 600 × 2.5 + 400 × 1.25 + 500 × 10 = 1500 + 500 + 5000 micro-dollars.
        #expect(gpt4o.cost(promptTokens: 1_000, cachedTokens: 400, completionTokens: 500) == 7_000)
        #expect(gpt4o.cost(promptTokens: 1_000, cachedTokens: 0, completionTokens: 0) == 2_500)
        #expect(gpt4o.cost(promptTokens: 1_000, cachedTokens: 1_000, completionTokens: 0) == 1_250)
        #expect(gpt4o.cost(promptTokens: 0, cachedTokens: 0, completionTokens: 1_000_000) == 10_000_000)
    }

    @Test("caching makes a request cheaper, never dearer")
    func cachedIsCheaper() {
        let uncached = gpt4o.cost(promptTokens: 10_000, cachedTokens: 0, completionTokens: 100)
        let cached = gpt4o.cost(promptTokens: 10_000, cachedTokens: 8_000, completionTokens: 100)
        #expect(cached < uncached)
        #expect(uncached - cached == 8_000 * (2_500_000 - 1_250_000) / 1_000_000)
    }

    @Test(
        "rounds half up to a whole micro-unit",
        arguments: [
            (499_999, 0 as Int64), (500_000, 1), (500_001, 1), (1_000_000, 1), (1_499_999, 1), (1_500_000, 2),
            (2_500_000, 3), (3_500_000, 4),
        ]
    )
    func roundsHalfUp(tokens: Int, micros: Int64) {
        // One micro-unit per million tokens: the exact cost is tokens / 1_000_000.
        let price = Price(currency: "USD", inputPerMillion: 1, cachedInputPerMillion: 1, outputPerMillion: 1)
        #expect(price.cost(promptTokens: tokens, cachedTokens: 0, completionTokens: 0) == micros)
        #expect(price.cost(promptTokens: 0, cachedTokens: 0, completionTokens: tokens) == micros)
        #expect(price.cost(promptTokens: tokens, cachedTokens: tokens, completionTokens: 0) == micros)
    }

    @Test("sums the parts before rounding")
    func roundsOnce() {
        // 0.4 + 0.4 micro-units: rounding each part would give 0; the sum rounds to 1.
        let price = Price(currency: "USD", inputPerMillion: 400_000, cachedInputPerMillion: 0, outputPerMillion: 400_000)
        #expect(price.cost(promptTokens: 1, cachedTokens: 0, completionTokens: 1) == 1)
    }

    @Test("zero tokens or a free price cost nothing")
    func zero() {
        #expect(gpt4o.cost(promptTokens: 0, cachedTokens: 0, completionTokens: 0) == 0)
        #expect(Price.free().cost(promptTokens: 1_000_000, cachedTokens: 10, completionTokens: 1_000_000) == 0)
        #expect(Price.free().currency == "USD")
        #expect(Price.free(currency: "EUR").currency == "EUR")
    }

    @Test("cached tokens beyond the prompt and negative counts are clamped")
    func clamps() {
        #expect(gpt4o.cost(promptTokens: 100, cachedTokens: 500, completionTokens: 0) == gpt4o.cost(promptTokens: 100, cachedTokens: 100, completionTokens: 0))
        #expect(gpt4o.cost(promptTokens: -100, cachedTokens: -5, completionTokens: -1) == 0)
        #expect(gpt4o.cost(promptTokens: 1_000, cachedTokens: -5, completionTokens: 0) == 2_500)
    }

    @Test("large requests at expensive prices do not overflow")
    func largeNumbers() {
        // $150 / $75 / $600 per million tokens.
        let expensive = Price(currency: "USD", inputPerMillion: 150_000_000, cachedInputPerMillion: 75_000_000, outputPerMillion: 600_000_000)
        #expect(
            expensive.cost(promptTokens: 2_000_000_000, cachedTokens: 1_000_000_000, completionTokens: 1_000_000_000)
                == 150_000_000_000 + 75_000_000_000 + 600_000_000_000
        )
        let tokens = 10_000_000_000
        #expect(expensive.cost(promptTokens: 0, cachedTokens: 0, completionTokens: tokens) == 6_000_000_000_000)
    }

    @Test(
        "a cost that fits in Int64 is computed even when tokens × price per million does not",
    )
    func intermediateOverflow() {
        // 10^12 output tokens at $10 per million: exactly 10^13 micro-dollars, but 10^19 before the division.
        let price = Price(currency: "USD", inputPerMillion: 2_500_000, cachedInputPerMillion: 1_250_000, outputPerMillion: 10_000_000)
        #expect(price.cost(promptTokens: 0, cachedTokens: 0, completionTokens: 1_000_000_000_000) == 10_000_000_000_000)
    }

    @Test("a price table falls back to a free price in its default currency")
    func table() {
        let table = PriceTable(["openai-gpt-4o": gpt4o], defaultCurrency: "EUR")
        #expect(table.price(forDeployment: "openai-gpt-4o") == gpt4o)
        #expect(table.price(forDeployment: "llama-local") == .free(currency: "EUR"))
        #expect(PriceTable([:]).price(forDeployment: "x").currency == "USD")
    }
}
