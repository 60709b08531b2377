#!/usr/bin/env bash
# openwrt/ipk.sh [TARGET...]: dist/release/netheal_VERSION-1_OPKGARCH.ipk for each target named
# (default: every row of cross/targets with an opkg architecture in packaging/arches), with
# the files the feed package (openwrt/netheal/Makefile) installs, built without the SDK the
# way OpenWrt's scripts/ipkg-build does: a gzipped tar of ./debian-binary, ./data.tar.gz and
# ./control.tar.gz, all owned by root, mtimes from SOURCE_DATE_EPOCH. The control scripts
# are OpenWrt's default ones (default_postinst enables and starts the service; the init
# script starts nothing until an interface is enabled in /etc/config/netheal).
# OpenWrt 25.x installs with apk instead of opkg; this package is for 24.10 and older.
set -euo pipefail
# shellcheck source=cross/lib.sh
. "$(dirname "$0")/../../cross/lib.sh"
# shellcheck source=packaging/lib.sh
. "$ROOT/packaging/lib.sh"

VERSION=$(version)
files=$PKG_DIR/openwrt/netheal/files
mkdir -p "$RELEASE"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ $# -gt 0 ]; then
    mapfile -t targets < <(select_targets "$@")
else
    mapfile -t targets < <(select_targets | while read -r t; do
        [ "$(arch "$t" opkg)" = - ] || echo "$t"
    done)
fi

for t in "${targets[@]}"; do
    a=$(arch "$t" opkg)
    [ "$a" != - ] || die "$t: no opkg architecture in $ARCHES"
    w=$work/$a
    rm -rf "$w"
    d=$w/data c=$w/control
    install -d -m 0755 "$d/usr/sbin" "$d/etc/init.d" "$d/etc/config" "$d/usr/libexec/netheal" "$c"
    install -m 0755 "$(binary "$t")" "$d/usr/sbin/netheal"
    install -m 0755 "$files/netheal.init" "$d/etc/init.d/netheal"
    install -m 0600 "$files/netheal.config" "$d/etc/config/netheal"
    install -m 0755 "$files/netifd-ifup" "$d/usr/libexec/netheal/netifd-ifup"
    size=$(du -sb "$d" | cut -f1)
    cat >"$c/control" <<CONTROL
Package: netheal
Version: $VERSION-1
Depends: libc
Source: packaging/openwrt/netheal
SourceName: netheal
License: MIT OR Apache-2.0
Section: net
Maintainer: $(maintainer)
Architecture: $a
Installed-Size: $size
Description: Self-healing network watchdog: ICMP probes with hysteresis, escalating heal
 with backoff. Configured in /etc/config/netheal, run by procd.
CONTROL
    echo /etc/config/netheal >"$c/conffiles"
    # OpenWrt's generated scripts for a package with an init script (include/package-ipkg.mk).
    cat >"$c/postinst" <<'SCRIPT'
#!/bin/sh
[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0
[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0
. ${IPKG_INSTROOT}/lib/functions.sh
default_postinst $0 $@
SCRIPT
    cat >"$c/prerm" <<'SCRIPT'
#!/bin/sh
[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0
. ${IPKG_INSTROOT}/lib/functions.sh
default_prerm $0 $@
SCRIPT
    chmod 0755 "$c/postinst" "$c/prerm"
    chmod 0644 "$c/control" "$c/conffiles"
    reproducible_tar "$d" "$w/data.tar.gz"
    reproducible_tar "$c" "$w/control.tar.gz"
    echo 2.0 >"$w/debian-binary"
    out=$RELEASE/netheal_$VERSION-1_$a.ipk
    reproducible_tar "$w" "$out" ./debian-binary ./data.tar.gz ./control.tar.gz
    echo "   $out ($(stat -c %s "$out") bytes)"
done
sums_and_sign
