/// The admission queue of one engine pool, as a value-type state machine: who holds the
/// pool's slots, who waits for one, and who gets the next one freed.
///
/// A freed slot goes to, in order:
/// 1. a waiting tier holding fewer slots than its reserved share of the pool (the highest
///    band of those first);
/// 2. the highest band with a waiter;
/// 3. within a band, the tenant first in weighted fair share (start-time fair queuing:
///    each request is tagged `max(band clock, tenant's last finish)`, its finish is that
///    plus 1/weight, and the lowest tag goes first);
/// 4. within a tenant, first come first served.
///
/// Slots a reserving tier does not use are lent to anyone; when it has demand again, it
/// takes the next slot freed, so it waits at most about one service time.
///
/// `Waiter` is what the owner resumes when a waiter is granted or turned away (a
/// continuation); the state machine only stores and returns it.
struct PoolQueueState<Waiter> {
    typealias ID = UInt64

    /// Who asks for a slot.
    struct Demand: Sendable, Equatable {
        var tenant: String
        var tier: String
        var band: Int
        var weight: Int
        /// The tier's reserved share of the pool (0…1).
        var reservedShare: Double

        init(tenant: String, tier: String, band: Int, weight: Int = 1, reservedShare: Double = 0) {
            self.tenant = tenant
            self.tier = tier
            self.band = band
            self.weight = max(1, weight)
            self.reservedShare = reservedShare
        }
    }

    enum AcquireAction {
        /// A slot was free: the caller holds it now.
        case granted
        /// No slot is free: the waiter is queued under `id` until granted, cancelled or
        /// timed out.
        case enqueued(ID)
        case refused(Refusal)
    }

    enum Refusal: Equatable {
        /// The queue holds `maximumQueue` waiters already.
        case queueFull(predictedStart: Duration?)
        /// The predicted start is later than the longest wait the request accepts.
        case tooLate(predictedStart: Duration)
    }

    /// A waiter that now holds a slot.
    struct Grant {
        var id: ID
        var waiter: Waiter
        var tier: String
        var waited: Duration
    }

    private struct Entry {
        var id: ID
        var waiter: Waiter
        var tier: String
        var startTag: Double
        var finishTag: Double
        var enqueuedAt: ContinuousClock.Instant
    }

    /// One tenant's waiters in one band, first come first.
    private struct Flow {
        /// Waiters from `head` on; those before it were served and are dropped now and then.
        private var storage: [Entry] = []
        private var head = 0
        var lastFinish: Double = 0

        var isEmpty: Bool { head == storage.count }
        var first: Entry? { isEmpty ? nil : storage[head] }
        /// The waiters, first come first.
        var entries: ArraySlice<Entry> { storage[head...] }

        mutating func append(_ entry: Entry) {
            storage.append(entry)
        }

        mutating func removeFirst() -> Entry {
            let entry = storage[head]
            head += 1
            if head == storage.count {
                storage.removeAll(keepingCapacity: true)
                head = 0
            } else if head >= 32, head * 2 >= storage.count {
                storage.removeFirst(head)
                head = 0
            }
            return entry
        }

        /// Removes the waiter `id`, wherever it is. A waiter that leaves unserved gives back
        /// its share: the tenant's later waiters move up by what it was tagged.
        mutating func remove(_ id: ID) -> Entry? {
            guard let index = storage[head...].firstIndex(where: { $0.id == id }) else { return nil }
            let entry = storage[index]
            let share = entry.finishTag - entry.startTag
            for later in (index + 1)..<storage.count {
                storage[later].startTag -= share
                storage[later].finishTag -= share
            }
            lastFinish -= share
            return index == head ? removeFirst() : storage.remove(at: index)
        }
    }

    private struct Band {
        var clock: Double = 0
        var flows: [String: Flow] = [:]
        var waiting = 0
    }

    private struct TierState {
        var inFlight = 0
        var waiting = 0
        var reservedShare: Double = 0
    }

