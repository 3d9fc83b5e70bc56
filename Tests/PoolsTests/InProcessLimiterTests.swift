import Synchronization
import Testing

@testable import Pools

@Suite("InProcessLimiter")
struct InProcessLimiterTests {
    private let start = ContinuousClock.now
    private let small = AdmissionRequest(promptTokens: 10, maximumOutputTokens: 10)

    @Test("many tasks at once admit exactly the requests-per-minute limit")
    func concurrentAdmissionsHoldTheLimit() async {
        let limiter = InProcessLimiter()
        let limits = TenantLimits(requestsPerMinute: 100, tokensPerMinute: 1_000_000)
        let now = start
        let request = small
        let admitted = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<50 {
                group.addTask {
                    (0..<10).reduce(0) { count, _ in
                        count + (limiter.admit(tenantID: "acme", limits: limits, request: request, now: now).reservation == nil ? 0 : 1)
                    }
                }
            }
            return await group.reduce(0, +)
        }
        #expect(admitted == 100)
        #expect(limiter.inFlight(tenantID: "acme", now: now) == 100)
        #expect(limiter.headers(tenantID: "acme", now: now)?.requests?.remaining == 0)
        #expect(limiter.headers(tenantID: "acme", now: now)?.tokens?.remaining == 1_000_000 - 100 * 20)
    }

    @Test("many tasks admitting and settling never exceed the concurrency limit")
    func concurrentSlotsHoldTheLimit() async {
        let limiter = InProcessLimiter()
        let limits = TenantLimits(concurrentRequests: 8)
        let now = start
        let request = small
        // Counted between a successful admit and its settle, so it can only exceed 8 if the
        // limiter admitted a ninth request while eight were open.
        let open = OpenCount()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<32 {
                group.addTask {
                    for _ in 0..<100 {
                        guard let reservation = limiter.admit(tenantID: "acme", limits: limits, request: request, now: now).reservation else {
                            await Task.yield()
                            continue
                        }
                        open.opened()
                        await Task.yield()
                        open.closed()
                        limiter.settle(reservation: reservation, actualTokens: 15, now: now)
                    }
                }
            }
        }
        let counts = open.counts.withLock { $0 }
        #expect(counts.most <= 8)
        #expect(counts.admitted >= 8)
        #expect(limiter.inFlight(tenantID: "acme", now: now) == 0)

        let held = (0..<20).compactMap { _ in limiter.admit(tenantID: "acme", limits: limits, request: request, now: now).reservation }
        #expect(held.count == 8)
    }

    @Test("tenants are limited apart, and reservation ids are unique across them")
    func tenantsApart() throws {
        let limiter = InProcessLimiter()
        let limits = TenantLimits(requestsPerMinute: 2)
        var ids: Set<Reservation.ID> = []
        for tenant in ["acme", "globex"] {
            for _ in 0..<2 {
                let reservation = try #require(limiter.admit(tenantID: tenant, limits: limits, request: small, now: start).reservation)
                #expect(reservation.tenantID == tenant)
                ids.insert(reservation.id)
            }
            #expect(limiter.admit(tenantID: tenant, limits: limits, request: small, now: start).refusal?.limit == .requests)
        }
        #expect(ids.count == 4)
    }

    @Test("settling through the limiter gives back tokens once; unknown tenants settle nothing")
    func settle() throws {
        let limiter = InProcessLimiter()
        let limits = TenantLimits(tokensPerMinute: 1000)
        let request = AdmissionRequest(promptTokens: 200, maximumOutputTokens: 600)
        let reservation = try #require(limiter.admit(tenantID: "acme", limits: limits, request: request, now: start).reservation)
        #expect(limiter.admit(tenantID: "acme", limits: limits, request: request, now: start).refusal?.limit == .tokens)
        #expect(limiter.settle(reservation: reservation, actualTokens: 250, now: start)?.unusedTokens == 550)
        #expect(limiter.settle(reservation: reservation, actualTokens: 250, now: start) == nil)
        #expect(limiter.headers(tenantID: "acme", now: start)?.tokens?.remaining == 750)
        #expect(limiter.admit(tenantID: "acme", limits: limits, request: request, now: start).reservation == nil)
        #expect(limiter.admit(tenantID: "acme", limits: limits, request: AdmissionRequest(promptTokens: 700, maximumOutputTokens: 50), now: start).reservation != nil)

        var stranger = reservation
        stranger.tenantID = "nobody"
        #expect(limiter.settle(reservation: stranger, actualTokens: 0, now: start) == nil)
    }

    @Test("a changed contract applies from the next admission")
    func changedLimits() throws {
        let limiter = InProcessLimiter()
        _ = try #require(limiter.admit(tenantID: "acme", limits: TenantLimits(requestsPerMinute: 1), request: small, now: start).reservation)
        #expect(limiter.admit(tenantID: "acme", limits: TenantLimits(requestsPerMinute: 1), request: small, now: start).reservation == nil)
        #expect(limiter.admit(tenantID: "acme", limits: TenantLimits(requestsPerMinute: 3), request: small, now: start).reservation != nil)
        #expect(limiter.headers(tenantID: "acme", now: start)?.requests?.remaining == 1)
    }

    @Test("reservations that are never settled expire and free their slots")
    func expiry() throws {
        let limiter = InProcessLimiter(reservationTTL: .seconds(30))
        let limits = TenantLimits(concurrentRequests: 1)
        _ = try #require(limiter.admit(tenantID: "acme", limits: limits, request: small, now: start).reservation)
        #expect(limiter.admit(tenantID: "acme", limits: limits, request: small, now: start + .seconds(29)).refusal?.limit == .concurrency)
        #expect(limiter.admit(tenantID: "acme", limits: limits, request: small, now: start + .seconds(30)).reservation != nil)
    }

    // MARK: Bounded map

    @Test("idle tenants are forgotten first when the map is full")
    func evictsIdle() throws {
        let limiter = InProcessLimiter(maximumTenants: 10)
        let limits = TenantLimits(concurrentRequests: 4)
        let busy = try #require(limiter.admit(tenantID: "busy", limits: limits, request: small, now: start).reservation)
        for index in 0..<100 {
            let now = start + .milliseconds(index + 1)
            let reservation = try #require(limiter.admit(tenantID: "idle-\(index)", limits: limits, request: small, now: now).reservation)
            limiter.settle(reservation: reservation, actualTokens: 20, now: now)
            #expect(limiter.tenantCount <= 10)
        }
        #expect(limiter.inFlight(tenantID: "busy", now: start + .seconds(1)) == 1)
        #expect(limiter.settle(reservation: busy, actualTokens: 20, now: start + .seconds(1)) != nil)
    }

    @Test("when every tenant is busy, the least recently used are forgotten")
    func evictsLeastRecentlyUsed() throws {
        let limiter = InProcessLimiter(maximumTenants: 4)
        let limits = TenantLimits(concurrentRequests: 1)
        for index in 0..<10 {
            _ = try #require(limiter.admit(tenantID: "tenant-\(index)", limits: limits, request: small, now: start + .seconds(index)).reservation)
            #expect(limiter.tenantCount <= 4)
        }
        #expect(limiter.inFlight(tenantID: "tenant-9", now: start + .seconds(10)) == 1)
        #expect(limiter.inFlight(tenantID: "tenant-0", now: start + .seconds(10)) == 0)
    }
}

/// Requests held open by the tasks of a stress test.
private final class OpenCount: Sendable {
    let counts = Mutex((current: 0, most: 0, admitted: 0))

    func opened() {
        counts.withLock {
            $0.current += 1
            $0.most = max($0.most, $0.current)
            $0.admitted += 1
        }
    }

    func closed() {
        counts.withLock { $0.current -= 1 }
    }
}
