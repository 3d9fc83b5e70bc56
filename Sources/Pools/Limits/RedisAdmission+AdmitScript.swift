// The admit and budget-status scripts of `RedisAdmission`: `AdmissionState.admit` and
// `AdmissionState.budget`, on the definitions of `RedisAdmission+Scripts.swift`.

extension RedisAdmission {
    /// `AdmissionState.apply` then `AdmissionState.admit`, atomically.
    ///
    /// ARGV: reservation id, reserved tokens, requests per minute, tokens per minute,
    /// concurrent requests (each -1 when not set), reservation TTL (ms), concurrency
    /// retry-after (ms), key margin (ms), now (ms; empty for `TIME`), worst-case cost
    /// (micros), wall clock (Unix ms), throttled requests per minute, the number of
    /// budgets, then for each budget in order: period (`<scope>|<periodStart>`), reset
    /// (Unix ms), tokens limit, micros limit (each -1 when not set), when spent (`refuse`,
    /// `throttle`, `serve`), seed tokens and seed micros (both empty without a seed).
    ///
    /// Reply: `{status, limit, limitValue, remaining, retryAfter, requests limit, requests
    /// remaining, requests reset, tokens limit, tokens remaining, tokens reset, budget,
    /// throttled, requested}`, where status is 1 admitted, 0 refused; limit is 1 requests,
    /// 2 tokens, 3 concurrency, 4 budget; budget is the refusing budget's position (from 1;
    /// 0 for other limits); throttled is 1 when a spent `throttle` budget admitted at the
    /// throttled rate, or its rate refused; requested names what the refusal's `requested`
    /// counts (0 one request, 1 the reserved tokens, 2 the worst-case cost); -1 stands for
    /// nil (a wait that never ends, a limit not set). `{2}`: the id is already open.
    /// `{3, position, ...}`: these budgets have no state and came without a seed. Neither
    /// changes anything but the limits applied and reservations expired.
    static let admitScript = RedisScript(scriptPrelude + #"""
        local id = ARGV[1]
        local needed = tonumber(ARGV[2])
        local rpm, tpm, slots = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
        local ttl, hint, margin = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
        local now = now_ms(ARGV[9])
        local micros, wall, throttled_rpm = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
        local demands = {}
        for i = 1, tonumber(ARGV[13]) do
          local a = 13 + 7 * (i - 1)
          demands[i] = {
            period = ARGV[a + 1], resets = tonumber(ARGV[a + 2]),
            tokens = tonumber(ARGV[a + 3]), micros = tonumber(ARGV[a + 4]), spent = ARGV[a + 5],
            seed_tokens = ARGV[a + 6], seed_micros = ARGV[a + 7],
          }
        end

        expire(KEYS, now)
        -- The caller draws another id; nothing else has changed.
        if redis.call('HEXISTS', KEYS[3], id) == 1 then return { 2 } end

        -- AdmissionState.apply: a removed limit is forgotten. The result stands even if the
        -- request is refused.
        local function apply(name, limit)
          local b = load(KEYS[1], name)
          if limit < 0 then
            if b then redis.call('HDEL', KEYS[1], name .. '.units', name .. '.at', name .. '.limit') end
            return nil
          end
          return applied(KEYS[1], name, b, limit, now)
        end
        local requests = apply('requests', rpm)
        local tokens = apply('tokens', tpm)
        local throttle = load(KEYS[1], 'throttle')

        local function has_state(period)
          return redis.call('HEXISTS', KEYS[4], period .. '|ut') == 1
        end

        -- A period without state is built from the ledger's figure, or asked for.
        local missing = {}
        for i, d in ipairs(demands) do
          if d.seed_tokens == '' and not has_state(d.period) then missing[#missing + 1] = i end
        end
        if #missing > 0 then
          keep(KEYS, now, margin, requests, tokens, throttle)
          return { 3, unpack(missing) }
        end

        -- AdmissionState.startPeriod: the period's state from the ledger's figure; the same
        -- budget's other periods are forgotten unless an open reservation holds them.
        local function start_period(d)
          local scope = string.match(d.period, '^(.*)|')
          local others = {}
          for _, field in ipairs(redis.call('HKEYS', KEYS[4])) do
            local period = string.match(field, '^(.*)|ut$')
            if period and string.match(period, '^(.*)|') == scope then others[#others + 1] = period end
          end
          if #others > 0 then
            -- Once per budget and period: only then are the open reservations read.
            local held = {}
            for _, value in ipairs(redis.call('HVALS', KEYS[3])) do
              for _, period in ipairs(parse_record(value).periods) do held[period] = true end
            end
            for _, period in ipairs(others) do
              if not held[period] then redis.call('HDEL', KEYS[4], period_fields(period)) end
            end
          end
          save_period(KEYS[4], d.period, {
            ut = tonumber(d.seed_tokens) or 0, um = tonumber(d.seed_micros) or 0, rt = 0, rm = 0,
          })
        end
        local throttles = false
        for _, d in ipairs(demands) do
          if not has_state(d.period) then start_period(d) end
          if d.spent == 'throttle' then throttles = true end
        end
        if throttles then throttle = applied(KEYS[1], 'throttle', throttle, throttled_rpm, now) end

        local function refused(code, value, remaining, wait, budget, throttled, requested)
          local lifetime = keep(KEYS, now, margin, requests, tokens, throttle)
          if #demands > 0 then keep_budgets(KEYS, lifetime, demands, now, margin) end
          local rl, rr, rs = window(requests, now)
          local tl, tr, ts = window(tokens, now)
          return { 0, code, value, remaining, wait or -1, rl, rr, rs, tl, tr, ts, budget, throttled and 1 or 0, requested }
        end

        -- AdmissionState.budgetRefusal: until the reset, or, throttled, until the throttled
        -- rate has room (never past the reset). The limit reported: the throttled rate when
        -- it refused, tokens when they are spent, money otherwise.
        local function budget_refusal(i, throttled, wait)
          local d = demands[i]
          local until_reset = math.max(0, d.resets - wall)
          local s = load_period(KEYS[4], d.period) or { ut = 0, um = 0, rt = 0, rm = 0 }
          local held_tokens, held_micros = add(s.ut, s.rt), add(s.um, s.rm)
          if throttled and throttle then
            return refused(4, throttle.cap, available(refilled(throttle, now)),
              math.min(wait or until_reset, until_reset), i, true, 0)
          elseif d.tokens >= 0 and (held_tokens >= d.tokens or d.micros < 0) then
            return refused(4, d.tokens, math.max(0, d.tokens - held_tokens), until_reset, i, throttled, 1)
          end
          local limit = math.max(0, d.micros)
          return refused(4, limit, math.max(0, limit - held_micros), until_reset, i, throttled, 2)
        end

        -- Budgets first, in the order given: a spent budget refuses until its reset, longer
        -- than any rate limit would.
        local throttled_by = nil
        for i, d in ipairs(demands) do
          local s = load_period(KEYS[4], d.period)
          -- Only when a request names two periods of one budget: the second start forgot
          -- the first, where AdmissionState stops at a nil it force-unwraps.
          if not s then return redis.error_reply('budget period ' .. d.period .. ' has no state') end
          local spent = (d.tokens >= 0 and add(s.ut, s.rt) >= d.tokens)
            or (d.micros >= 0 and add(s.um, s.rm) >= d.micros)
          if spent and d.spent == 'refuse' then return budget_refusal(i, false, nil) end
          if spent and d.spent == 'throttle' and not throttled_by then throttled_by = i end
        end
        if throttled_by then
          -- nil: a throttled rate of zero, which admits nothing until the reset.
          local wait = time_until_available(refilled(throttle, now), 1, now)
          if wait == nil or wait > 0 then return budget_refusal(throttled_by, true, wait) end
        end

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
        if worst then
          local requested = 0
          if worst.code == 2 then requested = 1 end
          return refused(worst.code, worst.value, worst.remaining, worst.wait, 0, false, requested)
        end

        -- Admitted: one request, the reserved tokens, a slot, and the throttled rate's one
        -- request when a spent budget throttles; the tokens and cost in each period, once.
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
        if throttled_by then
          refill(throttle, now)
          throttle.units = throttle.units - P
          save(KEYS[1], 'throttle', throttle)
        end
        local periods, seen = {}, {}
        for _, d in ipairs(demands) do
          if not seen[d.period] then
            seen[d.period] = true
            periods[#periods + 1] = d.period
            local s = load_period(KEYS[4], d.period)
            local _, _, rt, rm = period_fields(d.period)
            redis.call('HSET', KEYS[4], rt, int(add(s.rt, needed)), rm, int(add(s.rm, micros)))
          end
        end
        redis.call('ZADD', KEYS[2], int(now + ttl), id)
        redis.call('HSET', KEYS[3], id, format_record(needed, micros, periods))
        local lifetime = keep(KEYS, now, margin, requests, tokens, throttle)
        if #demands > 0 then keep_budgets(KEYS, lifetime, demands, now, margin) end
        local rl, rr, rs = window(requests, now)
        local tl, tr, ts = window(tokens, now)
        return { 1, 0, 0, 0, 0, rl, rr, rs, tl, tr, ts, 0, throttled_by and 1 or 0, 0 }
        """#)

    /// `AdmissionState.budget(_:now:)`: expires reservations (giving back what they held),
    /// then reads one budget period.
    ///
    /// ARGV: period (`<scope>|<periodStart>`), now (ms; empty for `TIME`).
    ///
    /// Reply: `{1, used tokens, used micros, reserved tokens, reserved micros}`, or `{0}`
    /// when the period has no state.
    static let budgetStatusScript = RedisScript(scriptPrelude + #"""
        expire(KEYS, now_ms(ARGV[2]))
        local s = load_period(KEYS[4], ARGV[1])
        if not s then return { 0 } end
        return { 1, s.ut, s.um, s.rt, s.rm }
        """#)
}
