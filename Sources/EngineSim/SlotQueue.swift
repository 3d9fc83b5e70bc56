/// A fixed number of generation slots, with requests beyond them waiting in FIFO order.
///
/// A request holds its slot for its whole generation, stream included, and must call
/// ``release()`` exactly once after ``acquire()`` returns.
actor SlotQueue {
    /// Counts for `/metrics`.
    struct Snapshot: Sendable, Equatable {
        var slots: Int
        var running: Int
        var waiting: Int
    }

    private var state: StateMachine<CheckedContinuation<Void, any Error>>

    /// Creates a queue with `slots` concurrent slots (at least 1).
    init(slots: Int) {
        self.state = StateMachine(slots: slots)
    }

    /// Waits for a slot and takes it.
    /// - Throws: `CancellationError` if the task is cancelled while waiting; it then holds no slot.
    func acquire() async throws {
        if state.tryAcquire() { return }
        let id = state.makeWaiterID()
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                // Cancellation may have come before this closure ran; its handler then found
                // no waiter to remove, so the check has to happen here.
                if Task.isCancelled {
                    continuation.resume(throwing: CancellationError())
                    return
                }
                switch state.acquire(id: id, waiter: continuation) {
                case .proceed: continuation.resume()
                case .wait: break
                }
            }
        } onCancel: {
            // The handler is synchronous and runs outside the actor; the hop is short-lived
            // and only ever removes one waiter.
            Task { await self.cancelWaiter(id) }
        }
    }

    /// Gives a slot back, passing it to the oldest waiter.
    func release() {
        switch state.release() {
        case .resume(let waiter): waiter.resume()
        case .none: break
        }
    }

    /// The current counts.
    func snapshot() -> Snapshot {
        Snapshot(slots: state.slots, running: state.running, waiting: state.waiting)
    }

    private func cancelWaiter(_ id: UInt64) {
        switch state.cancel(id) {
        case .fail(let waiter): waiter.resume(throwing: CancellationError())
        case .none: break
        }
    }
}
