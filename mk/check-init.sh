#!/bin/sh
# make check-init: lint what mk/install.mk installs.
#   ShellCheck     every shell script in init/ and mk/ (and OpenRC's conf.d file)
#   sh -n          the SysV script under dash and busybox sh when present
#   mandoc, groff  man/netheal.8 and man/netheal.conf.5: no warning at all
#   systemd-analyze verify    the unit as installed (ExecStart at a real file)
#   netheal        the example configuration (as shipped, and with every line uncommented)
#                  and the man page's example pass --check; every option of --help is in
#                  netheal(8), every option netheal(8) names is in --help, every key of
#                  --check's output is in netheal.conf(5) and in the example.
# A missing tool is skipped, or with CI=true is a failure. The binary: $NETHEAL, else
# target/debug/netheal (built with cargo when missing).
set -u
cd "$(dirname "$0")/.." || exit 1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
passed=0 failed=0 skipped=0

ok() { passed=$((passed + 1)); }
fail() {
	echo "FAIL: $*" >&2
	failed=$((failed + 1))
}
# have TOOL: whether it is installed; if not, a skip, or a failure under CI=true.
have() {
	command -v "$1" >/dev/null 2>&1 && return 0
	if [ "${CI:-}" = true ]; then
		fail "$1 is not installed (CI=true does not skip)"
	else
		echo "SKIP: $1 is not installed" >&2
		skipped=$((skipped + 1))
	fi
	return 1
}
# quiet NAME CMD...: passes when CMD exits 0 and prints nothing.
quiet() {
	name=$1
	shift
	if "$@" >"$tmp/out" 2>&1 && [ ! -s "$tmp/out" ]; then
		ok
	else
		fail "$name:"
		cat "$tmp/out" >&2
	fi
}

scripts="init/openrc/netheal init/sysv/netheal init/runit/netheal/run
	init/runit/netheal/log/run init/s6/netheal/run init/s6/netheal-log/run
	mk/test-install.sh mk/check-init.sh init/tests/sysv.sh init/tests/supervised.sh"
if have shellcheck; then
	for f in $scripts; do
		quiet "shellcheck $f" shellcheck "$f"
	done
	# Sourced by openrc-run, which reads the variables it sets.
	quiet "shellcheck init/openrc/netheal.confd" shellcheck -s sh -e SC2034 init/openrc/netheal.confd
fi
for sh in dash "busybox sh"; do
	if command -v "${sh%% *}" >/dev/null 2>&1; then
		# shellcheck disable=SC2086 # "busybox sh" is two words
		quiet "$sh -n init/sysv/netheal" $sh -n init/sysv/netheal
	fi
done

for page in man/netheal.8 man/netheal.conf.5; do
	if have mandoc; then
		quiet "mandoc -T lint $page" mandoc -T lint "$page"
	fi
	if have groff; then
		quiet "groff -ww $page" groff -man -ww -z -Tutf8 "$page"
	fi
	if have man; then
		LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" >/dev/null 2>"$tmp/err"
		if [ -s "$tmp/err" ]; then
			fail "man --warnings -l $page:"
			cat "$tmp/err" >&2
		else
			ok
		fi
	fi
done

# The binary, for the unit's ExecStart and for the checks against --help and --check.
bin=${NETHEAL:-target/debug/netheal}
if [ ! -x "$bin" ] && [ -z "${NETHEAL:-}" ] && have "${CARGO:-cargo}"; then
	"${CARGO:-cargo}" build --quiet || fail "cargo build"
fi

if have systemd-analyze; then
	# As installed: ExecStart names an existing file; man: links resolve to our pages.
	mkdir -p "$tmp/man/man8" "$tmp/man/man5" "$tmp/unit"
	cp man/netheal.8 "$tmp/man/man8/"
	cp man/netheal.conf.5 "$tmp/man/man5/"
	printf '#!/bin/sh\n' >"$tmp/netheal"
	chmod 755 "$tmp/netheal"
	sed "s|/usr/sbin/netheal|$tmp/netheal|" init/systemd/netheal.service >"$tmp/unit/netheal.service"
	MANPATH=$tmp/man quiet "systemd-analyze verify netheal.service" \
		systemd-analyze verify "$tmp/unit/netheal.service"
fi

# check_conf FILE: netheal --check accepts FILE (its settings on stdout are not wanted).
check_conf() { "$bin" --check -c "$1" >/dev/null; }

if [ -x "$bin" ]; then
	# A root-owned, go-w copy: netheal refuses anything else when run as root.
	conf=$tmp/example.conf
	install -m 644 etc/netheal.conf.example "$conf"
	quiet "netheal --check -c etc/netheal.conf.example" check_conf "$conf"
	# Every commented-out setting, switched on (paths of scripts replaced by /bin/true).
	sed -e 's/^#\([a-z-]* = \)/\1/' -e 's/^#\(\[[a-z0-9]*\]\)$/\1/' \
		-e 's|/usr/local/sbin/[a-z-]*|/bin/true|' etc/netheal.conf.example |
		awk '/^\[/ { sect = $0 } { k = sect " " $1 } /^[a-z]/ && seen[k]++ { next } { print }' >"$conf"
	quiet "netheal --check on the example with every setting uncommented" \
		check_conf "$conf"
	# The EXAMPLE of netheal.conf(5).
	sed -n '/^\.SH EXAMPLE/,/^\.EE/p' man/netheal.conf.5 | sed -e '1,2d' -e '$d' -e 's/\\-/-/g' \
		-e 's|/usr/local/sbin/[a-z-]*|/bin/true|' >"$conf"
	quiet "netheal --check on netheal.conf(5)'s EXAMPLE" check_conf "$conf"

	# Options: --help and netheal(8) name the same long options.
	"$bin" --help | grep -o -- '--[a-z][a-z-]*' | sort -u >"$tmp/help"
	sed 's/\\-/-/g' man/netheal.8 | grep -o -- '--[a-z][a-z-]*' | sort -u >"$tmp/man8"
	if [ -s "$tmp/help" ] && diff "$tmp/help" "$tmp/man8" >"$tmp/diff"; then
		ok
	else
		fail "long options of --help (<) and netheal(8) (>) differ:"
		cat "$tmp/diff" >&2
	fi
	# Keys: every key --check prints is documented in netheal.conf(5) and the example.
	install -m 644 etc/netheal.conf.example "$conf"
	"$bin" --check -c "$conf" | sed -n 's/^\([a-z-]*\) = .*/\1/p' | sort -u >"$tmp/keys"
	[ -s "$tmp/keys" ] || fail "netheal --check printed no keys"
	while read -r key; do
		k=$(printf '%s' "$key" | sed 's/-/\\\\-/g')
		if grep -q "^\.BI $k " man/netheal.conf.5 &&
			grep -q "^#*$key = " etc/netheal.conf.example; then
			ok
		else
			fail "key '$key' is missing from netheal.conf(5) or etc/netheal.conf.example"
		fi
	done <"$tmp/keys"
elif [ "${CI:-}" = true ]; then
	fail "no netheal binary at $bin"
else
	echo "SKIP: no netheal binary at $bin" >&2
	skipped=$((skipped + 1))
fi

echo "check-init: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
