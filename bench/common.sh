# Shared by the benchmark scripts (sourced, not run): the scratch folder, the release
# build, ports, and the redis-server and engine simulator they start. Progress goes to
# stderr so that stdout carries figures only.

export PATH="/opt/swift/usr/bin:$PATH"

# A scratch folder in $WORK, removed with every background job when the script exits.
bench_workspace() { # name
    WORK="$(mktemp -d "/tmp/switchyard-$1.XXXXXX")"
    trap 'kill $(jobs -p) 2>/dev/null || true; [[ -n "${KEEP_WORK:-}" ]] || rm -rf "$WORK"' EXIT
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

# nginx (Debian's nginx-light) and valgrind, for bench/run.sh.
install_bench_tools() {
    local missing=()
    command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
    command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
    [[ -z "${PERF:-}" ]] || command -v perf >/dev/null 2>&1 || missing+=(linux-perf)
    if ((${#missing[@]})); then
        echo "==> installing ${missing[*]}" >&2
        local sudo=""
        [[ $(id -u) -ne 0 ]] && sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    NGINX=$(command -v nginx || echo /usr/sbin/nginx)
}

# Runs an nginx of one worker with `server` as its one server block, in $WORK/nginx-<name>.
run_nginx() { # name server-block
    local prefix="$WORK/nginx-$1"
    mkdir -p "$prefix/logs"
    cat >"$prefix/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $prefix/nginx.pid;
error_log $prefix/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $prefix/body;
    proxy_temp_path $prefix/proxy;
    fastcgi_temp_path $prefix/fastcgi;
    uwsgi_temp_path $prefix/uwsgi;
    scgi_temp_path $prefix/scgi;
    keepalive_requests 1000000;
    $2
}
CONF
    "$NGINX" -p "$prefix" -c "$prefix/nginx.conf" >"$prefix/logs/stdout.log" 2>&1 &
}

# The fixed upstream on port $1: answers POST /whole/v1/chat/completions with one chat
# completion and /stream/v1/chat/completions with a 16-chunk stream, from memory.
start_fixed_upstream() { # port
    local block
    block=$(python3 - "$1" <<'PY'
import json, sys
port = sys.argv[1]
base = {"id": "chatcmpl-fixed", "created": 1700000000, "model": "bench-model"}
whole = dict(base, object="chat.completion", choices=[{"index": 0, "finish_reason": "stop",
             "message": {"role": "assistant", "content": " ".join(["token"] * 16)}}],
             usage={"prompt_tokens": 12, "completion_tokens": 16, "total_tokens": 28})
events = [dict(base, object="chat.completion.chunk", choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])]
events += [dict(base, object="chat.completion.chunk", choices=[{"index": 0, "delta": {"content": "token "}, "finish_reason": None}]) for _ in range(16)]
events += [dict(base, object="chat.completion.chunk", choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}])]
events += [dict(base, object="chat.completion.chunk", choices=[], usage={"prompt_tokens": 12, "completion_tokens": 16, "total_tokens": 28})]
stream = "".join(f"data: {json.dumps(event, separators=(',', ':'))}\n\n" for event in events) + "data: [DONE]\n\n"
def quoted(text): return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
print(f"""server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location = /whole/v1/chat/completions {{ default_type application/json; return 200 {quoted(json.dumps(whole, separators=(',', ':')))}; }}
        location = /stream/v1/chat/completions {{ default_type text/event-stream; return 200 {quoted(stream)}; }}
    }}""")
PY
)
    run_nginx upstream "$block"
    wait_for_post "http://127.0.0.1:$1/whole/v1/chat/completions"
}

# nginx as a reverse proxy on port $1 in front of the upstream on port $2, keep-alive both ways.
start_nginx_proxy() { # port upstream-port
    run_nginx proxy "upstream fixed { server 127.0.0.1:$2; keepalive 64; }
    server {
        listen 127.0.0.1:$1 reuseport backlog=4096;
        location / { proxy_pass http://fixed; proxy_http_version 1.1; proxy_set_header Connection \"\"; }
    }"
    wait_for_post "http://127.0.0.1:$1/whole/v1/chat/completions"
}

wait_for_post() { # url
    for _ in $(seq 1 200); do curl -fsS -X POST -d '{}' "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done
    echo "error: $1 not up" >&2
    exit 1
}
