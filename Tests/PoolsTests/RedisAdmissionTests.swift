import Synchronization
import Testing

@testable import Pools
import RedisTestSupport

/// `RedisAdmission` against a real redis-server: several replicas sharing one Redis,
/// settling, expiry, budgets, key names and lifetimes, script reloading, and Redis going away.
@Suite("RedisAdmission", .timeLimit(.minutes(2)))
struct RedisAdmissionTests {
    private let start = ContinuousClock.now
    /// Redis milliseconds for fixed instants; any value works.
    private let base = 5_000_000

    private func at(_ milliseconds: Int) -> RedisAdmission.FixedNow {
        .init(milliseconds: base + milliseconds, instant: start + .milliseconds(milliseconds))
    }

    private func request(_ prompt: Int, _ output: Int) -> AdmissionRequest {
        AdmissionRequest(promptTokens: prompt, maximumOutputTokens: output)
    }

    /// An hour-long period that started at Redis millisecond `base`.
    private var period: BudgetPeriodKey { BudgetPeriodKey(scope: "tenant", periodStart: Int64(base)) }
    private var periodEnd: Int64 { Int64(base) + 3_600_000 }

    private func budget(
        tokens: Int? = nil, micros: Int64? = nil, _ whenSpent: BudgetDemand.WhenSpent = .refuse, seed: BudgetAmounts? = nil
    ) -> BudgetDemand {
        BudgetDemand(key: period, resetsAt: periodEnd, limitTokens: tokens, limitMicros: micros, whenSpent: whenSpent, seed: seed)
    }

    /// A request at `wall` ms after `base` on the proxy's clock.
    private func request(
        _ prompt: Int, _ output: Int, micros: Int64 = 0, _ budgets: [BudgetDemand], wall: Int = 0, throttled: Int = 10
    ) -> AdmissionRequest {
        AdmissionRequest(
            promptTokens: prompt, maximumOutputTokens: output, maximumCostMicros: micros, budgets: budgets,
            wallClockMilliseconds: Int64(base + wall), throttledRequestsPerMinute: throttled
        )
    }

    // MARK: Replicas

    @Test("three replicas sharing one Redis admit exactly the limit, whichever receives the request")
    func replicasShareLimits() async throws {
        let server = try RedisTestServer()
        defer { server.stop() }
        try await withReplicas(server, count: 3) { replicas in
            // One instant for every admission: nothing refills, so the count is exact.
            let now = at(0)
            let rpm = TenantLimits(requestsPerMinute: 50)
            let tpm = TenantLimits(tokensPerMinute: 1000)
            async let byRequests = admitted(300, replicas) { replica in
                try await replica.admit(tenantID: "rpm", limits: rpm, request: request(1, 1), at: now)
            }
            async let byTokens = admitted(300, replicas) { replica in
                try await replica.admit(tenantID: "tpm", limits: tpm, request: request(20, 10), at: now)
            }
            let (requests, tokens) = try await (byRequests, byTokens)
            #expect(requests.count == 50)
            #expect(tokens.count == 33, "1000 tokens hold 33 requests of 30")
            #expect(Set((requests + tokens).map(\.id)).count == 83, "reservation ids are unique across replicas")
        }
    }

    @Test("with Redis's own clock, concurrent replicas admit the limit and no more")
    func replicasShareLimitsOnRedisTime() async throws {
        let server = try RedisTestServer()
        defer { server.stop() }
        try await withReplicas(server, count: 3) { replicas in
            // Two per minute: the next refill is 30 s away, far beyond this test.
            let limits = TenantLimits(requestsPerMinute: 2, concurrentRequests: 100)
            let admitted = try await admitted(120, replicas) { replica in
                try await replica.admit(tenantID: "acme", limits: limits, request: request(10, 10))
            }
            #expect(admitted.count == 2)
        }
    }

