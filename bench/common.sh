# Shared by the benchmark scripts (sourced, not run): the scratch folder, the release
# build, ports, and the redis-server and engine simulator they start. Progress goes to
# stderr so that stdout carries figures only.

export PATH="/opt/swift/usr/bin:$PATH"

# A scratch folder in $WORK, removed with every background job when the script exits.
bench_workspace() { # name
    WORK="$(mktemp -d "/tmp/switchyard-$1.XXXXXX")"
    trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
}

# Installs what the benchmarks need and builds `product` in release; sets $BIN.
# SWITCHYARD_BIN names an existing switchyard binary to use instead (to compare builds).
build_release() { # product
    if [[ $1 == switchyard && -n "${SWITCHYARD_BIN:-}" ]]; then
        BIN="$SWITCHYARD_BIN"
        echo "==> using $BIN" >&2
        return
    fi
    scripts/install-deps.sh >&2
    echo "==> building $1 (release)" >&2
    if ! swift build -c release --scratch-path .build-release --product "$1" >"$WORK/build.log" 2>&1; then
        grep -E "error:" -A3 "$WORK/build.log" | head -n 40 >&2 || tail -n 40 "$WORK/build.log" >&2
        echo "error: the release build failed" >&2
        exit 1
    fi
    tail -n 1 "$WORK/build.log" >&2
    BIN="$(swift build -c release --scratch-path .build-release --show-bin-path)/$1"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_for() { # url
    for _ in $(seq 1 200); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done
    echo "error: $1 not up" >&2
    exit 1
}

# A redis-server of its own on $REDIS_PORT (pid $REDIS_PID), answering before this returns.
start_redis() {
    REDIS_PORT=$(free_port)
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" >"$WORK/redis.log" 2>&1 &
    REDIS_PID=$!
    for _ in $(seq 1 200); do
        [[ $(redis-cli -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]] && return 0
        sleep 0.05
    done
    echo "error: redis-server did not start" >&2
    exit 1
}

# The unpaced engine simulator on $ENGINE_PORT, and $WORK/providers.json: the shipped
# configuration with its engine pool pointed at it and room for every connection.
start_engine() {
    ENGINE_PORT=$(free_port)
    "$BIN" sim-engine --port "$ENGINE_PORT" --ttft-ms 0 --tokens-per-second 0 --slots 4096 >"$WORK/sim.log" 2>&1 &
    wait_for "http://127.0.0.1:$ENGINE_PORT/health"
    python3 - "$ENGINE_PORT" >"$WORK/providers.json" <<'PY'
import json, sys
config = json.load(open("providers.json"))
for pool in config["engine_pools"]:
    for replica in pool["replicas"]:
        replica["url"] = f"http://127.0.0.1:{sys.argv[1]}/v1"
        replica["slots"] = 4096
print(json.dumps(config))
PY
}

# Prints a new tenant key of `tenant`, made as the tenant's org admin (the admin token makes
# no tenant keys): the first call for a tenant invites bench-<tenant>@example.com and
# accepts the invite. Needs $SWITCHYARD_URL and $SWITCHYARD_ADMIN_TOKEN.
# With "json" as the third argument it prints the key's whole JSON instead (id included).
tenant_key() { # tenant [name] [json]
    python3 - "$SWITCHYARD_URL" "$SWITCHYARD_ADMIN_TOKEN" "$1" "${2:-bench}" "${3:-}" <<'PY'
import json, secrets, sys, urllib.error, urllib.request
url, admin, tenant, name, form = sys.argv[1:]
def call(method, path, body, token):
    request = urllib.request.Request(url + path, data=json.dumps(body).encode(), method=method,
                                     headers={"content-type": "application/json", "authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)
status, invite = call("POST", f"/admin/v1/tenants/{tenant}/invites",
                      {"email": f"bench-{tenant}-{secrets.token_hex(4)}@example.com", "role": "org_admin"}, admin)
if status != 201:
    sys.exit(f"inviting the bench user failed: {invite}")
status, session = call("POST", f"/auth/invites/{invite['token']}/accept",
                       {"name": "Bench", "password": secrets.token_urlsafe(18)}, "")
if status != 201:
    sys.exit(f"accepting the bench invite failed: {session}")
status, key = call("POST", f"/admin/v1/tenants/{tenant}/keys", {"name": name}, session["token"])
if status != 201:
    sys.exit(f"creating the bench key failed: {key}")
print(json.dumps(key) if form == "json" else key["key"])
PY
}
