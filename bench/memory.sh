#!/usr/bin/env bash
# Benchmark (not a test): Switchyard's resident memory per idle keep-alive connection and
# per open stream. Starts very slowly paced engine simulators (so streams stay open and
# nothing queues) and `switchyard serve` in front of them, then bench/memory_load.py opens
# N idle connections (one GET /health each) and N slowly read streaming chat completions,
# and samples the proxy's VmRSS once every connection is answered or streaming.
#
#   bench/memory.sh                                   # idle and stream at 1,000 and 5,000
#   SWITCHYARD_BIN=/path/to/switchyard bench/memory.sh  # an existing binary, no build
#   PHASES="stream:200" bench/memory.sh               # phases, each on a fresh server
#   FRESH=0 bench/memory.sh                           # all phases in order on one server
#   SERVE_ENV="MALLOC_ARENA_MAX=2" bench/memory.sh    # environment for the serve process only
#   SERVE_WRAPPER="heaptrack -o /tmp/sy" bench/memory.sh   # run serve under a profiler
#   SERVE_ARGS="--keep-alive-timeout 600" bench/memory.sh  # more options for serve
#
# Other knobs: TRIM=1 (diagnostic: also sample RSS after malloc_trim(0) in serve, which
# tells live heap from pages malloc holds free; needs cc),
# TOKENS_PER_SECOND (1), READ_INTERVAL (1 s between a stream's reads),
# SETTLE (5 s before sampling), READY_TIMEOUT (180 s for every connection to be answered or
# streaming), REPLICAS (simulators in the engine pool; by default one per
# 1,000 streams, since the proxy's HTTP client opens at most 1,024 connections per upstream
# host and queues the rest).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh

PHASES="${PHASES:-idle:1000 idle:5000 stream:1000 stream:5000}"
TOKENS_PER_SECOND="${TOKENS_PER_SECOND:-1}"
READ_INTERVAL="${READ_INTERVAL:-1}"
SETTLE="${SETTLE:-5}"
# A fresh server per phase by default: memory freed when a phase's connections close stays
# with the process (malloc keeps it) and would be reused by the next phase, hiding its cost.
FRESH="${FRESH:-1}"
SERVE_ENV="${SERVE_ENV:-}"
SERVE_WRAPPER="${SERVE_WRAPPER:-}"
SERVE_ARGS="${SERVE_ARGS:-}"
LABEL="${LABEL:-}"

largest_stream=0
for phase in $PHASES; do
    if [[ $phase == stream:* ]] && ((${phase#stream:} > largest_stream)); then largest_stream=${phase#stream:}; fi
done
REPLICAS="${REPLICAS:-$(((largest_stream + 999) / 1000))}"
if ((REPLICAS < 1)); then REPLICAS=1; fi

# Every stream costs the proxy two descriptors (client and upstream); raise the soft limit
# to the hard one for this script and everything it starts.
ulimit -n "$(ulimit -Hn)"

bench_workspace memory
build_release switchyard
BIN="$(readlink -f "$BIN")"

# Slowly paced simulators with room for every stream; the pool's replicas point at them.
ENGINE_PORTS=()
for _ in $(seq 1 "$REPLICAS"); do
    port=$(free_port)
    "$BIN" sim-engine --port "$port" --ttft-ms 0 --tokens-per-second "$TOKENS_PER_SECOND" --slots 10000 >>"$WORK/sim.log" 2>&1 &
    wait_for "http://127.0.0.1:$port/health"
    ENGINE_PORTS+=("$port")
done
python3 - "${ENGINE_PORTS[@]}" >"$WORK/providers.json" <<'PY'
import json, sys
config = json.load(open("providers.json"))
for pool in config["engine_pools"]:
    pool["replicas"] = [{"url": f"http://127.0.0.1:{port}/v1", "slots": 10000} for port in sys.argv[1:]]
print(json.dumps(config))
PY

# TRIM=1: a preloaded helper whose thread, when memory_load.py asks, records mallinfo2()
# (bytes malloc has in use and holds free) and calls malloc_trim(0).
if [[ ${TRIM:-0} == 1 ]]; then
    cat >"$WORK/trim.c" <<'C'
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
static void *watch(void *unused) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/switchyard-trim.%d", (int)getpid());
    for (;;) {
        if (access(path, F_OK) == 0) {
            /* malloc's own account first: bytes in use, bytes held free, then trim. */
            struct mallinfo2 info = mallinfo2();
            FILE *out = fopen(path, "w");
            if (out) {
                fprintf(out, "%zu %zu %zu %zu\n", info.uordblks, info.fordblks, info.hblkhd, info.arena);
                fclose(out);
            }
            malloc_trim(0);
            char done[80];
            snprintf(done, sizeof done, "%s.done", path);
            rename(path, done);
        }
        usleep(100000);
    }
    return unused;
}
__attribute__((constructor)) static void start(void) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, watch, NULL) == 0) pthread_detach(thread);
}
C
    cc -shared -fPIC -O2 -o "$WORK/trim.so" "$WORK/trim.c" -lpthread
    TRIM_ENV="LD_PRELOAD=$WORK/trim.so"
