import Testing

@testable import Billing

@Suite("Billing terms")
struct BillingTermsTests {
    private let terms = BillingTerms(monthlyQuotaTokens: 1_000, overagePerMillion: 2_000_000)

    @Test("only tokens beyond the quota are billed")
    func beyondQuota() {
        #expect(terms.billedMicros(tokens: 600, before: 0, currency: "USD") == 0)
        #expect(terms.billedMicros(tokens: 400, before: 600, currency: "USD") == 0)
        #expect(terms.billedMicros(tokens: 600, before: 600, currency: "USD") == 400)
        #expect(terms.billedMicros(tokens: 300, before: 1_200, currency: "USD") == 600)
        #expect(terms.billedMicros(tokens: 0, before: 5_000, currency: "USD") == 0)
    }

    @Test("no quota bundles nothing; no overage price bills nothing")
    func missingParts() {
        #expect(BillingTerms(monthlyQuotaTokens: nil, overagePerMillion: 2_000_000).billedMicros(tokens: 10, before: 0, currency: "USD") == 20)
        #expect(BillingTerms(monthlyQuotaTokens: 1_000, overagePerMillion: nil).billedMicros(tokens: 5_000, before: 0, currency: "USD") == 0)
        #expect(BillingTerms(monthlyQuotaTokens: nil, overagePerMillion: nil).billedMicros(tokens: 5_000, before: 0, currency: "USD") == 0)
    }

    @Test("amounts round half up to a micro-unit and saturate instead of overflowing")
    func rounding() {
        let perToken = BillingTerms(monthlyQuotaTokens: 0, overagePerMillion: 1_500_000)
        #expect(perToken.billedMicros(tokens: 1, before: 0, currency: "USD") == 2)
        #expect(perToken.billedMicros(tokens: 3, before: 0, currency: "USD") == 5)
        let cheap = BillingTerms(monthlyQuotaTokens: 0, overagePerMillion: 333_333)
        #expect(cheap.billedMicros(tokens: 7, before: 0, currency: "USD") == 2)
        let absurd = BillingTerms(monthlyQuotaTokens: nil, overagePerMillion: .max)
        #expect(absurd.billedMicros(tokens: .max, before: 0, currency: "USD") == .max)
        #expect(absurd.billedMicros(tokens: .max, before: .max, currency: "USD") == 0)
    }
}
