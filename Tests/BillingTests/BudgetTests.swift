import Foundation
import Testing

@testable import Billing

@Suite("Budgets")
struct BudgetTests {
    private func budget(tokens: Int? = 1_000, micros: Int64? = nil, thresholds: [Double] = [0.5, 0.8]) -> Budget {
        Budget(scope: .tenant("ten_a"), tenantID: "ten_a", period: .month, limitTokens: tokens, limitMicros: micros, softThresholds: thresholds)
    }

    private func usage(_ tokens: Int, _ micros: Int64 = 0) -> BudgetUsage {
        BudgetUsage(tokens: tokens, micros: micros)
    }

    private func alerts(_ budget: Budget, _ before: BudgetUsage, _ after: BudgetUsage) -> [String] {
        budget.alerts(from: before, to: after).map { "\($0.alert.rawValue)@\($0.threshold)" }
    }

    // MARK: Alerts

    @Test("a threshold alerts when usage moves from below its point to at or above it")
    func thresholdPoints() {
        let budget = budget()
        #expect(alerts(budget, usage(0), usage(499)) == [])
        #expect(alerts(budget, usage(499), usage(500)) == ["budget.threshold_reached@0.5"])
        #expect(alerts(budget, usage(500), usage(501)) == [])
        #expect(alerts(budget, usage(501), usage(799)) == [])
        #expect(alerts(budget, usage(799), usage(800)) == ["budget.threshold_reached@0.8"])
        #expect(alerts(budget, usage(999), usage(1_000)) == ["budget.exceeded@0.0"])
        #expect(alerts(budget, usage(1_000), usage(5_000)) == [])
        // One large step passes everything at once, thresholds first.
        #expect(alerts(budget, usage(0), usage(1_200)) == [
            "budget.threshold_reached@0.5", "budget.threshold_reached@0.8", "budget.exceeded@0.0",
        ])
    }

    @Test("either limit passes a threshold, and the threshold alerts once for both")
    func bothLimits() {
        let budget = budget(tokens: 1_000, micros: 10_000)
        #expect(alerts(budget, usage(100, 4_999), usage(200, 5_000)) == ["budget.threshold_reached@0.5"])
        #expect(alerts(budget, usage(499, 100), usage(500, 200)) == ["budget.threshold_reached@0.5"])
        #expect(alerts(budget, usage(499, 4_999), usage(500, 5_000)) == ["budget.threshold_reached@0.5"])
        #expect(alerts(budget, usage(10, 9_999), usage(11, 10_000)) == ["budget.exceeded@0.0"])
        let costOnly = self.budget(tokens: nil, micros: 10_000)
        #expect(alerts(costOnly, usage(0, 0), usage(1_000_000, 4_999)) == [])
        #expect(alerts(costOnly, usage(0, 0), usage(0, 8_000)) == ["budget.threshold_reached@0.5", "budget.threshold_reached@0.8"])
    }

    @Test("threshold points are computed in integers, to a millionth, rounding up")
    func points() {
        #expect(Budget.point(0.7, of: 100) == 70)
        #expect(Budget.point(0.8, of: 1_000) == 800)
        #expect(Budget.point(0.5, of: 3) == 2)
        // A third is taken as 0.333333.
        #expect(Budget.point(1.0 / 3, of: 3_000_000) == 999_999)
        #expect(Budget.point(0.9, of: 1) == 1)
        #expect(Budget.point(0.25, of: Int64.max) == Int64.max / 4 + 1)
        #expect(Budget.point(0.999_999, of: 1_000_000_000_000) == 999_999_000_000)
    }

    @Test("an absurdly large usage saturates instead of trapping")
    func saturation() {
        #expect(usage(.max, .max).adding(usage(1, 1)) == usage(.max, .max))
    }

    // MARK: Validation

    @Test("validation sorts and dedupes thresholds and refuses impossible budgets")
    func validation() throws {
        #expect(try budget(thresholds: [0.8, 0.5, 0.8]).validated().softThresholds == [0.5, 0.8])
        #expect(try budget(tokens: 0).validated().limitTokens == 0)
        func refused(_ budget: Budget) -> Bool {
            (try? budget.validated()) == nil
        }
        #expect(refused(budget(tokens: nil, micros: nil)))
        #expect(refused(budget(tokens: -1)))
        #expect(refused(budget(micros: -1)))
        #expect(refused(budget(thresholds: [0])))
        #expect(refused(budget(thresholds: [1])))
        #expect(refused(budget(thresholds: [0.5, 1.5])))
        #expect(refused(budget(thresholds: [.nan])))
        #expect(refused(Budget(scope: .quota("ten_a"), tenantID: "ten_a", period: .month, limitTokens: 1)))
        #expect(refused(Budget(scope: .tenant("ten_b"), tenantID: "ten_a", period: .month, limitTokens: 1)))
        #expect(!refused(Budget(scope: .key("key_1"), tenantID: "ten_a", period: .day, limitMicros: 1)))
    }

    // MARK: Scopes

    @Test("scopes round-trip through their stored kind and id")
    func scopes() {
        for scope in [BudgetScope.tenant("ten_a"), .key("key_a"), .quota("ten_a")] {
            #expect(BudgetScope(kind: scope.kind, id: scope.id) == scope)
        }
        #expect(BudgetScope.key("key_a").kind == "key")
        #expect(BudgetScope(kind: "team", id: "x") == nil)
    }
}
