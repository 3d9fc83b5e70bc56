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
source bench/common.sh

CALLS="${CALLS:-20000}"
ROUNDS="${ROUNDS:-5}"
CONCURRENCY="${CONCURRENCY:-1,4,16,64}"
POOL_SIZE="${POOL_SIZE:-4}"
bench_workspace redis-bench
build_release redis-bench
start_redis

echo "==> redis-bench: $CALLS calls per run, $ROUNDS rounds, concurrency $CONCURRENCY" >&2
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
"$BIN" --port "$REDIS_PORT" --calls "$CALLS" --rounds "$ROUNDS" --concurrency "$CONCURRENCY" --pool-size "$POOL_SIZE"

echo "machine: $(nproc) cores; load average (1, 5, 15 min) before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"

kill "$REDIS_PID"
wait "$REDIS_PID" 2>/dev/null || true
