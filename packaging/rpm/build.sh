#!/usr/bin/env bash
# rpm/build.sh [TARGET...]: dist/release/netheal-VERSION-1.ARCH.rpm for each target named
# (default: every row of cross/targets with an RPM architecture in packaging/arches), with
# rpmbuild from packaging/rpm/netheal.spec and the static binary cross/build.sh made. The
# build time, host and file mtimes come from SOURCE_DATE_EPOCH, not this machine.
set -euo pipefail
# shellcheck source=cross/lib.sh
. "$(dirname "$0")/../../cross/lib.sh"
# shellcheck source=packaging/lib.sh
. "$ROOT/packaging/lib.sh"

VERSION=$(version)
mkdir -p "$RELEASE"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ $# -gt 0 ]; then
    mapfile -t targets < <(select_targets "$@")
else
    mapfile -t targets < <(select_targets | while read -r t; do
        [ "$(arch "$t" rpm)" = - ] || echo "$t"
    done)
fi

for t in "${targets[@]}"; do
    a=$(arch "$t" rpm)
    [ "$a" != - ] || die "$t: no RPM architecture in $ARCHES"
    src=$work/src-$a
    mkdir -p "$src"
    install -m 0755 "$(binary "$t")" "$src/netheal"
    cp "$ROOT/man/netheal.8" "$ROOT/man/netheal.conf.5" "$ROOT/init/systemd/netheal.service" \
        "$PKG_DIR/netheal.conf" "$ROOT/etc/netheal.conf.example" "$ROOT/README.md" "$src/"
    cp "$PKG_DIR/deb/copyright" "$src/COPYING"
    stamp "$src"
    rpmbuild -bb --quiet --target "$a" \
        --define "_topdir $work/top" --define "_rpmdir $work/out" \
        --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
        --define "nh_version $VERSION" --define "nh_root $src" \
        --define "nh_maintainer $(maintainer)" \
        --define "nh_date $(date -u -d "@$SOURCE_DATE_EPOCH" '+%a %b %d %Y')" \
        --define "use_source_date_epoch_as_buildtime 1" \
        --define "clamp_mtime_to_source_date_epoch 1" \
        --define "_buildhost reproducible" \
        "$PKG_DIR/rpm/netheal.spec" >"$work/rpmbuild.log" 2>&1 || {
        cat "$work/rpmbuild.log" >&2
        die "$t: rpmbuild failed"
    }
    out=$RELEASE/netheal-$VERSION-1.$a.rpm
    mv "$work/out/netheal-$VERSION-1.$a.rpm" "$out"
    echo "   $out ($(stat -c %s "$out") bytes)"
done
sums_and_sign