    @Test("replicas never hold more requests in flight than the concurrency limit")
    func replicasShareConcurrency() async throws {
        let server = try RedisTestServer()
        defer { server.stop() }
        let limits = TenantLimits(concurrentRequests: 3)
        let gauge = InFlightGauge()
        let (workers, rounds) = (18, 4)
        try await withReplicas(server, count: 3) { replicas in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<workers {
                    let replica = replicas[worker % replicas.count]
                    group.addTask {
                        for _ in 0..<rounds {
                            var reservation: Reservation?
                            while reservation == nil {
                                reservation = try await replica.admit(tenantID: "acme", limits: limits, request: request(1, 1)).reservation
                                if reservation == nil { try await Task.sleep(for: .milliseconds(1)) }
                            }
                            gauge.enter()
                            await Task.yield()
                            // Left before the settlement is even queued: Redis frees the slot
                            // later still, so this count never trails Redis's.
                            gauge.leave()
                            replica.settle(reservation!, actualTokens: 2)
                        }
                    }
                }
                try await group.waitForAll()
            }
            for replica in replicas { await replica.flush() }
            #expect(replicas.map(\.statistics.settled).reduce(0, +) == workers * rounds)
            let keys = RedisAdmission.Keys(tenantID: "acme")
            let client = replicas[0].client
            #expect(try await client.command(["EXISTS", keys.inflight, keys.reserved]) == .integer(0))
        }
        #expect(gauge.most <= 3)
        #expect(gauge.most >= 1)
    }

    // MARK: Settling

    @Test("a reservation settles once, through the queue or at once")
    func idempotentSettle() async throws {
        try await withRedis { _, client in
            let admission = RedisAdmission(client: client)
            let limits = TenantLimits(tokensPerMinute: 1000, concurrentRequests: 2)
            let first = try #require(try await admission.admit(tenantID: "acme", limits: limits, request: request(100, 100), at: at(0)).reservation)
            #expect(first.headers.tokens?.remaining == 800)
            let settled = try await admission.settleImmediately(first, actualTokens: 50, at: at(0))
            #expect(settled == Settlement(reservedTokens: 200, actualTokens: 50, unusedTokens: 150, excessTokens: 0))
            #expect(try await admission.settleImmediately(first, actualTokens: 50, at: at(0)) == nil)
            #expect(try await admission.settleImmediately(first, actualTokens: 0, at: at(0)) == nil)

            let second = try #require(try await admission.admit(tenantID: "acme", limits: limits, request: request(60, 40), at: at(0)).reservation)
            #expect(second.headers.tokens?.remaining == 850, "the first gave back 150, once")
            admission.settle(second, actualTokens: 0, atMilliseconds: base)
            admission.settle(second, actualTokens: 0, atMilliseconds: base)
            await admission.flush()
            #expect(admission.statistics == .init(settled: 1, unmatched: 1, dropped: 0, pending: 0))
            let probe = try await admission.admit(tenantID: "acme", limits: limits, request: request(0, 0), at: at(0))
            #expect(probe.headers.tokens?.remaining == 950)
        }
    }

    @Test("an expired reservation frees its slot to the millisecond, keeps its tokens, and settles to nothing")
    func expiry() async throws {
        try await withRedis { _, client in
            let admission = RedisAdmission(client: client, reservationTTL: .seconds(10))
            let limits = TenantLimits(tokensPerMinute: 600, concurrentRequests: 1)
            let crashed = try #require(try await admission.admit(tenantID: "acme", limits: limits, request: request(100, 200), at: at(0)).reservation)
            #expect(crashed.expiresAt == start + .seconds(10))

            let refusal = try #require(try await admission.admit(tenantID: "acme", limits: limits, request: request(1, 0), at: at(9_999)).refusal)
            #expect(refusal.limit == .concurrency)
            #expect(refusal.retryAfter == .milliseconds(1), "the slot frees when the reservation expires")

            let next = try await admission.admit(tenantID: "acme", limits: limits, request: request(1, 0), at: at(10_000))
            #expect(next.reservation != nil)
            // 300 tokens taken at 0 came back by 30 s at 600 per minute; at 10 s, 100 have.
            #expect(next.headers.tokens?.remaining == 600 - 300 + 100 - 1)
            let keys = RedisAdmission.Keys(tenantID: "acme")
            #expect(try await client.command(["ZSCORE", keys.inflight, crashed.id.description]) == .nil)
            #expect(try await client.command(["HGET", keys.reserved, crashed.id.description]) == .nil)
            #expect(try await admission.settleImmediately(crashed, actualTokens: 0, at: at(10_001)) == nil)
        }
    }

    // MARK: Budgets

    @Test("a period Redis holds no state for asks for a seed, changes nothing, and starts from the seed")
    func needsSeed() async throws {
        try await withRedis { _, client in
            let admission = RedisAdmission(client: client)
            let keys = RedisAdmission.Keys(tenantID: "acme")
            let unseeded = budget(tokens: 1_000, micros: 50_000)
            let decision = try await admission.admit(tenantID: "acme", limits: .unlimited, request: request(100, 100, micros: 2_000, [unseeded]), at: at(0))
            #expect(decision == .needsSeed([period]))
            #expect(try await client.command(["EXISTS", keys.inflight, keys.reserved, keys.budgets]) == .integer(0))
            #expect(try await admission.budgetStatus(tenantID: "acme", key: period, at: at(0)) == nil)

            let seeded = budget(tokens: 1_000, micros: 50_000, seed: BudgetAmounts(tokens: 700, micros: 10_000))
            let first = try #require(try await admission.admit(tenantID: "acme", limits: .unlimited, request: request(100, 100, micros: 2_000, [seeded, seeded]), at: at(0)).reservation)
            #expect(first.budgets == [period], "a period named twice is reserved in once")
            #expect(first.micros == 2_000 && !first.throttled)
            #expect(try await admission.budgetStatus(tenantID: "acme", key: period, at: at(0)) == BudgetStatus(
                used: BudgetAmounts(tokens: 700, micros: 10_000), reserved: BudgetAmounts(tokens: 200, micros: 2_000)
            ))
            #expect(try await client.command(["HGET", keys.reserved, first.id.description]) == .string("200 2000 \(period)"))
            // The budgets hash outlives the period's reset by the margin.
            let ttl = try #require(try await client.command(["PTTL", keys.budgets]).integer)
            #expect(ttl > 3_600_000 && ttl <= 3_720_000, "budgets: \(ttl) ms")
            // The open reservations outlive it, so an unsettled one is always found and
            // given back when it expires, never held until the reset.
            for name in [keys.inflight, keys.reserved] {
                let held = try #require(try await client.command(["PTTL", name]).integer)
                #expect(held >= ttl - 1_000, "\(name): \(held) ms")
            }

            // With state, no seed is asked for: 900 of 1000 tokens held still admits...
            #expect(try await admission.admit(tenantID: "acme", limits: .unlimited, request: request(100, 100, [unseeded]), at: at(0)).reservation != nil)
            // ...and 1100 refuses until the reset, whatever the request's size.
            let late = request(1, 0, micros: 5, [unseeded], wall: 600_000)
            let refusal = try #require(try await admission.admit(tenantID: "acme", limits: .unlimited, request: late, at: at(1)).refusal)
            #expect(refusal.limit == .budget)
            #expect(refusal.budget == unseeded)
            #expect(!refusal.throttled)
            #expect((refusal.limitValue, refusal.remaining, refusal.requested) == (1_000, 0, 1))
            #expect(refusal.retryAfter == .milliseconds(3_000_000), "the reset, from the proxy's clock")
            // Money is reported when only money is spent.
            let money = budget(micros: 12_000)
            let moneyRefusal = try #require(try await admission.admit(tenantID: "acme", limits: .unlimited, request: request(1, 0, micros: 5, [money]), at: at(2)).refusal)
            #expect((moneyRefusal.limitValue, moneyRefusal.remaining, moneyRefusal.requested) == (12_000, 0, 5))
        }
    }

    @Test("settling after the reservation expired still counts its usage; what it reserved came back at expiry")
    func settleAfterExpiry() async throws {
        try await withRedis { _, client in
            let admission = RedisAdmission(client: client, reservationTTL: .seconds(10))
            let seeded = budget(tokens: 10_000, micros: 1_000_000, seed: BudgetAmounts(tokens: 100, micros: 1_000))
            let crashed = try #require(try await admission.admit(tenantID: "acme", limits: .unlimited, request: request(100, 200, micros: 900, [seeded]), at: at(0)).reservation)
            let alive = try #require(try await admission.admit(tenantID: "acme", limits: .unlimited, request: request(10, 10, micros: 40, [seeded]), at: at(5_000)).reservation)
            #expect(try await admission.budgetStatus(tenantID: "acme", key: period, at: at(9_999))?.reserved == BudgetAmounts(tokens: 320, micros: 940))
            #expect(try await admission.budgetStatus(tenantID: "acme", key: period, at: at(10_000))?.reserved == BudgetAmounts(tokens: 20, micros: 40))

            #expect(try await admission.settleImmediately(crashed, actualTokens: 150, actualMicros: 600, at: at(12_000)) == nil)
            #expect(try await admission.budgetStatus(tenantID: "acme", key: period, at: at(12_000)) == BudgetStatus(
                used: BudgetAmounts(tokens: 250, micros: 1_600), reserved: BudgetAmounts(tokens: 20, micros: 40)
            ))
            // Through the queue, held: reserved moves to used at the actual amounts.
            admission.settle(alive, actualTokens: 15, actualMicros: 30, atMilliseconds: base + 13_000)
            await admission.flush()
            #expect(admission.statistics.settled == 1)
            #expect(try await admission.budgetStatus(tenantID: "acme", key: period, at: at(13_000)) == BudgetStatus(
                used: BudgetAmounts(tokens: 265, micros: 1_630), reserved: .zero
            ))
        }
    }

    @Test("after FLUSHALL a period has no state, and the next admission asks for its seed again")
    func flushForgetsBudgets() async throws {
        try await withRedis { _, client in
            let admission = RedisAdmission(client: client)
            let seeded = budget(tokens: 1_000, seed: BudgetAmounts(tokens: 300, micros: 0))
            let before = try #require(try await admission.admit(tenantID: "acme", limits: .unlimited, request: request(50, 50, [seeded]), at: at(0)).reservation)
            #expect(try await admission.budgetStatus(tenantID: "acme", key: period, at: at(0)) != nil)

            _ = try await client.command(["FLUSHALL"])
            #expect(try await admission.budgetStatus(tenantID: "acme", key: period, at: at(1)) == nil)
            #expect(try await admission.admit(tenantID: "acme", limits: .unlimited, request: request(50, 50, [budget(tokens: 1_000)]), at: at(1)) == .needsSeed([period]))
            // The ledger now counts more; the period starts from its figure.
            let reseeded = budget(tokens: 1_000, seed: BudgetAmounts(tokens: 420, micros: 0))
            #expect(try await admission.admit(tenantID: "acme", limits: .unlimited, request: request(50, 50, [reseeded]), at: at(2)).reservation != nil)
            #expect(try await admission.budgetStatus(tenantID: "acme", key: period, at: at(2)) == BudgetStatus(
                used: BudgetAmounts(tokens: 420, micros: 0), reserved: BudgetAmounts(tokens: 100, micros: 0)
            ))
            // The reservation from before the flush is gone, but its usage still counts.
            #expect(try await admission.settleImmediately(before, actualTokens: 30, at: at(3)) == nil)
            #expect(try await admission.budgetStatus(tenantID: "acme", key: period, at: at(3))?.used.tokens == 450)
        }
    }

    @Test("a spent throttling budget admits at the throttled rate, marked throttled, and refuses beyond it")
    func throttles() async throws {
        try await withRedis { _, client in
            let admission = RedisAdmission(client: client)
            let spent = budget(tokens: 100, .throttle, seed: BudgetAmounts(tokens: 100, micros: 0))
            for _ in 0..<2 {
                let reservation = try #require(try await admission.admit(tenantID: "acme", limits: .unlimited, request: request(10, 10, [spent], throttled: 2), at: at(0)).reservation)
                #expect(reservation.throttled)
            }
            let refusal = try #require(try await admission.admit(tenantID: "acme", limits: .unlimited, request: request(10, 10, [spent], throttled: 2), at: at(0)).refusal)
            #expect(refusal.limit == .budget && refusal.throttled)
            #expect((refusal.limitValue, refusal.remaining, refusal.requested) == (2, 0, 1))
            #expect(refusal.retryAfter == .seconds(30), "two per minute: one every 30 s")
            #expect(try await admission.admit(tenantID: "acme", limits: .unlimited, request: request(10, 10, [spent], throttled: 2), at: at(30_000)).reservation?.throttled == true)
            let keys = RedisAdmission.Keys(tenantID: "acme")
            #expect(try await client.command(["HGET", keys.buckets, "throttle.limit"]) == .string("2"))
            // A budget with room is not throttled.
            let free = BudgetDemand(
                key: BudgetPeriodKey(scope: "quota", periodStart: Int64(base)), resetsAt: periodEnd, limitTokens: 1_000,
                whenSpent: .throttle, seed: .zero
            )
            #expect(try await admission.admit(tenantID: "acme", limits: .unlimited, request: request(1, 1, [free], throttled: 2), at: at(30_000)).reservation?.throttled == false)
        }
    }

    @Test("a record in the old form (tokens only) still expires and settles")
    func oldRecords() async throws {
        try await withRedis { _, client in
            let admission = RedisAdmission(client: client)
            let keys = RedisAdmission.Keys(tenantID: "acme")
            _ = try await client.command(["HSET", keys.reserved, "11", "7", "12", "9"])
            _ = try await client.command(["ZADD", keys.inflight, String(base + 1_000), "11", String(base + 900_000), "12"])
            let seeded = budget(tokens: 1_000, seed: .zero)
            let reservation = try #require(try await admission.admit(tenantID: "acme", limits: .unlimited, request: request(1, 1, [seeded]), at: at(2_000)).reservation)
            #expect(try await client.command(["HEXISTS", keys.reserved, "11"]) == .integer(0), "expired")
            let old = Reservation(id: .init(12), tenantID: "acme", tokens: 9, expiresAt: start + .seconds(900), headers: .init(requests: nil, tokens: nil))
            #expect(try await admission.settleImmediately(old, actualTokens: 9, at: at(2_000))?.reservedTokens == 9)
            #expect(try await admission.settleImmediately(reservation, actualTokens: 2, at: at(2_000))?.reservedTokens == 2)
            #expect(try await admission.budgetStatus(tenantID: "acme", key: period, at: at(2_000)) == BudgetStatus(used: BudgetAmounts(tokens: 2, micros: 0), reserved: .zero))
        }
    }

    @Test("concurrent admissions from several replicas never reserve past a budget by more than one request")
    func replicasShareBudgets() async throws {
        let server = try RedisTestServer()
        defer { server.stop() }
        try await withReplicas(server, count: 3) { replicas in
            let now = at(0)
            let tokens = budget(tokens: 1_000, seed: .zero)
            let money = BudgetDemand(
                key: BudgetPeriodKey(scope: "key:k1", periodStart: Int64(base)), resetsAt: periodEnd, limitMicros: 10_000,
                whenSpent: .refuse, seed: BudgetAmounts(tokens: 0, micros: 200)
            )
            async let byTokens = admitted(200, replicas) { replica in
                try await replica.admit(tenantID: "tokens", limits: .unlimited, request: request(20, 10, [tokens]), at: now)
            }
            async let byMoney = admitted(200, replicas) { replica in
                try await replica.admit(tenantID: "money", limits: .unlimited, request: request(1, 1, micros: 700, [money]), at: now)
            }
            let (tokenReservations, moneyReservations) = try await (byTokens, byMoney)
            // Admitted while some of the budget is free: 0, 30, ..., 990 of 1000 held.
            #expect(tokenReservations.count == 34)
            let tokenStatus = try await replicas[1].budgetStatus(tenantID: "tokens", key: tokens.key, at: now)
            #expect(tokenStatus?.reserved == BudgetAmounts(tokens: 1_020, micros: 0))
            // 200 seeded, then 700 each: 200 + 14 * 700 = 10,000 is spent.
            #expect(moneyReservations.count == 14)
            let moneyStatus = try await replicas[2].budgetStatus(tenantID: "money", key: money.key, at: now)
            #expect(moneyStatus.map { $0.used.micros + $0.reserved.micros } == 10_000)
            #expect(moneyStatus.map { $0.used.micros + $0.reserved.micros < 10_000 + 700 } == true)
        }
    }

    // MARK: Keys

    @Test("a tenant's keys share one hash tag and expire after the state they hold")
    func keys() async throws {
        try await withRedis { _, client in
            let admission = RedisAdmission(client: client, reservationTTL: .seconds(600))
            let limits = TenantLimits(requestsPerMinute: 10, tokensPerMinute: 1000, concurrentRequests: 5)
            let reservation = try #require(try await admission.admit(tenantID: "acme", limits: limits, request: request(100, 100)).reservation)

            let names = try await client.command(["KEYS", "*"]).array?.compactMap(\.string).sorted()
            #expect(names == ["sy:{tenant:acme}:buckets", "sy:{tenant:acme}:inflight", "sy:{tenant:acme}:reserved"])
            for name in names ?? [] {
                let tag = name.drop { $0 != "{" }.dropFirst().prefix { $0 != "}" }
                #expect(tag == "tenant:acme", "\(name) is in the tenant's Cluster slot")
            }
            // Open: all live until the reservation could expire, plus the margin.
            for name in names ?? [] {
                let ttl = try #require(try await client.command(["PTTL", name]).integer)
                #expect(ttl > 600_000 && ttl <= 720_000, "\(name): \(ttl) ms")
            }

            #expect(try await admission.settleImmediately(reservation, actualTokens: 100, at: nil) != nil)
            let keys = RedisAdmission.Keys(tenantID: "acme")
            #expect(try await client.command(["EXISTS", keys.inflight, keys.reserved]) == .integer(0))
            // Settled: the buckets are full again within 6 s (one request of ten per minute).
            let ttl = try #require(try await client.command(["PTTL", keys.buckets]).integer)
            #expect(ttl > 0 && ttl <= 126_000, "buckets: \(ttl) ms")

            // A tenant without rate limits keeps nothing once its requests are settled.
            let unlimited = try #require(try await admission.admit(tenantID: "free", limits: .unlimited, request: request(1, 1)).reservation)
            #expect(try await client.command(["EXISTS", "sy:{tenant:free}:inflight"]) == .integer(1))
            _ = try await admission.settleImmediately(unlimited, actualTokens: 1, at: nil)
            #expect(try await client.command(["KEYS", "sy:{tenant:free}*"]) == .array([]))
        }
    }

    @Test("an id already open for the tenant is never reused: the admission draws the next")
    func idCollision() async throws {
        try await withRedis { _, client in
            let admission = RedisAdmission(client: client)
            let next = admission.nextID.load(ordering: .relaxed) &+ 1
            let keys = RedisAdmission.Keys(tenantID: "acme")
            _ = try await client.command(["HSET", keys.reserved, String(next), "7"])
            _ = try await client.command(["ZADD", keys.inflight, String(base + 1_000_000), String(next)])
            let reservation = try #require(try await admission.admit(tenantID: "acme", limits: .unlimited, request: request(1, 1), at: at(0)).reservation)
            #expect(reservation.id == Reservation.ID(next &+ 1))
            #expect(try await client.command(["HGET", keys.reserved, String(next)]) == .string("7"), "the open one is untouched")
        }
    }

    @Test("limits beyond what the scripts hold exactly are capped, and counts beyond any limit refused as such")
    func largeNumbers() async throws {
        try await withRedis { _, client in
            let admission = RedisAdmission(client: client)
            let huge = TenantLimits(requestsPerMinute: Int.max, tokensPerMinute: Int.max, concurrentRequests: Int.max)
            let reservation = try #require(try await admission.admit(tenantID: "big", limits: huge, request: request(1_000_000, 0)).reservation)
            #expect(reservation.headers.tokens?.limit == RedisAdmission.largestLimit)
            #expect(reservation.headers.tokens?.remaining == RedisAdmission.largestLimit - 1_000_000)

            let limits = TenantLimits(tokensPerMinute: 1000)
            let refusal = try #require(try await admission.admit(tenantID: "acme", limits: limits, request: request(Int.max, Int.max)).refusal)
            #expect(refusal.limit == .tokens)
            #expect(refusal.retryAfter == nil)
            #expect(refusal.requested == Int.max)
        }
    }

    // MARK: Redis

    @Test("scripts Redis forgot (SCRIPT FLUSH) are loaded again, for admissions and pipelined settlements")
    func scriptsReloaded() async throws {
        try await withRedis { _, client in
            let admission = RedisAdmission(client: client)
            let limits = TenantLimits(tokensPerMinute: 1000)
            _ = try await client.command(["SCRIPT", "FLUSH"])
            let first = try #require(try await admission.admit(tenantID: "acme", limits: limits, request: request(100, 0)).reservation)
            _ = try await client.command(["SCRIPT", "FLUSH"])
            let second = try #require(try await admission.admit(tenantID: "acme", limits: limits, request: request(100, 0)).reservation)
            _ = try await client.command(["SCRIPT", "FLUSH"])
            admission.settle(first, actualTokens: 10)
            admission.settle(second, actualTokens: 10)
            await admission.flush()
            #expect(admission.statistics == .init(settled: 2, unmatched: 0, dropped: 0, pending: 0))
            // Flushed after the last admission; loaded again by the settlements' pipeline.
            let loaded = try await client.command(["SCRIPT", "EXISTS", RedisAdmission.admitScript.sha1, RedisAdmission.settleScript.sha1])
            #expect(loaded == .array([.integer(0), .integer(1)]))
        }
    }

    @Test("with Redis down, admit throws at once and settlements wait; with Redis back, both work")
    func redisDown() async throws {
        try await withRedis(commandTimeout: .milliseconds(500)) { server, client in
            let admission = RedisAdmission(client: client)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await admission.run() }
                let limits = TenantLimits(requestsPerMinute: 100, concurrentRequests: 10)
                let reservation = try #require(try await admission.admit(tenantID: "acme", limits: limits, request: request(1, 1)).reservation)

                server.stop()
                let started = ContinuousClock.now
                await #expect(throws: RedisError.self) {
                    try await admission.admit(tenantID: "acme", limits: limits, request: request(1, 1))
                }
                #expect(ContinuousClock.now - started < .seconds(5), "a guard against hanging, not a latency check")
                admission.settle(reservation, actualTokens: 1)

                try server.start()
                #expect(try await admission.admit(tenantID: "acme", limits: limits, request: request(1, 1)).reservation != nil)
                // The run loop retries the settlement until Redis answers; the restarted
                // Redis kept nothing, so there is nothing left to settle.
                await admission.flush()
                #expect(admission.statistics.settled + admission.statistics.unmatched == 1)
                #expect(admission.statistics.dropped == 0)
                await admission.shutdown()
                try await group.waitForAll()
            }
        }
    }

    @Test("shutdown sends what is queued, then drops later settlements and counts them")
    func shutdown() async throws {
        try await withRedis { _, client in
            let admission = RedisAdmission(client: client)
            let limits = TenantLimits(concurrentRequests: 10)
            let first = try #require(try await admission.admit(tenantID: "acme", limits: limits, request: request(1, 1)).reservation)
            let second = try #require(try await admission.admit(tenantID: "acme", limits: limits, request: request(1, 1)).reservation)
            admission.settle(first, actualTokens: 1)
            await admission.shutdown()
            #expect(admission.statistics == .init(settled: 1, unmatched: 0, dropped: 0, pending: 0))
            admission.settle(second, actualTokens: 1)
            #expect(admission.statistics.dropped == 1)
            await admission.run()  // returns at once after shutdown
            let keys = RedisAdmission.Keys(tenantID: "acme")
            #expect(try await client.command(["ZCARD", keys.inflight]) == .integer(1))
        }
    }

    // MARK: Helpers

    /// Runs `count` admissions on `replicas` round-robin, all at once; returns the reservations.
    private func admitted(
        _ count: Int, _ replicas: [RedisAdmission],
        _ admit: @escaping @Sendable (RedisAdmission) async throws -> AdmissionDecision
    ) async throws -> [Reservation] {
        try await withThrowingTaskGroup(of: Reservation?.self) { group in
            for index in 0..<count {
                let replica = replicas[index % replicas.count]
                group.addTask { try await admit(replica).reservation }
            }
            return try await group.reduce(into: []) { if let reservation = $1 { $0.append(reservation) } }
        }
    }
}

