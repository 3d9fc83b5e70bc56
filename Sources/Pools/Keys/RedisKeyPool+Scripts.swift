// The Lua scripts of `RedisKeyPool`: `KeyPoolState` transcribed operation for operation,
// on top of the token bucket of `RedisAdmission.scriptPrelude`, so that every proxy
// replica selects exactly as one in-process key pool would.
//
// Arithmetic, time and number formatting are those of the admission scripts (see
// RedisAdmission+Scripts.swift): integers below 2^53, Redis's own `TIME` in milliseconds
// unless a test passes `now`, `int()` for every number written.
//
// Keys, per provider key, all of a pool in one Cluster slot by the hash tag `{pool:<pool>}`:
//   hash  sy:{pool:<pool>}:k:<key id>   the fields of `KeyPoolState.Key` (FIELDS below);
//         a bucket, report or time without fields is not set.
//   zset  sy:{pool:<pool>}:l:<key id>   lease id -> expiry (ms); members expired by `now`
//         are removed at the start of every call that writes.
// Both are set to expire `margin` ms after the key's state stops mattering: windows full,
// leases expired, cooldown and reports over. A disabled key's hash never expires: only an
// operator's reset re-enables it.

extension RedisKeyPool {
    /// Definitions every key-pool script shares: a key's state as `KeyPoolState.Key` holds it.
    static let scriptPrelude = RedisAdmission.scriptPrelude + #"""
        local FIELDS = { 'r.units', 'r.at', 'r.limit', 't.units', 't.at', 't.limit',
          'rr.rem', 'rr.lim', 'rr.at', 'rt.rem', 'rt.lim', 'rt.at',
          'cool', 'disabled', 'err', 'err.at', 'used', 'mw', 'mc', 'mp', 'cw', 'rl' }
        local MINUTE = 60000

        local function num(v) if v then return tonumber(v) end return nil end

        -- A key: r/t buckets, rr/rt reports {rem, lim (-1 unknown), at}, cool, disabled, err,
        -- err_at, used, the minute counter mw/mc/mp, the round-robin credit cw, the rate
        -- limits in a row rl.
        local function load_key(h)
          local f = redis.call('HMGET', h, unpack(FIELDS))
          local k = {}
          if f[1] then k.r = bucket(tonumber(f[3]), tonumber(f[1]), tonumber(f[2])) end
          if f[4] then k.t = bucket(tonumber(f[6]), tonumber(f[4]), tonumber(f[5])) end
          if f[7] then k.rr = { rem = tonumber(f[7]), lim = tonumber(f[8]), at = tonumber(f[9]) } end
          if f[10] then k.rt = { rem = tonumber(f[10]), lim = tonumber(f[11]), at = tonumber(f[12]) } end
          k.cool = num(f[13])
          k.disabled = f[14] or nil
          k.err = f[15] or nil
          k.err_at = num(f[16])
          k.used = num(f[17])
          k.mw, k.mc, k.mp = num(f[18]) or 0, num(f[19]) or 0, num(f[20]) or 0
          k.cw = num(f[21]) or 0
          k.rl = num(f[22]) or 0
          return k
        end

