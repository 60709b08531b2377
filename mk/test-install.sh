#!/bin/sh
# make test-install: `make install` into a temporary DESTDIR for every INIT value, checks the
# installed files, their modes and contents, installs again (idempotent), uninstalls and
# checks that only what was there before is left. No root, no build: BIN is a stand-in.
set -eu
cd "$(dirname "$0")/.."
MAKE=${MAKE:-make}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
printf '#!/bin/sh\necho stand-in\n' >"$tmp/netheal"
chmod 755 "$tmp/netheal"
passed=0 failed=0

fail() {
	echo "FAIL: $*" >&2
	failed=$((failed + 1))
}

mk() { # mk DESTDIR ARGS...: run mk/install.mk quietly, output kept for failures
	dest=$1
	shift
	"$MAKE" -s -f mk/install.mk BIN="$tmp/netheal" DESTDIR="$dest" "$@" >"$tmp/out" 2>&1
}

# Every file and symlink under $1 as "MODE PATH", sorted; directories are not listed.
listing() { (cd "$1" && find . ! -type d -printf '%m %P\n' | sort); }

# check NAME DEST EXPECTED-LISTING: compare and count.
check() {
	listing "$2" >"$tmp/got"
	if printf '%s\n' "$3" | sed '/^$/d' | sort | diff -u - "$tmp/got" >"$tmp/diff"; then
		passed=$((passed + 1))
	else
		fail "$1: installed files differ (- expected, + got):"
		cat "$tmp/diff" >&2
	fi
}

base='755 usr/local/sbin/netheal
644 usr/local/share/man/man8/netheal.8
644 usr/local/share/man/man5/netheal.conf.5
644 etc/netheal.conf.example
600 etc/netheal.conf'
# What INIT=$1 adds to the base listing.
expect() {
	case $1 in
	systemd) echo '644 usr/local/lib/systemd/system/netheal.service' ;;
	openrc) printf '%s\n' '755 etc/init.d/netheal' '644 etc/conf.d/netheal' ;;
	sysv) echo '755 etc/init.d/netheal' ;;
	busybox) echo '644 usr/local/share/netheal/inittab' ;;
	runit) printf '%s\n' '755 etc/sv/netheal/run' '755 etc/sv/netheal/log/run' ;;
	s6) printf '%s\n' '644 etc/s6/sv/netheal/type' '644 etc/s6/sv/netheal/producer-for' \
		'755 etc/s6/sv/netheal/run' '644 etc/s6/sv/netheal-log/type' \
		'644 etc/s6/sv/netheal-log/consumer-for' '644 etc/s6/sv/netheal-log/pipeline-name' \
		'755 etc/s6/sv/netheal-log/run' ;;
	esac
}

# The directories INIT=$1 creates for netheal alone: uninstall must remove them.
own_dirs() {
	case $1 in
	busybox) echo usr/local/share/netheal ;;
	runit) echo etc/sv/netheal ;;
	s6) echo etc/s6/sv/netheal etc/s6/sv/netheal-log ;;
	esac
}

for init in none systemd openrc sysv busybox runit s6; do
	dest=$tmp/root-$init
	arg=$init
	[ "$init" != none ] || arg=
	# An admin's netheal.conf is there already: install and uninstall must not touch it.
	mkdir -p "$dest/etc"
	echo '[eth0]' >"$dest/etc/netheal.conf"
	chmod 600 "$dest/etc/netheal.conf"
	extra=$(expect "$init")
	expected=$(printf '%s\n%s\n' "$base" "$extra")

	if ! mk "$dest" install INIT="$arg"; then
		fail "INIT=$arg: make install failed"
		cat "$tmp/out" >&2
		continue
	fi
	check "INIT=$arg install" "$dest" "$expected"
	mk "$dest" install INIT="$arg" || fail "INIT=$arg: second make install failed"
	check "INIT=$arg install again" "$dest" "$expected"

	# Installed service files run the installed binary; the man pages are unchanged copies.
	if [ -n "$extra" ]; then
		files=$(printf '%s\n' "$extra" | cut -d' ' -f2 | sed "s|^|$dest/|")
		# shellcheck disable=SC2086 # one path per word
		if grep -l '/usr/sbin/netheal' $files >/dev/null 2>&1; then
			fail "INIT=$arg: an installed service file still names /usr/sbin/netheal"
		elif ! grep -q '/usr/local/sbin/netheal' $files; then
			fail "INIT=$arg: no installed service file names /usr/local/sbin/netheal"
		else
			passed=$((passed + 1))
		fi
	fi
	if cmp -s man/netheal.8 "$dest/usr/local/share/man/man8/netheal.8" &&
		cmp -s etc/netheal.conf.example "$dest/etc/netheal.conf.example"; then
		passed=$((passed + 1))
	else
		fail "INIT=$arg: man page or example differs from its source"
	fi

	if ! mk "$dest" uninstall INIT="$arg"; then
		fail "INIT=$arg: make uninstall failed"
		cat "$tmp/out" >&2
		continue
	fi
	check "INIT=$arg uninstall" "$dest" '600 etc/netheal.conf'
	[ "$(cat "$dest/etc/netheal.conf")" = '[eth0]' ] || fail "INIT=$arg: netheal.conf was changed"
	for d in $(own_dirs "$init"); do
		[ ! -e "$dest/$d" ] || fail "INIT=$arg: $d left behind"
	done
