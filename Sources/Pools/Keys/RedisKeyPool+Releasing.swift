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
        await sender.run()
    }

    /// Waits until every release queued so far has been sent (or given up at shutdown).
    /// While Redis is unreachable and ``run()`` retries, it waits for Redis. When ``run()``
    /// is not running it sends them itself, once: if that fails it returns with them queued.
    public func flush() async {
        await sender.flush()
    }

    /// Stops taking releases (later ones are dropped and counted), lets ``run()`` send what
    /// is queued, and sends it itself if ``run()`` is not running. A batch that fails now is
    /// not retried: it and everything still queued are dropped and logged, and their leases
    /// expire after `leaseTTL`. Call it before shutting down the client.
    public func shutdown() async {
        await sender.shutdown()
    }

    func enqueue(_ release: PendingRelease) {
        sender.enqueue(release)
    }

    /// What the logs call releases.
    static let releaseWording = RedisBatchSender<PendingRelease>.Wording(
        sending: "releasing provider keys in Redis",
        dropped: "provider key releases dropped: the release queue is full",
        abandoned: "provider key releases left unsent at shutdown: Redis failed",
        script: "the release script"
    )
}
