import Logging
import Synchronization

/// Sends the writes a Redis-backed type does not wait for (`RedisAdmission`'s settlements,
/// `RedisKeyPool`'s releases) to Redis, each a run of one Lua script, pipelined in batches
/// by one loop that retries while Redis is unreachable.
///
/// The queue's bookkeeping is a ``RedisBatchQueue``; this type does its I/O. Its users
/// differ only in how an item becomes a command, how a reply is counted and what the logs
/// call things, so those come in at init and the loop, flush and shutdown are written once.
final class RedisBatchSender<Item: Sendable>: Sendable {
    /// What the logs call the user's items, so an operator reads "settling reservations"
    /// rather than a generic "sending items".
    struct Wording: Sendable {
        /// Sending a batch, as in "<sending> failed; retrying".
        var sending: String
        /// Items dropped because the queue is full; " or shut down" is added when an
        /// enqueue is refused, since it may be either.
        var dropped: String
        /// Items given up at shutdown because Redis failed.
        var abandoned: String
        /// The script, as in "<script> failed".
        var script: String
    }

    let client: RedisClient
    let script: RedisScript
    /// The most items queued; at least 1.
    let capacity: Int
    private let wording: Wording
    private let logger: Logger
    /// The `EVALSHA` command that sends one item.
    private let command: @Sendable (Item) -> [String]
    /// Counts a script's (non-error) reply; throws when the reply makes no sense.
    private let count: @Sendable (RedisReply) throws -> Void
    private let queue: Mutex<RedisBatchQueue<Item, CheckedContinuation<Void, Never>>>
    private let droppedCount = Atomic<Int>(0)

    /// - Parameters:
    ///   - capacity: The most items queued; at least 1.
    ///   - batchSize: The most items sent in one pipeline; at least 1.
    ///   - command: The `EVALSHA` of `script` that sends one item.
    ///   - count: Counts a reply that is not an error; throws when it makes no sense, and
    ///     the item is then counted dropped (sending it again would fail again).
    init(
        client: RedisClient,
        script: RedisScript,
        capacity: Int,
        batchSize: Int,
        wording: Wording,
        logger: Logger,
        command: @escaping @Sendable (Item) -> [String],
        count: @escaping @Sendable (RedisReply) throws -> Void
    ) {
        self.client = client
        self.script = script
        self.capacity = max(1, capacity)
        self.wording = wording
        self.logger = logger
        self.command = command
        self.count = count
        self.queue = Mutex(RedisBatchQueue(capacity: capacity, batchSize: batchSize))
    }

    /// Items dropped: queue full, shut down, Redis unreachable at shutdown, or script failed.
    var dropped: Int { droppedCount.load(ordering: .relaxed) }

    /// Items queued, not counting batches being sent.
    var pending: Int { queue.withLock { $0.pendingCount } }

    // MARK: Loop, flush, shutdown

    /// Sends queued items until shutdown has begun and the queue is empty, or until its task
    /// is cancelled (``shutdown()`` then sends the rest). A second call while one runs
    /// returns at once.
    ///
    /// A failed batch is retried with a backoff of up to 2 s while newer items queue behind
    /// it; a warning is logged when sending starts failing and a notice when it works again,
    /// not one per retry.
    func run() async {
        guard queue.withLock({ $0.startRunning() }) else { return }
        var backoff = Self.initialBackoff
        var failing = false
        loop: while !Task.isCancelled {
            switch queue.withLock({ $0.nextBatch() }) {
            case .finish:
                break loop
            case .wait:
                await park()
            case .send(let batch):
                do {
                    try await send(batch)
                    resume(queue.withLock { $0.batchSent() })
                    if failing {
                        logger.notice("\(wording.sending) works again")
                        failing = false
                    }
                    backoff = Self.initialBackoff
                } catch {
                    if !failing {
                        logger.warning("\(wording.sending) failed; retrying", metadata: ["error": "\(error)"])
                        failing = true
                    }
                    guard handleFailure(of: batch) else { continue }
                    try? await Task.sleep(for: backoff)
                    backoff = min(backoff * 2, Self.largestBackoff)
                }
            }
        }
        resume(queue.withLock { $0.runStopped() })
    }

