#!/usr/bin/env bash
# packaging/openwrt: the procd init script's UCI translation against fixtures, with a stub of
# /lib/functions.sh's config_load/config_get/config_foreach (UCI files are calls of config,
# option and list, which is how OpenWrt's own functions.sh reads `uci export`); the result
# checked by the real netheal --check; start_service's procd parameters; reload sends HUP
# and an invalid UCI change keeps the running file; make ipk's structure as opkg reads it.
# shellcheck source=packaging/tests/lib.sh
. "$(dirname "$0")/lib.sh"

ow=$PKG_DIR/openwrt/netheal
fx=$PKG_DIR/openwrt/tests
bin=$(binary "$TARGET") || exit 1
if need shellcheck; then
    check "shellcheck of the init script and netifd-ifup" \
        shellcheck -s sh -e SC3043 "$ow/files/netheal.init" "$ow/files/netifd-ifup"
fi

# in_init UCI-FILE COMMANDS: in a fresh sh, the stub and the init script sourced, PROG the
# release binary, CONF under $T (or $NH_CONF), the netifd heal step the repository's copy
# (netheal --check wants it to exist), then COMMANDS. Stub calls go to $T/calls.
in_init() {
    UCI_FILE=$1 STUB_LOG=$T/calls NH_BIN=$bin NH_CONF=${NH_CONF:-$T/var/etc/netheal.conf} \
        NH_IFUP=$ow/files/netifd-ifup \
        sh -c '. "$0"; . "$1"; PROG=$NH_BIN; CONF=$NH_CONF; NETIFD_IFUP=$NH_IFUP; eval "$2"' \
        "$fx/functions-stub.sh" "$ow/files/netheal.init" "$2"
}
# installed FILE: FILE with the netifd step's installed path, as on the router.
installed() {
    sed "s|$ow/files/netifd-ifup|/usr/libexec/netheal/netifd-ifup|g" "$1"
}
for f in "$fx"/*.uci "$ow/files/netheal.config"; do
    n=${f##*/}
    n=${n%.uci}
    [ "$n" = netheal.config ] && n=shipped
    in_init "$f" netheal_uci_conf >"$T/$n.conf" 2>"$T/$n.err"
    check "UCI $n translates to $n.conf" diff -u "$fx/$n.conf" <(installed "$T/$n.conf")
    case $n in
    invalid | shipped)
        check "netheal --check rejects $n.conf" sh -c "! '$bin' --check -c '$T/$n.conf' >/dev/null 2>&1" ;;
    *) check "netheal --check accepts $n.conf" "$bin" --check -c "$T/$n.conf" ;;
    esac
done

# start_service with an enabled interface.
: >"$T/calls"
in_init "$fx/full.uci" start_service >"$T/start.out" 2>&1
conf=$T/var/etc/netheal.conf
check "start_service wrote the checked file" diff -u "$fx/full.conf" <(installed "$conf")
check "start_service: the file is 0644" test "$(stat -c %a "$conf")" = 644
check "start_service: command" grep -qx "procd_set_param command $bin -c $conf --log syslog" "$T/calls"
check "start_service: respawn forever, 5 s apart" grep -qx 'procd_set_param respawn 3600 5 0' "$T/calls"
check "start_service: file /etc/config/netheal and the generated file" \
    grep -qx "procd_set_param file /etc/config/netheal $conf" "$T/calls"
check "start_service: reload_signal HUP" grep -qx 'procd_set_param reload_signal HUP' "$T/calls"
check "start_service: one instance, opened and closed" \
    test "$(grep -c '^procd_open_instance' "$T/calls") $(grep -c '^procd_close_instance' "$T/calls")" = "1 1"

: >"$T/calls"
NH_CONF=$T/var/etc/none.conf in_init "$ow/files/netheal.config" start_service >/dev/null 2>&1
check "the shipped config: no procd instance" sh -c "! grep -q procd_open_instance '$T/calls'"
check "the shipped config: the reason goes to the log" grep -q "^logger .*IFACE: missing" "$T/calls"
check "the shipped config: no file written" test ! -e "$T/var/etc/none.conf"

