#!/usr/bin/env bash
# sizes.sh [TARGET...]: the size table of the release binaries in dist/ (stripped: check-static
# refuses any that is not). Exits non-zero when a binary is missing, not static, or larger
# than its row's kib limit in cross/targets.
set -euo pipefail
# shellcheck source=cross/lib.sh
. "$(dirname "$0")/lib.sh"

mapfile -t targets < <(select_targets "$@")
VERSION=$(version)

bad=0
printf '%-32s %-7s %9s %8s %6s  %s\n' target static bytes KiB limit verdict
for t in "${targets[@]}"; do
    load "$t"
    f=$(artifact "$t")
    if [ ! -f "$f" ]; then
        printf '%-32s %-7s %9s %8s %6s  %s\n' "$t" - - - "$T_KIB" missing
        bad=1
        continue
    fi
    static=yes
    "$CROSS_DIR/check-static.sh" "$f" 2>/dev/null || static=no
    bytes=$(stat -c %s "$f")
    verdict=ok
    [ "$static" = yes ] || verdict="NOT STATIC"
    [ "$bytes" -le $((T_KIB * 1024)) ] || verdict="OVER LIMIT"
    [ "$verdict" = ok ] || bad=1
    printf '%-32s %-7s %9d %8s %6s  %s\n' "$t" "$static" "$bytes" \
        "$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1024 }')" "$T_KIB" "$verdict"
done
exit $bad
