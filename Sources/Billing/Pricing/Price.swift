/// What a deployment costs, in integer micro-units of `currency` per million tokens.
public struct Price: Sendable, Equatable {
    public var currency: String
    public var inputPerMillion: Int64
    /// For prompt tokens served from the provider's cache.
    public var cachedInputPerMillion: Int64
    public var outputPerMillion: Int64

    public init(currency: String, inputPerMillion: Int64, cachedInputPerMillion: Int64, outputPerMillion: Int64) {
        self.currency = currency
        self.inputPerMillion = inputPerMillion
        self.cachedInputPerMillion = cachedInputPerMillion
        self.outputPerMillion = outputPerMillion
    }

    /// The cost in micro-units, rounded half up to a whole micro-unit.
    ///
    /// `cachedTokens` are part of `promptTokens` (as providers report them) and are
    /// charged at the cached rate instead of the input rate.
    public func cost(promptTokens: Int, cachedTokens: Int, completionTokens: Int) -> Int64 {
        let cached = Int64(max(0, min(cachedTokens, promptTokens)))
        let uncached = Int64(max(0, promptTokens)) - cached
        let output = Int64(max(0, completionTokens))
        // Whole millions of tokens and the rest are priced apart, so that no product
        // can overflow for any token count a request could carry; absurd counts saturate.
        var whole: Int64 = 0
        var millionths: Int64 = 0
        for (tokens, perMillion) in [(uncached, inputPerMillion), (cached, cachedInputPerMillion), (output, outputPerMillion)] {
            let (millions, rest) = tokens.quotientAndRemainder(dividingBy: 1_000_000)
            whole = Self.saturatingAdd(whole, Self.saturatingMultiply(millions, perMillion))
            millionths = Self.saturatingAdd(millionths, Self.saturatingMultiply(rest, perMillion))
        }
        let (carried, remainder) = millionths.quotientAndRemainder(dividingBy: 1_000_000)
        return Self.saturatingAdd(Self.saturatingAdd(whole, carried), remainder >= 500_000 ? 1 : 0)
    }

    private static func saturatingMultiply(_ lhs: Int64, _ rhs: Int64) -> Int64 {
        let (product, overflow) = lhs.multipliedReportingOverflow(by: rhs)
        return overflow ? .max : product
    }

    private static func saturatingAdd(_ lhs: Int64, _ rhs: Int64) -> Int64 {
        let (sum, overflow) = lhs.addingReportingOverflow(rhs)
        return overflow ? .max : sum
    }

    /// A price of zero, for deployments without one.
    public static func free(currency: String = "USD") -> Price {
        Price(currency: currency, inputPerMillion: 0, cachedInputPerMillion: 0, outputPerMillion: 0)
    }
}

/// Prices by deployment name.
public struct PriceTable: Sendable {
    private var prices: [String: Price]
    public var defaultCurrency: String

    public init(_ prices: [String: Price], defaultCurrency: String = "USD") {
        self.prices = prices
        self.defaultCurrency = defaultCurrency
    }

    public func price(forDeployment deployment: String) -> Price {
        prices[deployment] ?? .free(currency: defaultCurrency)
    }
}
