#!/bin/sh
# make demo: a throw-away two-namespace lab in which netheal watches a veth, the link is broken
# on purpose, and netheal's log shows detection -> heal -> recovery live. Needs root and
# iproute2 only. Everything lives in two namespaces created here and deleted on exit; the only
# addresses used are 198.51.100.1 and .2 (TEST-NET-2) on a veth whose ends are both inside
# those namespaces.
# Usage: sh tests/demo.sh [path/to/netheal]
set -eu

BIN=${1:-target/release/netheal}
if [ "$(id -u)" -ne 0 ]; then
    echo "demo: needs root (it creates network namespaces)" >&2
    exit 1
fi
if ! command -v ip >/dev/null 2>&1; then
    echo "demo: needs ip from iproute2" >&2
    exit 1
fi
if [ ! -x "$BIN" ]; then
    echo "demo: $BIN not found or not executable (make release)" >&2
    exit 1
fi
case $BIN in
/*) ;;
*) BIN=$(pwd)/$BIN ;;
esac

P=nhdemo$$
HOST=${P}h
PEER=${P}p
IF=${P}a
PIF=${P}b
NH=

say() {
    printf '\n>>> %s\n' "$*"
}

cleanup() {
    trap - EXIT INT TERM
    if [ -n "$NH" ]; then
        kill "$NH" 2>/dev/null || :
        wait "$NH" 2>/dev/null || :
    fi
    for ns in "$HOST" "$PEER"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -9 "$pid" 2>/dev/null || :
        done
        ip netns del "$ns" 2>/dev/null || :
    done
    say "lab removed"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

link_is_up() {
    ip -n "$HOST" -o link show "$IF" | grep -q '[<,]UP[,>]'
}

say "building the lab: namespace $HOST ($IF 198.51.100.2) <-veth-> namespace $PEER ($PIF 198.51.100.1)"
ip netns add "$HOST"
ip netns add "$PEER"
ip -n "$HOST" link set lo up
ip -n "$PEER" link set lo up
ip -n "$HOST" link add "$IF" type veth peer name "$PIF" netns "$PEER"
ip -n "$HOST" addr add 198.51.100.2/24 dev "$IF"
ip -n "$PEER" addr add 198.51.100.1/24 dev "$PIF"
ip -n "$HOST" link set "$IF" up
ip -n "$PEER" link set "$PIF" up

say "starting: netheal -t 198.51.100.1 -i 1s -W 500ms -a link -b 2s:10s -v $IF"
ip netns exec "$HOST" "$BIN" --log stderr -t 198.51.100.1 -i 1s -W 500ms -a link -b 2s:10s -v "$IF" 2>&1 &
NH=$!

sleep 4
say "breaking the link: ip link set $IF down (netheal should notice within 1s + 3 x 0.5s)"
ip -n "$HOST" link set "$IF" down

i=0
while ! link_is_up && [ "$i" -lt 30 ]; do
    sleep 0.5
    i=$((i + 1))
done
if link_is_up; then
    say "the link is up again; a few more rounds"
else
    say "the link is still down after 15s: netheal did not heal it"
fi
sleep 3
say "stopping netheal (SIGTERM)"
kill "$NH" 2>/dev/null || :
wait "$NH" 2>/dev/null || :
NH=
