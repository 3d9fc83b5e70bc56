import Logging

// MARK: Sending queued releases

extension RedisKeyPool {
    /// Sends queued releases to Redis, pipelined in batches, until ``shutdown()``.
    ///
    /// Start it once, next to the server (the proxy runs it in a `Service`): queued releases
    /// wait until it runs. When Redis cannot be reached, a batch is retried with a backoff of
    /// up to 2 s while newer releases queue behind it; a release sent twice finds its lease
    /// gone the second time and only applies its outcome again, which changes nothing that
    /// matters (a success's report, or the same cooldown a little later). Returns once
    /// shutdown has begun and the queue is empty, or when its task is cancelled
    /// (``shutdown()`` then sends the rest). A second call while one runs returns at once.
    public func run() async {
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
                        logger.notice("releasing provider keys in Redis works again")
                        failing = false
                    }
                    backoff = Self.initialBackoff
                } catch {
                    if !failing {
                        logger.warning("releasing provider keys in Redis failed; retrying", metadata: ["error": "\(error)"])
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

    /// Waits until every release queued so far has been sent (or given up at shutdown).
    /// While Redis is unreachable and ``run()`` retries, it waits for Redis. When ``run()``
    /// is not running it sends them itself, once: if that fails it returns with them queued.
    public func flush() async {
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

    /// Stops taking releases (later ones are dropped and counted), lets ``run()`` send what
    /// is queued, and sends it itself if ``run()`` is not running. A batch that fails now is
    /// not retried: it and everything still queued are dropped and logged, and their leases
    /// expire after `leaseTTL`. Call it before shutting down the client.
    public func shutdown() async {
        queue.withLock { $0.beginShutdown() }?.resume()
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            if !queue.withLock({ $0.waitForStop(waiter) }) { waiter.resume() }
        }
        await sendOnce()
    }

    // MARK: Queue

    func enqueue(_ release: PendingRelease) {
        switch queue.withLock({ $0.enqueue(release) }) {
        case .queued(let wake):
            wake?.resume()
        case .dropped(let first):
            counters.dropped.add(1, ordering: .relaxed)
            if first {
                logger.error(
                    "provider key releases dropped: the release queue is full or shut down",
                    metadata: ["capacity": "\(releaseCapacity)"]
                )
            }
        }
    }

    private static let initialBackoff: Duration = .milliseconds(50)
    private static let largestBackoff: Duration = .seconds(2)

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
                logger.warning("releasing provider keys in Redis failed", metadata: ["error": "\(error)"])
                if handleFailure(of: batch) { return false }
            }
        }
        return true
    }

    /// Puts a failed batch back, or drops it at shutdown.
    /// - Returns: true when it was put back to be retried later.
    private func handleFailure(of batch: [PendingRelease]) -> Bool {
        switch queue.withLock({ $0.batchFailed(batch) }) {
        case .retry(let dropped):
            if dropped > 0 {
                counters.dropped.add(dropped, ordering: .relaxed)
                logger.error("provider key releases dropped: the release queue is full", metadata: ["dropped": "\(dropped)"])
            }
            return true
        case .abandoned(let count, let wake):
            counters.dropped.add(count, ordering: .relaxed)
            logger.error("provider key releases left unsent at shutdown: Redis failed", metadata: ["dropped": "\(count)"])
            resume(wake)
            return false
        }
    }

    private func resume(_ waiters: [CheckedContinuation<Void, Never>]) {
        for waiter in waiters { waiter.resume() }
    }

    // MARK: Redis

    /// Runs the release script for each release in one pipeline; loads the script and sends
    /// again those Redis did not run because it did not know the script.
    /// - Throws: ``RedisError`` when Redis cannot be reached or does not answer in time;
    ///   some releases may have run.
    private func send(_ batch: [PendingRelease]) async throws {
        let margin = KeyPoolState.milliseconds(idleExpiry)
        let commands = batch.map { $0.command(margin: margin) }
        var replies = try await client.pipeline(commands)
        let unknown = replies.indices.filter { index in
            if case .error(let message) = replies[index] { message.hasPrefix("NOSCRIPT") } else { false }
        }
        if !unknown.isEmpty {
            _ = try await client.command(["SCRIPT", "LOAD", Self.releaseScript.source]).checked()
            let again = try await client.pipeline(unknown.map { commands[$0] })
            for (index, reply) in zip(unknown, again) { replies[index] = reply }
        }
        for reply in replies {
            do {
                _ = try count(reply.checked())
            } catch {
                // The script failed for this one (a bug, or a key of the wrong type): sending
                // it again would fail again.
                counters.dropped.add(1, ordering: .relaxed)
                logger.error("the release script failed", metadata: ["error": "\(error)"])
            }
        }
    }
}
