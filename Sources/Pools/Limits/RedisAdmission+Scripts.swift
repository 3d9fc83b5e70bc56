// The Lua scripts of `RedisAdmission`: `AdmissionState` and `TokenBucket`, transcribed
// operation for operation, so that every proxy replica decides exactly as one in-process
// limiter would.
//
// Arithmetic. Lua numbers are doubles, exact for integers below 2^53. A per-minute bucket
// keeps its level in units of 1/60,000 token (one unit per millisecond tick per token of
// the limit), so `RedisAdmission` caps limits at `largestLimit` (50 billion per minute),
// which keeps every intermediate (at most three full buckets of units) below 2^53. Integer
// division is `math.floor(a / b)`, exact for non-negative integers below 2^53. Numbers are
// written to Redis with `int()` (`%.0f`): Redis would otherwise render a Lua number in
// floating-point notation (`1.2345678901235e+17`) and lose digits.
//
// Time. `now` is Redis's own clock (`TIME`, whole milliseconds), so replicas with skewed
// clocks agree; tests may pass an explicit `now` instead (the last argument; empty in
// production). With whole-millisecond instants a refill always ends at `now` exactly, as
// `TokenBucket.refill` does when the instants are whole ticks apart.
//
// Keys, all of one tenant, in one Cluster slot by their hash tag `{tenant:<id>}`:
//   KEYS[1] buckets   hash: requests.units / requests.at / requests.limit and the same for
//                     tokens; a bucket without fields is a limit not set.
//   KEYS[2] inflight  sorted set: reservation id -> expiry (ms). Expired members are
//                     removed at the start of every call; its size is the concurrency count.
//   KEYS[3] reserved  hash: reservation id -> reserved tokens, for settling once.
// Every write ends with all three keys set to expire `margin` ms after the latest of: both
// buckets full again, the last open reservation expired. A key that expires therefore held
// nothing a fresh tenant does not: an idle tenant or a crashed proxy leaks nothing for long.

extension RedisAdmission {
    /// Definitions both scripts share: the token bucket, expiry, key lifetimes.
    static let scriptPrelude = #"""
        -- Ticks (ms) per minute: the fixed-point units in one token of a per-minute bucket.
        local P = 60000

        local function now_ms(override)
          if override ~= '' then return tonumber(override) end
          local t = redis.call('TIME')
          return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        end

        -- An integer as Redis should store it: all digits, and never "-0".
        local function int(x) return string.format('%.0f', x + 0) end

        -- ceil(a / b) for a >= 0, b >= 1: Swift's (a + b - 1) / b.
        local function ceil_div(a, b) return math.floor((a + b - 1) / b) end

        -- A per-minute TokenBucket: `cap` tokens, refilled at max(1, cap) per minute; `units`
        -- in 1/P token, between -cap*P and cap*P; `at` the last refill (ms).
        local function bucket(cap, units, at)
          return { cap = cap, rate = math.max(1, cap), units = units, at = at }
        end

        -- TokenBucket.refill(now:)
        local function refill(b, now)
          if now <= b.at then return end
          local elapsed = now - b.at
          local full = b.cap * P
          if elapsed >= ceil_div(full - b.units, b.rate) then
            b.units = full
          else
            b.units = b.units + elapsed * b.rate
          end
          b.at = now
        end

        -- TokenBucket.refilled(now:)
        local function refilled(b, now)
          local copy = bucket(b.cap, b.units, b.at)
          refill(copy, now)
          return copy
        end

        -- TokenBucket.available: whole tokens, never negative.
        local function available(b)
          if b.units <= 0 then return 0 end
          return math.floor(b.units / P)
        end

        -- TokenBucket.timeUntil(units:now:), in ms.
        local function time_until(b, target, now)
          local c = refilled(b, now)
          local deficit = target - c.units
          if deficit <= 0 then return 0 end
          return math.max(0, c.at + ceil_div(deficit, c.rate) - now)
        end

        -- TokenBucket.timeUntilAvailable(_:now:): nil when `count` exceeds the capacity.
        local function time_until_available(b, count, now)
          if count > b.cap then return nil end
          return time_until(b, math.max(0, count) * P, now)
        end