    /// Waits until every item queued so far has been sent or given up; sends them itself,
    /// once, when ``run()`` is not running.
    func flush() async {
        while true {
            switch queue.withLock({ $0.flushStep() }) {
            case .done:
                return
            case .sendYourself:
                guard await sendOnce() else { return }
            case .wait:
                await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
                    if !queue.withLock({ $0.waitForFlush(waiter) }) { waiter.resume() }
                }
            }
        }
    }

    /// Stops taking items, waits for ``run()`` to send what is queued and return, then sends
    /// the rest itself once.
    func shutdown() async {
        queue.withLock { $0.beginShutdown() }?.resume()
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            if !queue.withLock({ $0.waitForStop(waiter) }) { waiter.resume() }
        }
        await sendOnce()
    }

    /// Queues an item, or drops and counts it when the queue is full or shut down; reports
    /// the first drop of a burst only, so a full queue does not flood the log.
    func enqueue(_ item: Item) {
        switch queue.withLock({ $0.enqueue(item) }) {
        case .queued(let wake):
            wake?.resume()
        case .dropped(let first):
            droppedCount.add(1, ordering: .relaxed)
            if first {
                logger.error("\(wording.dropped) or shut down", metadata: ["capacity": "\(capacity)"])
            }
        }
    }

    // MARK: Queue

    // Computed: a generic type cannot have static stored properties.
    private static var initialBackoff: Duration { .milliseconds(50) }
    private static var largestBackoff: Duration { .seconds(2) }

    /// Parks the loop until there is work, shutdown begins or its task is cancelled.
    private func park() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
                queue.withLock { $0.park(waiter, cancelled: Task.isCancelled) }?.resume()
            }
        } onCancel: {
            queue.withLock { $0.takeParked() }?.resume()
        }
    }

    /// Sends what is queued, each batch once: for flushes without a loop and for shutdown.
    /// - Returns: false when a batch failed and was put back to be sent later.
    @discardableResult
    private func sendOnce() async -> Bool {
        while case .send(let batch) = queue.withLock({ $0.nextBatch() }) {
            do {
                try await send(batch)
                resume(queue.withLock { $0.batchSent() })
            } catch {
                logger.warning("\(wording.sending) failed", metadata: ["error": "\(error)"])
                if handleFailure(of: batch) { return false }
            }
        }
        return true
    }

    /// Puts a failed batch back, or drops it at shutdown.
    /// - Returns: true when it was put back to be retried later.
    private func handleFailure(of batch: [Item]) -> Bool {
        switch queue.withLock({ $0.batchFailed(batch) }) {
        case .retry(let dropped):
            if dropped > 0 {
                droppedCount.add(dropped, ordering: .relaxed)
                logger.error("\(wording.dropped)", metadata: ["dropped": "\(dropped)"])
            }
            return true
        case .abandoned(let count, let wake):
            droppedCount.add(count, ordering: .relaxed)
            logger.error("\(wording.abandoned)", metadata: ["dropped": "\(count)"])
            resume(wake)
            return false
        }
    }

    private func resume(_ waiters: [CheckedContinuation<Void, Never>]) {
        for waiter in waiters { waiter.resume() }
    }

    // MARK: Redis

    /// Runs the script for each item in one pipeline; loads the script and sends again those
    /// Redis did not run because it did not know the script.
    /// - Throws: ``RedisError`` when Redis cannot be reached or does not answer in time;
    ///   some items may have run.
    private func send(_ batch: [Item]) async throws {
        let commands = batch.map(command)
        var replies = try await client.pipeline(commands)
        let unknown = replies.indices.filter { index in
            if case .error(let message) = replies[index] { message.hasPrefix("NOSCRIPT") } else { false }
        }
        if !unknown.isEmpty {
            _ = try await client.command(["SCRIPT", "LOAD", script.source]).checked()
            let again = try await client.pipeline(unknown.map { commands[$0] })
            for (index, reply) in zip(unknown, again) { replies[index] = reply }
        }
        for reply in replies {
            do {
                try count(reply.checked())
            } catch {
                // The script failed for this one (a bug, or a key of the wrong type): sending
                // it again would fail again.
                droppedCount.add(1, ordering: .relaxed)
                logger.error("\(wording.script) failed", metadata: ["error": "\(error)"])
            }
        }
    }
}
