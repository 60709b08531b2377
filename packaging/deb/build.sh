#!/usr/bin/env bash
# deb/build.sh [TARGET...]: dist/release/netheal_VERSION_ARCH.deb for each target named
# (default: every row of cross/targets with a Debian architecture in packaging/arches), from
# the static binaries cross/build.sh made. Contents (Debian Policy): the binary in /usr/sbin,
# gzipped man pages, the systemd unit and the SysV script (a conffile), the example
# configuration in /usr/share/doc/netheal/examples, the template postinst installs as
# /etc/netheal.conf when there is none (postinst says why it is no conffile), copyright and
# changelog. Reproducible like the archives: fixed mtimes, root owner, sorted, no timestamps.
set -euo pipefail
# shellcheck source=cross/lib.sh
. "$(dirname "$0")/../../cross/lib.sh"
# shellcheck source=packaging/lib.sh
. "$ROOT/packaging/lib.sh"

VERSION=$(version)
here=$PKG_DIR/deb
mkdir -p "$RELEASE"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ $# -gt 0 ]; then
    mapfile -t targets < <(select_targets "$@")
else
    mapfile -t targets < <(select_targets | while read -r t; do
        [ "$(arch "$t" deb)" = - ] || echo "$t"
    done)
fi

for t in "${targets[@]}"; do
    a=$(arch "$t" deb)
    [ "$a" != - ] || die "$t: no Debian architecture in $ARCHES"
    bin=$(binary "$t")
    r=$work/$a
    rm -rf "$r"
    install -d -m 0755 "$r/DEBIAN" "$r/usr/sbin" "$r/usr/share/man/man8" "$r/usr/share/man/man5" \
        "$r/usr/lib/systemd/system" "$r/etc/init.d" "$r/usr/share/doc/netheal/examples" \
        "$r/usr/share/netheal" "$r/usr/share/lintian/overrides"
    install -m 0755 "$bin" "$r/usr/sbin/netheal"
    gzip -9n <"$ROOT/man/netheal.8" >"$r/usr/share/man/man8/netheal.8.gz"
    gzip -9n <"$ROOT/man/netheal.conf.5" >"$r/usr/share/man/man5/netheal.conf.5.gz"
    install -m 0644 "$ROOT/init/systemd/netheal.service" "$r/usr/lib/systemd/system/"
    # init/sysv/netheal is POSIX sh for every SysV-style init; Debian's copy also sources
    # /lib/lsb/init-functions (Policy 9.3.3), whose systemd hook turns
    # `/etc/init.d/netheal start` into `systemctl start netheal` where systemd runs.
    # shellcheck disable=SC2016 # a sed script: $DAEMON is the init script's, not ours
    sed -e '/^\[ -x "\$DAEMON" \] || exit 0/a\
if [ -r /lib/lsb/init-functions ]; then\
	. /lib/lsb/init-functions\
fi' "$ROOT/init/sysv/netheal" >"$r/etc/init.d/netheal"
    chmod 0755 "$r/etc/init.d/netheal"
    grep -q '^	\. /lib/lsb/init-functions$' "$r/etc/init.d/netheal" ||
        die "init/sysv/netheal: no [ -x \"\$DAEMON\" ] line to source init-functions after"
    install -m 0644 "$ROOT/etc/netheal.conf.example" "$r/usr/share/doc/netheal/examples/"
    install -m 0644 "$PKG_DIR/netheal.conf" "$r/usr/share/netheal/netheal.conf"
    install -m 0644 "$here/copyright" "$r/usr/share/doc/netheal/copyright"
    # Only the override for this binary's kind (lintian reports an unused one): a static
    # PIE is ET_DYN (e_type 3), a plain static executable ET_EXEC (2). e_type is the 17th
    # and 18th byte, in the byte order EI_DATA (the 6th) names.
    case $(od -An -tx1 -j5 -N1 "$bin" | tr -d ' ')$(od -An -tx1 -j16 -N2 "$bin" | tr -d ' ') in
    010300 | 020003) unused=statically-linked-binary ;;
    *) unused=shared-library-lacks-prerequisites ;;
    esac
    grep -v "^netheal: $unused " "$here/lintian-overrides" >"$r/usr/share/lintian/overrides/netheal"
    {
        printf 'netheal (%s) unstable; urgency=medium\n\n' "$VERSION"
        printf '  * Release %s, built from commit %s.\n\n' "$VERSION" \
            "$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
        printf ' -- %s  %s\n' "$(maintainer)" "$(rfc2822 "$SOURCE_DATE_EPOCH")"
    } | gzip -9n >"$r/usr/share/doc/netheal/changelog.gz"
    find "$r/usr/share" -type f -exec chmod 0644 {} +
    for s in postinst prerm postrm; do install -m 0755 "$here/$s" "$r/DEBIAN/$s"; done
    echo /etc/init.d/netheal >"$r/DEBIAN/conffiles"
    size=$(du -sk --exclude=DEBIAN "$r" | cut -f1)
    sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$a/" -e "s/@SIZE@/$size/" \
        -e "s|@MAINTAINER@|$(maintainer)|" "$here/control" >"$r/DEBIAN/control"
    (cd "$r" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | sort |
        xargs md5sum) >"$r/DEBIAN/md5sums"
    chmod 0644 "$r/DEBIAN/control" "$r/DEBIAN/conffiles" "$r/DEBIAN/md5sums"
    stamp "$r"
    out=$RELEASE/netheal_${VERSION}_$a.deb
    dpkg-deb --root-owner-group -Zxz --build "$r" "$out" >/dev/null
    echo "   $out ($(stat -c %s "$out") bytes)"
done
sums_and_sign
