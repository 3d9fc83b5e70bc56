#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ (release, with AddressSanitizer) and runs each
# for a bounded time, starting from the seeds in fuzz/corpus/<target>/.
#
#   scripts/fuzz.sh                 a short run per target, seeded (-seed=1), for CI
#   scripts/fuzz.sh --time 60       60 s per target, random seed; the corpus it grows is
#                                   kept in .build-fuzz/corpus/<target>/ for the next run
#   scripts/fuzz.sh [--time N] FuzzSSEParser FuzzJSONScanner   only these targets
#   scripts/fuzz.sh --skip-build    run what was built last
#
# Prints executions, coverage and time per target, and exits non-zero if any target
# crashed, broke an invariant, hung or ran out of memory. The failing input is written to
# fuzz/artifacts/<target>/; replay it with .build-fuzz/release/<target> <file>.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"

scratch=.build-fuzz
targets_all=(FuzzRequestHead FuzzJSONScanner FuzzSSEParser FuzzOpenAIStream FuzzAnthropicStream FuzzGeminiStream FuzzResponses)
seconds=10
ci=1
build=1
targets=()
while (($#)); do
    case "$1" in
        --time) seconds="$2"; ci=0; shift 2 ;;
        --skip-build) build=0; shift ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        -*) echo "unknown option: $1" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done
((${#targets[@]})) || targets=("${targets_all[@]}")

if ((build)); then
    echo "==> building the fuzz targets (release, fuzzer + address sanitizer) in $scratch"
    start=$SECONDS
    # `--sanitize=fuzzer` lets SwiftPM link libFuzzer's main; the combined `-sanitize=`
    # is what instruments: swiftc keeps only the last `-sanitize=` it is given.
    # gold's warnings about ASan's local symbols are noise.
    if ! swift build --package-path fuzz --scratch-path "$scratch" -c release \
        --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address 2>&1 | { grep -v "Cannot export local symbol" || true; }; then
        echo "error: the fuzz build failed" >&2
        exit 1
    fi
    echo "    built in $((SECONDS - start)) s"
fi
bin="$scratch/release"

# The Swift runtime's crash backtracer reads the stack in a way AddressSanitizer reports
# as an error of its own; libFuzzer and ASan print the stack instead.
export SWIFT_BACKTRACE=enable=no
export ASAN_SYMBOLIZER_PATH="${ASAN_SYMBOLIZER_PATH:-/opt/swift/usr/bin/llvm-symbolizer}"

mkdir -p "$scratch/logs"
failed=()
summary=()
for target in "${targets[@]}"; do
    [[ -x "$bin/$target" ]] || { echo "error: no fuzz target $target in $bin" >&2; exit 2; }
    seeds="fuzz/corpus/$target"
    artifacts="fuzz/artifacts/$target"
    mkdir -p "$artifacts"
    # New units go to a working corpus, never into the committed seeds.
    if ((ci)); then
        work="$scratch/ci-corpus/$target"
        rm -rf "$work"
        options=(-seed=1)
    else
        work="$scratch/corpus/$target"
        options=()
    fi
    mkdir -p "$work"
    log="$scratch/logs/$target.log"
    echo "==> $target: ${seconds} s"
    start=$SECONDS
    status=0
    "$bin/$target" "${options[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=4096 \
        -dict=fuzz/json-sse.dict -print_final_stats=1 -artifact_prefix="$artifacts/" \
        "$work" "$seeds" >"$log" 2>&1 || status=$?
    elapsed=$((SECONDS - start))
    # A target that fails early prints no statistics: nothing found is no error here.
    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1 || true)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1 || true)
    coverage=$( (grep -E '^#[0-9]+' "$log" || true) | grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*/[0-9a-zA-Z]*' | tail -n 1 || true)
    line=$(printf '%-20s %s  executions %-9s exec/s %-7s %-36s time %3d s' \
        "$target" "$( ((status)) && echo FAIL || echo ok  )" "${executions:-?}" "${rate:-?}" "${coverage:-cov: ?}" "$elapsed")
    echo "    $line"
    summary+=("$line")
    if ((status)); then
        failed+=("$target")
        echo "    exit status $status; the end of $log:" >&2
        grep -v '^#[0-9]' "$log" | grep -E -m 30 'invariant|Fatal error|ERROR|SUMMARY|deadly|timeout|out-of-memory|artifact|Test unit' >&2 || tail -n 30 "$log" >&2
    fi
done

echo "==> fuzz summary ($( ((ci)) && echo "CI run, -seed=1" || echo "long run" ), ${seconds} s per target)"
printf '    %s\n' "${summary[@]}"
if ((${#failed[@]})); then
    echo "FAILED: ${failed[*]} (inputs in fuzz/artifacts/, logs in $scratch/logs/)" >&2
    exit 1
fi
