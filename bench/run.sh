#!/usr/bin/env bash
# Benchmark (not a test): the inference data plane against nginx, measured side by side in
# one run with wrk. A fixed upstream (nginx, one worker, answering chat completions from
# memory, whole and streamed) is called three ways:
#
#   direct       wrk straight to the upstream
#   nginx        through nginx as a reverse proxy (one worker, keep-alive to the upstream)
#   switchyard   through Switchyard (release build; tenant-key auth, admission, the
#                scheduler, the engine adapter, the spool and metering all on; no limits)
#
# at 32 connections (throughput) and at 1 connection (latency), whole and streamed; then
# Switchyard's CPU per request (from /proc over the 32-connection runs) and its
# instructions per request (valgrind --tool=callgrind over a fixed number of requests,
# which counts the same on a busy machine as on an idle one).
#
#   bench/run.sh                          # 8 s per run
#   DURATION=20 bench/run.sh
#   SWITCHYARD_BIN=path bench/run.sh      # an existing binary (to compare two builds)
#   SERVE_ARGS="--spool off" bench/run.sh # extra flags for switchyard serve
#   CALLGRIND_REQUESTS=0 bench/run.sh     # skip the instruction count
#   PERF=1 bench/run.sh                   # also profile Switchyard (perf, sampled) over the
#                                         # 32-connection runs and print where its CPU went
#   TRACING=1 bench/run.sh                # also Switchyard whole with tracing on (OTLP/HTTP to
#                                         # bench/otlp_sink.py) at sampling 1.0 and 0.01
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh

DURATION="${DURATION:-8}"
CALLGRIND_REQUESTS="${CALLGRIND_REQUESTS:-2000}"
bench_workspace bench
build_release switchyard
install_bench_tools

# The upstream and the reverse proxy: two nginx instances of one worker each.
UPSTREAM_PORT=$(free_port)
NGINX_PORT=$(free_port)
start_fixed_upstream "$UPSTREAM_PORT"
start_nginx_proxy "$NGINX_PORT" "$UPSTREAM_PORT"

# Switchyard, with two engine pools on the fixed upstream: one answers whole, one streams.
PROXY_PORT=$(free_port)
python3 - "$UPSTREAM_PORT" >"$WORK/providers.json" <<'PY'
import json, sys
port = sys.argv[1]
config = json.load(open("providers.json"))
kinds = ("whole", "stream")
config["providers"] = [{"id": f"bench-{kind}-engine", "kind": "engine", "engine_pool": f"bench-{kind}"} for kind in kinds]
config["engine_pools"] = [
    {"id": f"bench-{kind}", "max_queue": 4096, "replicas": [{"url": f"http://127.0.0.1:{port}/{kind}/v1", "slots": 4096}]}
    for kind in kinds
]
config["deployments"] = [{"id": f"bench-{kind}", "provider": f"bench-{kind}-engine", "model": "bench-model"} for kind in kinds]
config["models"] = [{"name": f"bench-{kind}", "routes": [f"bench-{kind}"]} for kind in kinds]
for tier in config["tiers"]:
    tier.pop("models", None)
