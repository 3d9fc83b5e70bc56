#!/usr/bin/env bash
# Starts a Switchyard demo on this machine: installs what is missing, builds a release
# binary, starts the engine simulator (a stand-in for a GPU engine) and the proxy on the
# default providers.json with an embedded SQLite database, creates a demo tenant and
# prints its key and a working curl command.
#
#   scripts/demo.sh          start (or restart) the demo
#   scripts/demo.sh stop     stop it
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"

PROXY_PORT="${SWITCHYARD_PORT:-8080}"
ENGINE_PORT=8001
STATE=var/demo
mkdir -p "$STATE"

stop_demo() {
    for name in switchyard sim-engine; do
        if [[ -f "$STATE/$name.pid" ]]; then
            kill "$(cat "$STATE/$name.pid")" 2>/dev/null || true
            rm -f "$STATE/$name.pid"
        fi
    done
}

if [[ "${1:-}" == "stop" ]]; then
    stop_demo
    echo "Switchyard demo stopped."
    exit 0
fi

scripts/install-deps.sh
echo "==> building Switchyard (release; the first build takes several minutes)"
swift build -c release --scratch-path .build-release --product switchyard 2>&1 | tail -n 5
BIN="$(swift build -c release --scratch-path .build-release --show-bin-path)/switchyard"

stop_demo
wait_for() {
    for _ in $(seq 1 100); do
        curl -fsS "$1" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "error: $1 did not come up; see $STATE/*.log" >&2
    exit 1
}

echo "==> starting the engine simulator on :$ENGINE_PORT"
nohup "$BIN" sim-engine --port "$ENGINE_PORT" --ttft-ms 150 --tokens-per-second 40 --slots 8 >"$STATE/sim-engine.log" 2>&1 &
echo $! >"$STATE/sim-engine.pid"
wait_for "http://127.0.0.1:$ENGINE_PORT/health"

echo "==> starting switchyard serve on :$PROXY_PORT"
nohup "$BIN" serve --config providers.json --db var/switchyard.sqlite --port "$PROXY_PORT" >"$STATE/switchyard.log" 2>&1 &
echo $! >"$STATE/switchyard.pid"
wait_for "http://127.0.0.1:$PROXY_PORT/health"

export SWITCHYARD_URL="http://127.0.0.1:$PROXY_PORT"
export SWITCHYARD_ADMIN_TOKEN="${SWITCHYARD_ADMIN_TOKEN:-$(cat var/switchyard.admin-token)}"
TENANT=$("$BIN" tenant list --json | python3 -c 'import json,sys; print(next((t["id"] for t in json.load(sys.stdin)["data"] if t["name"] == "demo"), ""))')
if [[ -z "$TENANT" ]]; then
    TENANT=$("$BIN" tenant create --name demo --tier enterprise --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
fi
KEY=$("$BIN" key create --tenant "$TENANT" --name "demo-$(date +%s)" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')

cat <<TXT

Switchyard is running at $SWITCHYARD_URL (logs in $STATE/, database var/switchyard.sqlite).

  Demo tenant: $TENANT
  Tenant key:  $KEY      (shown once)
  Admin token: in var/switchyard.admin-token (mode 0600)

Try it:

  curl $SWITCHYARD_URL/v1/chat/completions \\
    -H "Authorization: Bearer $KEY" -H "Content-Type: application/json" \\
    -d '{"model":"chat-small","messages":[{"role":"user","content":"Hello, Switchyard"}],"max_tokens":20}'

  SWITCHYARD_ADMIN_TOKEN=\$(cat var/switchyard.admin-token) $BIN usage --tenant $TENANT

To serve chat-large too, give the openai provider a key (it is stored encrypted):

  echo "\$OPENAI_API_KEY" | SWITCHYARD_ADMIN_TOKEN=\$(cat var/switchyard.admin-token) $BIN provider-key add --provider openai --label my-account

Stop it with: scripts/demo.sh stop
TXT