/// Requests held at once, and the most ever held.
private final class InFlightGauge: Sendable {
    private let counts = Mutex((current: 0, most: 0))

    func enter() {
        counts.withLock { counts in
            counts.current += 1
            counts.most = max(counts.most, counts.current)
        }
    }

    func leave() {
        counts.withLock { $0.current -= 1 }
    }

    var most: Int { counts.withLock { $0.most } }
}

/// Runs `body` with `count` admissions sharing `server`, each on its own client as separate
/// proxy replicas are, with their settlement loops running; shuts them all down afterwards.
func withReplicas<Result>(
    _ server: RedisTestServer, count: Int, _ body: ([RedisAdmission]) async throws -> Result
) async throws -> Result {
    var clients: [RedisClient] = []
    for _ in 0..<count {
        clients.append(RedisClient(configuration: try server.configuration()))
    }
    let admissions = clients.map { RedisAdmission(client: $0) }
    func shutDown() async {
        for admission in admissions { await admission.shutdown() }
        for client in clients { try? await client.shutdown() }
    }
    do {
        let result = try await withThrowingTaskGroup(of: Void.self, returning: Result.self) { group in
            for admission in admissions {
                group.addTask { await admission.run() }
            }
            // Shutting down ends the run loops, which the group waits for either way.
            do {
                let result = try await body(admissions)
                for admission in admissions { await admission.shutdown() }
                return result
            } catch {
                for admission in admissions { await admission.shutdown() }
                throw error
            }
        }
        await shutDown()
        return result
    } catch {
        await shutDown()
        throw error
    }
}