        local function save_key(h, k)
          local set, del = {}, {}
          local function put(name, value)
            if value == nil then del[#del + 1] = name else set[#set + 1] = name; set[#set + 1] = value end
          end
          put('r.units', k.r and int(k.r.units)); put('r.at', k.r and int(k.r.at)); put('r.limit', k.r and int(k.r.cap))
          put('t.units', k.t and int(k.t.units)); put('t.at', k.t and int(k.t.at)); put('t.limit', k.t and int(k.t.cap))
          put('rr.rem', k.rr and int(k.rr.rem)); put('rr.lim', k.rr and int(k.rr.lim)); put('rr.at', k.rr and int(k.rr.at))
          put('rt.rem', k.rt and int(k.rt.rem)); put('rt.lim', k.rt and int(k.rt.lim)); put('rt.at', k.rt and int(k.rt.at))
          put('cool', k.cool and int(k.cool)); put('disabled', k.disabled)
          put('err', k.err); put('err.at', k.err_at and int(k.err_at)); put('used', k.used and int(k.used))
          put('mw', int(k.mw)); put('mc', int(k.mc)); put('mp', int(k.mp)); put('cw', int(k.cw))
          if k.rl > 0 then put('rl', int(k.rl)) else put('rl', nil) end
          redis.call('HSET', h, unpack(set))
          if #del > 0 then redis.call('HDEL', h, unpack(del)) end
        end

        -- Key.expireLeases(now:)
        local function expire_leases(z, now) redis.call('ZREMRANGEBYSCORE', z, '-inf', int(now)) end

        -- Sets both keys to expire `margin` ms after the key's state stops mattering; a
        -- disabled key's hash stays until an operator resets it.
        local function keep_key(h, z, k, now, margin)
          local longest = 0
          if k.r then longest = math.max(longest, time_until_full(k.r, now)) end
          if k.t then longest = math.max(longest, time_until_full(k.t, now)) end
          if k.cool then longest = math.max(longest, k.cool - now) end
          if k.rr then longest = math.max(longest, k.rr.at - now) end
          if k.rt then longest = math.max(longest, k.rt.at - now) end
          local last = redis.call('ZRANGE', z, -1, -1, 'WITHSCORES')
          if #last == 2 then longest = math.max(longest, tonumber(last[2]) - now) end
          local ttl = int(longest + margin)
          if k.disabled then redis.call('PERSIST', h) else redis.call('PEXPIRE', h, ttl) end
          redis.call('PEXPIRE', z, ttl)
        end

        -- Key.MinuteCounter.roll(now:) and estimate(now:)
        local function roll(c, now)
          local w = math.floor(now / MINUTE)
          if w <= c.mw then return end
          if w == c.mw + 1 then c.mp = c.mc else c.mp = 0 end
          c.mc = 0
          c.mw = w
        end

        local function estimate(k, now)
          local c = { mw = k.mw, mc = k.mc, mp = k.mp }
          roll(c, now)
          local elapsed = math.min(MINUTE, math.max(0, now - c.mw * MINUTE))
          return c.mc + math.floor(c.mp * (MINUTE - elapsed) / MINUTE)
        end

        """#

    /// `KeyPoolState.select`, atomically over the candidates' keys.
    ///
    /// KEYS: hash and lease set of each candidate, in candidate order (excluded and
    /// duplicate keys already dropped). ARGV: lease id, tokens, lease TTL (ms), margin (ms),
    /// now (ms; empty for `TIME`), held back (thousandths reserved for other tiers), then per
    /// candidate: weight, requests per minute, tokens per minute (-1 when not set).
    ///
    /// Reply: `{1, index}` selected (1-based candidate), `{0, wait}` exhausted (wait in ms,
    /// -1 for never), `{2}` the lease id is in flight on a candidate (the caller draws another).
    static let selectScript = RedisScript(scriptPrelude + #"""
        local id, need = ARGV[1], tonumber(ARGV[2])
        local ttl, margin = tonumber(ARGV[3]), tonumber(ARGV[4])
        local now = now_ms(ARGV[5])
        local held_back = tonumber(ARGV[6])
        local n = #KEYS / 2

        for i = 1, n do
          expire_leases(KEYS[2 * i], now)
          if redis.call('ZSCORE', KEYS[2 * i], id) then return { 2 } end
        end

        -- Key.apply(_:now:): the catalogue's limits.
        local function apply(b, limit)
          if limit < 0 then return nil end
          if not b then return bucket(limit, limit * P, now) end
          if b.cap == limit then return b end
          local current = refilled(b, now)
          local used = current.cap * P - current.units
          local full = limit * P
          return bucket(limit, math.max(-full, full - math.min(used, 2 * full)), now)
        end

        -- Key.wait(tokens:now:): 0 eligible, nil never, else the longest obstacle (ms).
        local function wait(k)
          local w = 0
          if k.cool and now < k.cool then w = math.max(w, k.cool - now) end
          if k.r then
            local r = time_until_available(k.r, 1, now)
            if r == nil then return nil end
            w = math.max(w, r)
          end
          if k.t then
            local t
            if need <= k.t.cap then t = time_until_available(k.t, need, now)
            elseif k.t.cap > 0 then t = time_until_full(k.t, now)
            else return nil end
            w = math.max(w, t)
          end
          if k.rr and k.rr.at > now and k.rr.rem <= 0 then w = math.max(w, k.rr.at - now) end
          if k.rt and k.rt.at > now and k.rt.rem < 1 then w = math.max(w, k.rt.at - now) end
          return w
        end

        -- Key.headroom(now:): thousandths left of the tightest known window, at least 1.
        local function headroom(k)
          local h = 1000
          for _, b in pairs({ k.r or false, k.t or false }) do
            if b and b.cap > 0 then h = math.min(h, math.floor(available(refilled(b, now)) * 1000 / b.cap)) end
          end
          for _, r in pairs({ k.rr or false, k.rt or false }) do
            if r and r.at > now and r.lim > 0 then h = math.min(h, math.floor(math.min(r.rem, r.lim) * 1000 / r.lim)) end
          end
          return math.max(1, h)
        end

        local BOUND = 2 ^ 50
        local function bounded(c) return math.min(BOUND, math.max(-BOUND, c)) end

        local keys, eligible, soonest, total = {}, {}, nil, 0
        for i = 1, n do
          local k = load_key(KEYS[2 * i - 1])
          local base = 6 + (i - 1) * 3
          k.r = apply(k.r, tonumber(ARGV[base + 2]))
          k.t = apply(k.t, tonumber(ARGV[base + 3]))
          keys[i] = k
          if not k.disabled then
            local w = wait(k)
            local room = w == 0 and headroom(k) or 0
            if w == 0 and room <= held_back and room < 1000 then
              -- What is left of the key belongs to other tiers' reserves.
            elseif w == 0 then
              local e = tonumber(ARGV[base + 1]) * room
              eligible[#eligible + 1] = { i = i, e = e }
              total = total + e
            elseif w ~= nil and (soonest == nil or w < soonest) then
              soonest = w
            end
          end
        end

        local function save_all()
          for i = 1, n do
            save_key(KEYS[2 * i - 1], keys[i])
            keep_key(KEYS[2 * i - 1], KEYS[2 * i], keys[i], now, margin)
          end
        end

        if #eligible == 0 then
          save_all()
          return { 0, soonest or -1 }
        end

        -- Smooth weighted round robin; ties keep the first candidate.
        local best = nil
        for _, c in ipairs(eligible) do
          local k = keys[c.i]
          k.cw = bounded(k.cw + c.e)
          if best == nil or k.cw > keys[best].cw then best = c.i end
        end
        local k = keys[best]
        k.cw = bounded(k.cw - total)

        -- Key.reserve(tokens:leaseID:expiresAt:now:)
        if k.r then refill(k.r, now); k.r.units = math.max(-k.r.cap * P, k.r.units - clamped_units(k.r, 1)) end
        if k.t then refill(k.t, now); k.t.units = math.max(-k.t.cap * P, k.t.units - clamped_units(k.t, need)) end
        if k.rr then k.rr.rem = math.max(0, k.rr.rem - 1) end
        if k.rt then k.rt.rem = math.max(0, k.rt.rem - need) end
        redis.call('ZADD', KEYS[2 * best], int(now + ttl), id)
        roll(k, now)
        k.mc = k.mc + 1
        k.used = now
        save_all()
        return { 1, best }
        """#)

    /// `KeyPoolState.release`, atomically on the key's keys.
    ///
    /// KEYS: the key's hash and lease set. ARGV: lease id, reserved tokens, actual tokens
    /// (-1 keeps the reservation), effect kind (0 succeeded, 1 rate limited, 2 rejected,
    /// 3 failed), cooldown (ms; -1 for the key's default, which grows with its rate limits
    /// in a row), reason, 1 when there is a report else 0, then requests remaining, limit,
    /// reset after (ms), tokens remaining, limit, reset after (each -1 when not reported),
    /// margin (ms), now (ms; empty for `TIME`).
    ///
    /// Reply: `{open, cooldown}`: open 1 when the lease was in flight, else 0; cooldown the
    /// key's cooldown in ms for a rate limit, else -1.
    static let releaseScript = RedisScript(scriptPrelude + #"""
        local id, reserved, actual = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
        local kind, cooldown, reason = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
        local margin = tonumber(ARGV[14])
        local now = now_ms(ARGV[15])

        expire_leases(KEYS[2], now)
        local k = load_key(KEYS[1])
        local open = redis.call('ZREM', KEYS[2], id) == 1
        if open and actual >= 0 and k.t then
          -- giveBack(unused) then take(excess); one of them is zero.
          refill(k.t, now)
          local full = k.t.cap * P
          k.t.units = math.min(full, k.t.units + clamped_units(k.t, math.max(0, reserved - actual)))
          k.t.units = math.max(-full, k.t.units - clamped_units(k.t, math.max(0, actual - reserved)))
        end

        -- Key.apply(_ effect:now:)
        if kind == 0 then
          k.rl = 0
        elseif kind == 1 then
          if cooldown < 0 then
            -- KeyPoolState.defaultCooldown(afterRateLimits:)
            cooldown = math.min(\#(KeyPoolState.milliseconds(KeyPoolState.longestDefaultCooldown)),
              \#(KeyPoolState.milliseconds(KeyPoolState.shortestDefaultCooldown)) * 2 ^ math.min(k.rl, \#(KeyPoolState.largestRateLimitStreak)))
          end
          k.cool = now + cooldown
          k.rl = math.min(k.rl + 1, \#(KeyPoolState.largestRateLimitStreak))
          k.err, k.err_at = 'rate limited', now
        elseif kind == 2 then
          k.disabled = reason
          k.err, k.err_at = reason, now
        elseif kind == 3 then
          k.err, k.err_at = reason, now
        end
        if ARGV[7] == '1' then
          local function window(i)
            local remaining = tonumber(ARGV[i])
            if remaining < 0 then return nil end
            return { rem = remaining, lim = tonumber(ARGV[i + 1]), at = now + tonumber(ARGV[i + 2]) }
          end
          k.rr = window(8)
          k.rt = window(11)
        end
        k.used = now
        save_key(KEYS[1], k)
        keep_key(KEYS[1], KEYS[2], k, now, margin)
        local applied = -1
        if kind == 1 then applied = cooldown end
        if open then return { 1, applied } end
        return { 0, applied }
        """#)

    /// `KeyPoolState.status`, reading only.
    ///
    /// KEYS: hash and lease set of each key. ARGV: now (ms; empty for `TIME`).
    ///
    /// Reply: seven values per key: in flight, cooling down until (ms, -1 when not),
    /// disabled reason (nil when not), last error (nil), its time (ms, -1), last used
    /// (ms, -1), requests in the trailing minute.
    static let statusScript = RedisScript(scriptPrelude + #"""
        local now = now_ms(ARGV[1])
        local out = {}
        for i = 1, #KEYS / 2 do
          local k = load_key(KEYS[2 * i - 1])
          local cool = -1
          if k.cool and now < k.cool then cool = k.cool end
          out[#out + 1] = redis.call('ZCOUNT', KEYS[2 * i], '(' .. int(now), '+inf')
          out[#out + 1] = cool
          out[#out + 1] = k.disabled or false
          out[#out + 1] = k.err or false
          out[#out + 1] = k.err_at or -1
          out[#out + 1] = k.used or -1
          out[#out + 1] = estimate(k, now)
        end
        return out
        """#)

    /// `KeyPoolState.reset`: clears the cooldown, the rate limits in a row and the disabled
    /// reason of a key that has state; nothing else changes.
    ///
    /// KEYS: the key's hash and lease set. ARGV: margin (ms), now (ms; empty for `TIME`).
    ///
    /// Reply: 1 when the key had state, else 0.
    static let resetScript = RedisScript(scriptPrelude + #"""
        local margin = tonumber(ARGV[1])
        local now = now_ms(ARGV[2])
        if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
        local k = load_key(KEYS[1])
        k.cool, k.disabled, k.rl = nil, nil, 0
        save_key(KEYS[1], k)
        keep_key(KEYS[1], KEYS[2], k, now, margin)
        return 1
        """#)
}
