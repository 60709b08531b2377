#!/bin/sh
# make test-init: runs init/runit/netheal under runsv and init/s6/netheal (+ netheal-log as
# its log/ service) under s6-svscan, against the real binary: the service comes up, its
# lines reach svlogd's / s6-log's current file, SIGHUP via `sv hup` / `s6-svc -h` reloads,
# and stopping the supervisor stops netheal. In a network and mount namespace of its own
# (veth pair; private /run and /var/log). Needs root, unshare, ip, and runit or s6 (each
# skipped when missing, unless CI=true). Binary: $NETHEAL, else target/debug/netheal.
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
	skipped=$((skipped + 1))
}

# The body, run inside the namespaces: `inner KIND TMP BIN`.
# shellcheck disable=SC2317 # functions called through ok
if [ "${1:-}" = inner ]; then
	kind=$2 tmp=$3 bin=$4
	passed=0 failed=0
	ok() { # ok NAME CMD...: CMD must succeed
		name=$1
		shift
		if "$@" >/dev/null 2>&1; then passed=$((passed + 1)); else
			echo "FAIL [$kind] $name" >&2
			failed=$((failed + 1))
		fi
	}
	# eventually SECONDS CMD...: CMD succeeds within SECONDS.
	eventually() {
		n=$(($1 * 5))
		shift
		until "$@"; do
			n=$((n - 1))
			[ "$n" -gt 0 ] || return 1
			sleep 0.2
		done
	}
	# reap SECONDS: the supervisor ($sup, our child) exits in time (else it is killed),
	# and nothing it started is left.
	sup_done() { [ ! -r "/proc/$sup/stat" ] || grep -q '^[0-9]* ([^)]*) Z' "/proc/$sup/stat"; }
	reap() {
		eventually "$1" sup_done || kill -KILL "$sup" 2>/dev/null
		wait "$sup"
		st=$?
		[ "$st" -lt 128 ] && eventually 5 nothing_left
	}
	nothing_left() { [ -z "$(pgrep -f -- "$tmp/")" ]; }
	logged() { grep -q "$1" /var/log/netheal/current 2>/dev/null; }
	# Our netheal, told apart from any other by its private configuration file.
	ours() { pgrep -f -- "-c $conf\$"; }
	netheal_runs() { ours >/dev/null; }
	no_netheal() { ! netheal_runs; }

	mount -t tmpfs tmpfs /run
	mount -t tmpfs tmpfs /var/log
	ip link set lo up
	ip link add nh0 type veth peer name nh1
	ip addr add 198.51.100.2/24 dev nh0
	ip link set nh0 up
	ip link set nh1 up
	conf=$tmp/netheal.conf
	printf '[nh0]\ntarget = 198.51.100.1\ninterval = 1s\ntimeout = 300ms\ndry-run = yes\n' >"$conf"
	chmod 644 "$conf"
	# As installed (binary path rewritten), plus -c: /etc/netheal.conf is the host's.
	rewrite() { sed -e "s|/usr/sbin/netheal --log stderr|$bin --log stderr -c $conf|" "$1" >"$2"; chmod 755 "$2"; }

	case $kind in
	runit)
		sv=$tmp/runit/netheal
		mkdir -p "$sv/log"
		rewrite init/runit/netheal/run "$sv/run"
		rewrite init/runit/netheal/log/run "$sv/log/run"
		runsv "$sv" &
		sup=$!
		trap 'kill -TERM $sup 2>/dev/null; kill -KILL $(ours) 2>/dev/null' EXIT
		ok "runsv starts netheal" eventually 5 netheal_runs
		ok "sv status: run" eventually 5 sh -c "sv status '$sv' | grep -q '^run:'"
		ok "its lines reach svlogd" eventually 5 logged 'nh0: watching targets 198.51.100.1'
		ok "sv hup reloads" sv hup "$sv"
		ok "reload is logged" eventually 5 logged 'reloaded'
		ok "sv down" sv down "$sv"
		ok "netheal stopped" eventually 10 no_netheal
		ok "clean stop logged" logged 'stopping on SIGTERM'
		sv exit "$sv" >/dev/null 2>&1
		ok "runsv and svlogd exit" reap 10
		;;
	s6)
		scan=$tmp/scan
		mkdir -p "$scan/netheal/log"
		rewrite init/s6/netheal/run "$scan/netheal/run"
		rewrite init/s6/netheal-log/run "$scan/netheal/log/run"
		s6-svscan "$scan" >/dev/null 2>&1 &
		sup=$!
		trap 'kill -TERM $sup 2>/dev/null; kill -KILL $(ours) 2>/dev/null' EXIT
		ok "s6-svscan starts netheal" eventually 5 netheal_runs
		ok "s6-svstat: up" eventually 5 sh -c "s6-svstat '$scan/netheal' | grep -q '^up'"
		ok "its lines reach s6-log" eventually 5 logged 'nh0: watching targets 198.51.100.1'
		ok "s6-svc -h reloads" s6-svc -h "$scan/netheal"
		ok "reload is logged" eventually 5 logged 'reloaded'
		ok "s6-svc -d" s6-svc -wD -d "$scan/netheal"
		ok "netheal stopped" eventually 10 no_netheal
		ok "clean stop logged" eventually 5 logged 'stopping on SIGTERM'
		s6-svscanctl -t "$scan" >/dev/null 2>&1
		ok "s6-svscan, s6-supervise and s6-log exit" reap 10
		;;
	esac
	echo "$passed $failed" >"$tmp/result-$kind"
	exit 0
fi

passed=0 failed=0 skipped=0
if [ "$(id -u)" != 0 ]; then
	skip "needs root (network and mount namespaces)"
elif ! command -v unshare >/dev/null 2>&1 || ! command -v ip >/dev/null 2>&1; then
	skip "needs unshare and ip"
elif [ ! -x "$bin" ]; then
	skip "no netheal binary (build it, or set NETHEAL)"
else
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT INT TERM
	for kind in runit s6; do
		case $kind in runit) tool=runsv ;; s6) tool=s6-svscan ;; esac
		if ! command -v "$tool" >/dev/null 2>&1; then
			skip "$tool is not installed"
			continue
		fi
		unshare -m -n --propagation private sh "$self" inner "$kind" "$tmp" "$bin"
		if read -r p f <"$tmp/result-$kind" 2>/dev/null; then
			passed=$((passed + p)) failed=$((failed + f))
		else
			echo "FAIL [$kind]: the run did not finish" >&2
			failed=$((failed + 1))
		fi
	done
fi
echo "test-init: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