: >"$T/calls"
STUB_RUNNING=1 in_init "$fx/full.uci" reload_service >/dev/null 2>&1
check "reload_service sends SIGHUP" grep -qx 'procd_send_signal netheal \* HUP' "$T/calls"
cp "$conf" "$T/before"
: >"$T/calls"
STUB_RUNNING=1 in_init "$fx/invalid.uci" reload_service >/dev/null 2>&1
check "an invalid UCI change sends no signal" sh -c "! grep -q procd_send_signal '$T/calls'"
check "... and keeps the running file" cmp "$T/before" "$conf"
: >"$T/calls"
in_init "$fx/full.uci" reload_service >/dev/null 2>&1
check "reload while stopped starts it" grep -q '^procd_open_instance' "$T/calls"

# make ipk
a=$(arch "$TARGET" opkg)
bash "$PKG_DIR/openwrt/ipk.sh" "$TARGET" >/dev/null || { fail "ipk.sh failed"; exit 0; }
ipk=$RELEASE/netheal_$VERSION-1_$a.ipk
check "built $ipk" test -s "$ipk"
check "outer archive: ./debian-binary ./data.tar.gz ./control.tar.gz, in that order" \
    test "$(tar -tzf "$ipk" | tr '\n' ' ')" = "./debian-binary ./data.tar.gz ./control.tar.gz "
mkdir -p "$T/ipk" && tar -xzf "$ipk" -C "$T/ipk"
check "debian-binary is 2.0" test "$(cat "$T/ipk/debian-binary")" = 2.0
mkdir -p "$T/ipk/c" "$T/ipk/d"
tar -xzf "$T/ipk/control.tar.gz" -C "$T/ipk/c"
tar -xzf "$T/ipk/data.tar.gz" -C "$T/ipk/d"
ctl=$T/ipk/c/control
for field in "Package: netheal" "Version: $VERSION-1" "Architecture: $a" "Depends: libc" \
    "License: MIT OR Apache-2.0" "Section: net"; do
    check "control has '$field'" grep -qx "$field" "$ctl"
done
check "control has Maintainer, Installed-Size and Description" \
    sh -c "grep -q '^Maintainer: .' '$ctl' && grep -Eq '^Installed-Size: [0-9]+$' '$ctl' && grep -q '^Description: .' '$ctl'"
check "conffiles lists /etc/config/netheal" test "$(cat "$T/ipk/c/conffiles")" = /etc/config/netheal
check "postinst/prerm are OpenWrt's default_postinst/default_prerm" \
    sh -c "grep -q default_postinst '$T/ipk/c/postinst' && grep -q default_prerm '$T/ipk/c/prerm' && test -x '$T/ipk/c/postinst'"
check "data: the feed package's files" test "$(cd "$T/ipk/d" && find . ! -type d | sort | tr '\n' ' ')" = \
    "./etc/config/netheal ./etc/init.d/netheal ./usr/libexec/netheal/netifd-ifup ./usr/sbin/netheal "
check "data: the binary is the release binary" cmp "$bin" "$T/ipk/d/usr/sbin/netheal"
check "data: files owned by root" test -z "$(tar -tvzf "$T/ipk/data.tar.gz" | awk '$2 != "root/root" && $2 != "0/0"')"
check "feed Makefile installs the same files" sh -c "for f in /usr/sbin/netheal /etc/init.d/netheal /etc/config/netheal /usr/libexec/netheal/netifd-ifup; do
    grep -q \"\\\$(1)\$f\" '$ow/Makefile' || { echo \"missing \$f\"; exit 1; }; done"
check "two builds give the same bytes" sh -c "cp '$ipk' '$T/first.ipk' &&
    bash '$PKG_DIR/openwrt/ipk.sh' '$TARGET' >/dev/null && cmp '$T/first.ipk' '$ipk'"
