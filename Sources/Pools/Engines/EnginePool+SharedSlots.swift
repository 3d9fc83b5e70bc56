import Synchronization

// MARK: Slots shared with other replicas through Redis

extension EnginePool {
    /// What one attempt to lease a slot from Redis came to.
    private enum SharedTake {
        case lease(String)
        /// Every slot of the pool is leased.
        case full
        /// Redis cannot be reached: this replica counts the pool's slots alone.
        case unreachable
        case cancelled
    }

    /// A slot of a pool whose slots are shared: a lease at once when nobody here waits for
    /// one, else a place in the queue, granted by ``run()``.
    func acquireShared(_ demand: Demand, from sharedSlots: RedisSlotLeases) async -> Acquisition {
        // Slots this replica counted alone while Redis was away still count against the pool.
        if state.withLock({ $0.queue.waiting == 0 && $0.queue.inFlight < capacity }) {
            let lease: Lease?
            switch await takeShared(from: sharedSlots) {
            case .cancelled: return .cancelled
            case .full: lease = nil
            case .lease(let id): lease = takeSlot(demand, sharedLease: id)
            case .unreachable: lease = takeSlot(demand, sharedLease: nil)
            }
            if let lease {
                if Task.isCancelled {
                    release(lease, served: false)
                    return .cancelled
                }
                return .leased(lease)
            }
        }
        return await wait(demand)
    }

    /// Takes shared leases for the requests waiting here, until cancelled: at once when a
    /// request starts waiting or a slot is given back here, and every `pollInterval` while
    /// requests wait (another replica may have given one back). Only pools with
    /// `sharedSlots` need it; for others it returns at once.
    public func run(pollInterval: Duration = .milliseconds(10)) async {
        guard let sharedSlots else { return }
        var wakeUps = self.wakeUps.stream.makeAsyncIterator()
        while !Task.isCancelled {
            guard state.withLock({ $0.queue.waiting > 0 && $0.queue.inFlight < capacity }) else {
                guard await wakeUps.next() != nil else { return }
                continue
            }
            switch await takeShared(from: sharedSlots) {
            case .cancelled:
                return
            case .full:
                try? await Task.sleep(for: pollInterval)
            case .unreachable:
                if !grantNext(sharedLease: nil) { try? await Task.sleep(for: pollInterval * 10) }
            case .lease(let id):
                // The waiter may have left meanwhile: the lease goes back.
                if !grantNext(sharedLease: id) { sharedSlots.give(pool: name, lease: id) }
            }
        }
    }

    private func takeShared(from sharedSlots: RedisSlotLeases) async -> SharedTake {
        do {
            let taken = try await sharedSlots.take(pool: name, capacity: capacity)
            noteStore(working: true)
            return taken.map(SharedTake.lease) ?? .full
        } catch is CancellationError where Task.isCancelled {
            return .cancelled
        } catch {
            noteStore(working: false, error: error)
            return .unreachable
        }
    }

    /// Takes a slot for `demand` with a shared lease, or without one (nil, while Redis is
    /// away) if this replica holds fewer than the pool's slots.
    private func takeSlot(_ demand: Demand, sharedLease: String?) -> Lease? {
        state.withLock { state -> Lease? in
            guard sharedLease != nil || state.queue.inFlight < capacity else { return nil }
            state.queue.takeLeasedSlot(demand.queueDemand)
            return lease(&state, tier: demand.tier, waited: .zero, now: .now, sharedLease: sharedLease)
        }
    }

    /// Hands a slot to the next waiter by contract, with a shared lease, or without one
    /// (nil, while Redis is away) if this replica holds fewer than the pool's slots.
    /// False when nobody took it.
    private func grantNext(sharedLease: String?) -> Bool {
        let now = ContinuousClock.now
        let granted = state.withLock { state -> (Waiter, Lease)? in
            guard sharedLease != nil || state.queue.inFlight < capacity,
                  let grant = state.queue.addLeasedSlot(now: now)
            else { return nil }
            return (grant.waiter, lease(&state, tier: grant.tier, waited: grant.waited, now: now, sharedLease: sharedLease))
        }
        guard let (waiter, lease) = granted else { return false }
        waiter.resume(returning: .leased(lease))
        return true
    }

    /// Logs once when Redis stops answering for the pool's slots, and once when it is back.
    private func noteStore(working: Bool, error: (any Error)? = nil) {
        guard storeFailing.exchange(!working, ordering: .relaxed) == working else { return }
        if working {
            logger?.notice("engine slots are shared through Redis again", metadata: ["pool": "\(name)"])
        } else {
            logger?.warning(
                "engine slots cannot be leased from Redis; this replica counts the pool's slots alone",
                metadata: ["pool": "\(name)", "error": "\(error.map { "\($0)" } ?? "")"]
            )
        }
    }
}
