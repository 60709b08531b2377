#!/usr/bin/env bash
# make rpm: rpmlint finds nothing; rpm -qpl lists binary, man pages, unit, config and docs;
# %config(noreplace) on /etc/netheal.conf; an install into a temporary root (rpm --root with
# its own database, --nodeps: the root has no systemd package) puts the files there, and
# `netheal --check` run in it rejects the shipped file (it watches nothing); an admin's file
# there before the install is kept, the package's copy going to .rpmnew.
# shellcheck source=packaging/tests/lib.sh
. "$(dirname "$0")/lib.sh"

need rpmbuild rpmlint rpm || exit 0
binary "$TARGET" >/dev/null || exit 1
a=$(arch "$TARGET" rpm)
bash "$PKG_DIR/rpm/build.sh" "$TARGET" >/dev/null || { fail "rpm/build.sh failed"; exit 0; }
p=$RELEASE/netheal-$VERSION-1.$a.rpm
check "built $p" test -s "$p"
check "rpmlint: 0 errors, 0 warnings" sh -c "out=\$(rpmlint -c '$PKG_DIR/rpm/rpmlint.toml' '$p' 2>&1); echo \"\$out\"; echo \"\$out\" | grep -q ' 0 errors, 0 warnings'"
expected='/etc/netheal.conf
/usr/lib/systemd/system/netheal.service
/usr/sbin/netheal
/usr/share/doc/netheal
/usr/share/doc/netheal/README.md
/usr/share/doc/netheal/netheal.conf.example
/usr/share/licenses/netheal
/usr/share/licenses/netheal/COPYING
/usr/share/man/man5/netheal.conf.5.gz
/usr/share/man/man8/netheal.8.gz'
check "rpm -qpl: binary, man pages, unit, config, docs, licence" \
    test "$(rpm -qpl "$p" | sort)" = "$expected"
check "/etc/netheal.conf is %config(noreplace)" \
    sh -c "rpm -qp --qf '[%{FILENAMES} %{FILEFLAGS:fflags}\n]' '$p' | grep -qx '/etc/netheal.conf cn'"
check "two builds give the same bytes" sh -c "cp '$p' '$T/first.rpm' &&
    bash '$PKG_DIR/rpm/build.sh' '$TARGET' >/dev/null && cmp '$T/first.rpm' '$p'"

root_only || exit 0
r=$T/root
mkdir -p "$r"
# --noscripts: the scriptlets call systemctl, which the temporary root lacks (and they are
# `|| :` there anyway); they are checked by rpmlint and their text below.
if rpm --root "$r" --dbpath /var/lib/rpm --initdb && rpm --root "$r" --dbpath /var/lib/rpm \
    -i --nodeps --noscripts "$p" >"$T/out" 2>&1; then
    pass "rpm --root -i"
else
    fail "rpm --root -i"
    cat "$T/out" >&2
fi
check "the files are in the root" test -x "$r/usr/sbin/netheal" -a -f "$r/usr/lib/systemd/system/netheal.service"
check "the shipped /etc/netheal.conf is the template" cmp "$r/etc/netheal.conf" "$PKG_DIR/netheal.conf"
check "netheal --check there rejects it (no interface)" \
    sh -c "chroot '$r' /usr/sbin/netheal --check -c /etc/netheal.conf 2>&1; test \$? -eq 2"
check "rpm -V finds the installed files intact" rpm --root "$r" --dbpath /var/lib/rpm -V --nodeps netheal
check "%post only applies presets (no start)" \
    sh -c "rpm -qp --scripts '$p' | grep -q 'preset netheal.service' && ! rpm -qp --scripts '$p' | grep -Eq 'systemctl (--no-reload )?(start|enable)'"
r2=$T/root2
mkdir -p "$r2/etc"
printf '[eth0]\ntarget = 198.51.100.1\n' >"$r2/etc/netheal.conf"
cp "$r2/etc/netheal.conf" "$T/mine"
rpm --root "$r2" --dbpath /var/lib/rpm --initdb
rpm --root "$r2" --dbpath /var/lib/rpm -i --nodeps --noscripts "$p" >"$T/out2" 2>&1
check "an admin's /etc/netheal.conf is kept" cmp "$T/mine" "$r2/etc/netheal.conf"
check "the package's copy went to .rpmnew" cmp "$PKG_DIR/netheal.conf" "$r2/etc/netheal.conf.rpmnew"
check "netheal --check there accepts the admin's file" chroot "$r2" /usr/sbin/netheal --check -c /etc/netheal.conf
