#!/usr/bin/env bash
# Benchmark (not a test): metering.
#   1. ledger ingest: usage events per second into the ledger (rollups, budget totals,
#      one transaction per batch), and the cost of an event's wire JSON (spool, stream);
#   2. the allocation report over a ledger of 1,000,000 events;
#   3. the request path with the spool on and off (bench/run.sh twice, same settings).
# Progress goes to stderr, figures to stdout.
#
#   bench/metering.sh
#   EVENTS=500000 REPORT_EVENTS=1000000 DURATION=8 bench/metering.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh

EVENTS="${EVENTS:-200000}"
REPORT_EVENTS="${REPORT_EVENTS:-1000000}"
bench_workspace ledger-bench
build_release ledger-bench
LEDGER_BENCH="$BIN"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "==> ledger-bench: $EVENTS events ingested, a report over $REPORT_EVENTS" >&2
"$LEDGER_BENCH" --db "$WORK/ledger.sqlite" --events "$EVENTS" --report-events "$REPORT_EVENTS"
echo "machine: $(nproc) cores; load average (1, 5, 15 min) before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "==> the request path, spool on (the default)"
DURATION="${DURATION:-8}" bench/run.sh | tail -n 4
echo
echo "==> the request path, spool off (--spool off)"
SERVE_ARGS="--spool off" DURATION="${DURATION:-8}" bench/run.sh | tail -n 4