fi

PROXY_PORT=$(free_port)
export SWITCHYARD_ADMIN_TOKEN="bench-admin-token-$(date +%s)"
export SWITCHYARD_URL="http://127.0.0.1:$PROXY_PORT"
SERVE_PID=""
start_serve() {
    # shellcheck disable=SC2086 # SERVE_ENV, SERVE_WRAPPER and SERVE_ARGS are word lists on purpose
    env SWITCHYARD_LOG_LEVEL=warning $SERVE_ENV ${TRIM_ENV:-} $SERVE_WRAPPER "$BIN" serve --config "$WORK/providers.json" \
        --db "$WORK/ledger.sqlite" --port "$PROXY_PORT" --grace-period 1 $SERVE_ARGS >>"$WORK/serve.log" 2>&1 &
    wait_for "$SWITCHYARD_URL/health"
    # The serve process itself, even under a wrapper: the binary with this database.
    SERVE_PID=""
    for pid in $(pgrep -f -- "--db $WORK/ledger.sqlite"); do
        [[ $(readlink -f "/proc/$pid/exe" 2>/dev/null) == "$BIN" ]] && SERVE_PID=$pid
    done
    [[ -n $SERVE_PID ]] || { echo "error: no serve process found" >&2; exit 1; }
}
stop_serve() {
    kill -TERM "$SERVE_PID" 2>/dev/null || true
    while kill -0 "$SERVE_PID" 2>/dev/null; do sleep 0.2; done
    sleep 1 # a wrapper (a profiler) may still be writing its output
}

start_serve
TENANT=$("$BIN" tenant create --name bench --tier enterprise --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
TENANT_KEY=$(tenant_key "$TENANT")

label="${LABEL:-serve${SERVE_ENV:+ with $SERVE_ENV}${SERVE_WRAPPER:+ under $SERVE_WRAPPER}}"
echo "==> $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)," \
    "binary $BIN, $REPLICAS simulator(s) at $TOKENS_PER_SECOND token/s, phases: $PHASES${SERVE_ENV:+, serve env: $SERVE_ENV}${SERVE_ARGS:+, serve args: $SERVE_ARGS}" >&2
load=(python3 bench/memory_load.py --port "$PROXY_PORT" --key "$TENANT_KEY" --read-interval "$READ_INTERVAL"
    --settle "$SETTLE" --ready-timeout "${READY_TIMEOUT:-180}" --label "$label" --json "$WORK/rows.jsonl")
if [[ ${TRIM:-0} == 1 ]]; then load+=(--trim); fi
if [[ $FRESH == 1 ]]; then
    first=1
    for phase in $PHASES; do
        ((first)) || start_serve
        first=0
        "${load[@]}" --pid "$SERVE_PID" "$phase" >/dev/null
        stop_serve
    done
else
    "${load[@]}" --pid "$SERVE_PID" $PHASES >/dev/null
    stop_serve
fi
echo "==> done, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
python3 bench/memory_load.py --table "$WORK/rows.jsonl"
if [[ -n ${KEEP_ROWS:-} ]]; then cp "$WORK/rows.jsonl" "$KEEP_ROWS"; fi
