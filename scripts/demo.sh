#!/usr/bin/env bash
# Starts a Switchyard demo on this machine: installs what is missing, builds a release
# binary, starts the engine simulator (a stand-in for a GPU engine) and the proxy on the
# default providers.json with an embedded SQLite database, creates a demo tenant and
# prints its key and commands that work from any directory.
#
#   scripts/demo.sh          start (or restart) the demo
#   scripts/demo.sh stop     stop it
#
# Environment (each optional):
#   SWITCHYARD_PORT          the proxy's port (8080)
#   SWITCHYARD_ENGINE_PORT   the engine simulator's port (8001, where providers.json expects it)
#   SWITCHYARD_DEMO_DIR      where the database, admin token, master key and logs live (var/)
#   SWITCHYARD_DEMO_BIN      a switchyard binary to run instead of installing and building one
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd -P)"
export PATH="/opt/swift/usr/bin:$PATH"

PROXY_PORT="${SWITCHYARD_PORT:-8080}"
ENGINE_PORT="${SWITCHYARD_ENGINE_PORT:-8001}"
mkdir -p "${SWITCHYARD_DEMO_DIR:-var}/demo"
DIR="$(cd "${SWITCHYARD_DEMO_DIR:-var}" && pwd -P)"
STATE="$DIR/demo"
DB="$DIR/switchyard.sqlite"
TOKEN_FILE="$DIR/switchyard.admin-token"

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

if [[ -n "${SWITCHYARD_DEMO_BIN:-}" ]]; then
    BIN="$(cd "$(dirname "$SWITCHYARD_DEMO_BIN")" && pwd -P)/$(basename "$SWITCHYARD_DEMO_BIN")"
else
    scripts/install-deps.sh
    echo "==> building Switchyard (release; the first build takes several minutes)"
    swift build -c release --scratch-path .build-release --product switchyard 2>&1 | tail -n 5
    BIN="$(swift build -c release --scratch-path .build-release --show-bin-path)/switchyard"
fi

stop_demo
wait_for() {
    for _ in $(seq 1 100); do
        curl -fsS "$1" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "error: $1 did not come up; see $STATE/*.log" >&2
    exit 1
}

CONFIG="$ROOT/providers.json"
if [[ "$ENGINE_PORT" != 8001 ]]; then
    # The shipped configuration expects the engine on 8001.
    CONFIG="$STATE/providers.json"
    python3 - "$ROOT/providers.json" "$CONFIG" "$ENGINE_PORT" <<'PY'
import json, sys
source, target, port = sys.argv[1:]
config = json.load(open(source))
config.pop("$schema", None)
for pool in config["engine_pools"]:
    for replica in pool["replicas"]:
        replica["url"] = f"http://127.0.0.1:{port}/v1"
json.dump(config, open(target, "w"), indent=2)
PY
fi

echo "==> starting the engine simulator on :$ENGINE_PORT"
nohup "$BIN" sim-engine --port "$ENGINE_PORT" --ttft-ms 150 --tokens-per-second 40 --slots 8 >"$STATE/sim-engine.log" 2>&1 &
echo $! >"$STATE/sim-engine.pid"
wait_for "http://127.0.0.1:$ENGINE_PORT/health"

echo "==> starting switchyard serve on :$PROXY_PORT"
nohup "$BIN" serve --config "$CONFIG" --db "$DB" --port "$PROXY_PORT" >"$STATE/switchyard.log" 2>&1 &
echo $! >"$STATE/switchyard.pid"
wait_for "http://127.0.0.1:$PROXY_PORT/health"

export SWITCHYARD_URL="http://127.0.0.1:$PROXY_PORT"
if [[ -n "${SWITCHYARD_ADMIN_TOKEN:-}" ]]; then
    # serve took the token from the environment and wrote no file.
    TOKEN_NOTE="SWITCHYARD_ADMIN_TOKEN, from your environment (the admin commands below need it set)"
    ADMIN_ARGS="--server $SWITCHYARD_URL"
