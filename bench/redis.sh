#!/usr/bin/env bash
# Benchmark (not a test): what a Redis round trip and a Redis-backed admission cost,
# measured in process by the redis-bench executable (bench/RedisBench) against a
# redis-server of its own:
#   - RedisAdmission.admit + settle, one caller and several concurrent callers;
#   - an EVALSHA round trip through RedisClient (blocking hiredis on a thread pool) and
#     through a non-blocking SwiftNIO channel prototype (hiredis formatter and reader),
#     one caller (p50/p90/p99) and several (throughput).
# Progress goes to stderr, figures to stdout.
#
#   bench/redis.sh                                     # 20000 calls per run, 5 rounds
#   CALLS=50000 ROUNDS=7 CONCURRENCY=1,4,16,64 POOL_SIZE=4 bench/redis.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"

CALLS="${CALLS:-20000}"
ROUNDS="${ROUNDS:-5}"
CONCURRENCY="${CONCURRENCY:-1,4,16,64}"
POOL_SIZE="${POOL_SIZE:-4}"
WORK="$(mktemp -d /tmp/switchyard-redis-bench.XXXXXX)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

scripts/install-deps.sh >&2
echo "==> building redis-bench (release)" >&2
if ! swift build -c release --scratch-path .build-release --product redis-bench >"$WORK/build.log" 2>&1; then
    grep -E "error:" -A3 "$WORK/build.log" | head -n 40 >&2 || tail -n 40 "$WORK/build.log" >&2
    echo "error: the release build failed" >&2
    exit 1
fi
tail -n 1 "$WORK/build.log" >&2
BIN="$(swift build -c release --scratch-path .build-release --show-bin-path)/redis-bench"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
for _ in $(seq 1 200); do
    [[ $(redis-cli -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]] && break
    sleep 0.05
done
[[ $(redis-cli -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]] || { echo "error: redis-server did not start" >&2; exit 1; }

echo "==> redis-bench: $CALLS calls per run, $ROUNDS rounds, concurrency $CONCURRENCY" >&2
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
"$BIN" --port "$REDIS_PORT" --calls "$CALLS" --rounds "$ROUNDS" --concurrency "$CONCURRENCY" --pool-size "$POOL_SIZE"

echo "machine: $(nproc) cores; load average (1, 5, 15 min) before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"

kill "$REDIS_PID"
wait "$REDIS_PID" 2>/dev/null || true
