#!/usr/bin/env bash
# Benchmark (not a test): the latency that Redis-backed tenant admission adds to a
# request, end to end, measured with wrk at low concurrency (latency, not saturation).
#
# One simulated engine upstream (unpaced), one redis-server, two `switchyard serve`
# (release build) sharing a ledger:
#   none      serve --redis, a tenant whose tier has no limits: no admission at all;
#   redis     serve --redis, a tenant whose tier has limits too large to refuse: the admit
#             script runs in Redis on every request, settlements are pipelined;
#   inproc    serve without --redis, the same limited tenant: in-process admission;
#   redis+budget, inproc+budget
#             the same, for a tenant of the limited tier that also has a tenant budget
#             and a key budget too large to refuse: both reserved and settled with the
#             rate limits in the one admission step.
# Modes alternate within each round; figures are medians across rounds, and the added
# p50 is the median of the per-round differences p50(redis) - p50(none).
# Progress goes to stderr, figures to stdout.
#
#   bench/admission.sh                              # 1 and 4 connections, 5 rounds of 5 s
#   ROUNDS=7 DURATION=10 CONNECTION_COUNTS="1 4 8" bench/admission.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh

ROUNDS="${ROUNDS:-5}"
DURATION="${DURATION:-5}"
CONNECTION_COUNTS="${CONNECTION_COUNTS:-1 4}"
TARGET_US="${TARGET_US:-150}"
bench_workspace admission-bench
build_release switchyard

echo "==> starting redis-server, the engine simulator and two proxies" >&2
start_redis
start_engine
# Two tiers that differ only in their limits.
python3 - "$WORK/providers.json" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config["tiers"].append({"name": "bench-open", "priority": 100})
config["tiers"].append({"name": "bench-limited", "priority": 100, "requests_per_minute": 1000000000,
                        "tokens_per_minute": 1000000000, "concurrent_requests": 100000})
json.dump(config, open(sys.argv[1], "w"))
PY
export SWITCHYARD_ADMIN_TOKEN="bench-admin-token-$(date +%s)"
REDIS_PROXY_PORT=$(free_port)
LOCAL_PROXY_PORT=$(free_port)
SWITCHYARD_LOG_LEVEL=warning "$BIN" serve --config "$WORK/providers.json" --db "$WORK/ledger.sqlite" \
    --port "$REDIS_PROXY_PORT" --redis "redis://127.0.0.1:$REDIS_PORT/0" >"$WORK/serve-redis.log" 2>&1 &
wait_for "http://127.0.0.1:$REDIS_PROXY_PORT/health"
SWITCHYARD_LOG_LEVEL=warning "$BIN" serve --config "$WORK/providers.json" --db "$WORK/ledger.sqlite" \
    --port "$LOCAL_PROXY_PORT" >"$WORK/serve-local.log" 2>&1 &
wait_for "http://127.0.0.1:$LOCAL_PROXY_PORT/health"

