#!/usr/bin/env bash
# Benchmark (not a test): what an engine pool's scheduler costs per request (target: under
# 10 us of CPU on the uncontended path), measured in process by the scheduler-bench
# executable (bench/SchedulerBench, release build), through EnginePool's public API only:
#   - uncontended: tryAcquire + release with a slot always free, --scheduling contract
#     (the admission queue's bookkeeping) and fifo (replica placement only), one thread and
#     two threads sharing the pool; and `await acquire` + release, the proxy's call;
#   - contended: WAITERS tasks on SLOTS slots, each holding its slot across a Task.yield(),
#     so that nearly every acquisition queues and is granted by a release; beside it the
#     same tasks on a plain FIFO semaphore that waits the way EnginePool does (task group,
#     cancellation handler, continuation), and the same tasks only yielding.
# bench/SchedulerBench is a package of its own (the root package exports no library):
# it compiles Sources/Pools through symlinks. Progress goes to stderr, figures to stdout.
#
#   bench/scheduler.sh                                  # 2,000,000 per uncontended run, 5 rounds
#   ITERATIONS=500000 HANDOFFS=100000 ROUNDS=3 bench/scheduler.sh
#   WAITERS=256 SLOTS=8 bench/scheduler.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh

ITERATIONS="${ITERATIONS:-2000000}"
HANDOFFS="${HANDOFFS:-200000}"
ROUNDS="${ROUNDS:-5}"
SLOTS="${SLOTS:-4}"
WAITERS="${WAITERS:-64}"
bench_workspace scheduler-bench

scripts/install-deps.sh >&2
echo "==> building scheduler-bench (release)" >&2
if ! swift build -c release --package-path bench/SchedulerBench --product scheduler-bench >"$WORK/build.log" 2>&1; then
    grep -E "error:" -A3 "$WORK/build.log" | head -n 40 >&2 || tail -n 40 "$WORK/build.log" >&2
    echo "error: the release build failed" >&2
    exit 1
fi
tail -n 1 "$WORK/build.log" >&2
BIN="$(swift build -c release --package-path bench/SchedulerBench --show-bin-path)/scheduler-bench"

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
"$BIN" --iterations "$ITERATIONS" --handoffs "$HANDOFFS" --rounds "$ROUNDS" --slots "$SLOTS" --waiters "$WAITERS"
echo "machine: $(nproc) cores; load average (1, 5, 15 min) before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