        -- TokenBucket.timeUntilFull(now:): the `reset` of the rate-limit headers.
        local function time_until_full(b, now) return time_until(b, b.cap * P, now) end

        -- TokenBucket.clampedUnits(_:): at most two full buckets.
        local function clamped_units(b, count)
          if count <= 0 then return 0 end
          if count >= 2 * b.cap then return 2 * b.cap * P end
          return count * P
        end

        -- The bucket `name` as stored, or nil when that limit is not set.
        local function load(key, name)
          local f = redis.call('HMGET', key, name .. '.units', name .. '.at', name .. '.limit')
          if not f[1] then return nil end
          return bucket(tonumber(f[3]), tonumber(f[1]), tonumber(f[2]))
        end

        local function save(key, name, b)
          redis.call('HSET', key, name .. '.units', int(b.units), name .. '.at', int(b.at), name .. '.limit', int(b.cap))
        end

        -- RateLimitHeaders.Window: limit, remaining, reset (ms); -1s when the limit is not set.
        local function window(b, now)
          if not b then return -1, -1, -1 end
          local c = refilled(b, now)
          return c.cap, available(c), time_until_full(b, now)
        end

        -- AdmissionState.expireReservations(now:): frees the slots of reservations that
        -- expired by now; their tokens stay taken.
        local function expire(inflight, reserved, now)
          local expired = redis.call('ZRANGEBYSCORE', inflight, '-inf', int(now))
          if #expired == 0 then return end
          redis.call('ZREMRANGEBYSCORE', inflight, '-inf', int(now))
          -- unpack() has a limit on how many values it returns; delete in chunks.
          for i = 1, #expired, 1000 do
            redis.call('HDEL', reserved, unpack(expired, i, math.min(i + 999, #expired)))
          end
        end

        -- Sets all three keys to expire `margin` ms after the tenant's state equals a fresh
        -- tenant's: both buckets full and the last reservation expired.
        local function keep(keys, requests, tokens, now, margin)
          local longest = 0
          if requests then longest = math.max(longest, time_until_full(requests, now)) end
          if tokens then longest = math.max(longest, time_until_full(tokens, now)) end
          local last = redis.call('ZRANGE', keys[2], -1, -1, 'WITHSCORES')
          if #last == 2 then longest = math.max(longest, tonumber(last[2]) - now) end
          local ttl = int(longest + margin)
          for i = 1, 3 do redis.call('PEXPIRE', keys[i], ttl) end
        end

        -- Redis before 5 refuses writes after TIME unless scripts replicate their effects.
        if redis.replicate_commands then redis.replicate_commands() end

        """#

    /// `AdmissionState.apply` then `AdmissionState.admit`, atomically.
    ///
    /// ARGV: reservation id, reserved tokens, requests per minute, tokens per minute,
    /// concurrent requests (each -1 when not set), reservation TTL (ms), concurrency
    /// retry-after (ms), key margin (ms), now (ms; empty for `TIME`).
    ///
    /// Reply: `{status, limit, limitValue, remaining, retryAfter, requests limit, requests
    /// remaining, requests reset, tokens limit, tokens remaining, tokens reset}`, where
    /// status is 1 admitted, 0 refused, 2 the id is already open (nothing changed); limit
    /// is 1 requests, 2 tokens, 3 concurrency; -1 stands for nil (a wait that never ends,
    /// a limit not set).
    static let admitScript = RedisScript(scriptPrelude + #"""
        local id = ARGV[1]
        local needed = tonumber(ARGV[2])
        local rpm, tpm, slots = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
        local ttl, hint, margin = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
        local now = now_ms(ARGV[9])

        expire(KEYS[2], KEYS[3], now)
        -- The caller draws another id; nothing else has changed.
        if redis.call('HEXISTS', KEYS[3], id) == 1 then return { 2 } end

        -- AdmissionState.apply: a new limit starts full; a changed one keeps what was used;
        -- a removed one is forgotten. The result stands even if the request is refused.
        local function apply(name, limit)
          local b = load(KEYS[1], name)
          if limit < 0 then
            if b then redis.call('HDEL', KEYS[1], name .. '.units', name .. '.at', name .. '.limit') end
            return nil
          end
          if not b then
            b = bucket(limit, limit * P, now)
          elseif b.cap ~= limit then
            local current = refilled(b, now)
            local used = current.cap * P - current.units
            local full = limit * P
            b = bucket(limit, math.max(-full, full - math.min(used, 2 * full)), now)
          else
            return b
          end
          save(KEYS[1], name, b)
          return b
        end
        local requests = apply('requests', rpm)
        local tokens = apply('tokens', tpm)

        -- AdmissionState.refusal: the limit that keeps the request waiting longest; nil
        -- waits forever; ties keep the limit named first.
        local worst = nil
        local function consider(code, value, remaining, wait)
          if wait ~= nil and wait <= 0 then return end
          if worst ~= nil and (worst.wait == nil or (wait ~= nil and wait <= worst.wait)) then return end
          worst = { code = code, value = value, remaining = remaining, wait = wait }
        end
        if requests then
          local c = refilled(requests, now)
          consider(1, c.cap, available(c), time_until_available(c, 1, now))
        end
        if tokens then
          local c = refilled(tokens, now)
          consider(2, c.cap, available(c), time_until_available(c, needed, now))
        end
        if slots >= 0 and redis.call('ZCARD', KEYS[2]) >= slots then
          -- A slot is certain to free only when the earliest reservation expires; the
          -- configured hint caps the wait. No slots at all: it never frees.
          local wait = nil
          if slots > 0 then
            local first = now
            local earliest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
            if #earliest == 2 then first = tonumber(earliest[2]) end
            wait = math.min(hint, math.max(0, first - now))
          end
          consider(3, slots, 0, wait)
        end

        local rl, rr, rs = window(requests, now)
        if worst then
          keep(KEYS, requests, tokens, now, margin)
          local tl, tr, ts = window(tokens, now)
          return { 0, worst.code, worst.value, worst.remaining, worst.wait or -1, rl, rr, rs, tl, tr, ts }
        end

        -- Admitted: one request, the reserved tokens and a slot.
        if requests then
          refill(requests, now)
          requests.units = requests.units - P
          save(KEYS[1], 'requests', requests)
        end
        if tokens then
          refill(tokens, now)
          tokens.units = tokens.units - math.max(0, needed) * P
          save(KEYS[1], 'tokens', tokens)
        end
        redis.call('ZADD', KEYS[2], int(now + ttl), id)
        redis.call('HSET', KEYS[3], id, int(needed))
        keep(KEYS, requests, tokens, now, margin)
        rl, rr, rs = window(requests, now)
        local tl, tr, ts = window(tokens, now)
        return { 1, 0, 0, 0, 0, rl, rr, rs, tl, tr, ts }
        """#)

    /// `AdmissionState.settle`, atomically: gives back unused tokens (never past the
    /// capacity), takes tokens used beyond the reservation (into debt, at most one bucket),
    /// frees the slot; does nothing for a reservation already settled or expired.
    ///
    /// ARGV: reservation id, actual tokens (at least 0), key margin (ms), now (ms; empty
    /// for `TIME`).
    ///
    /// Reply: `{1, reserved tokens}` when settled, `{0}` when there was nothing to settle.
    static let settleScript = RedisScript(scriptPrelude + #"""
        local id = ARGV[1]
        local actual = tonumber(ARGV[2])
        local margin = tonumber(ARGV[3])
        local now = now_ms(ARGV[4])

        expire(KEYS[2], KEYS[3], now)
        local held = redis.call('HGET', KEYS[3], id)
        if not held then return { 0 } end
        held = tonumber(held)
        redis.call('HDEL', KEYS[3], id)
        redis.call('ZREM', KEYS[2], id)

        local requests = load(KEYS[1], 'requests')
        local tokens = load(KEYS[1], 'tokens')
        if tokens then
          -- giveBack(unused) then take(excess); one of them is zero.
          refill(tokens, now)
          local full = tokens.cap * P
          tokens.units = math.min(full, tokens.units + clamped_units(tokens, math.max(0, held - actual)))
          tokens.units = math.max(-full, tokens.units - clamped_units(tokens, math.max(0, actual - held)))
          save(KEYS[1], 'tokens', tokens)
        end
        keep(KEYS, requests, tokens, now, margin)
        return { 1, held }
        """#)
}
