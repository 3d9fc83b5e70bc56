#!/usr/bin/env bash
# Benchmark (not a test): what contract scheduling does under contention, end to end.
#
# One paced engine simulator with 4 slots (100 tokens/s, requests of 20 tokens: about
# 0.2 s each, so the pool serves about 20 requests/s), behind one engine pool whose queue
# has room for everyone, and two tiers without wait limits:
#   enterprise  priority 100, reserved_share 0.25
#   standard    priority 10,  reserved_share 0.25
# For each of `serve --scheduling contract` (the pool's admission queue) and
# `--scheduling fifo` (no queue in the proxy: every request goes to the engine, which
# queues first come first served), a fresh proxy (release build), one standard tenant
# keeping 24 streaming requests in flight and one enterprise tenant keeping 2 (closed
# loops, bench/scheduling_load.py with httpx), for DURATION seconds after a warm-up. Per
# tier: requests completed, time to first token (sending -> first SSE data line) p50/p95,
# and the proxy's own queue wait (x-switchyard-queue-ms). Progress goes to stderr, figures
# to stdout.
#
#   bench/scheduling.sh                          # 20 s per mode
#   SWITCHYARD_BIN=path bench/scheduling.sh      # an existing binary (to compare two builds)
#   DURATION=30 STANDARD_IN_FLIGHT=32 ENTERPRISE_IN_FLIGHT=4 bench/scheduling.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh

DURATION="${DURATION:-20}"
WARMUP="${WARMUP:-2}"
SLOTS="${SLOTS:-4}"
TOKENS_PER_SECOND="${TOKENS_PER_SECOND:-100}"
MAX_TOKENS="${MAX_TOKENS:-20}"
STANDARD_IN_FLIGHT="${STANDARD_IN_FLIGHT:-24}"
ENTERPRISE_IN_FLIGHT="${ENTERPRISE_IN_FLIGHT:-2}"
MODES="${MODES:-contract fifo}"
PYTHON="${PYTHON:-.venv/bin/python}"
if ! "$PYTHON" -c 'import httpx' 2>/dev/null; then
    echo "error: $PYTHON cannot import httpx (set PYTHON to an interpreter that can)" >&2
    exit 1
fi
bench_workspace scheduling-bench
build_release switchyard

ENGINE_PORT=$(free_port)
"$BIN" sim-engine --port "$ENGINE_PORT" --ttft-ms 0 --tokens-per-second "$TOKENS_PER_SECOND" --slots "$SLOTS" >"$WORK/sim.log" 2>&1 &
wait_for "http://127.0.0.1:$ENGINE_PORT/health"
# The shipped configuration with one engine pool of $SLOTS slots on the simulator and the
# two tiers above (no rate limits, no wait limits, no spill-over).
python3 - "$ENGINE_PORT" "$SLOTS" >"$WORK/providers.json" <<'PY'
import json, sys
config = json.load(open("providers.json"))
port, slots = sys.argv[1], int(sys.argv[2])
config["engine_pools"] = [{
    "id": "local-gpu",
    "max_queue": 10000,
    "replicas": [{"url": f"http://127.0.0.1:{port}/v1", "slots": slots}],
}]
config["tiers"] = [
    {"name": "enterprise", "priority": 100, "reserved_share": 0.25},
    {"name": "standard", "priority": 10, "reserved_share": 0.25},
]
print(json.dumps(config))
PY

export SWITCHYARD_ADMIN_TOKEN="bench-admin-token-$(date +%s)"
new_key() { # tier -> a tenant key of a new tenant of that tier
    local tenant
    tenant=$("$BIN" tenant create --name "bench-$1" --tier "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    tenant_key "$tenant" k
}
# The engine's own queue (vllm:num_requests_waiting), read halfway through a run.
engine_waiting() {
    curl -fsS "http://127.0.0.1:$ENGINE_PORT/metrics" | awk '/^vllm:num_requests_waiting/ {print $NF}' | head -n 1
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "==> $SLOTS engine slots at $TOKENS_PER_SECOND tokens/s, max_tokens $MAX_TOKENS, in flight: standard $STANDARD_IN_FLIGHT, enterprise $ENTERPRISE_IN_FLIGHT; ${WARMUP}s warm-up + ${DURATION}s per mode" >&2
declare -A ENGINE_WAITING
for mode in $MODES; do
    echo "==> --scheduling $mode" >&2
    PROXY_PORT=$(free_port)
    SWITCHYARD_LOG_LEVEL=warning "$BIN" serve --config "$WORK/providers.json" --db "$WORK/ledger-$mode.sqlite" \
        --port "$PROXY_PORT" --scheduling "$mode" >"$WORK/serve-$mode.log" 2>&1 &
    SERVE_PID=$!
    wait_for "http://127.0.0.1:$PROXY_PORT/health"
    export SWITCHYARD_URL="http://127.0.0.1:$PROXY_PORT"
    STANDARD_KEY=$(new_key standard)
    ENTERPRISE_KEY=$(new_key enterprise)
    (sleep "$(python3 -c "print($WARMUP + $DURATION / 2)")"; engine_waiting >"$WORK/engine-waiting-$mode") &
    "$PYTHON" bench/scheduling_load.py --url "$SWITCHYARD_URL" --scheduling "$mode" \
        --tenant "standard=$STANDARD_KEY:$STANDARD_IN_FLIGHT" --tenant "enterprise=$ENTERPRISE_KEY:$ENTERPRISE_IN_FLIGHT" \
        --max-tokens "$MAX_TOKENS" --duration "$DURATION" --warmup "$WARMUP" --json "$WORK/rows.jsonl"
    wait $! 2>/dev/null || true
    ENGINE_WAITING[$mode]=$(cat "$WORK/engine-waiting-$mode" 2>/dev/null || echo "?")
    kill "$SERVE_PID"
    wait "$SERVE_PID" 2>/dev/null || true
done

echo
"$PYTHON" bench/scheduling_load.py --table "$WORK/rows.jsonl"
echo
for mode in $MODES; do
    echo "requests waiting in the engine's own queue halfway through the $mode run: ${ENGINE_WAITING[$mode]}"
done
echo "pool capacity: $SLOTS slots x $TOKENS_PER_SECOND/$MAX_TOKENS requests/s per slot = about $(python3 -c "print(round($SLOTS * $TOKENS_PER_SECOND / $MAX_TOKENS))") requests/s"
echo "ttft: sending -> first SSE data line, at the client; queue: x-switchyard-queue-ms (the proxy's pool queue)"
echo "machine: $(nproc) cores; load average (1, 5, 15 min) before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
