#!/usr/bin/env bash
# make deb: lintian finds nothing (each override in packaging/deb/lintian-overrides says
# why); then dpkg --root installs it into a throw-away root (busybox-static for /bin/sh,
# stubs for update-rc.d, deb-systemd-helper, invoke-rc.d and systemctl that only log their
# arguments), and the maintainer scripts run chrooted there:
#   no /etc/netheal.conf: postinst creates the template, `netheal --check` rejects it, the
#     service is neither enabled nor started; purge removes the file it created;
#   an admin's valid /etc/netheal.conf: kept byte for byte, `netheal --check` accepts it
#     there, the unit is enabled and started; remove stops it; purge leaves the file.
# Nothing is installed into, or started on, this machine.
# shellcheck source=packaging/tests/lib.sh
. "$(dirname "$0")/lib.sh"

need dpkg-deb lintian || exit 0
binary "$TARGET" >/dev/null || exit 1
a=$(arch "$TARGET" deb)
bash "$PKG_DIR/deb/build.sh" "$TARGET" >/dev/null || { fail "deb/build.sh failed"; exit 0; }
deb=$RELEASE/netheal_${VERSION}_$a.deb
check "built $deb" test -s "$deb"
# Info tags too: they are how lintian spells a policy point it is unsure about.
check "lintian: no error, warning or info" \
    sh -c "out=\$(lintian --info --display-info --fail-on error,warning,info '$deb' 2>&1); rc=\$?; echo \"\$out\"; [ \$rc = 0 ] && ! printf '%s' \"\$out\" | grep -Eq '^[EWI]:'"
expected='/etc/init.d/netheal
/usr/lib/systemd/system/netheal.service
/usr/sbin/netheal
/usr/share/doc/netheal/changelog.gz
/usr/share/doc/netheal/copyright
/usr/share/doc/netheal/examples/netheal.conf.example
/usr/share/lintian/overrides/netheal
/usr/share/man/man5/netheal.conf.5.gz
/usr/share/man/man8/netheal.8.gz
/usr/share/netheal/netheal.conf'
check "contents: binary, man pages, unit, SysV script, docs, template" \
    test "$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }' | sort)" = "$expected"
check "only the SysV script is a conffile" \
    test "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles)" = /etc/init.d/netheal
check "two builds give the same bytes" sh -c "cp '$deb' '$T/first.deb' &&
    bash '$PKG_DIR/deb/build.sh' '$TARGET' >/dev/null && cmp '$T/first.deb' '$deb'"

root_only || exit 0
command -v busybox >/dev/null || { skip "busybox-static not installed"; exit 0; }
ldd "$(command -v busybox)" 2>&1 | grep -q 'not a dynamic' || { skip "busybox is not busybox-static"; exit 0; }

# mkroot DIR: an empty system for dpkg --root: busybox applets, dpkg's database, stubs.
mkroot() {
    local r=$1 s
    mkdir -p "$r"/{bin,sbin,dev,usr/bin,usr/sbin,etc,tmp,run,var/lib/dpkg/{info,updates,triggers},var/log}
    mknod -m 666 "$r/dev/null" c 1 3
    : >"$r/var/lib/dpkg/status"
    : >"$r/var/lib/dpkg/available"
    cp "$(command -v busybox)" "$r/bin/busybox"
    for s in sh cat rm mkdir chmod echo test [ cp mv rmdir ln touch sed grep; do
        ln -sf busybox "$r/bin/$s"
    done
    # The helpers' stand-ins: log the call, succeed. was-enabled/debian-installed answer
    # from the log, the way deb-systemd-helper answers from its state files.
    for s in update-rc.d invoke-rc.d deb-systemd-helper systemctl deb-systemd-invoke; do
        cat >"$r/usr/sbin/$s" <<STUB
#!/bin/sh
echo "$s \$*" >>/var/log/stub.log
case "$s \$*" in
*debian-installed*) grep -q 'deb-systemd-helper \(enable\|update-state\)' /var/log/stub.log ;;
*was-enabled*) grep -q 'deb-systemd-helper enable' /var/log/stub.log ;;
esac
STUB
        chmod 755 "$r/usr/sbin/$s"
    done
    # dpkg wants these on PATH inside the root; nothing runs them for this package.
    for s in ldconfig start-stop-daemon; do
        printf '#!/bin/sh\nexit 0\n' >"$r/sbin/$s"
        chmod 755 "$r/sbin/$s"
    done
}
dpkg_in() { # dpkg_in ROOT ARGS...
    local r=$1
    shift
    PATH=/usr/sbin:/usr/bin:/sbin:/bin dpkg --root="$r" --force-not-root --log="$r/var/log/dpkg.log" "$@"
}

