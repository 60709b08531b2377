# shellcheck shell=bash
# packaging/tests/lib.sh: sourced by each packaging test. check/need/expect helpers that
# append to the runner's result file; tools missing are a skip, or a failure with CI=true.
# shellcheck source=cross/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../cross/lib.sh"
# shellcheck source=packaging/lib.sh
. "$ROOT/packaging/lib.sh"

# Used by the tests that source this file.
# shellcheck disable=SC2034
TARGET=${1:-x86_64-unknown-linux-musl}
# shellcheck disable=SC2034
VERSION=$(version)
RESULTS=${RESULTS:-/dev/null}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# Every artifact a test builds goes to its own directory, never to dist/release.
export RELEASE_DIR=$T/release
# shellcheck disable=SC2034
RELEASE=$RELEASE_DIR
NAME=${0##*/}
NAME=${NAME%.sh}

pass() {
    echo "ok   $NAME: $*"
    echo pass >>"$RESULTS"
}
fail() {
    echo "FAIL $NAME: $*" >&2
    echo fail >>"$RESULTS"
}
skip() {
    if [ "${CI:-}" = true ]; then
        fail "$* (CI=true: a skip is a failure)"
    else
        echo "skip $NAME: $*"
        echo skip >>"$RESULTS"
    fi
}
# check DESCRIPTION COMMAND...: pass if COMMAND succeeds, else fail with its output.
check() {
    local what=$1 out
    shift
    if out=$("$@" 2>&1); then pass "$what"; else
        fail "$what"
        printf '%s\n' "$out" | tail -n 30 | sed 's/^/     /' >&2
    fi
}
# need TOOL...: true when all are installed; otherwise skip (fail in CI) and false.
need() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || {
            skip "$t not installed"
            return 1
        }
    done
}
# root_only: true as root; otherwise skip (fail in CI) and false.
root_only() {
    [ "$(id -u)" = 0 ] && return 0
    skip "needs root"
    return 1
}
