/// The items a Redis-backed type accepted but has not yet sent to Redis (settlements of
/// `RedisAdmission`, releases of `RedisKeyPool`), and who waits on them: the sending loop
/// (parked while there is nothing to send), callers of `flush`, and `shutdown` waiting for
/// the loop to stop.
///
/// A value-type state machine: its methods change the state and return what the caller
/// must do (send a batch, wake a waiter, count drops); ``RedisBatchSender`` does the I/O.
/// Generic over the items and the waiters so that it is tested without Redis or
/// continuations.
struct RedisBatchQueue<Item, Waiter> {
    /// What became of an item offered to the queue.
    enum Enqueued {
        /// Queued; wake the parked loop if there is one.
        case queued(wake: Waiter?)
        /// Dropped because the queue is full or shut down; `first` is true for the first
        /// drop after a successful enqueue, so a burst is reported once.
        case dropped(first: Bool)
    }

    /// What the sending loop does next.
    enum Next {
        case send([Item])
        /// Nothing to send: park until woken.
        case wait
        /// Shutting down and nothing left: stop.
        case finish
    }

    /// What became of a batch that could not be sent.
    enum Failure {
        /// Put back at the front; `dropped` newer items no longer fit.
        case retry(dropped: Int)
        /// Shutting down: the batch and everything queued are given up; wake these.
        case abandoned(count: Int, wake: [Waiter])
    }

    /// What `flush` does next.
    enum FlushStep {
        case done
        /// The loop (or another sender) will empty the queue: wait for it.
        case wait
        /// Nobody is sending: send the queue yourself.
        case sendYourself
    }

    let capacity: Int
    let batchSize: Int
    private var items: [Item] = []
    private var batchesOut = 0
    private(set) var isRunning = false
    private(set) var isShuttingDown = false
    private var dropping = false
    private var parked: Waiter?
    private var flushWaiters: [Waiter] = []
    private var stopWaiters: [Waiter] = []

    init(capacity: Int, batchSize: Int) {
        self.capacity = max(1, capacity)
        self.batchSize = max(1, batchSize)
    }

    /// Items queued, not counting batches being sent.
    var pendingCount: Int { items.count }

    private var isIdle: Bool { items.isEmpty && batchesOut == 0 }

    // MARK: Producers

    mutating func enqueue(_ item: Item) -> Enqueued {
        guard !isShuttingDown, items.count < capacity else {
            defer { dropping = true }
            return .dropped(first: !dropping)
        }
        dropping = false
        items.append(item)
        return .queued(wake: takeParked())
    }

    // MARK: The sending loop

    /// Marks the loop running. False when it already runs or the queue was shut down:
    /// that loop must return at once.
    mutating func startRunning() -> Bool {
        guard !isRunning, !isShuttingDown else { return false }
        isRunning = true
        return true
    }

    /// The next batch, oldest first; the caller must report it sent or failed.
    mutating func nextBatch() -> Next {
        guard !items.isEmpty else { return isShuttingDown ? .finish : .wait }
        let count = min(batchSize, items.count)
        let batch = Array(items.prefix(count))
        items.removeFirst(count)
        batchesOut += 1
        return .send(batch)
    }

    /// Parks the loop until an item arrives or shutdown begins.
    /// - Returns: `waiter` when it must be woken at once (there is work, or shutdown
    ///   began, or the loop's task is cancelled); nil when it was parked.
    mutating func park(_ waiter: Waiter, cancelled: Bool) -> Waiter? {
        guard items.isEmpty, !isShuttingDown, !cancelled else { return waiter }
        parked = waiter
        return nil
    }

    /// Takes the parked loop, to wake it (its task was cancelled).
    mutating func takeParked() -> Waiter? {
        defer { parked = nil }
        return parked
    }

    /// A batch reached Redis.
    /// - Returns: flush callers to wake, now that nothing is left.
    mutating func batchSent() -> [Waiter] {
        batchesOut -= 1
        return isIdle ? takeFlushWaiters() : []
    }

    /// A batch could not be sent.
    mutating func batchFailed(_ batch: [Item]) -> Failure {
        batchesOut -= 1
        guard !isShuttingDown else {
            // One failure at shutdown means Redis is gone; waiting for more timeouts
            // would only delay the process's exit.
            let count = batch.count + items.count
            items.removeAll()
            return .abandoned(count: count, wake: isIdle ? takeFlushWaiters() : [])
        }
        items.insert(contentsOf: batch, at: 0)
        let overflow = max(0, items.count - capacity)
        items.removeLast(overflow)
        return .retry(dropped: overflow)
    }

    /// The loop returned.
    /// - Returns: everyone waiting for it: `shutdown` and flush callers (who send the
    ///   rest themselves if any is left).
    mutating func runStopped() -> [Waiter] {
        isRunning = false
        defer { stopWaiters = [] }
        return stopWaiters + takeFlushWaiters()
    }

    // MARK: Flush and shutdown

    mutating func flushStep() -> FlushStep {
        if isIdle { return .done }
        return isRunning || items.isEmpty ? .wait : .sendYourself
    }

    /// Waits for the queue to empty.
    /// - Returns: false when there is nothing to wait for (wake `waiter` at once and
    ///   look at ``flushStep()`` again).
    mutating func waitForFlush(_ waiter: Waiter) -> Bool {
        guard flushStep() == .wait else { return false }
        flushWaiters.append(waiter)
        return true
    }

    /// Stops taking items; the loop finishes once the queue is empty.
    /// - Returns: the parked loop, to wake.
    mutating func beginShutdown() -> Waiter? {
        isShuttingDown = true
        return takeParked()
    }

    /// Waits for the loop to return.
    /// - Returns: false when it is not running (wake `waiter` at once).
    mutating func waitForStop(_ waiter: Waiter) -> Bool {
        guard isRunning else { return false }
        stopWaiters.append(waiter)
        return true
    }

    private mutating func takeFlushWaiters() -> [Waiter] {
        defer { flushWaiters = [] }
        return flushWaiters
    }
}

extension RedisBatchQueue.FlushStep: Equatable {}
