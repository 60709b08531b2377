#!/bin/sh
# make test-init: drives init/sysv/netheal (start, status, reload, checkconfig, restart, stop,
# a stale pidfile, a broken configuration) against the real binary, three times: with the
# system's start-stop-daemon, with busybox's (script run by busybox sh), and with none.
# Each run is in its own network and mount namespace (a veth pair; private /run and
# /etc/default), so it touches nothing of the host. Needs root, unshare, ip, busybox;
# skips without them, unless CI=true. Binary: $NETHEAL, else target/debug/netheal.
set -u
self=$(realpath "$0")
cd "$(dirname "$self")/../.." || exit 1
bin=$(realpath "${NETHEAL:-target/debug/netheal}" 2>/dev/null)

skip() {
	if [ "${CI:-}" = true ]; then
		echo "test-init: cannot run: $* (CI=true does not skip)" >&2
		exit 1
	fi
	echo "test-init: SKIP: $*" >&2
	echo "test-init: 0 passed, 0 failed, 1 skipped"
	exit 0
}
[ "$(id -u)" = 0 ] || skip "needs root (network and mount namespaces)"
for tool in unshare ip busybox; do
	command -v "$tool" >/dev/null 2>&1 || skip "$tool is not installed"
done
[ -x "$bin" ] || skip "no netheal binary (build it, or set NETHEAL)"

# The body, run inside the namespaces: `inner MODE TMP BIN`. Its functions are called
# through t and ok_if, which shellcheck cannot see:
# shellcheck disable=SC2317
if [ "${1:-}" = inner ]; then
	mode=$2 tmp=$3 bin=$4
	passed=0 failed=0
	t() { # t NAME EXPECTED-STATUS CMD...: run CMD, compare its exit status
		name=$1 want=$2
		shift 2
		"$@" >"$tmp/out" 2>&1
		got=$?
		if [ "$got" = "$want" ]; then
			passed=$((passed + 1))
		else
			echo "FAIL [$mode] $name: exit $got, expected $want; output:" >&2
			sed 's/^/    /' "$tmp/out" >&2
			failed=$((failed + 1))
		fi
	}
	ok_if() { # ok_if NAME CMD...: CMD must succeed
		name=$1
		shift
		if "$@" >/dev/null 2>&1; then passed=$((passed + 1)); else
			echo "FAIL [$mode] $name" >&2
			failed=$((failed + 1))
		fi
	}
	pid() { cat /run/netheal.pid 2>/dev/null; }
	not() { ! "$@"; }
	# A zombie counts as gone: the orphaned daemon is reaped by the host's init, which
	# in a container may take its time.
	alive() { [ -n "$1" ] && [ -r "/proc/$1/stat" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat"; }
	cleanup() { p=$(pid) && kill -KILL "$p" 2>/dev/null; }
	trap cleanup EXIT

	mount -t tmpfs tmpfs /run
	mount -t tmpfs tmpfs /etc/default
	case $mode in
	busybox)
		mount -t tmpfs tmpfs /usr/sbin
		ln -s "$(command -v busybox)" /usr/sbin/start-stop-daemon
		sh="busybox sh"
		;;
	none)
		mount -t tmpfs tmpfs /usr/sbin
		sh="sh"
		;;
	*) sh="sh" ;;
	esac
	ip link set lo up
	ip link add nh0 type veth peer name nh1
	ip addr add 198.51.100.2/24 dev nh0
	ip link set nh0 up
	ip link set nh1 up
	# Nobody answers 198.51.100.1: the interface goes down; dry-run heals nothing.
	conf=$tmp/netheal.conf
	printf '[nh0]\ntarget = 198.51.100.1\ninterval = 1s\ntimeout = 300ms\ndry-run = yes\n' >"$conf"
	chmod 644 "$conf"
	echo "NETHEAL_OPTS=\"--log stderr -c $conf\"" >/etc/default/netheal
	script=$tmp/init.d-netheal
	sed "s|/usr/sbin/netheal|$bin|g" init/sysv/netheal >"$script"
	# shellcheck disable=SC2086 # $sh may be "busybox sh"
	rc() { $sh "$script" "$@"; }

	t "status before start" 3 rc status
	t "stop before start" 0 rc stop
	t "start" 0 rc start
	p1=$(pid)
	ok_if "running after start" alive "$p1"
	t "start again" 0 rc start
	ok_if "start again keeps the pid" [ "$(pid)" = "$p1" ]
	sleep 1
	t "status while running" 0 rc status
	ok_if "status names the interface" grep -q '^nh0 ' "$tmp/out"
	t "checkconfig" 0 rc checkconfig
	t "reload" 0 rc reload
	sleep 1
	ok_if "alive after reload" alive "$p1"
	chmod 666 "$conf" # refused: writable by others
	t "checkconfig, broken configuration" 2 rc checkconfig
	t "reload, broken configuration" 1 rc reload
	t "restart, broken configuration" 1 rc restart
	ok_if "still running the old one" alive "$p1"
	chmod 644 "$conf"
	t "restart" 0 rc restart
	p2=$(pid)
	ok_if "restart: the old one is gone" not alive "$p1"
	ok_if "restart: a new one runs" alive "$p2"
	t "stop" 0 rc stop
	ok_if "stop: gone" not alive "$p2"
	ok_if "stop: pidfile removed" [ ! -e /run/netheal.pid ]
	t "status after stop" 3 rc status
	echo 1 >/run/netheal.pid # pid 1 is not netheal
	t "status, stale pidfile" 1 rc status
	t "stop, stale pidfile" 0 rc stop
	t "start over a stale pidfile" 0 rc start
	ok_if "running after start over a stale pidfile" alive "$(pid)"
	t "stop again" 0 rc stop
	t "unknown action" 2 rc frobnicate
	echo "$passed $failed" >"$tmp/result-$mode"
	exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
passed=0 failed=0
for mode in system busybox none; do
	if [ "$mode" = system ] && ! command -v start-stop-daemon >/dev/null 2>&1; then
		continue
	fi
	unshare -m -n --propagation private sh "$self" inner "$mode" "$tmp" "$bin"
	if read -r p f <"$tmp/result-$mode" 2>/dev/null; then
		passed=$((passed + p)) failed=$((failed + f))
	else
		echo "FAIL [$mode]: the run did not finish" >&2
		failed=$((failed + 1))
	fi
done
echo "test-init: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
