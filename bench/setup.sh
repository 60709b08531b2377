#!/bin/sh
# bench/setup.sh: the Debian packages `make bench` measures with or against. Idempotent and
# quick when they are there: apt-get runs only when one is missing.
set -eu
PKGS="strace valgrind time iputils-ping busybox-static ifupdown nftables iproute2 file watchdog"
missing=
for p in $PKGS; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
        missing="$missing $p"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "bench/setup.sh: missing:$missing (run as root to install them)" >&2
        exit 1
    fi
    echo "bench/setup.sh: installing$missing"
    apt-get update -qq
    # shellcheck disable=SC2086 # a list of package names
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
