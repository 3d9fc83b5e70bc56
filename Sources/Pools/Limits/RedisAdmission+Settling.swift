// MARK: The settle script

extension RedisAdmission {
    /// `AdmissionState.settle`, atomically: gives back unused tokens (never past the
    /// capacity), takes tokens used beyond the reservation (into debt, at most one bucket),
    /// frees the slot and moves the reservation's budget amounts to used; does nothing to
    /// the buckets and slots for a reservation already settled or expired.
    ///
    /// The usage is added to every period the client's `Reservation` names that has state,
    /// held or not, as `AdmissionState.settle` adds it: the usage reaches the ledger either
    /// way. What was reserved is taken off only where the held reservation reserved it.
    ///
    /// ARGV: reservation id, actual tokens, actual micros (both at least 0), key margin
    /// (ms), now (ms; empty for `TIME`), then the reservation's periods
    /// (`<scope>|<periodStart>`), if any.
    ///
    /// Reply: `{1, reserved tokens}` when settled, `{0}` when there was nothing to settle.
    static let settleScript = RedisScript(scriptPrelude + #"""
        local id = ARGV[1]
        local actual, actual_micros = tonumber(ARGV[2]), tonumber(ARGV[3])
        local margin = tonumber(ARGV[4])
        local now = now_ms(ARGV[5])

        expire(KEYS, now)
        local value = redis.call('HGET', KEYS[3], id)
        local held = value and parse_record(value)
        local holds = {}
        if held then
          redis.call('HDEL', KEYS[3], id)
          redis.call('ZREM', KEYS[2], id)
          for _, period in ipairs(held.periods) do holds[period] = true end
        end
        for i = 6, #ARGV do
          local period = ARGV[i]
          local s = load_period(KEYS[4], period)
          if s then
            s.ut, s.um = add(s.ut, actual), add(s.um, actual_micros)
            if holds[period] then s.rt, s.rm = sub(s.rt, held.tokens), sub(s.rm, held.micros) end
            save_period(KEYS[4], period, s)
          end
        end
        if not held then return { 0 } end

        local requests = load(KEYS[1], 'requests')
        local tokens = load(KEYS[1], 'tokens')
        if tokens then
          -- giveBack(unused) then take(excess); one of them is zero.
          refill(tokens, now)
          local full = tokens.cap * P
          tokens.units = math.min(full, tokens.units + clamped_units(tokens, math.max(0, held.tokens - actual)))
          tokens.units = math.max(-full, tokens.units - clamped_units(tokens, math.max(0, actual - held.tokens)))
          save(KEYS[1], 'tokens', tokens)
        end
        keep(KEYS, now, margin, requests, tokens, load(KEYS[1], 'throttle'))
        return { 1, held.tokens }
        """#)
}

// MARK: Sending settlements

extension RedisAdmission {
    /// Sends queued settlements to Redis, pipelined in batches, until ``shutdown()``.
    ///
    /// Start it once, next to the server (the proxy runs it in a `Service`): settlements
    /// wait in the queue until it runs. When Redis cannot be reached, a batch is retried
    /// with a backoff of up to 2 s while newer settlements queue behind it (settling twice
    /// frees the reservation once, but adds the usage to its budgets again). Returns once
    /// shutdown has begun and the queue is empty, or when its task is cancelled
    /// (``shutdown()`` then sends the rest). A second call while one runs returns at once.
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
