#!/usr/bin/env bash
# Real network managers for tests/managers.rs (issue 12), without installing them: installing
# network-manager would start it on this machine and take over its networking. So its .debs
# are fetched with `apt-get download` and unpacked with `dpkg -x` into $DEST (default
# /opt/netheal-ci/managers, the tests' NETHEAL_MANAGERS_DIR default). The tests overlay
# $DEST/usr on /usr only inside a test's private mount namespace.
#
# Minimal set, found with ldd on Debian 12: network-manager needs libnm0 and libndp0 beyond
# what the base system and .ci/run bring; its bluetooth/team/wwan device plugins lack libs and
# are left out on purpose (NM runs without them). systemd-networkd and networkctl come with the
# `systemd` package (.ci/run). dbus-daemon (no system-bus service in that package) and
# dnsmasq-base (the binary only, no service) touch no network configuration: installed
# normally when missing.
#
# Idempotent and quick: a stamp with the package versions; a second run is a no-op.
set -euo pipefail
DEST=${NETHEAL_MANAGERS_DIR:-/opt/netheal-ci/managers}
PKGS="network-manager libnm0 libndp0"
export DEBIAN_FRONTEND=noninteractive

missing=""
command -v dbus-daemon >/dev/null 2>&1 || missing="$missing dbus-daemon"
command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ] || missing="$missing dnsmasq-base"
if [ -n "$missing" ]; then
    # shellcheck disable=SC2086 # a word list
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
if [ ! -x /lib/systemd/systemd-networkd ] || ! command -v networkctl >/dev/null 2>&1; then
    echo "managers.sh: systemd-networkd or networkctl missing (package systemd)" >&2
    exit 1
fi

want=""
for p in $PKGS; do
    v=$(apt-cache policy "$p" | sed -n 's/^ *Candidate: //p')
    if [ -z "$v" ] || [ "$v" = "(none)" ]; then
        echo "managers.sh: no candidate for $p" >&2
        exit 1
    fi
    want="$want$p=$v "
done
if [ -f "$DEST/.stamp" ] && [ "$(cat "$DEST/.stamp")" = "$want" ]; then
    exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"      # apt-get download runs as _apt where it can
mkdir "$work/debs" "$work/root"
chmod 777 "$work/debs"
# shellcheck disable=SC2086 # a word list of pkg=version
(cd "$work/debs" && apt-get download -qq ${want})
for deb in "$work"/debs/*.deb; do
    dpkg -x "$deb" "$work/root"
done
# Only the daemon, the CLI and their helpers are used; the rest would only add warnings.
rm -f "$work"/root/usr/lib/x86_64-linux-gnu/NetworkManager/*/libnm-device-plugin-{bluetooth,team,wwan}.so \
      "$work"/root/usr/lib/x86_64-linux-gnu/NetworkManager/*/libnm-wwan.so
lib="$work/root/usr/lib/x86_64-linux-gnu"
bad=""
for b in "$work/root/usr/sbin/NetworkManager" "$work/root/usr/bin/nmcli"; do
    nf=$(LD_LIBRARY_PATH=$lib ldd "$b" | grep 'not found' || true)
    [ -z "$nf" ] || bad="$bad
$b: $nf"
done
if [ -n "$bad" ]; then
    echo "managers.sh: libraries missing (add their packages to PKGS):$bad" >&2
    exit 1
fi
echo "$want" >"$work/root/.stamp"
rm -rf "$DEST.old"
mkdir -p "$(dirname "$DEST")"
[ ! -e "$DEST" ] || mv "$DEST" "$DEST.old"
mv "$work/root" "$DEST"
chmod 755 "$DEST"
rm -rf "$DEST.old"
echo "managers.sh: $want-> $DEST"
