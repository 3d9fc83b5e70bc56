import Foundation
import Testing

@testable import Billing

/// GPU pool cost by occupancy: the largest-remainder arithmetic, the pool report, and the
/// allocation report with `includeGPU`.
@Suite("GPU occupancy cost")
struct OccupancyCostTests {
    // MARK: Largest remainder

    @Test("parts sum exactly to the total, each its quota rounded down or up")
    func largestRemainderIsExact() {
        var random = ReportTestRandom(seed: 99)
        for _ in 0..<2_000 {
            let total = Int64.random(in: 0...1_000_000_000, using: &random)
            let weights = (0..<Int.random(in: 1...12, using: &random)).map { _ in Int64.random(in: 0...5_000_000_000, using: &random) }
            let parts = Apportionment.largestRemainder(total, weights: weights)
            let sum = weights.reduce(0, +)
            #expect(parts.count == weights.count)
            if sum == 0 {
                #expect(parts.allSatisfy { $0 == 0 })
                continue
            }
            #expect(parts.reduce(0, +) == total)
            for (part, weight) in zip(parts, weights) {
                let exact: Double = Double(total) * Double(weight) / Double(sum)
                #expect(Double(part) >= exact.rounded(.down) - 1 && Double(part) <= exact.rounded(.up) + 1)
                if weight == 0 { #expect(part == 0) }
            }
        }
    }

    @Test("edge cases: nothing to split, no weight, ties, exact division, huge numbers")
    func largestRemainderEdges() {
        #expect(Apportionment.largestRemainder(0, weights: [3, 1]) == [0, 0])
        #expect(Apportionment.largestRemainder(10, weights: []) == [])
        #expect(Apportionment.largestRemainder(10, weights: [0, 0]) == [0, 0])
        // One unit left over three equal remainders goes to the first.
        #expect(Apportionment.largestRemainder(10, weights: [1, 1, 1]) == [4, 3, 3])
        #expect(Apportionment.largestRemainder(2, weights: [1, 1, 1]) == [1, 1, 0])
        // The largest remainder wins over the earlier part.
        #expect(Apportionment.largestRemainder(10, weights: [1, 2]) == [3, 7])
        #expect(Apportionment.largestRemainder(100, weights: [3, 1]) == [75, 25])
        #expect(Apportionment.largestRemainder(1, weights: [0, 5, 0]) == [0, 1, 0])
        // Negative amounts and weights count as nothing.
        #expect(Apportionment.largestRemainder(-5, weights: [1, 1]) == [0, 0])
        #expect(Apportionment.largestRemainder(9, weights: [-4, 3]) == [0, 9])
        // Products past 64 bits are exact in 128.
        let huge = Apportionment.largestRemainder(Int64.max, weights: [Int64.max, Int64.max / 3, 7])
        #expect(huge.reduce(0) { $0.addingReportingOverflow($1).partialValue } == Int64.max)
        // 7 × 3/4 of the total's share per unit of weight: 5.25, rounded either way.
        #expect((5...6).contains(huge[2]))
        // Weights summing past 64 bits keep their proportions.
        #expect(Apportionment.largestRemainder(4, weights: [Int64.max, Int64.max, Int64.max, Int64.max]) == [1, 1, 1, 1])
    }

    @Test("occupants pay for what they held of the capacity; past capacity all is split by occupancy")
    func occupancySplit() {
        let split = OccupancySplit.split(cost: 20_000_000, capacity: 288_000_000, occupancy: [54_000_000, 18_000_000])
        #expect(split.shares == [3_750_000, 1_250_000])
        #expect(split.rest == 15_000_000)
        #expect(split.fraction(54_000_000) == 0.1875)
        // Others' occupancy is in the rest, and counts against capacity.
        let one = OccupancySplit.split(cost: 20_000_000, capacity: 288_000_000, occupancy: [54_000_000], unshownOccupancy: 18_000_000)
        #expect(one.shares == [3_750_000] && one.rest == 16_250_000)
        // Held more than offered (the pool has shrunk): no idle cost.
        let over = OccupancySplit.split(cost: 1_000, capacity: 100, occupancy: [150, 50])
        #expect(over.shares == [750, 250] && over.rest == 0 && over.denominator == 200)
        let none = OccupancySplit.split(cost: 999, capacity: 0, occupancy: [])
        #expect(none.shares == [] && none.rest == 999)
        let odd = OccupancySplit.split(cost: 10, capacity: 3, occupancy: [1, 1])
        #expect(odd.shares.reduce(0, +) + odd.rest == 10)
    }

    @Test("a pool's cost is replicas × hours × price, its capacity slots × window")
    func poolCost() {
        let pool = EnginePoolCost(pool: "gpu", replicas: 2, slots: 8, costPerHourMicros: 1_000_000, currency: "USD")
        #expect(pool.cost(hours: 10) == 20_000_000)
        #expect(pool.capacity(milliseconds: 36_000_000) == 288_000_000)
        #expect(EnginePoolCost(pool: "x", replicas: 3, slots: 1, costPerHourMicros: .max, currency: "USD").cost(hours: 1) == nil)
    }

    // MARK: Reports

    /// Two replicas with 8 slots between them at 1 USD per replica-hour.
    static let gpu = EnginePoolCost(pool: "gpu", replicas: 2, slots: 8, costPerHourMicros: 1_000_000, currency: "USD")
    static let from = date("2026-03-01T00:00:00Z")
    static let to = date("2026-03-01T10:00:00Z")

    /// Tenants A and B hold 15 and 5 slot-hours of the pool (3:1); C calls a provider.
    static func recordOccupancy(_ ledger: Ledger) async throws {
        func engine(_ id: String, tenant: String, slotMilliseconds: Int, at time: String, cost: Int64) -> UsageEvent {
            var event = usageEvent(id, tenant: tenant, model: "chat-small", at: date(time), cost: cost)
            event.deployment = "local-llama"
            event.provider = "local"
            event.enginePool = "gpu"
            event.slotMilliseconds = slotMilliseconds
            return event
        }
        try await ledger.record([
            engine("a1", tenant: "ten_a", slotMilliseconds: 18_000_000, at: "2026-03-01T01:10:00Z", cost: 500),
            engine("a2", tenant: "ten_a", slotMilliseconds: 18_000_000, at: "2026-03-01T04:10:00Z", cost: 500),
            engine("a3", tenant: "ten_a", slotMilliseconds: 18_000_000, at: "2026-03-01T09:59:59Z", cost: 500),
            engine("b1", tenant: "ten_b", slotMilliseconds: 18_000_000, at: "2026-03-01T02:00:00Z", cost: 500),
            usageEvent("c1", tenant: "ten_c", at: date("2026-03-01T03:00:00Z"), cost: 7_000),
            // Outside the window.
            engine("late", tenant: "ten_b", slotMilliseconds: 99_000_000, at: "2026-03-01T10:00:00Z", cost: 500),
        ])
    }

    @Test("tenants occupying 3:1 pay 75% and 25% of the occupied cost; idle is the rest; all sum to the pool's cost")
    func gpuReport() async throws {
        try await withLedger { ledger, _ async throws in
            try await Self.recordOccupancy(ledger)
            let report = try await ledger.gpuReport(pool: "gpu", from: Self.from, to: Self.to, costs: [Self.gpu])
            #expect(report.costMicros == 2 * 10 * 1_000_000)
            #expect(report.capacitySlotMilliseconds == 8 * 36_000_000)
            #expect(report.occupiedSlotMilliseconds == 72_000_000)
            // Occupied: a quarter of capacity, so 5 USD; A 3.75, B 1.25; idle 15.
            #expect(report.rows.map(\.kind) == [.tenant, .tenant, .idle])
            #expect(report.rows.map(\.tenantID) == ["ten_a", "ten_b", nil])
            #expect(report.rows.map(\.costMicros) == [3_750_000, 1_250_000, 15_000_000])
            #expect(report.rows.map(\.slotMilliseconds) == [54_000_000, 18_000_000, 216_000_000])
            #expect(report.rows.map(\.share) == [0.1875, 0.0625, 0.75])
            #expect(report.rows.map(\.costMicros).reduce(0, +) == report.costMicros)
            await #expect(throws: ReportError.self) {
                _ = try await ledger.gpuReport(pool: "cpu", from: Self.from, to: Self.to, costs: [Self.gpu])
            }
            await #expect(throws: ReportError.self) {
                _ = try await ledger.gpuReport(pool: "gpu", from: Self.from.addingTimeInterval(60), to: Self.to, costs: [Self.gpu])
            }
        }
    }

    @Test("occupancy past capacity splits the whole cost by occupancy, with no idle cost")
    func overCapacity() async throws {
        try await withLedger { ledger, _ async throws in
            try await Self.recordOccupancy(ledger)
            // The pool has shrunk to one slot: 10 slot-hours offered, 20 held.
            let shrunk = EnginePoolCost(pool: "gpu", replicas: 1, slots: 1, costPerHourMicros: 1_000_001, currency: "USD")
            let report = try await ledger.gpuReport(pool: "gpu", from: Self.from, to: Self.to, costs: [shrunk])
            #expect(report.costMicros == 10_000_010)
            #expect(report.rows.map(\.costMicros) == [7_500_008, 2_500_002, 0])
            #expect(report.rows.last?.slotMilliseconds == 0)
        }
    }

    @Test("include_gpu replaces the pool's token cost by occupancy cost, adds the idle row, and totals the full pool cost")
    func allocationWithGPU() async throws {
        try await withLedger { ledger, _ async throws in
            try await Self.recordOccupancy(ledger)
            let query = AllocationQuery(from: Self.from, to: Self.to, groupBy: [.tenant], includeGPU: true, poolCosts: [Self.gpu])
            let report = try await ledger.allocationReport(query)
            #expect(report.rows.map(\.kind) == [.group, .group, .group, .idle])
            #expect(report.rows.map(\.groupValues) == [["ten_a"], ["ten_b"], ["ten_c"], []])
            #expect(report.rows.last?.pool == "gpu")
            #expect(report.rows.map(\.sums.gpuCostMicros) == [3_750_000, 1_250_000, 0, 15_000_000])
            // The engine requests' token cost is replaced; the provider's stays.
            #expect(report.rows.map(\.sums.costMicros) == [0, 0, 7_000, 0])
            #expect(report.rows.map(\.sums.requests) == [3, 1, 1, 0])
            #expect(report.rows[0].sums.marginMicros == -3_750_000)
            #expect(report.totals.count == 1)
            let total = try #require(report.totals.first).sums
            #expect(total.costMicros + total.gpuCostMicros == 7_000 + 20_000_000)
            #expect(total.slotMilliseconds == 72_000_000 + 216_000_000)

            // Pages of one row each: the same rows, the idle one last.
            var paged: [AllocationRow] = []
            var cursor: String?
            repeat {
                var page = query
                page.limit = 1
                page.cursor = cursor
                let result = try await ledger.allocationReport(page)
                #expect(result.totals == report.totals)
                paged += result.rows
                cursor = result.nextCursor
            } while cursor != nil && paged.count < 10
            #expect(paged == report.rows)

            // A tenant's report: its share, no idle row (the platform's), no one else's.
            var narrowed = query
            narrowed.tenantID = "ten_b"
            let own = try await ledger.allocationReport(narrowed)
            #expect(own.rows.map(\.groupValues) == [["ten_b"]])
            #expect(own.rows.map(\.sums.gpuCostMicros) == [1_250_000])
            // Grouped by model, a tenant's share is still of the whole pool's capacity.
            narrowed.groupBy = [.model]
            #expect(try await ledger.allocationReport(narrowed).rows.map(\.sums.gpuCostMicros) == [1_250_000])
            // Without includeGPU the token costs stand.
            let plain = try await ledger.allocationReport(AllocationQuery(from: Self.from, to: Self.to, groupBy: [.tenant]))
            #expect(plain.rows.map(\.sums.costMicros) == [1_500, 500, 7_000])
        }
    }
}
