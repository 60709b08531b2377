#!/usr/bin/env bash
# smoke.sh TARGET: run that target's release binary from dist/ under its qemu and check the
# three things a user tries first: --version names this exact target and version, --help
# prints usage, and a bad option value is a usage error (exit 2, message on stderr). None of
# them needs root or a network, so they run anywhere qemu-user does.
set -euo pipefail
# shellcheck source=cross/lib.sh
. "$(dirname "$0")/lib.sh"

[ $# -eq 1 ] || die "usage: $0 TARGET"
t=$(select_targets "$1")
load "$t"
VERSION=$(version)
bin=$(artifact "$t")
[ -x "$bin" ] || die "$bin: missing; run cross/build.sh $t first"
read -ra run <<<"$(runner)"

out=$(mktemp) err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
fails=0

# check NAME WANT_EXIT ARGS...: run the binary, compare its exit status; leaves output in
# $out and $err for the caller's content checks.
check() {
    local name=$1 want=$2 rc=0
    shift 2
    timeout 60 "${run[@]}" "$bin" "$@" >"$out" 2>"$err" || rc=$?
    if [ "$rc" -ne "$want" ]; then
        echo "!! $t: $name: exit $rc, want $want" >&2
        sed 's/^/   | /' "$err" >&2
        fails=$((fails + 1))
        return 1
    fi
}
# expect NAME FILE PATTERN: the output FILE holds PATTERN (a fixed string).
expect() {
    grep -qF -- "$3" "$2" && return
    echo "!! $t: $1: output lacks '$3':" >&2
    sed 's/^/   | /' "$2" >&2
    fails=$((fails + 1))
}

verline=
if check --version 0 --version; then
    verline=$(head -n 1 "$out")
    expect --version "$out" "netheal $VERSION "
    # The triple ends at a comma or blank; -F alone would let "arm-..." match inside "xarm-...".
    grep -qE "target $t([ ,)]|\$)" "$out" || expect --version "$out" "target $t,"
fi
if check --help 0 --help; then
    expect --help "$out" "Usage:"
fi
if check "usage error" 2 --interval 10x eth0; then
    [ -s "$err" ] || { echo "!! $t: usage error: nothing on stderr" >&2; fails=$((fails + 1)); }
fi

[ $fails -eq 0 ] || exit 1
echo "   smoke ok: $verline"