else
    export SWITCHYARD_ADMIN_TOKEN="$(cat "$TOKEN_FILE")"
    TOKEN_NOTE="in $TOKEN_FILE (mode 0600)"
    ADMIN_ARGS="--server $SWITCHYARD_URL --token-file $(printf %q "$TOKEN_FILE")"
fi
TENANT=$("$BIN" tenant list --json | python3 -c 'import json,sys; print(next((t["id"] for t in json.load(sys.stdin)["data"] if t["name"] == "demo"), ""))')
if [[ -z "$TENANT" ]]; then
    TENANT=$("$BIN" tenant create --name demo --tier enterprise --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
fi
# The demo tenant's org admin: invited with the admin token, the invite accepted with a
# password kept beside the database; the admin token makes no tenant keys, the user does.
DEMO_EMAIL="demo@example.com"
DEMO_PASSWORD_FILE="$STATE/demo-user.password"
if [[ ! -s "$DEMO_PASSWORD_FILE" ]]; then
    (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(18))' >"$DEMO_PASSWORD_FILE")
fi
DEMO_PASSWORD="$(cat "$DEMO_PASSWORD_FILE")"
SESSION=$(python3 - "$SWITCHYARD_URL" "$SWITCHYARD_ADMIN_TOKEN" "$TENANT" "$DEMO_EMAIL" "$DEMO_PASSWORD" <<'PY'
import json, sys, urllib.error, urllib.request
url, admin, tenant, email, password = sys.argv[1:]
def call(method, path, body, token=None):
    request = urllib.request.Request(url + path, data=json.dumps(body).encode(), method=method,
                                     headers={"content-type": "application/json"})
    if token:
        request.add_header("authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)
status, session = call("POST", "/auth/login", {"email": email, "password": password})
if status != 200:
    status, invite = call("POST", f"/admin/v1/tenants/{tenant}/invites", {"email": email, "role": "org_admin"}, admin)
    if status != 201:
        sys.exit(f"inviting the demo user failed: {invite}")
    status, session = call("POST", f"/auth/invites/{invite['token']}/accept", {"name": "Demo Admin", "password": password})
    if status != 201:
        sys.exit(f"accepting the demo invite failed: {session}")
print(session["token"])
PY
)
KEY=$("$BIN" key create --tenant "$TENANT" --name "demo-$(date +%s)" --json --token "$SESSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')

QBIN="$(printf %q "$BIN")"
STOP="$(printf %q "$ROOT/scripts/demo.sh") stop"
if [[ -n "${SWITCHYARD_DEMO_DIR:-}" ]]; then
    STOP="SWITCHYARD_DEMO_DIR=$(printf %q "$DIR") $STOP"
fi

cat <<TXT

Switchyard is running at $SWITCHYARD_URL (logs in $STATE/, database $DB).

  Portal:      $SWITCHYARD_URL/portal/   (keys, usage, budget, users, audit, hosted chat)
               sign in as $DEMO_EMAIL, password $DEMO_PASSWORD (kept in $DEMO_PASSWORD_FILE)

  Demo tenant: demo ($TENANT)
  Tenant key:  $KEY      (shown once)
  Demo user:   $DEMO_EMAIL, password in $DEMO_PASSWORD_FILE (org admin of demo)
  Admin token: $TOKEN_NOTE

Try it (from any directory):

  curl $SWITCHYARD_URL/v1/chat/completions \\
    -H "Authorization: Bearer $KEY" -H "Content-Type: application/json" \\
    -d '{"model":"chat-small","messages":[{"role":"user","content":"Hello, Switchyard"}],"max_tokens":20}'

  $QBIN usage --tenant demo $ADMIN_ARGS
  $QBIN login --server $SWITCHYARD_URL --email $DEMO_EMAIL     # then: $QBIN whoami, key list --tenant demo

To serve chat-large too, give the openai provider a key (it is stored encrypted):

  echo "\$OPENAI_API_KEY" | $QBIN provider-key add --provider openai --label my-account $ADMIN_ARGS

Stop it with: $STOP
TXT