# 1. A box with no /etc/netheal.conf.
r=$T/root1
mkroot "$r"
if dpkg_in "$r" -i "$deb" >"$T/out1" 2>&1; then pass "dpkg --root -i (no configuration)"; else
    fail "dpkg --root -i (no configuration)"; cat "$T/out1" >&2; fi
check "postinst created /etc/netheal.conf from the template" \
    cmp "$r/etc/netheal.conf" "$PKG_DIR/netheal.conf"
check "the created file is root's, mode 0644" test "$(stat -c '%U %a' "$r/etc/netheal.conf")" = "root 644"
check "netheal --check there rejects it (no interface)" \
    sh -c "chroot '$r' /usr/sbin/netheal --check -c /etc/netheal.conf 2>&1; test \$? -eq 2"
check "the SysV links were registered" grep -qx 'update-rc.d netheal defaults' "$r/var/log/stub.log"
check "the unit was not enabled" sh -c "! grep -q 'deb-systemd-helper enable' '$r/var/log/stub.log'"
check "the service was not started" sh -c "! grep -q 'invoke-rc.d netheal start' '$r/var/log/stub.log'"
check "postinst says why it did not start" grep -q 'watches no interface yet' "$T/out1"
dpkg_in "$r" --purge netheal >"$T/out1p" 2>&1 || { fail "dpkg --purge"; cat "$T/out1p" >&2; }
check "purge removed the file postinst created" test ! -e "$r/etc/netheal.conf"
check "purge removed the binary and the init script" \
    test ! -e "$r/usr/sbin/netheal" -a ! -e "$r/etc/init.d/netheal"

# 2. A box whose admin wrote /etc/netheal.conf before the package came.
r=$T/root2
mkroot "$r"
printf '# mine\n[eth0]\ntarget = 198.51.100.1\n' >"$r/etc/netheal.conf"
chmod 644 "$r/etc/netheal.conf"
cp "$r/etc/netheal.conf" "$T/mine"
if dpkg_in "$r" -i "$deb" >"$T/out2" 2>&1; then pass "dpkg --root -i (admin's configuration)"; else
    fail "dpkg --root -i (admin's configuration)"; cat "$T/out2" >&2; fi
check "the admin's file is kept byte for byte" cmp "$T/mine" "$r/etc/netheal.conf"
check "netheal --check there accepts it" chroot "$r" /usr/sbin/netheal --check -c /etc/netheal.conf
check "the unit was enabled" grep -qx 'deb-systemd-helper enable netheal.service' "$r/var/log/stub.log"
check "the service was started" grep -qx 'invoke-rc.d netheal start' "$r/var/log/stub.log"
dpkg_in "$r" -i "$deb" >"$T/out2u" 2>&1 || { fail "reinstall"; cat "$T/out2u" >&2; }
check "an upgrade restarts it" grep -qx 'invoke-rc.d netheal restart' "$r/var/log/stub.log"
dpkg_in "$r" --remove netheal >/dev/null 2>&1
check "remove stopped it" grep -qx 'invoke-rc.d netheal stop' "$r/var/log/stub.log"
check "remove kept the SysV conffile" test -e "$r/etc/init.d/netheal"
dpkg_in "$r" --purge netheal >/dev/null 2>&1
check "purge kept the admin's own file" cmp "$T/mine" "$r/etc/netheal.conf"
