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
// Budgets count tokens and money (integer micro-units). Every count, cost, limit and seed
// sent is capped at `largestCount` (2^52), and a budget's sums saturate at 2^53 as
// `BudgetAmounts` saturates at `Int.max`: above every limit, so a saturated sum compares
// as the true one would.
//
// Time. `now` is Redis's own clock (`TIME`, whole milliseconds), so replicas with skewed
// clocks agree; tests may pass an explicit `now` instead (empty in production). With
// whole-millisecond instants a refill always ends at `now` exactly, as `TokenBucket.refill`
// does when the instants are whole ticks apart. A budget's reset and the request's wall
// clock are the proxy's (Unix milliseconds): only their difference is used, for the wait.
//
// Keys, all of one tenant, in one Cluster slot by their hash tag `{tenant:<id>}`:
//   KEYS[1] buckets   hash: requests.units / requests.at / requests.limit and the same for
//                     tokens and throttle (the throttled rate); a bucket without fields is
//                     a limit not set.
//   KEYS[2] inflight  sorted set: reservation id -> expiry (ms). Expired members are
//                     removed at the start of every call; its size is the concurrency count.
//   KEYS[3] reserved  hash: reservation id -> what it holds, for settling once and for
//                     giving budgets back when it expires: "<tokens>", or "<tokens>
//                     <micros> <period> <period> ..." when it reserved in budget periods
//                     (a period is "<scope>|<periodStart>").
//   KEYS[4] budgets   hash: "<period>|ut" / "|um" / "|rt" / "|rm", the used and reserved
//                     tokens and micros of each budget period with state; a period
//                     without "ut" has none.
// Every write ends with the first three keys set to expire `margin` ms after the latest
// of: every bucket full again, the last open reservation expired. A key that expires
// therefore held nothing a fresh tenant does not: an idle tenant or a crashed proxy leaks
// nothing for long. The budgets hash lives at least as long, and at least `margin` past
// the reset of every period an admission used, and its lifetime is never shortened: a
// period is not forgotten while a request may still be admitted or settled in it.

extension RedisAdmission {
    /// Definitions every script shares: the token bucket, budget periods, expiry, key lifetimes.
    static let scriptPrelude = #"""
        -- Ticks (ms) per minute: the fixed-point units in one token of a per-minute bucket.
        local P = 60000
        -- Where budget sums saturate: above every limit sent (at most 2^52).
        local MOST = 2 ^ 53
        -- The longest key lifetime set (ms): Redis refuses one that overflows its clock.
        local LONGEST = 2 ^ 52

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

        -- AdmissionState.bucket(_:limit:now:): a new limit starts full, a changed one keeps
        -- what was used (TokenBucket.resized), the same one is kept as it is.
        local function applied(key, name, b, limit, now)
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
          save(key, name, b)
          return b
        end

        -- RateLimitHeaders.Window: limit, remaining, reset (ms); -1s when the limit is not set.
        local function window(b, now)
          if not b then return -1, -1, -1 end
          local c = refilled(b, now)
          return c.cap, available(c), time_until_full(b, now)
        end

        -- BudgetAmounts.adding and .subtracting, for one of its two amounts.
        local function add(a, b) return math.min(MOST, a + b) end
        local function sub(a, b) return math.max(0, a - b) end

        -- A budget period's fields: used tokens, used micros, reserved tokens, reserved micros.
        local function period_fields(period)
          return period .. '|ut', period .. '|um', period .. '|rt', period .. '|rm'
        end

        -- A budget period's BudgetStatus, or nil when it has no state.
        local function load_period(key, period)
          local f = redis.call('HMGET', key, period_fields(period))
          if not f[1] then return nil end
          return { ut = tonumber(f[1]), um = tonumber(f[2]) or 0, rt = tonumber(f[3]) or 0, rm = tonumber(f[4]) or 0 }
        end

