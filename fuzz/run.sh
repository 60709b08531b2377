#!/bin/sh
# fuzz/run.sh SECONDS JOBS TARGET...: runs each built fuzz target for SECONDS, JOBS at a time,
# and prints one line per target: executions, rate, corpus size. Exits 1 if any target found
# a crash (its log tail and saved input are shown). Called by `make fuzz` (mk/fuzz.mk), which
# builds the targets first; FUZZ_NICE prefixes each run (e.g. "nice -n 19").
set -eu
cd "$(dirname "$0")"
secs=$1 jobs=$2
shift 2
host=$(rustc +nightly -vV | sed -n 's/^host: //p')
bin=target/$host/release
logs=target/fuzz-logs
mkdir -p "$logs"

one() {
    t=$1
    mkdir -p "corpus/$t" "artifacts/$t"
    dict=
    [ -f "dict/$t.dict" ] && dict="-dict=dict/$t.dict"
    # shellcheck disable=SC2086 # FUZZ_NICE and dict are word lists, empty or not
    if ${FUZZ_NICE:-} "$bin/$t" "corpus/$t" "seeds/$t" $dict -max_total_time="$secs" \
        -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 -artifact_prefix="artifacts/$t/" \
        >"$logs/$t.log" 2>&1; then
        echo ok >"$logs/$t.rc"
    else
        echo failed >"$logs/$t.rc"
    fi
}

if [ "${1:-}" = --one ]; then
    one "$2"
    exit 0
fi
for t in "$@"; do
    [ -x "$bin/$t" ] || { echo "fuzz: $bin/$t not built (make fuzz-build)" >&2; exit 2; }
    rm -f "$logs/$t.rc"
done
printf '%s\n' "$@" | xargs -P "$jobs" -I{} sh "$(pwd)/run.sh" "$secs" "$jobs" --one {}

bad=0
printf '%-16s %14s %12s %8s  %s\n' target executions per-second corpus result
for t in "$@"; do
    log=$logs/$t.log
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    units=$(find "corpus/$t" -type f | wc -l)
    rc=$(cat "$logs/$t.rc" 2>/dev/null || echo failed)
    printf '%-16s %14s %12s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "$units" "$rc"
    if [ "$rc" != ok ]; then
        bad=1
        echo "---- $t: $log (last lines)" >&2
        tail -n 30 "$log" >&2
    fi
done
exit "$bad"
