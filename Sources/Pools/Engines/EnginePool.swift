import Logging
import Synchronization

/// Interchangeable replicas of a self-hosted engine, with one admission queue in front of
/// them. The pool's capacity is the sum of its replicas' slots; when none is free a
/// request waits its turn by contract (band, fair share, reserved share) instead of
/// piling into an engine's own first-come queue. A granted request goes to the replica
/// with the most free slots, stepping around replicas that recently refused connections.
public final class EnginePool: Sendable {
    /// One slot of the pool, on one replica, held until the request ends.
    public struct Lease: Sendable, Equatable {
        public var replica: Int
        public var baseURL: String
        /// The tier the slot is counted against.
        public var tier: String
        public var grantedAt: ContinuousClock.Instant
        /// How long the request waited for the slot.
        public var waited: Duration
        /// The lease of the slot in the store shared with other replicas, if any.
        public var sharedLease: String?
    }

    public struct Replica: Sendable, Equatable {
        public var baseURL: String
        public var slots: Int

        public init(baseURL: String, slots: Int) {
            self.baseURL = baseURL
            self.slots = max(1, slots)
        }
    }

    /// Who asks for a slot, and on what terms.
    public struct Demand: Sendable, Equatable {
        public var tenant: String
        public var tier: String
        public var band: Int
        public var weight: Int
        public var reservedShare: Double
        /// The longest the request accepts to wait; nil waits as long as it takes.
        public var maximumWait: Duration?

        public init(tenant: String, contract: Contract) {
            self.tenant = tenant
            self.tier = contract.tier
            self.band = contract.band
            self.weight = contract.weight
            self.reservedShare = contract.reservedShare
            self.maximumWait = contract.maximumQueueWait
        }

        var queueDemand: PoolQueueState<Waiter>.Demand {
            .init(tenant: tenant, tier: tier, band: band, weight: weight, reservedShare: reservedShare)
        }
    }

    /// Why a request gets no slot.
    public enum Refusal: Sendable, Equatable {
        /// The queue is full, the predicted start is past the request's longest wait, or
        /// the wait ran out. `predictedStart` is nil before the pool has measured a slot.
        case capacityExhausted(predictedStart: Duration?)
    }

    public enum Acquisition: Sendable, Equatable {
        case leased(Lease)
        case refused(Refusal)
        /// The waiting task was cancelled (its client left); it holds nothing.
        case cancelled
    }

    /// How the pool decides who runs.
    public enum Scheduling: String, Sendable, Equatable, CaseIterable {
        /// Requests wait for a slot by contract: band, fair share, reserved share.
        case contract
        /// Every request goes to an engine at once, over its slots if need be, and waits in
        /// the engine's own first-come queue: for comparison with `contract` only.
        case fifo
    }

    /// What a waiting request is resumed with.
    typealias Waiter = CheckedContinuation<Acquisition, Never>

    struct State: ~Copyable {
        var queue: PoolQueueState<Waiter>
        var replicas: EnginePoolState
    }

    public let name: String
    public let replicas: [Replica]
    /// The pool's slots: the sum of its replicas'.
    public let capacity: Int
    /// The most requests that may wait at once.
    public let maximumQueue: Int
    public let scheduling: Scheduling
    /// Whether the engines are told each request's band, as vLLM's `priority`.
    public let forwardsPriority: Bool
    /// Where the pool's slots are leased when replicas share them (Redis); nil keeps the
    /// count in this process.
    public let sharedSlots: RedisSlotLeases?
    let logger: Logger?
    let state: Mutex<State>

    public static let defaultMaximumQueue = 1_000

    /// Wakes ``run()`` when a request starts waiting or a slot is given back.
    let wakeUps: (stream: AsyncStream<Void>, continuation: AsyncStream<Void>.Continuation)
    let storeFailing = Atomic<Bool>(false)

    /// - Parameters:
    ///   - sharedSlots: Lease the pool's slots from Redis, so that replicas together hold
    ///     at most `capacity`; ``run()`` must then be running.
    public init(
        name: String,
        replicas: [Replica],
        maximumQueue: Int = EnginePool.defaultMaximumQueue,
        scheduling: Scheduling = .contract,
        forwardsPriority: Bool = false,
        sharedSlots: RedisSlotLeases? = nil,
        logger: Logger? = nil
    ) {
        precondition(!replicas.isEmpty, "an engine pool needs at least one replica")
        self.name = name
        self.scheduling = scheduling
        self.forwardsPriority = forwardsPriority
        self.sharedSlots = scheduling == .contract ? sharedSlots : nil
        self.logger = logger
        self.wakeUps = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.replicas = replicas
        self.capacity = replicas.reduce(0) { $0 + $1.slots }
        self.maximumQueue = maximumQueue
        self.state = Mutex(State(
            queue: PoolQueueState(capacity: capacity, maximumQueue: maximumQueue, gated: self.sharedSlots != nil),
            replicas: EnginePoolState(slots: replicas.map(\.slots))
        ))
    }