export SWITCHYARD_URL="http://127.0.0.1:$REDIS_PROXY_PORT"
new_key() { # tier -> a tenant key of a new tenant of that tier
    local tenant
    tenant=$("$BIN" tenant create --name "bench-$1" --tier "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    tenant_key "$tenant"
}
OPEN_KEY=$(new_key bench-open)
LIMITED_KEY=$(new_key bench-limited)
# A limited tenant with a monthly budget and a daily key budget that never refuse.
BUDGET_TENANT=$("$BIN" tenant create --name bench-budgeted --tier bench-limited --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
BUDGET_KEY_JSON=$(tenant_key "$BUDGET_TENANT" bench json)
BUDGET_KEY=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["key"])' "$BUDGET_KEY_JSON")
BUDGET_KEY_ID=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$BUDGET_KEY_JSON")
"$BIN" budget set --tenant "$BUDGET_TENANT" --period month --limit-tokens 1000000000000000 --limit-micros 1000000000000000 >/dev/null
"$BIN" budget set --key "$BUDGET_KEY_ID" --period day --limit-tokens 1000000000000000 >/dev/null

BODY='{"model":"chat-small","messages":[{"role":"user","content":"Benchmark the admission path"}],"max_tokens":16}'
declare -A URL=(
    [none]="http://127.0.0.1:$REDIS_PROXY_PORT/v1/chat/completions"
    [redis]="http://127.0.0.1:$REDIS_PROXY_PORT/v1/chat/completions"
    [inproc]="http://127.0.0.1:$LOCAL_PROXY_PORT/v1/chat/completions"
    [redis+budget]="http://127.0.0.1:$REDIS_PROXY_PORT/v1/chat/completions"
    [inproc+budget]="http://127.0.0.1:$LOCAL_PROXY_PORT/v1/chat/completions"
)
declare -A KEY=([none]="$OPEN_KEY" [redis]="$LIMITED_KEY" [inproc]="$LIMITED_KEY" [redis+budget]="$BUDGET_KEY"
    [inproc+budget]="$BUDGET_KEY")
MODES=(none redis inproc redis+budget inproc+budget)

# Each mode must answer 200, and admission must run exactly where it should: the
# rate-limit headers come with admitted requests only.
for mode in "${MODES[@]}"; do
    headers=$(curl -sS -D - -o /dev/null -H "Authorization: Bearer ${KEY[$mode]}" -H 'Content-Type: application/json' \
        -d "$BODY" "${URL[$mode]}")
    grep -q '^HTTP/1.1 200' <<<"$headers" || { echo "error: $mode: $(head -n1 <<<"$headers")" >&2; exit 1; }
    limited=$(grep -ci '^x-ratelimit-limit-requests' <<<"$headers" || true)
    if [[ $mode == none && $limited != 0 ]] || [[ $mode != none && $limited == 0 ]]; then
        echo "error: $mode: unexpected rate-limit headers (admission ran: $limited)" >&2
        exit 1
    fi
done

echo "==> warming up" >&2
for mode in "${MODES[@]}"; do
    KEY="${KEY[$mode]}" BODY="$BODY" wrk -t1 -c4 -d2s -s bench/request.lua "${URL[$mode]}" >/dev/null 2>&1
done
redis-cli -p "$REDIS_PORT" config resetstat >/dev/null

RESULTS="$WORK/results.txt"
: >"$RESULTS"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for connections in $CONNECTION_COUNTS; do
    for round in $(seq 1 "$ROUNDS"); do
        # Rotate the order each round, so no mode always runs first.
        shift_by=$(( (round - 1) % ${#MODES[@]} ))
        order=("${MODES[@]:$shift_by}" "${MODES[@]:0:$shift_by}")
        for mode in "${order[@]}"; do
            KEY="${KEY[$mode]}" BODY="$BODY" wrk -t1 -c"$connections" -d"${DURATION}s" -s bench/request.lua \
                "${URL[$mode]}" >"$WORK/wrk.txt" 2>&1
            requests=$(grep -Eo '[0-9]+ requests in' "$WORK/wrk.txt" | cut -d' ' -f1)
            line="mode=$mode connections=$connections round=$round requests=$requests $(grep '^RESULT' "$WORK/wrk.txt" | sed 's/RESULT //')"
            echo "$line" >>"$RESULTS"
            echo "    $line" >&2
        done
    done
done
EVALSHA=$(redis-cli -p "$REDIS_PORT" info commandstats | tr -d '\r' | grep '^cmdstat_evalsha:' | cut -d: -f2 || true)

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$RESULTS" "$TARGET_US" "$ROUNDS" "$DURATION" "$EVALSHA" <<'PY'
import statistics, sys
path, target, rounds, duration, evalsha = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
runs = [dict(item.split("=", 1) for item in line.split()) for line in open(path) if line.strip()]
names = {"none": "no limits (no admission)", "redis": "Redis admission", "inproc": "in-process admission",
         "redis+budget": "Redis, with budgets", "inproc+budget": "in process, with budgets"}

def low_median(values):
    values = sorted(values)
    return values[(len(values) - 1) // 2]

def figure(mode, connections, field):
    return [float(run[field]) for run in runs if run["mode"] == mode and run["connections"] == connections]

print(f"end-to-end chat completions (non-streaming) through switchyard serve, wrk -t1, {rounds} rounds x {duration} s per mode")
print("and connection count, modes alternating; figures: median across rounds [lowest-highest]\n")
print(f"{'conns':<7}{'mode':<27}{'p50 us [low-high]':>24}{'p90 us':>9}{'p99 us':>9}{'requests/s':>12}{'errors':>8}")
verdicts = []
for connections in dict.fromkeys(run["connections"] for run in runs):
    for mode in names:
        p50 = figure(mode, connections, "p50_us")
        errors = sum(figure(mode, connections, "errors")) + sum(figure(mode, connections, "non2xx"))
        print(f"{connections:<7}{names[mode]:<27}{f'{low_median(p50):.0f} [{min(p50):.0f}-{max(p50):.0f}]':>24}"
              f"{low_median(figure(mode, connections, 'p90_us')):>9.0f}{low_median(figure(mode, connections, 'p99_us')):>9.0f}"
              f"{low_median(figure(mode, connections, 'rps')):>12.0f}{errors:>8.0f}")
    for mode in ["redis", "inproc"]:
        # Paired by round: both runs of a round saw the same machine.
        added = [a - b for a, b in zip(figure(mode, connections, "p50_us"), figure("none", connections, "p50_us"))]
        of_medians = low_median(figure(mode, connections, "p50_us")) - low_median(figure("none", connections, "p50_us"))
        print(f"       added p50, {names[mode]}: {statistics.median(added):+.0f} us (median of per-round differences,"
              f" range {min(added):+.0f} to {max(added):+.0f}; difference of medians {of_medians:+.0f} us)")
        if mode == "redis":
            verdicts.append((connections, statistics.median(added)))
    for mode, base in [("redis+budget", "redis"), ("inproc+budget", "inproc")]:
        added = [a - b for a, b in zip(figure(mode, connections, "p50_us"), figure(base, connections, "p50_us"))]
        print(f"       added p50 of two budgets, {names[base]}: {statistics.median(added):+.0f} us (median of per-round"
              f" differences, range {min(added):+.0f} to {max(added):+.0f})")
    print()
for connections, added in verdicts:
    verdict = "met" if added <= target else "NOT met"
    print(f"target: Redis admission adds at most {target} us to p50 -> {verdict} at {connections} connection(s) ({added:+.0f} us)")
redis_requests = sum(int(run["requests"]) for run in runs if run["mode"] in ("redis", "redis+budget"))
stats = dict(item.split("=") for item in evalsha.split(",")) if evalsha else {}
if stats:
    calls, usec = int(stats["calls"]), int(stats["usec"])
    print(f"Redis ran {calls} EVALSHA for {redis_requests} Redis-admitted requests ({calls / max(1, redis_requests):.2f} per request:"
          f" admit + settle), {usec / max(1, redis_requests):.1f} us of Redis time per request")
PY
echo "machine: $(nproc) cores shared by wrk, the proxies, the simulator and Redis; load average (1, 5, 15 min) before: $LOAD_BEFORE, after: $LOAD_AFTER"
