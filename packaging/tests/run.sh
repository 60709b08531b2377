#!/usr/bin/env bash
# packaging/tests/run.sh [TARGET]: every packaging test (packaging/tests/*.sh but lib.sh and
# this file) against TARGET's release binary (default x86_64-unknown-linux-musl, which
# cross/build.sh must have made), then one closing line "N passed, N failed, N skipped".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for t in "$here"/*.sh; do
    case ${t##*/} in lib.sh | run.sh) continue ;; esac
    start=$(date +%s)
    if ! RESULTS=$results bash "$t" "${1:-x86_64-unknown-linux-musl}"; then
        echo "FAIL ${t##*/}: exited non-zero" >&2
        echo fail >>"$results"
    fi
    echo "     (${t##*/}: $(($(date +%s) - start)) s)"
done
p=$(grep -c '^pass$' "$results")
f=$(grep -c '^fail$' "$results")
s=$(grep -c '^skip$' "$results")
echo "packaging: $p passed, $f failed, $s skipped"
[ "$f" -eq 0 ] && [ "$p" -gt 0 ]