    /// vLLM's `priority` for a request of `band`: vLLM serves lower numbers first and
    /// Switchyard higher bands first, so the band is negated (band 100 is priority -100).
    public static func enginePriority(band: Int) -> Int { -band }

    // MARK: Acquiring

    /// A slot of the pool: at once when one is free (no suspension), else after waiting
    /// in the queue by contract.
    public func acquire(_ demand: Demand) async -> Acquisition {
        guard let sharedSlots else {
            if let lease = tryAcquire(demand, now: .now) { return .leased(lease) }
            return await wait(demand)
        }
        return await acquireShared(demand, from: sharedSlots)
    }

    /// A slot if one is free now, without waiting. Always nil for a pool whose slots are
    /// shared: a lease needs a round trip to Redis.
    public func tryAcquire(_ demand: Demand, now: ContinuousClock.Instant = .now) -> Lease? {
        guard sharedSlots == nil else { return nil }
        return state.withLock { state -> Lease? in
            guard scheduling == .fifo || state.queue.takeFreeSlot(demand.queueDemand) else { return nil }
            return lease(&state, tier: demand.tier, waited: .zero, now: now)
        }
    }

    /// When a request of `demand` would get a slot if it asked now: zero when one is
    /// free, nil before the pool has measured how long a slot is held.
    public func predictedStart(for demand: Demand) -> Duration? {
        state.withLock { $0.queue.predictedStart(for: demand.queueDemand) }
    }

    /// Whether a request of `demand` should spill over rather than wait: no slot is free
    /// and the predicted start is later than `spillAfter`, or not yet known.
    public func isSaturated(for demand: Demand, spillAfter: Duration) -> Bool {
        guard let predicted = predictedStart(for: demand) else { return true }
        return predicted > .zero && predicted > spillAfter
    }