    /// Slots that may be held now: the pool's slots, or, when the slots are shared with
    /// other replicas (`gated`), those this replica holds a shared lease for.
    private(set) var capacity: Int
    /// The pool's slots: the sum of its replicas' slots.
    let slots: Int
    /// Whether each slot needs a lease from a store shared with other replicas: a slot is
    /// added with each lease taken and removed with each given back.
    let gated: Bool
    /// The most waiters held at once.
    let maximumQueue: Int
    private(set) var inFlight = 0
    private(set) var waiting = 0
    private var bands: [Int: Band] = [:]
    /// Bands with waiters, highest first.
    private var activeBands: [Int] = []
    private var tiers: [String: TierState] = [:]
    private var locations: [ID: (band: Int, tenant: String)] = [:]
    private var nextID: ID = 1
    /// The measured time a slot is held (EWMA), nil until the first release.
    private(set) var serviceTime: Duration?

    /// The weight of the newest hold time in the service-time average.
    static var smoothing: Double { 0.2 }

    init(capacity: Int, maximumQueue: Int, gated: Bool = false) {
        self.slots = max(1, capacity)
        self.capacity = gated ? 0 : max(1, capacity)
        self.gated = gated
        self.maximumQueue = max(0, maximumQueue)
    }

    // MARK: Acquiring

    /// Takes a free slot, or queues the waiter, or refuses it.
    ///
    /// - Parameters:
    ///   - maximumWait: The longest the request accepts to wait; nil waits as long as it takes.
    mutating func acquire(
        _ demand: Demand, waiter: Waiter, maximumWait: Duration?, now: ContinuousClock.Instant
    ) -> AcquireAction {
        if takeFreeSlot(demand) { return .granted }
        let predicted = predictedStart(for: demand)
        if waiting >= maximumQueue { return .refused(.queueFull(predictedStart: predicted)) }
        if let maximumWait, let predicted, predicted > maximumWait { return .refused(.tooLate(predictedStart: predicted)) }
        let id = nextID
        nextID += 1
        // Taken out of the dictionaries while changed, so no waiter list is copied.
        var band = bands.removeValue(forKey: demand.band) ?? Band()
        var flow = band.flows.removeValue(forKey: demand.tenant) ?? Flow()
        let startTag = max(band.clock, flow.lastFinish)
        flow.lastFinish = startTag + 1 / Double(demand.weight)
        flow.append(Entry(
            id: id, waiter: waiter, tier: demand.tier, startTag: startTag, finishTag: flow.lastFinish, enqueuedAt: now
        ))
        band.flows[demand.tenant] = flow
        band.waiting += 1
        if band.waiting == 1 { activate(demand.band) }
        bands[demand.band] = band
        tiers[demand.tier]!.waiting += 1
        waiting += 1
        locations[id] = (demand.band, demand.tenant)
        return .enqueued(id)
    }

    /// Takes a slot if one is free; a free slot means nobody waits, since every release
    /// hands its slot on at once.
    mutating func takeFreeSlot(_ demand: Demand) -> Bool {
        tiers[demand.tier, default: TierState()].reservedShare = demand.reservedShare
        guard inFlight < capacity else { return false }
        take(tier: demand.tier)
        return true
    }

    /// Takes a slot just leased from the shared store (gated pools).
    mutating func takeLeasedSlot(_ demand: Demand) {
        tiers[demand.tier, default: TierState()].reservedShare = demand.reservedShare
        capacity += 1
        take(tier: demand.tier)
    }

    /// Adds a slot just leased from the shared store and hands it to the next waiter;
    /// nil (and the slot removed again) when nobody waits, so the lease goes back.
    mutating func addLeasedSlot(now: ContinuousClock.Instant) -> Grant? {
        capacity += 1
        guard let grant = dispatch(now: now) else {
            capacity -= 1
            return nil
        }
        return grant
    }

    /// When a request of `demand` would get a slot if it asked now: zero when one is free;
    /// nil when the pool has not yet measured how long a slot is held.
    func predictedStart(for demand: Demand) -> Duration? {
        // A gated pool cannot see the other replicas' slots: with nobody waiting here and
        // its own share not full, a slot is likely free.
        guard gated ? waiting > 0 || inFlight >= slots : inFlight >= capacity else { return .zero }
        guard let serviceTime else { return nil }
        let ahead: Int
        if isOwed(demand.tier, share: demand.reservedShare) {
            // The next slots freed go to the reserving tier: only its own waiters are ahead.
            ahead = tiers[demand.tier]?.waiting ?? 0
        } else {
            ahead = bands.reduce(0) { $0 + ($1.key >= demand.band ? $1.value.waiting : 0) }
        }
        // Slots free at about `slots` per service time.
        return serviceTime * (Double(ahead + 1) / Double(slots))
    }

