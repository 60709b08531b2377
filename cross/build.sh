#!/usr/bin/env bash
# build.sh [TARGET...]: static release binaries into dist/netheal-VERSION-TRIPLE for the
# targets named (default: every row of cross/targets), each checked static and stripped, then
# dist/SHA256SUMS and the size table. Keeps going past a failed target so one run shows every
# failure; exits non-zero if any target failed. Run cross/setup.sh with the same targets first.
set -euo pipefail
# shellcheck source=cross/lib.sh
. "$(dirname "$0")/lib.sh"

mapfile -t targets < <(select_targets "$@")
VERSION=$(version)
# The build date in --version comes from the commit, not the clock, so two builds of one
# commit are the same bytes (build.rs reads SOURCE_DATE_EPOCH).
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH
mkdir -p "$DIST" "$CARGO_TARGET_DIR/logs"

failed=()
for t in "${targets[@]}"; do
    load "$t"
    out=$(artifact "$t")
    log=$CARGO_TARGET_DIR/logs/$t-release.log
    echo "== $t: release build ($T_LINK, log $log)"
    rm -f "$out"
    # std is always rebuilt for release, even where rustup ships it: without std's
    # `backtrace` feature the binary loses ~300 KiB of symbolizer (gimli, addr2line,
    # miniz_oxide) that can do nothing in a stripped binary anyway (x86_64 at 0e9c1e6: 598
    # KiB with rustup's std, 290 KiB without). Panic messages with file:line stay.
    # panic_abort matches the release profile's panic = "abort".
    # shellcheck disable=SC2046 # cargo_cmd is words by design
    if RUSTFLAGS=$(rustflags release) $(cargo_cmd build) --manifest-path "$ROOT/Cargo.toml" \
        --release --locked --target "$t" --bin netheal \
        -Zbuild-std=std,panic_abort -Zbuild-std-features= >"$log" 2>&1 &&
        cp "$CARGO_TARGET_DIR/$t/release/netheal" "$out" &&
        "$CROSS_DIR/check-static.sh" "$out"; then
        echo "   $out"
    else
        tail -n 30 "$log" >&2
        echo "!! $t: release build failed" >&2
        rm -f "$out"
        failed+=("$t")
    fi
done

# Sums of every binary of this version in dist/, not only this run's, so a partial rebuild
# does not drop the others from the list.
(
    cd "$DIST"
    set -- netheal-"$VERSION"-*
    if [ -e "$1" ]; then sha256sum "$@" >SHA256SUMS; fi
)

sizes_ok=0
"$CROSS_DIR/sizes.sh" "${targets[@]}" || sizes_ok=$?
if [ ${#failed[@]} -gt 0 ]; then
    die "failed: ${failed[*]}"
fi
exit $sizes_ok