    func wait(_ demand: Demand) async -> Acquisition {
        let ticket = Ticket()
        return await withTaskGroup(of: Acquisition?.self) { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (continuation: Waiter) in
                        self.enqueue(demand, continuation: continuation, ticket: ticket)
                    }
                } onCancel: {
                    self.abandon(ticket, with: .cancelled, demand: demand)
                }
            }
            if let maximumWait = demand.maximumWait {
                group.addTask {
                    // The deadline: a waiter still queued then is turned away.
                    try? await Task.sleep(for: maximumWait)
                    if !Task.isCancelled { self.abandon(ticket, with: .timedOut, demand: demand) }
                    return nil
                }
            }
            var outcome: Acquisition = .cancelled
            for await result in group {
                guard let result else { continue }
                outcome = result
                break
            }
            group.cancelAll()
            return outcome
        }
    }

    private func enqueue(_ demand: Demand, continuation: Waiter, ticket: Ticket) {
        let now = ContinuousClock.now
        let immediate: Acquisition? = state.withLock { state -> Acquisition? in
            switch ticket.state.withLock({ $0 }) {
            case .new: break
            case .timedOut: return .refused(.capacityExhausted(predictedStart: state.queue.predictedStart(for: demand.queueDemand)))
            case .queued, .done: return .cancelled
            }
            switch state.queue.acquire(demand.queueDemand, waiter: continuation, maximumWait: demand.maximumWait, now: now) {
            case .granted:
                return .leased(lease(&state, tier: demand.tier, waited: .zero, now: now))
            case .enqueued(let id):
                ticket.state.withLock { $0 = .queued(id) }
                return nil
            case .refused(.queueFull(let predicted)):
                return .refused(.capacityExhausted(predictedStart: predicted))
            case .refused(.tooLate(let predicted)):
                return .refused(.capacityExhausted(predictedStart: predicted))
            }
        }
        if let immediate {
            continuation.resume(returning: immediate)
        } else if sharedSlots != nil {
            // Queued: the loop takes a shared lease for it.
            wakeUps.continuation.yield()
        }
    }

    private enum Abandonment { case cancelled, timedOut }

    /// Takes a waiter out of the queue; it is resumed unless it was granted first.
    private func abandon(_ ticket: Ticket, with reason: Abandonment, demand: Demand) {
        let removed = state.withLock { state -> (Waiter, Acquisition)? in
            let id: PoolQueueState<Waiter>.ID? = ticket.state.withLock { ticket in
                // A deadline before the waiter is queued is still a deadline, not a client leaving.
                defer { ticket = ticket == .new && reason == .timedOut ? .timedOut : .done }
                if case .queued(let id) = ticket { return id }
                return nil
            }
            guard let id, let waiter = state.queue.remove(id) else { return nil }
            switch reason {
            case .cancelled:
                return (waiter, .cancelled)
            case .timedOut:
                let predicted = state.queue.predictedStart(for: demand.queueDemand)
                return (waiter, .refused(.capacityExhausted(predictedStart: predicted)))
            }
        }
        if let (waiter, outcome) = removed { waiter.resume(returning: outcome) }
    }

    // MARK: Releasing

    /// Gives back a slot; the next waiter by contract takes it.
    ///
    /// - Parameter served: whether the slot served a request (its hold time joins the
    ///   measured service time); false for one given back unused (the request could not be
    ///   sent, its client left, its replica could not be reached).
    public func release(_ lease: Lease, served: Bool = true, now: ContinuousClock.Instant = .now) {
        let granted = state.withLock { state -> (Waiter, Lease)? in
            state.replicas.release(lease.replica)
            guard scheduling == .contract else { return nil }
            guard let grant = state.queue.release(tier: lease.tier, heldFor: served ? now - lease.grantedAt : nil, now: now) else {
                return nil
            }
            return (grant.waiter, self.lease(&state, tier: grant.tier, waited: grant.waited, now: now))
        }
        if let (waiter, lease) = granted { waiter.resume(returning: .leased(lease)) }
        if let sharedSlots, let shared = lease.sharedLease {
            sharedSlots.give(pool: name, lease: shared)
            wakeUps.continuation.yield()
        } else if sharedSlots != nil {
            wakeUps.continuation.yield()
        }
    }

    /// Moves a held slot to another replica, after its replica could not be reached.
    public func relocate(_ lease: Lease, now: ContinuousClock.Instant = .now) -> Lease {
        state.withLock { state in
            state.replicas.release(lease.replica)
            var moved = lease
            moved.replica = state.replicas.acquire(now: now)
            moved.baseURL = replicas[moved.replica].baseURL
            return moved
        }
    }

    /// Records that a replica could not be reached; it is avoided for `backoff`.
    public func markUnreachable(_ lease: Lease, backoff: Duration = .seconds(5), now: ContinuousClock.Instant = .now) {
        state.withLock { $0.replicas.markUnreachable(lease.replica, until: now + backoff) }
    }

    // MARK: Reading

    /// Requests in flight per replica.
    public var inFlight: [Int] {
        state.withLock { $0.replicas.inFlight }
    }

    /// What the pool is doing now.
    public struct Snapshot: Sendable, Equatable {
        public var inFlight: Int
        public var waiting: Int
        /// Per tier: slots held and requests waiting.
        public var tiers: [String: TierCount]
        /// The measured time a slot is held; nil before the first release.
        public var serviceTime: Duration?
    }

    public struct TierCount: Sendable, Equatable {
        public var inFlight: Int
        public var waiting: Int
    }

    public var snapshot: Snapshot {
        state.withLock { state in
            Snapshot(
                inFlight: scheduling == .contract ? state.queue.inFlight : state.replicas.inFlight.reduce(0, +),
                waiting: state.queue.waiting,
                tiers: state.queue.tierCounts.mapValues { TierCount(inFlight: $0.inFlight, waiting: $0.waiting) },
                serviceTime: state.queue.serviceTime
            )
        }
    }

    /// Where one tenant's requests wait for this pool's slots.
    public struct TenantLine: Sendable, Equatable {
        /// The tenant's requests waiting.
        public var waiting: Int
        /// Its longest-waiting request's place: 1 when it gets the next slot freed.
        public var oldestPosition: Int?
        /// How long its longest-waiting request has waited.
        public var oldestWaited: Duration?
        /// When its longest-waiting request is predicted to start, from now; nil when none
        /// waits or the pool has not yet measured how long a slot is held.
        public var predictedStart: Duration?
    }

    /// Where `tenant`'s requests wait now (for the management API: it walks the queue).
    public func line(of tenant: String, now: ContinuousClock.Instant = .now) -> TenantLine {
        // The walk runs on a copy, outside the lock the request path takes.
        let queue = state.withLock { $0.queue }
        let line = queue.line(of: tenant)
        return TenantLine(
            waiting: line.waiting,
            oldestPosition: line.oldest?.position,
            oldestWaited: line.oldest.map { now - $0.enqueuedAt },
            predictedStart: line.oldest?.predictedStart
        )
    }

    /// Every tenant's waiting requests, by tier.
    public var waitingByTenant: [String: [String: Int]] {
        state.withLock { $0.queue.waitingByTenant }
    }

    func lease(
        _ state: inout State, tier: String, waited: Duration, now: ContinuousClock.Instant, sharedLease: String? = nil
    ) -> Lease {
        let replica = state.replicas.acquire(now: now)
        return Lease(
            replica: replica, baseURL: replicas[replica].baseURL, tier: tier, grantedAt: now, waited: waited,
            sharedLease: sharedLease
        )
    }

    /// A waiting request's place in the queue, shared by its waiting, its cancellation
    /// and its deadline, whichever comes first.
    private final class Ticket: Sendable {
        enum State: Equatable {
            case new
            case queued(PoolQueueState<Waiter>.ID)
            /// The deadline came before the waiter was queued.
            case timedOut
            case done
        }

        let state = Mutex(State.new)
    }
}
