// MARK: Sending settlements

extension RedisAdmission {
    /// Sends queued settlements to Redis, pipelined in batches, until ``shutdown()``.
    ///
    /// Start it once, next to the server (the proxy runs it in a `Service`): settlements
    /// wait in the queue until it runs. When Redis cannot be reached, a batch is retried
    /// with a backoff of up to 2 s while newer settlements queue behind it (settling twice
    /// is harmless: the second finds nothing). Returns once shutdown has begun and the
    /// queue is empty, or when its task is cancelled (``shutdown()`` then sends the rest).
    /// A second call while one runs returns at once.
    public func run() async {
        await sender.run()
    }

    /// Waits until every settlement queued so far has been sent (or given up at shutdown).
    /// While Redis is unreachable and ``run()`` retries, it waits for Redis. When ``run()``
    /// is not running it sends them itself, once: if that fails it returns with them still
    /// queued.
    public func flush() async {
        await sender.flush()
    }

    /// Stops taking settlements (later ones are dropped and counted), lets ``run()`` send
    /// what is queued, and sends it itself if ``run()`` is not running. A batch that fails
    /// now is not retried: it and everything still queued are dropped and logged, and
    /// their reservations expire after `reservationTTL`. Call it before shutting down the
    /// client.
    public func shutdown() async {
        await sender.shutdown()
    }

    func enqueue(_ settlement: PendingSettlement) {
        sender.enqueue(settlement)
    }

    /// What the logs call settlements.
    static let settlementWording = RedisBatchSender<PendingSettlement>.Wording(
        sending: "settling reservations in Redis",
        dropped: "reservations dropped unsettled: the settlement queue is full",
        abandoned: "reservations left unsettled at shutdown: Redis failed",
        script: "the settle script"
    )
}
