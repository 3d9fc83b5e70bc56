extension SlotQueue {
    /// The bookkeeping of a slot queue, free of I/O: how many requests run and which wait, in
    /// arrival order. Its methods return what the caller must do with a waiter.
    ///
    /// Invariant: waiters exist only while every slot is taken. A released slot passes
    /// straight to the oldest waiter, so a newcomer can never overtake the queue.
    struct StateMachine<Waiter> {
        /// What to do after asking for a slot.
        enum AcquireAction {
            /// A slot was free and is now the caller's.
            case proceed
            /// The waiter was queued; it is handed back by `release()` or `cancel(_:)`.
            case wait
        }

        /// What to do after giving a slot back.
        enum ReleaseAction {
            /// The slot passed to this waiter: resume it.
            case resume(Waiter)
            /// Nobody was waiting; the slot is free.
            case none
        }

        /// What to do after a waiter's task was cancelled.
        enum CancelAction {
            /// The waiter left the queue: resume it with a cancellation error.
            case fail(Waiter)
            /// The waiter already had its slot (or was never queued): nothing to do.
            case none
        }

        let slots: Int
        private(set) var running = 0
        private var waiters: [UInt64: Waiter] = [:]
        /// Arrival order of waiter ids. Cancelled ids stay here until reached, and are
        /// skipped, so cancelling is O(1) and the queue is compacted only now and then.
        private var order: [UInt64] = []
        private var head = 0
        private var nextID: UInt64 = 0

        /// Creates the state for `slots` concurrent requests (at least 1).
        init(slots: Int) {
            self.slots = max(1, slots)
        }

        /// Requests waiting for a slot.
        var waiting: Int { waiters.count }

        /// Takes a slot if one is free; nothing is queued.
        mutating func tryAcquire() -> Bool {
            guard running < slots else { return false }
            running += 1
            return true
        }

        /// A fresh id to queue a waiter under; the caller needs it before it has a waiter,
        /// to register its cancellation handler.
        mutating func makeWaiterID() -> UInt64 {
            defer { nextID &+= 1 }
            return nextID
        }

        /// Takes a free slot, or queues `waiter` under `id` behind those already waiting.
        mutating func acquire(id: UInt64, waiter: Waiter) -> AcquireAction {
            if tryAcquire() { return .proceed }
            waiters[id] = waiter
            order.append(id)
            return .wait
        }

        /// Gives a slot back, handing it to the oldest waiter if there is one.
        mutating func release() -> ReleaseAction {
            assert(running > 0, "released a slot that was not taken")
            while head < order.count {
                let id = order[head]
                head += 1
                if let waiter = waiters.removeValue(forKey: id) {
                    compactIfWorthwhile()
                    return .resume(waiter)
                }
            }
            order.removeAll(keepingCapacity: true)
            head = 0
            running = max(running - 1, 0)
            return .none
        }

        /// Removes the waiter queued under `id`, if it is still waiting.
        mutating func cancel(_ id: UInt64) -> CancelAction {
            guard let waiter = waiters.removeValue(forKey: id) else { return .none }
            if waiters.isEmpty {
                order.removeAll(keepingCapacity: true)
                head = 0
            }
            return .fail(waiter)
        }

        private mutating func compactIfWorthwhile() {
            if head >= 1024 && head * 2 >= order.count {
                order.removeFirst(head)
                head = 0
            }
        }
    }
}
