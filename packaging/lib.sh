# shellcheck shell=bash
# packaging/lib.sh: sourced by the packaging/ scripts, after cross/lib.sh. Where release
# artifacts go, the reproducible timestamp, the architecture names of packaging/arches, and
# the staging of one target's files. Defines functions only.

PKG_DIR=$ROOT/packaging
RELEASE=${RELEASE_DIR:-$DIST/release}
ARCHES=$PKG_DIR/arches

# Every file's mtime, the archives' and the packages' build dates: the commit's time, so two
# checkouts of one commit give the same bytes (https://reproducible-builds.org/specs/).
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)}
export SOURCE_DATE_EPOCH
# Commands below must not depend on the caller's locale, umask or time zone (UTF-8, not C:
# Ansible refuses any other encoding; byte order sorting is the same).
export LC_ALL=C.UTF-8 TZ=UTC
umask 022

# arch TRIPLE deb|rpm|opkg: that format's architecture name for TRIPLE, `-` if none.
arch() {
    local col
    case $2 in deb) col=2 ;; rpm) col=3 ;; opkg) col=4 ;; *) die "arch: unknown format $2" ;; esac
    sed -e 's/#.*//' "$ARCHES" | awk -v t="$1" -v c="$col" '$1 == t { print $c; found = 1 }
        END { if (!found) print "-" }'
}

# binary TRIPLE: the release binary cross/build.sh made for TRIPLE; dies when missing.
binary() {
    local b
    b=$(artifact "$1")
    [ -x "$b" ] || die "$b: missing; build it first: make cross CROSS_TARGETS=$1"
    printf '%s\n' "$b"
}

# stamp DIR: every file and directory under DIR (and DIR) gets the commit's mtime.
stamp() {
    find "$1" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
}

# reproducible_tar DIR OUT [NAME...]: a gzipped tar of NAME... (default: .) in DIR, with
# sorted names, root owner, the commit's mtime and no gzip timestamp or name.
reproducible_tar() {
    local dir=$1 out=$2
    shift 2
    [ $# -gt 0 ] || set -- .
    stamp "$dir"
    tar -C "$dir" --sort=name --format=gnu --owner=0 --group=0 --numeric-owner \
        --mtime="@$SOURCE_DATE_EPOCH" -cf - "$@" | gzip -9n >"$out"
}

# sums_and_sign: SHA256SUMS over every artifact in $RELEASE, then signatures when a key is
# given: SIGNIFY_KEY (signify-openbsd secret key: SHA256SUMS.sig) and/or MINISIGN_KEY
# (minisign secret key without a password: ARTIFACT.minisig for each file and SHA256SUMS).
sums_and_sign() {
    (
        cd "$RELEASE" || exit
        rm -f SHA256SUMS SHA256SUMS.sig ./*.minisig
        set --
        for f in *; do [ -f "$f" ] && set -- "$@" "$f"; done
        [ $# -gt 0 ] || exit 0
        sha256sum "$@" >SHA256SUMS
        if [ -n "${SIGNIFY_KEY:-}" ]; then
            signify-openbsd -S -s "$SIGNIFY_KEY" -m SHA256SUMS -x SHA256SUMS.sig
        fi
        if [ -n "${MINISIGN_KEY:-}" ]; then
            for f in "$@" SHA256SUMS; do
                # Trusted comment fixed, so the signature does not carry the clock.
                minisign -S -s "$MINISIGN_KEY" -m "$f" -t "netheal $f" </dev/null >/dev/null
            done
        fi
    )
}

# maintainer: who the packages name as maintainer: PKG_MAINTAINER, else the last commit's
# author.
maintainer() {
    if [ -n "${PKG_MAINTAINER:-}" ]; then
        printf '%s\n' "$PKG_MAINTAINER"
    else
        git -C "$ROOT" log -1 --format='%an <%ae>' 2>/dev/null || echo 'netheal maintainers <netheal@localhost>'
    fi
}

# rfc2822 EPOCH: a date for Debian changelogs and RPM %changelog's neighbours.
rfc2822() {
    date -u -R -d "@$1"
}