    // MARK: Releasing

    /// Gives back a slot held for `heldFor`, and hands it to the next waiter, if any.
    mutating func release(tier: String, heldFor: Duration?, now: ContinuousClock.Instant) -> Grant? {
        if let heldFor, heldFor >= .zero {
            serviceTime = serviceTime.map { $0 * (1 - Self.smoothing) + heldFor * Self.smoothing } ?? heldFor
        }
        inFlight = max(0, inFlight - 1)
        if let state = tiers[tier], state.inFlight > 0 { tiers[tier]!.inFlight -= 1 }
        if gated {
            // The lease goes back to the shared store; waiters here get the next one taken.
            capacity = max(0, capacity - 1)
            return nil
        }
        return dispatch(now: now)
    }

    /// Removes a waiter that will not wait any more (its client left, or its wait ran
    /// out). Returns it, or nil when it was already granted or removed.
    mutating func remove(_ id: ID) -> Waiter? {
        guard let (bandKey, tenant) = locations.removeValue(forKey: id), var band = bands.removeValue(forKey: bandKey) else {
            return nil
        }
        guard var flow = band.flows.removeValue(forKey: tenant) else {
            bands[bandKey] = band
            return nil
        }
        guard let entry = flow.remove(id) else {
            band.flows[tenant] = flow
            bands[bandKey] = band
            return nil
        }
        // Left with nobody waiting, the tenant keeps no share it did not use.
        if flow.isEmpty { flow.lastFinish = min(flow.lastFinish, band.clock) }
        store(flow, of: tenant, in: &band)
        leave(entry, band: &band, key: bandKey)
        return entry.waiter
    }

    /// How many of each tier's requests hold a slot, and how many wait.
    var tierCounts: [String: (inFlight: Int, waiting: Int)] {
        tiers.mapValues { ($0.inFlight, $0.waiting) }
    }

    // MARK: One tenant's place in line

    /// Where one tenant's requests wait in this queue.
    struct TenantLine: Equatable {
        /// The tenant's requests waiting.
        var waiting: Int
        /// Its longest-waiting request; nil when none waits.
        var oldest: Oldest?

        struct Oldest: Equatable {
            /// 1 when it gets the next slot freed.
            var position: Int
            var enqueuedAt: ContinuousClock.Instant
            /// When it is predicted to start: `position` slots freed at the measured rate;
            /// nil before the pool has measured how long a slot is held.
            var predictedStart: Duration?
        }
    }

    /// Where `tenant`'s requests wait, and its oldest one's place in the order freed slots
    /// are handed out (``dispatch``), as if nobody arrived or left meanwhile and each slot
    /// freed were one lent to a tier below its reserved share.
    ///
    /// While a waiting tier is below its reserved share, slots go to it first: those few
    /// grants (at most the pool's slots) are rehearsed on a copy of the queue. Once no tier
    /// is owed, the order is the bands', highest first, then start tags within a band
    /// (start-time fair queuing serves the lowest tag of all the band's waiters next, and
    /// a tenant's tags rise with each request), so the rest is counted in one pass over the
    /// waiters. For the management API; run it on a copy taken out of the pool's lock.
    func line(of tenant: String) -> TenantLine {
        var line = TenantLine(waiting: 0, oldest: nil)
        var oldest: (entry: Entry, band: Int)?
        for (key, band) in bands {
            guard let flow = band.flows[tenant] else { continue }
            for entry in flow.entries {
                line.waiting += 1
                if let found = oldest?.entry, (found.enqueuedAt, found.id) <= (entry.enqueuedAt, entry.id) { continue }
                oldest = (entry, key)
            }
        }
        guard let (target, targetBand) = oldest, let position = position(of: target, in: targetBand) else { return line }
        line.oldest = .init(
            position: position,
            enqueuedAt: target.enqueuedAt,
            predictedStart: serviceTime.map { $0 * (Double(position) / Double(slots)) }
        )
        return line
    }