done

# Every INIT at once, except sysv (openrc owns /etc/init.d/netheal here).
dest=$tmp/root-all
all="systemd openrc busybox runit s6"
if mk "$dest" install INIT="$all"; then
	mk "$dest" uninstall INIT="$all" || fail "INIT=$all: make uninstall failed"
	check "INIT='$all' uninstall" "$dest" ''
else
	fail "INIT=$all: make install failed"
	cat "$tmp/out" >&2
fi

# PREFIX=/usr with gzipped man pages: the files land under /usr and the unit runs /usr/sbin.
dest=$tmp/root-usr
if mk "$dest" install PREFIX=/usr MANGZ=yes INIT=systemd; then
	check "PREFIX=/usr MANGZ=yes install" "$dest" '755 usr/sbin/netheal
644 usr/share/man/man8/netheal.8.gz
644 usr/share/man/man5/netheal.conf.5.gz
644 etc/netheal.conf.example
644 usr/lib/systemd/system/netheal.service'
	if gzip -dc "$dest/usr/share/man/man8/netheal.8.gz" | cmp -s - man/netheal.8 &&
		cmp -s init/systemd/netheal.service "$dest/usr/lib/systemd/system/netheal.service"; then
		passed=$((passed + 1))
	else
		fail "PREFIX=/usr: gzipped man page or unit differs from its source"
	fi
	mk "$dest" uninstall PREFIX=/usr MANGZ=yes INIT=systemd || fail "PREFIX=/usr: uninstall failed"
	check "PREFIX=/usr MANGZ=yes uninstall" "$dest" ''
else
	fail "PREFIX=/usr MANGZ=yes INIT=systemd: make install failed"
	cat "$tmp/out" >&2
fi

# OpenRC's conf.d file is the admin's once changed: kept on install and on uninstall.
dest=$tmp/root-confd
mk "$dest" install INIT=openrc || fail "INIT=openrc: make install failed"
echo 'command_args="--log syslog eth0"' >>"$dest/etc/conf.d/netheal"
mk "$dest" install INIT=openrc || fail "INIT=openrc: reinstall failed"
if grep -q 'eth0' "$dest/etc/conf.d/netheal" && grep -q '^kept ' "$tmp/out"; then
	passed=$((passed + 1))
else
	fail "INIT=openrc: reinstall overwrote a changed /etc/conf.d/netheal"
fi
mk "$dest" uninstall INIT=openrc || fail "INIT=openrc: make uninstall failed"
check "INIT=openrc uninstall keeps a changed conf.d" "$dest" '644 etc/conf.d/netheal'

# Refused: an unknown INIT, two scripts for /etc/init.d/netheal, a relative SBINDIR.
for bad in 'INIT=upstart' 'INIT=openrc sysv' 'SBINDIR=sbin'; do
	if mk "$tmp/root-bad" install "$bad"; then
		fail "make install $bad was accepted"
	else
		passed=$((passed + 1))
	fi
done
[ ! -e "$tmp/root-bad" ] || fail "a refused make install left files behind"

echo "test-install: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
