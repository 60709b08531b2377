#!/usr/bin/env bash
# test.sh [--unit|--smoke] [TARGET...]: for each target named (default: every row of
# cross/targets) run the crate's unit tests (`--lib`) and the binary's command-line tests
# (`--test cli`, which start the target binary through the same runner) under that target's
# qemu as cargo's runner, then smoke.sh on its release binary in dist/. --unit or --smoke runs
# only that half. The other integration tests under tests/ need root and network namespaces,
# so they are not run here. Keeps going past a failed target; ends with a summary and exits non-zero on any failure.
set -euo pipefail
# shellcheck source=cross/lib.sh
. "$(dirname "$0")/lib.sh"

unit=1 smoke=1
case ${1:-} in
--unit) smoke=0 && shift ;;
--smoke) unit=0 && shift ;;
esac
mapfile -t targets < <(select_targets "$@")
mkdir -p "$CARGO_TARGET_DIR/logs"

summary=()
failed=0
for t in "${targets[@]}"; do
    load "$t"
    units=- smoked=-
    if [ $unit = 1 ]; then
        log=$CARGO_TARGET_DIR/logs/$t-test.log
        echo "== $t: unit and cli tests under ${T_QEMU}${T_CPU:+ -cpu $T_CPU} (log $log)"
        std=()
        # Tests need std with unwinding (the harness catches each test's panic), so a target
        # without a prebuilt std gets its own debug std, with default features.
        [ "$T_STD" = build ] && std=(-Zbuild-std)
        vars=(RUSTFLAGS="$(rustflags test)")
        # NETHEAL_CROSS_RUNNER tells the few tests that read kernel state back which answers
        # qemu-user cannot translate (e.g. getsockopt ICMP_FILTER) that they are emulated.
        [ -z "$(runner)" ] || vars+=("$(runner_var)=$(runner)" "NETHEAL_CROSS_RUNNER=$(runner)")
        rc=0
        # shellcheck disable=SC2046 # cargo_cmd is words by design
        env "${vars[@]}" $(cargo_cmd test) \
            --manifest-path "$ROOT/Cargo.toml" --locked --target "$t" --lib --test cli --no-fail-fast "${std[@]}" \
            >"$log" 2>&1 || rc=$?
        # "test result: ok. 64 passed; 0 failed; ..." -> "64 passed, 0 failed"
        units=$(awk '/^test result:/ { p += $4; f += $6 } END { if (NR && p + f) printf "%d passed, %d failed", p, f }' "$log")
        if [ $rc -ne 0 ]; then
            if grep -q '^failures:$' "$log"; then
                # The harness's first "failures:" block holds each failed test's output.
                awk '/^failures:$/ { n++ } n == 1' "$log" | head -n 60 >&2
            else
                tail -n 30 "$log" >&2 # did not build, or the runner itself failed
            fi
            echo "!! $t: unit tests failed (exit $rc)" >&2
            units="FAILED${units:+ ($units)}"
            failed=1
        else
            echo "   $units"
        fi
    fi
    if [ $smoke = 1 ]; then
        if "$CROSS_DIR/smoke.sh" "$t"; then smoked=ok; else smoked=FAILED && failed=1; fi
    fi
    summary+=("$(printf '%-32s %-30s %s' "$t" "${units:--}" "$smoked")")
done

echo
printf '%-32s %-30s %s\n' target "unit tests under qemu" smoke
printf '%s\n' "${summary[@]}"
exit $failed