config["prices"] = {f"bench-{kind}": {"input_per_million": 100000, "output_per_million": 200000} for kind in kinds}
print(json.dumps(config))
PY
export SWITCHYARD_ADMIN_TOKEN="bench-admin-token-$(date +%s)"
start_switchyard() { # [wrapper...]: serve on $PROXY_PORT, pid in $SERVE_PID
    SWITCHYARD_LOG_LEVEL=warning "$@" "$BIN" serve --config "$WORK/providers.json" --db "$WORK/ledger.sqlite" \
        --port "$PROXY_PORT" ${SERVE_ARGS:-} >"$WORK/serve.log" 2>&1 &
    SERVE_PID=$!
    wait_for "http://127.0.0.1:$PROXY_PORT/health"
}
start_switchyard
export SWITCHYARD_URL="http://127.0.0.1:$PROXY_PORT"
TENANT=$("$BIN" tenant create --name bench --tier enterprise --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
TENANT_KEY=$(tenant_key "$TENANT")

WHOLE='{"model":"bench-whole","messages":[{"role":"user","content":"Benchmark the proxy path"}],"max_tokens":16}'
STREAM='{"model":"bench-stream","messages":[{"role":"user","content":"Benchmark the proxy path"}],"max_tokens":16,"stream":true}'

cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVE_PID/stat"; }
run() { # name url key body connections -> "rps=… p50_us=… … cpu_us_per_request=…"
    local name="$1" url="$2" key="$3" body="$4" connections="$5"
    KEY="$key" BODY="$body" wrk -t1 -c4 -d1s -s bench/request.lua "$url" >/dev/null 2>&1 # warm-up
    local before after requests
    local profiler=""
    if [[ -n "${PERF:-}" && $name == switchyard-*-32 ]]; then
        perf record -q -F 1999 -g -p "$SERVE_PID" -o "$WORK/$name.perf" 2>"$WORK/$name.perf.log" &
        profiler=$!
    fi
    before=$(cpu_ticks)
    KEY="$key" BODY="$body" wrk -t1 -c"$connections" -d"${DURATION}s" -s bench/request.lua "$url" >"$WORK/$name.txt" 2>&1
    after=$(cpu_ticks)
    if [[ -n $profiler ]]; then kill -INT "$profiler"; wait "$profiler" 2>/dev/null || true; fi
    requests=$(grep -Eo '[0-9]+ requests in' "$WORK/$name.txt" | cut -d' ' -f1)
    echo "$(grep '^RESULT' "$WORK/$name.txt" | sed 's/RESULT //') cpu_us_per_request=$(( (after - before) * 1000000 / $(getconf CLK_TCK) / requests ))"
}

echo "==> wrk: 1 thread, ${DURATION}s per run; machine: $(nproc) cores, load generator and upstream included; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
declare -A results
for kind in whole stream; do
    body=$WHOLE; [[ $kind == stream ]] && body=$STREAM
    for connections in 32 1; do
        echo "==> $kind, $connections connection(s)" >&2
        results[direct-$kind-$connections]=$(run "direct-$kind-$connections" "http://127.0.0.1:$UPSTREAM_PORT/$kind/v1/chat/completions" "" "$body" "$connections")
        results[nginx-$kind-$connections]=$(run "nginx-$kind-$connections" "http://127.0.0.1:$NGINX_PORT/$kind/v1/chat/completions" "" "$body" "$connections")
        results[switchyard-$kind-$connections]=$(run "switchyard-$kind-$connections" "http://127.0.0.1:$PROXY_PORT/v1/chat/completions" "$TENANT_KEY" "$body" "$connections")
    done
done
if [[ -n "${TRACING:-}" ]]; then
    SINK_PORT=$(free_port)
    python3 bench/otlp_sink.py "$SINK_PORT" 2>"$WORK/otlp-sink.log" &
    SINK_PID=$!
    UNTRACED_ARGS="${SERVE_ARGS:-}"
    for sampling in 1.0 0.01; do
        kill "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true
        SERVE_ARGS="$UNTRACED_ARGS --otlp-endpoint http://127.0.0.1:$SINK_PORT --trace-sampling $sampling" start_switchyard
        for connections in 32 1; do
            echo "==> whole, $connections connection(s), tracing at sampling $sampling" >&2
            results[traced$sampling-whole-$connections]=$(run "traced$sampling-whole-$connections" "http://127.0.0.1:$PROXY_PORT/v1/chat/completions" "$TENANT_KEY" "$WHOLE" "$connections")
        done
    done
    SERVE_ARGS="$UNTRACED_ARGS"
    kill "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true
    start_switchyard
    kill "$SINK_PID"; wait "$SINK_PID" 2>/dev/null || true
    cat "$WORK/otlp-sink.log" >&2
fi
sleep 1
METERED=$(curl -fsS -H "Authorization: Bearer $SWITCHYARD_ADMIN_TOKEN" "$SWITCHYARD_URL/admin/v1/usage?group_by=model" | python3 -c 'import json,sys; print(sum(r["requests"] for r in json.load(sys.stdin)["data"]))')

INSTRUCTIONS=""
if (( CALLGRIND_REQUESTS > 0 )); then
    echo "==> callgrind: Switchyard's instructions over $CALLGRIND_REQUESTS whole and $CALLGRIND_REQUESTS streamed requests" >&2
    kill "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true
    # valgrind reads no debug info of a Swift binary: it counts a stripped copy.
    strip -o "$WORK/switchyard-stripped" "$BIN"
    BIN="$WORK/switchyard-stripped"
    if (start_switchyard valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file="$WORK/callgrind.%p") 2>/dev/null; then
        SERVE_PID=$(pgrep -f -- "--db $WORK/ledger.sqlite" | head -1)
        INSTRUCTIONS=$(python3 bench/callgrind_requests.py "$SERVE_PID" "http://127.0.0.1:$PROXY_PORT" "$TENANT_KEY" \
            "$CALLGRIND_REQUESTS" "$WHOLE" "$STREAM" "$WORK") || INSTRUCTIONS="callgrind: counting failed"
    else
        INSTRUCTIONS="callgrind: Switchyard did not start under valgrind $(valgrind --version 2>/dev/null) (see $WORK/serve.log)"
    fi
fi

if [[ -n "${PERF:-}" ]]; then
    for kind in whole stream; do
        echo "==> where Switchyard's CPU went, $kind at 32 connections (perf, self time by symbol)" >&2
        if [[ -s "$WORK/switchyard-$kind-32.perf" ]]; then
            perf report -q -i "$WORK/switchyard-$kind-32.perf" --no-children --sort dso,symbol --stdio 2>/dev/null \
                | grep -E '^ +[0-9]' | head -40 | cut -c1-160 >&2 || true
        else
            echo "perf recorded nothing: $(head -c 300 "$WORK/switchyard-$kind-32.perf.log" 2>/dev/null)" >&2
        fi
    done
fi

pairs=()
for name in "${!results[@]}"; do pairs+=("$name" "${results[$name]}"); done
python3 - "$METERED" "$INSTRUCTIONS" "${pairs[@]}" <<'PY'
import sys
metered, instructions, *pairs = sys.argv[1:]
runs = {pairs[i]: dict(item.split("=") for item in pairs[i + 1].split()) for i in range(0, len(pairs), 2)}
def rps(name): return float(runs[name]["rps"])
def p50(name): return int(runs[name]["p50_us"])
print(f"\n{'':<22}{'32 conn, whole':>16}{'32 conn, streamed':>19}{'1 conn, whole p50':>19}{'1 conn, streamed p50':>22}")
for who, label in [("direct", "direct to upstream"), ("nginx", "nginx reverse proxy"), ("switchyard", "Switchyard")]:
    print(f"{label:<22}{rps(who + '-whole-32'):>12.0f} r/s{rps(who + '-stream-32'):>15.0f} r/s"
          f"{p50(who + '-whole-1'):>16} us{p50(who + '-stream-1'):>19} us")
print()
for kind in ("whole", "stream"):
    ratio = rps(f"switchyard-{kind}-32") / rps(f"nginx-{kind}-32")
    added = p50(f"switchyard-{kind}-1") - p50(f"direct-{kind}-1")
    nginx_added = p50(f"nginx-{kind}-1") - p50(f"direct-{kind}-1")
    print(f"{kind:<7} Switchyard = {ratio:.0%} of nginx's requests/s at 32 connections; "
          f"p50 added at 1 connection: {added} us (nginx: {nginx_added} us)")
errors = {name: int(run["errors"]) + int(run["non2xx"]) for name, run in runs.items() if int(run["errors"]) + int(run["non2xx"])}
print(f"errors or non-2xx answers: {errors or 'none'}")
for kind in ("whole", "stream"):
    print(f"Switchyard CPU per {kind} request at 32 connections: {runs[f'switchyard-{kind}-32']['cpu_us_per_request']} us")
if "traced1.0-whole-32" in runs:
    print("\nwhole answers, tracing off / on at sampling 1.0 / on at 0.01:")
    for who, label in [("switchyard", "off"), ("traced1.0", "on, 1.0"), ("traced0.01", "on, 0.01")]:
        print(f"  {label:<9} {rps(who + '-whole-32'):>8.0f} r/s at 32 connections, p50 {p50(who + '-whole-1')} us at 1, "
              f"{runs[who + '-whole-32']['cpu_us_per_request']} us CPU per request")
if instructions:
    print(instructions)
print(f"usage events metered in the ledger during the runs: {metered}")
PY
