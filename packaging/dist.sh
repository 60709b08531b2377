#!/usr/bin/env bash
# dist.sh [TARGET...]: release archives dist/release/netheal-VERSION-TRIPLE.tar.gz for the
# targets named (default: every row of cross/targets), from the binaries cross/build.sh made:
# the binary, the man pages, the example configuration, every init system's service files, a
# short INSTALL and the README; and the source archive netheal-VERSION.tar.gz of the commit
# (git archive: what Alpine's APKBUILD builds from). Then dist/release/SHA256SUMS over every artifact there, and
# signatures when SIGNIFY_KEY or MINISIGN_KEY names a secret key (packaging/lib.sh).
#
# Reproducible: names sorted, owner root, modes 0755/0644 from the executable bit only,
# every mtime the commit's (SOURCE_DATE_EPOCH), gzip -n. Two checkouts of one commit with the
# same binaries give the same bytes (packaging/tests/dist.sh checks it).
set -euo pipefail
# shellcheck source=cross/lib.sh
. "$(dirname "$0")/../cross/lib.sh"
# shellcheck source=packaging/lib.sh
. "$ROOT/packaging/lib.sh"

mapfile -t targets < <(select_targets "$@")
VERSION=$(version)
mkdir -p "$RELEASE"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# put SRC DEST: copy one file of the checkout, mode from its executable bit alone.
put() {
    mkdir -p "$(dirname "$2")"
    if [ -x "$1" ]; then install -m 0755 "$1" "$2"; else install -m 0644 "$1" "$2"; fi
}

for t in "${targets[@]}"; do
    bin=$(binary "$t")
    name=netheal-$VERSION-$t
    stage=$work/$name
    rm -rf "$stage"
    mkdir -p "$stage"
    install -m 0755 "$bin" "$stage/netheal"
    put "$ROOT/man/netheal.8" "$stage/man/netheal.8"
    put "$ROOT/man/netheal.conf.5" "$stage/man/netheal.conf.5"
    put "$ROOT/etc/netheal.conf.example" "$stage/etc/netheal.conf.example"
    put "$ROOT/README.md" "$stage/README.md"
    sed -e "s/VERSION/$VERSION/g" -e "s/TRIPLE/$t/g" "$PKG_DIR/INSTALL" >"$stage/INSTALL"
    chmod 0644 "$stage/INSTALL"
    # The service files, not their tests.
    (cd "$ROOT" && find init -path init/tests -prune -o -type f -print | sort) |
        while read -r f; do put "$ROOT/$f" "$stage/$f"; done
    reproducible_tar "$work" "$RELEASE/$name.tar.gz" "$name"
    echo "   $RELEASE/$name.tar.gz ($(stat -c %s "$RELEASE/$name.tar.gz") bytes)"
done
# The source of the commit (not of uncommitted changes); git archive stamps every file with
# the commit's time.
if git -C "$ROOT" rev-parse --verify -q HEAD >/dev/null; then
    git -C "$ROOT" archive --format=tar --prefix="netheal-$VERSION/" HEAD | gzip -9n \
        >"$RELEASE/netheal-$VERSION.tar.gz"
    echo "   $RELEASE/netheal-$VERSION.tar.gz (source)"
fi
sums_and_sign