        local function save_period(key, period, s)
          local ut, um, rt, rm = period_fields(period)
          redis.call('HSET', key, ut, int(s.ut), um, int(s.um), rt, int(s.rt), rm, int(s.rm))
        end

        -- AdmissionState.OpenReservation, from its record in the reserved hash.
        local function parse_record(value)
          local words = {}
          for word in string.gmatch(value, '%S+') do words[#words + 1] = word end
          local r = { tokens = tonumber(words[1]), micros = tonumber(words[2] or '0'), periods = {} }
          for i = 3, #words do r.periods[#r.periods + 1] = words[i] end
          return r
        end

        local function format_record(tokens, micros, periods)
          if #periods == 0 then return int(tokens) end
          return int(tokens) .. ' ' .. int(micros) .. ' ' .. table.concat(periods, ' ')
        end

        -- AdmissionState.expireReservations(now:): frees the slots of reservations that
        -- expired by now and gives back what they held in budget periods; their tokens stay
        -- taken.
        local function expire(keys, now)
          local expired = redis.call('ZRANGEBYSCORE', keys[2], '-inf', int(now))
          if #expired == 0 then return end
          redis.call('ZREMRANGEBYSCORE', keys[2], '-inf', int(now))
          -- unpack() has a limit on how many values it returns; read and delete in chunks.
          for i = 1, #expired, 1000 do
            local last = math.min(i + 999, #expired)
            local records = redis.call('HMGET', keys[3], unpack(expired, i, last))
            for j = 1, #records do
              if records[j] then
                local r = parse_record(records[j])
                for _, period in ipairs(r.periods) do
                  local s = load_period(keys[4], period)
                  if s then
                    local _, _, rt, rm = period_fields(period)
                    redis.call('HSET', keys[4], rt, int(sub(s.rt, r.tokens)), rm, int(sub(s.rm, r.micros)))
                  end
                end
              end
            end
            redis.call('HDEL', keys[3], unpack(expired, i, last))
          end
        end

        -- The open reservations (inflight, reserved) outlive the budgets hash: an expired
        -- reservation's record must still be there when `expire` runs to give back what it
        -- holds in budget periods, or the hold would stay until the period resets.
        local function hold_records(keys)
          local budgets = redis.call('PTTL', keys[4])
          if budgets <= 0 then return end
          for i = 2, 3 do
            local current = redis.call('PTTL', keys[i])
            if current ~= -2 and current < budgets then redis.call('PEXPIRE', keys[i], budgets) end
          end
        end

        -- Sets the first three keys to expire `margin` ms after the tenant's state equals a
        -- fresh tenant's: every bucket full and the last reservation expired (but the open
        -- reservations never before the budgets hash). Returns that lifetime (ms).
        local function keep(keys, now, margin, requests, tokens, throttle)
          local longest = 0
          for _, b in pairs({ requests, tokens, throttle }) do
            longest = math.max(longest, time_until_full(b, now))
          end
          local last = redis.call('ZRANGE', keys[2], -1, -1, 'WITHSCORES')
          if #last == 2 then longest = math.max(longest, tonumber(last[2]) - now) end
          local ttl = longest + margin
          for i = 1, 3 do redis.call('PEXPIRE', keys[i], int(ttl)) end
          hold_records(keys)
          return ttl
        end

        -- Lengthens the budgets hash's lifetime to `ttl` (keep's) and to `margin` past the
        -- reset of each period in `demands`; never shortens it.
        local function keep_budgets(keys, ttl, demands, now, margin)
          for _, d in ipairs(demands) do ttl = math.max(ttl, d.resets - now + margin) end
          ttl = math.min(ttl, LONGEST)
          local current = redis.call('PTTL', keys[4])
          if current == -2 or current >= ttl then return end
          redis.call('PEXPIRE', keys[4], int(ttl))
          hold_records(keys)
        end

        -- Redis before 5 refuses writes after TIME unless scripts replicate their effects.
        if redis.replicate_commands then redis.replicate_commands() end

        """#
}
