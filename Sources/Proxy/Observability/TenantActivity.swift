import Billing
import Synchronization

/// Each tenant's live figures on this instance, for `GET /admin/v1/tenants/{id}/metrics`:
/// its requests in flight, and the requests, tokens, errors and decode times of the last
/// minute and hour. Kept in memory, in buckets of 5 seconds (the last minute) and of a
/// minute (the last hour), so a window is exact to within one bucket; a tenant with
/// nothing in flight and nothing for an hour is forgotten.
///
/// Fed by the request path: ``started(tenant:)`` when a request is admitted,
/// ``finished(_:)`` with its usage event, ``refused(tenant:errorType:)`` for a request
/// refused before admission (a limit, an unknown model, a malformed body).
final class TenantActivity: Sendable {
    /// What a window's requests came to.
    struct Tally: Sendable, Equatable {
        /// Requests that ended (answered, failed or refused).
        var requests = 0
        var promptTokens = 0
        var completionTokens = 0
        /// Streamed answers that carried completion tokens, and the time from their first
        /// byte to their end.
        var decoded = 0
        var decodeMilliseconds = 0
        /// Requests that ended in an error, by its type (`rate_limit_exceeded`,
        /// `client_closed_request`, …).
        var errors: [String: Int] = [:]

        /// The mean decode time; nil without a decoded answer.
        var meanDecodeMilliseconds: Int? {
            decoded == 0 ? nil : decodeMilliseconds / decoded
        }

        mutating func add(_ other: Tally) {
            requests += other.requests
            promptTokens += other.promptTokens
            completionTokens += other.completionTokens
            decoded += other.decoded
            decodeMilliseconds += other.decodeMilliseconds
            for (type, count) in other.errors { errors[type, default: 0] += count }
        }

        init() {}

        init(_ event: UsageEvent) {
            requests = 1
            promptTokens = event.promptTokens
            completionTokens = event.completionTokens
            if event.streamed, event.completionTokens > 0, (200..<300).contains(event.status),
               let firstByte = event.timeToFirstTokenMilliseconds
            {
                decoded = 1
                decodeMilliseconds = max(0, event.durationMilliseconds - firstByte)
            }
            if let error = event.errorType { errors[error] = 1 }
        }
    }

    /// A tenant's figures now.
    struct Figures: Sendable, Equatable {
        var inFlight: Int
        var lastMinute: Tally
        var lastHour: Tally
    }

    /// Buckets of `width` seconds, reused in turn.
    private struct Ring {
        let width: Int64
        private var starts: [Int64]
        private var tallies: [Tally]

        init(width: Int64, count: Int) {
            self.width = width
            self.starts = Array(repeating: -1, count: count)
            self.tallies = Array(repeating: Tally(), count: count)
        }

        mutating func add(_ tally: Tally, at second: Int64) {
            let start = second - second % width
            let index = Int((second / width) % Int64(starts.count))
            if starts[index] != start {
                starts[index] = start
                tallies[index] = Tally()
            }
            tallies[index].add(tally)
        }

        /// What the buckets begun in the `window` seconds up to `second` hold.
        func sum(window: Int64, upTo second: Int64) -> Tally {
            var sum = Tally()
            for (index, start) in starts.enumerated() where start > second - window && start <= second {
                sum.add(tallies[index])
            }
            return sum
        }
    }

    private struct Tenant {
        var inFlight = 0
        var lastMinute = Ring(width: 5, count: 12)
        var lastHour = Ring(width: 60, count: 60)
        var lastSeen: Int64 = 0

        mutating func record(_ tally: Tally, at second: Int64, endingFlight: Bool) {
            if endingFlight { inFlight = max(0, inFlight - 1) }
            lastMinute.add(tally, at: second)
            lastHour.add(tally, at: second)
            lastSeen = second
        }
    }

    private struct State {
        var tenants: [String: Tenant] = [:]
    }

    /// Tenants are spread over locks of their own, so requests of different tenants seldom
    /// wait for each other.
    private final class Shard: Sendable {
        let state = Mutex(State())
    }

    private static let shardCount = 16
    private let shards: [Shard] = (0..<TenantActivity.shardCount).map { _ in Shard() }
    private let origin: ContinuousClock.Instant
    /// The second of the last sweep for tenants gone quiet.
    private let lastSweep = Atomic<Int64>(0)

    init(origin: ContinuousClock.Instant = .now) {
        self.origin = origin
    }

    private func second(_ now: ContinuousClock.Instant) -> Int64 {
        max(0, (now - origin).components.seconds)
    }

    private func shard(_ tenant: String) -> Shard {
        shards[Int(UInt(bitPattern: tenant.hashValue) % UInt(Self.shardCount))]
    }

    /// A request of `tenant` was admitted: it is in flight until its usage event.
    func started(tenant: String, now: ContinuousClock.Instant = .now) {
        let second = second(now)
        shard(tenant).state.withLock { state in
            // Changed in place: the buckets are not copied.
            state.tenants[tenant, default: Tenant()].inFlight += 1
            state.tenants[tenant]!.lastSeen = second
        }
        sweepIfDue(at: second)
    }

    /// Once a minute, forgets the tenants with nothing in flight and nothing for an hour
    /// (done by the one request that finds it due).
    private func sweepIfDue(at second: Int64) {
        let last = lastSweep.load(ordering: .relaxed)
        guard second - last >= 60,
              lastSweep.compareExchange(expected: last, desired: second, ordering: .relaxed).exchanged
        else { return }
        for shard in shards {
            shard.state.withLock { state in
                state.tenants = state.tenants.filter { $0.value.inFlight > 0 || second - $0.value.lastSeen < 3_600 }
            }
        }
    }

    /// An admitted request ended, with its usage event.
    func finished(_ event: UsageEvent, now: ContinuousClock.Instant = .now) {
        record(Tally(event), tenant: event.tenantID, endingFlight: true, now: now)
    }

    /// A request of `tenant` was refused before it was admitted.
    func refused(tenant: String, errorType: String?, now: ContinuousClock.Instant = .now) {
        var tally = Tally()
        tally.requests = 1
        tally.errors[errorType ?? "error"] = 1
        record(tally, tenant: tenant, endingFlight: false, now: now)
    }

    private func record(_ tally: Tally, tenant: String, endingFlight: Bool, now: ContinuousClock.Instant) {
        let second = second(now)
        shard(tenant).state.withLock { state in
            state.tenants[tenant, default: Tenant()].record(tally, at: second, endingFlight: endingFlight)
        }
    }

    /// `tenant`'s figures now; zeros for a tenant with no recent request.
    func figures(tenant: String, now: ContinuousClock.Instant = .now) -> Figures {
        let second = second(now)
        return shard(tenant).state.withLock { state in
            guard let entry = state.tenants[tenant] else { return Figures(inFlight: 0, lastMinute: Tally(), lastHour: Tally()) }
            return Figures(
                inFlight: entry.inFlight,
                lastMinute: entry.lastMinute.sum(window: 60, upTo: second),
                lastHour: entry.lastHour.sum(window: 3_600, upTo: second)
            )
        }
    }

    /// Tenants followed now (for tests).
    var tenantCount: Int { shards.reduce(0) { $0 + $1.state.withLock { $0.tenants.count } } }
}
