#!/usr/bin/env bash
# packaging/alpine: shellcheck of the APKBUILD as POSIX sh; its OpenRC files are init/openrc's
# and its sha512sums match them; and its package(), run here with abuild's variables, installs
# exactly what `make install INIT=openrc PREFIX=/usr` does: the same paths, modes and bytes.
# shellcheck source=packaging/tests/lib.sh
. "$(dirname "$0")/lib.sh"

al=$PKG_DIR/alpine
if need shellcheck; then
    # SC2034: pkgname, pkgver, ... are read by abuild; SC2154: srcdir, pkgdir, CTARGET are
    # set by abuild. Both are what aports' own shellcheck runs exclude.
    check "shellcheck -s sh APKBUILD" shellcheck -s sh -e SC2034,SC2154 "$al/APKBUILD"
fi
check "netheal.initd is init/openrc/netheal" cmp "$al/netheal.initd" "$ROOT/init/openrc/netheal"
check "netheal.confd is init/openrc/netheal.confd" cmp "$al/netheal.confd" "$ROOT/init/openrc/netheal.confd"
check "sha512sums match the OpenRC files" sh -c "cd '$al' && sed -n '/^sha512sums=\"/,/^\"/p' APKBUILD |
    grep -E '^[0-9a-f]{128}  ' | sha512sum -c --quiet -"
check "pkgver is Cargo.toml's version" grep -qx "pkgver=$VERSION" "$al/APKBUILD"

# package() as abuild runs it: in builddir (the source tree), srcdir holding the sources.
stand_in=$T/netheal
printf '#!/bin/sh\necho stand-in\n' >"$stand_in"
chmod 755 "$stand_in"
mkdir -p "$T/src" "$T/pkg" "$T/ref" "$T/tree/target/release"
cp "$al/netheal.initd" "$al/netheal.confd" "$T/src/"
(cd "$ROOT" && git ls-files -z 2>/dev/null | xargs -0 -I{} cp --parents {} "$T/tree/" 2>/dev/null) ||
    cp -r "$ROOT/man" "$ROOT/etc" "$ROOT/init" "$ROOT/mk" "$T/tree/"
cp "$stand_in" "$T/tree/target/release/netheal"
if (cd "$T/tree" && srcdir=$T/src pkgdir=$T/pkg sh -ec ". '$al/APKBUILD'; package") >"$T/out" 2>&1; then
    pass "APKBUILD package() runs"
else
    fail "APKBUILD package() runs"
    cat "$T/out" >&2
fi
make -s -C "$T/tree" -f mk/install.mk install INIT=openrc PREFIX=/usr DESTDIR="$T/ref" \
    BIN="$stand_in" >/dev/null
list() { (cd "$1" && find . ! -type d -printf '%m %P\n' | sort); }
check "package() installs the paths and modes of make install INIT=openrc" \
    diff -u <(list "$T/ref") <(list "$T/pkg")
check "... with the same contents" diff -r "$T/ref" "$T/pkg"
