#!/usr/bin/env bash
# Benchmark (not a test): throughput and latency of chat completions, non-streaming and
# streaming, straight to a fast upstream (the unpaced engine simulator) and through
# Switchyard (release build, tenant-key auth and metering on), measured with wrk.
#
#   bench/run.sh                 # 32 connections, 10 s per run
#   SWITCHYARD_BIN=path bench/run.sh   # an existing binary (to compare two builds)
#   CONNECTIONS=64 DURATION=20 bench/run.sh
#   SERVE_ARGS="--spool off" bench/run.sh   # extra flags for switchyard serve
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh

CONNECTIONS="${CONNECTIONS:-32}"
DURATION="${DURATION:-10}"
THREADS="${THREADS:-2}"
bench_workspace bench
build_release switchyard
start_engine
PROXY_PORT=$(free_port)
export SWITCHYARD_ADMIN_TOKEN="bench-admin-token-$(date +%s)"
SWITCHYARD_LOG_LEVEL=warning "$BIN" serve --config "$WORK/providers.json" --db "$WORK/ledger.sqlite" --port "$PROXY_PORT" ${SERVE_ARGS:-} >"$WORK/serve.log" 2>&1 &
wait_for "http://127.0.0.1:$PROXY_PORT/health"
export SWITCHYARD_URL="http://127.0.0.1:$PROXY_PORT"
TENANT=$("$BIN" tenant create --name bench --tier enterprise --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
TENANT_KEY=$(tenant_key "$TENANT")

PLAIN='{"model":"chat-small","messages":[{"role":"user","content":"Benchmark the proxy path"}],"max_tokens":16}'
STREAM='{"model":"chat-small","messages":[{"role":"user","content":"Benchmark the proxy path"}],"max_tokens":16,"stream":true}'

SERVE_PID=$(pgrep -f -- "--db $WORK/ledger.sqlite")
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVE_PID/stat"; }
run() { # name url key body -> "rps=… p50_us=… … cpu_us_per_request=…"
    local name="$1" url="$2" key="$3" body="$4"
    KEY="$key" BODY="$body" wrk -t1 -c4 -d2s -s bench/request.lua "$url" >/dev/null 2>&1 # warm-up
    local before after
    before=$(cpu_ticks)
    KEY="$key" BODY="$body" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -s bench/request.lua "$url" >"$WORK/$name.txt" 2>&1
    after=$(cpu_ticks)
    local result requests
    result=$(grep '^RESULT' "$WORK/$name.txt" | sed 's/RESULT //')
    requests=$(grep -Eo '[0-9]+ requests in' "$WORK/$name.txt" | cut -d' ' -f1)
    # Switchyard's own CPU time (user + system) per request it served in this run.
    echo "$result cpu_us_per_request=$(( (after - before) * 1000000 / $(getconf CLK_TCK) / requests ))"
}

echo "==> wrk: $CONNECTIONS connections, $THREADS threads, ${DURATION}s per run, machine: $(nproc) cores (load generator included)"
declare -A results
for kind in plain stream; do
    body=$PLAIN; [[ $kind == stream ]] && body=$STREAM
    results[direct-$kind]=$(run "direct-$kind" "http://127.0.0.1:$ENGINE_PORT/v1/chat/completions" "" "$body")
    results[proxy-$kind]=$(run "proxy-$kind" "http://127.0.0.1:$PROXY_PORT/v1/chat/completions" "$TENANT_KEY" "$body")
done

python3 - "${results[direct-plain]}" "${results[proxy-plain]}" "${results[direct-stream]}" "${results[proxy-stream]}" <<'PY'
import sys
names = ["direct-plain", "proxy-plain", "direct-stream", "proxy-stream"]
runs = {name: dict(item.split("=") for item in text.split()) for name, text in zip(names, sys.argv[1:])}
print(f"\n{'run':<16}{'requests/s':>12}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'errors':>8}{'proxy CPU/req':>15}")
for name, run in runs.items():
    errors = int(run["errors"]) + int(run["non2xx"])
    cpu = f"{run['cpu_us_per_request']} us" if name.startswith("proxy") else "-"
    print(f"{name:<16}{float(run['rps']):>12.0f}{int(run['p50_us'])/1000:>10.3f}{int(run['p90_us'])/1000:>10.3f}{int(run['p99_us'])/1000:>10.3f}{errors:>8}{cpu:>15}")
print()
for kind in ["plain", "stream"]:
    direct, proxy = runs[f"direct-{kind}"], runs[f"proxy-{kind}"]
    ratio = float(proxy["rps"]) / float(direct["rps"])
    added = (int(proxy["p50_us"]) - int(direct["p50_us"])) / 1000
    print(f"{kind:<7} through Switchyard: {float(proxy['rps']):.0f} requests/s = {ratio:.0%} of direct; p50 added {added:.3f} ms")
PY
sleep 1
METERED=$(curl -fsS -H "Authorization: Bearer $SWITCHYARD_ADMIN_TOKEN" "$SWITCHYARD_URL/admin/v1/usage?group_by=model" | python3 -c 'import json,sys; print(sum(r["requests"] for r in json.load(sys.stdin)["data"]))')
echo "usage events metered in the ledger during the runs: $METERED"