    /// The place of the waiter `target` of band `band` in line (1: the next slot freed).
    private func position(of target: Entry, in band: Int) -> Int? {
        var rehearsal = self
        var granted = 0
        // A tier stops being owed as it is granted slots, so this ends within `slots` grants.
        while rehearsal.hasOwedWaiter {
            rehearsal.inFlight = min(rehearsal.inFlight, rehearsal.capacity - 1)
            guard let grant = rehearsal.dispatch(now: target.enqueuedAt) else { return nil }
            granted += 1
            if grant.id == target.id { return granted }
        }
        var ahead = 0
        for (key, other) in rehearsal.bands where key >= band {
            guard key == band else {
                ahead += other.waiting
                continue
            }
            for flow in other.flows.values {
                ahead += flow.entries.count { ($0.startTag, $0.id) < (target.startTag, target.id) }
            }
        }
        return granted + ahead + 1
    }

    /// Whether a tier below its reserved share has a waiter: then it gets the next slot.
    private var hasOwedWaiter: Bool {
        tiers.contains { tier, state in state.waiting > 0 && isOwed(tier, share: state.reservedShare) }
    }

    /// Every tenant's waiters, by tier: for tenant-labelled queue depths.
    var waitingByTenant: [String: [String: Int]] {
        var counts: [String: [String: Int]] = [:]
        for band in bands.values {
            for (tenant, flow) in band.flows {
                for entry in flow.entries { counts[tenant, default: [:]][entry.tier, default: 0] += 1 }
            }
        }
        return counts
    }

    // MARK: Dispatch

    private mutating func dispatch(now: ContinuousClock.Instant) -> Grant? {
        guard inFlight < capacity, waiting > 0 else { return nil }
        // A reserving tier below its share first, then bands in order.
        let owed = activeBands.first { band in
            bands[band]?.flows.values.contains { flow in
                flow.first.map { isOwed($0.tier, share: tiers[$0.tier]?.reservedShare ?? 0) } ?? false
            } ?? false
        }
        guard let bandKey = owed ?? activeBands.first, var band = bands.removeValue(forKey: bandKey) else { return nil }
        // The flow whose head request has the lowest start tag; among owed tiers only
        // when the slot is owed.
        var chosen: (tenant: String, tag: Double, id: ID)?
        for (tenant, flow) in band.flows {
            guard let head = flow.first else { continue }
            if owed != nil, !isOwed(head.tier, share: tiers[head.tier]?.reservedShare ?? 0) { continue }
            if let best = chosen, (head.startTag, head.id) >= (best.tag, best.id) { continue }
            chosen = (tenant, head.startTag, head.id)
        }
        guard let chosen, var flow = band.flows.removeValue(forKey: chosen.tenant) else {
            bands[bandKey] = band
            return nil
        }
        let entry = flow.removeFirst()
        locations[entry.id] = nil
        band.clock = max(band.clock, entry.startTag)
        store(flow, of: chosen.tenant, in: &band)
        leave(entry, band: &band, key: bandKey)
        take(tier: entry.tier)
        return Grant(id: entry.id, waiter: entry.waiter, tier: entry.tier, waited: now - entry.enqueuedAt)
    }

    private func isOwed(_ tier: String, share: Double) -> Bool {
        guard share > 0 else { return false }
        return Double(tiers[tier]?.inFlight ?? 0) < share * Double(capacity)
    }

    private mutating func take(tier: String) {
        inFlight += 1
        tiers[tier, default: TierState()].inFlight += 1
    }

    private func store(_ flow: Flow, of tenant: String, in band: inout Band) {
        // An idle tenant's flow is dropped, but only once its last finish is in the band's
        // past: coming back sooner must not reset its share.
        if flow.isEmpty, flow.lastFinish <= band.clock {
            band.flows[tenant] = nil
        } else {
            band.flows[tenant] = flow
        }
    }

    private mutating func leave(_ entry: Entry, band: inout Band, key: Int) {
        band.waiting -= 1
        waiting -= 1
        if let state = tiers[entry.tier], state.waiting > 0 { tiers[entry.tier]!.waiting -= 1 }
        if band.waiting == 0 {
            activeBands.removeAll { $0 == key }
            // Keep the band's clock: it orders tenants that come back.
            band.flows = band.flows.filter { $0.value.lastFinish > band.clock }
        }
        bands[key] = band
    }

    private mutating func activate(_ band: Int) {
        let index = activeBands.firstIndex { $0 < band } ?? activeBands.endIndex
        activeBands.insert(band, at: index)
    }
}
