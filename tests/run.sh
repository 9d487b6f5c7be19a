#!/usr/bin/env bash
# Runs every test of ustack and ends with one line: "N passed, N failed, N skipped".
#   unit tests        build/tests/test_*         (exit 0 = pass)
#   sanitizer run     build/asan/tests/test_*    (ASan + UBSan)
#   fuzzers           build/fuzz/fuzz_*          (FUZZ_SECONDS each, default 10)
#   interop tests     tests/interop/*.sh         (exit 0 pass, 77 skipped, else fail; need root)
# Usage: tests/run.sh [PATTERN]   runs only tests whose name contains PATTERN.
set -u
cd "$(dirname "$0")/.."
B=${B:-build}
LOGS=$B/test-logs
mkdir -p "$LOGS"
FUZZ_SECONDS=${FUZZ_SECONDS:-10}
only=${1:-}
passed=0 failed=0 skipped=0
failures=()

run_one() {   # name timeout_s command...
    local name=$1 limit=$2
    shift 2
    [[ -n $only && $name != *"$only"* ]] && return
    local log="$LOGS/${name//\//_}.log" start=$SECONDS rc
    timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1
    rc=$?
    local took=$((SECONDS - start))
    if [[ $rc -eq 0 ]]; then
        passed=$((passed + 1)); printf 'PASS  %-40s %4ss\n' "$name" "$took"
    elif [[ $rc -eq 77 ]]; then
        skipped=$((skipped + 1)); printf 'SKIP  %-40s %s\n' "$name" "$(grep -m1 -i skip "$log")"
    else
        failed=$((failed + 1)); failures+=("$name")
        printf 'FAIL  %-40s %4ss (exit %s, log %s)\n' "$name" "$took" "$rc" "$log"
        tail -n 25 "$log" | sed 's/^/      | /'
    fi
}

for t in "$B"/tests/test_*; do
    [[ -x $t ]] && run_one "unit/$(basename "$t")" 300 "$t"
done
for t in "$B"/asan/tests/test_*; do
    [[ -x $t ]] && run_one "asan/$(basename "$t")" 600 env ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 "$t"
done
for f in "$B"/fuzz/fuzz_*; do
    [[ -x $f ]] || continue
    name=$(basename "$f")
    corpus=$(mktemp -d)
    [[ -d tests/corpus/$name ]] && cp -r "tests/corpus/$name/." "$corpus/"
    run_one "fuzz/$name" $((FUZZ_SECONDS + 120)) "$f" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 \
        -print_final_stats=1 "$corpus"
    rm -rf "$corpus"
done
for s in tests/interop/*.sh; do
    [[ -f $s ]] && run_one "interop/$(basename "$s" .sh)" 900 bash "$s"
done

if ((${#failures[@]})); then
    echo "failed: ${failures[*]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[[ $failed -eq 0 ]]
