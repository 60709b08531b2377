#!/usr/bin/env bash
# make dist: the archive from two fresh clones of HEAD (the second with another umask and
# every file's mtime moved) has the same bytes; its listing is what INSTALL promises, owned
# by root with the commit's mtime; SHA256SUMS checks; signatures made with throw-away
# signify and minisign keys verify, and fail on a changed SHA256SUMS.
# shellcheck source=packaging/tests/lib.sh
. "$(dirname "$0")/lib.sh"

bin=$(binary "$TARGET") || exit 1
name=netheal-$VERSION-$TARGET
sde=$(git -C "$ROOT" log -1 --format=%ct)

# clone DIR: HEAD checked out in DIR, with this checkout's binary in its dist/.
clone() {
    git clone -q --no-hardlinks "$ROOT" "$1" && mkdir -p "$1/dist" && cp "$bin" "$1/dist/"
}
clone "$T/a" || exit 1
(umask 077 && clone "$T/b") || exit 1
find "$T/b" -path "$T/b/.git" -prune -o -exec touch -h -d '2001-02-03 04:05:06' {} +
if ! RELEASE_DIR=$T/out-a bash "$T/a/packaging/dist.sh" "$TARGET" >/dev/null ||
    ! RELEASE_DIR=$T/out-b bash "$T/b/packaging/dist.sh" "$TARGET" >/dev/null; then
    fail "dist.sh failed"
fi
check "two clones give the same $name.tar.gz" cmp "$T/out-a/$name.tar.gz" "$T/out-b/$name.tar.gz"
check "two clones give the same source archive" \
    cmp "$T/out-a/netheal-$VERSION.tar.gz" "$T/out-b/netheal-$VERSION.tar.gz"
check "two clones give the same SHA256SUMS" cmp "$T/out-a/SHA256SUMS" "$T/out-b/SHA256SUMS"
check "SHA256SUMS verifies" sh -c "cd '$T/out-a' && sha256sum --quiet -c SHA256SUMS"

listing=$(tar -tvzf "$T/out-a/$name.tar.gz" --numeric-owner --full-time)
expected="$name/ $name/INSTALL $name/README.md $name/etc/ $name/etc/netheal.conf.example
$name/init/ $name/init/README-inits.md $name/init/busybox/ $name/init/busybox/inittab
$name/init/openrc/ $name/init/openrc/netheal $name/init/openrc/netheal.confd $name/init/runit/
$name/init/runit/netheal/ $name/init/runit/netheal/log/ $name/init/runit/netheal/log/run
$name/init/runit/netheal/run $name/init/s6/ $name/init/s6/netheal/
$name/init/s6/netheal/producer-for $name/init/s6/netheal/run $name/init/s6/netheal/type
$name/init/s6/netheal-log/ $name/init/s6/netheal-log/consumer-for
$name/init/s6/netheal-log/pipeline-name $name/init/s6/netheal-log/run
$name/init/s6/netheal-log/type
$name/init/systemd/ $name/init/systemd/netheal.service $name/init/sysv/ $name/init/sysv/netheal
$name/man/ $name/man/netheal.8 $name/man/netheal.conf.5 $name/netheal"
got=$(awk '{ print $6 }' <<<"$listing")
check "the archive holds binary, man pages, example, init files, INSTALL" \
    test "$got" = "$(tr ' ' '\n' <<<"$expected")"
check "every entry is owned by 0/0" test -z "$(awk '$2 != "0/0"' <<<"$listing")"
when=$(date -u -d "@$sde" '+%Y-%m-%d %H:%M:%S')
check "every mtime is the commit's ($when)" \
    test -z "$(awk -v w="$when" '$4 " " $5 != w' <<<"$listing")"
check "modes are 0755 for programs and directories, 0644 for the rest" \
    test -z "$(awk '$1 !~ /^(drwxr-xr-x|-rwxr-xr-x|-rw-r--r--)$/' <<<"$listing")"
mkdir "$T/x" && tar -xzf "$T/out-a/$name.tar.gz" -C "$T/x"
check "the archived binary is the release binary" cmp "$bin" "$T/x/$name/netheal"
check "INSTALL names the version and target" grep -q "netheal $VERSION for $TARGET" "$T/x/$name/INSTALL"
check "gzip header carries no name or time" \
    test "$(od -An -tx1 -j4 -N4 "$T/out-a/$name.tar.gz" | tr -d ' ')" = 00000000

if need signify-openbsd minisign; then
    signify-openbsd -G -n -q -p "$T/s.pub" -s "$T/s.sec"
    minisign -G -W -p "$T/m.pub" -s "$T/m.sec" >/dev/null
    RELEASE_DIR=$T/out-a SIGNIFY_KEY=$T/s.sec MINISIGN_KEY=$T/m.sec \
        bash -c ". '$ROOT/cross/lib.sh'; . '$ROOT/packaging/lib.sh'; sums_and_sign"
    check "signify signature of SHA256SUMS verifies" \
        signify-openbsd -V -q -p "$T/s.pub" -m "$T/out-a/SHA256SUMS" -x "$T/out-a/SHA256SUMS.sig"
    check "minisign signature of the archive verifies" \
        minisign -V -q -p "$T/m.pub" -m "$T/out-a/$name.tar.gz"
    check "minisign signature of SHA256SUMS verifies" \
        minisign -V -q -p "$T/m.pub" -m "$T/out-a/SHA256SUMS"
    echo "tampered" >>"$T/out-a/SHA256SUMS"
    check "a changed SHA256SUMS fails signify" \
        sh -c "! signify-openbsd -V -q -p '$T/s.pub' -m '$T/out-a/SHA256SUMS' -x '$T/out-a/SHA256SUMS.sig'"
    check "a changed SHA256SUMS fails minisign" \
        sh -c "! minisign -V -q -p '$T/m.pub' -m '$T/out-a/SHA256SUMS'"
fi
