#!/usr/bin/env bash
# contrib/ (the fleet kit): promtool check rules and promtool test rules on the alerting
# rules; every metric the Grafana dashboard names is a family (# TYPE line) of a metrics file
# the release binary really wrote (netheal on a veth in a network namespace of its own,
# --dry-run) and netheal_build_info there names this version and target; ansible-lint on the
# role; the role with the local connection into a throw-away root: a --check run changes
# nothing, a real run installs the binary and a config that `netheal --check` accepts, and
# notifies the reload handler, a second run changes nothing, and an invalid config fails
# the play and leaves the good file in place.
# shellcheck source=packaging/tests/lib.sh
. "$(dirname "$0")/lib.sh"

c=$ROOT/contrib
bin=$(binary "$TARGET") || exit 1
if need promtool; then
    check "promtool check rules" promtool check rules "$c/prometheus/netheal.rules.yml"
    check "promtool test rules" sh -c "cd '$c/prometheus' && promtool test rules netheal.rules.test.yml"
fi

# A real metrics file.
if root_only && need unshare ip; then
    m=$T/metrics/netheal.prom
    # A veth pair inside a network namespace of its own (netheal refuses loopback targets);
    # nobody answers 198.51.100.2, which is all a metrics file needs.
    unshare --net sh -c "ip link add v0 type veth peer name v1 &&
        ip addr add 198.51.100.1/24 dev v0 && ip link set v1 up && ip link set v0 up &&
        exec '$bin' --dry-run --log stderr -t 198.51.100.2 -i 200ms -W 200ms \
        --status-file none --metrics-file '$m' v0" 2>"$T/nh.err" &
    nh=$!
    for _ in $(seq 50); do [ -s "$m" ] && break; sleep 0.1; done
    # netheal removes its file when it stops: copy it first.
    cp "$m" "$T/real.prom" 2>/dev/null
    kill "$nh" 2>/dev/null
    wait "$nh" 2>/dev/null
    if [ -s "$T/real.prom" ]; then
        pass "netheal wrote a metrics file"
        names=$(python3 - "$c/grafana/netheal.json" <<'PY'
import json, re, sys
names = set()
def walk(v, key=None):
    if isinstance(v, dict):
        for k, x in v.items(): walk(x, k)
    elif isinstance(v, list):
        for x in v: walk(x, key)
    elif isinstance(v, str) and key in ("expr", "query", "definition"):
        names.update(re.findall(r"\bnetheal_[a-z0-9_]+", v))
walk(json.load(open(sys.argv[1])))
print("\n".join(sorted(names)))
PY
        )
        check "the dashboard names netheal metrics" test -n "$names"
        missing=$(for n in $names; do grep -q "^# TYPE $n " "$T/real.prom" || echo "$n"; done)
        check "every metric the dashboard names is in the real file${missing:+ (missing: $missing)}" \
            test -z "$missing"
        other=$(grep -o '[a-z0-9_]*{' "$c/grafana/netheal.json" | tr -d '{' | sort -u |
            grep -v '^netheal_' | grep -Ev '^(|by|count|max|min|sum|rate|increase|time|label_values)$')
        check "the dashboard uses no other metric${other:+ ($other)}" test -z "$other"
        check "netheal_build_info names version $VERSION and target $TARGET" \
            grep -Eq "^netheal_build_info\{version=\"$VERSION\",commit=\"[0-9a-f]{12}\",target=\"$TARGET\"\} 1$" "$T/real.prom"
    else
        fail "netheal wrote no metrics file"
        cat "$T/nh.err" >&2
    fi
fi

if need ansible-playbook ansible-lint; then
    check "ansible-lint (production profile)" \
        sh -c "cd '$c/ansible' && ansible-lint --offline -q playbook.yml roles/netheal"
    r=$T/aroot
    mkdir -p "$r/etc" "$r/usr/sbin"
    cat >"$T/play.yml" <<PLAY
---
- name: Netheal into a throw-away root
  hosts: localhost
  connection: local
  gather_facts: false
  roles:
    - role: netheal
      vars:
        netheal_binary: "$bin"
        netheal_root: "$r"
        netheal_manage_service: false
        netheal_global:
          log: syslog
          metrics-file: /var/lib/prometheus/node-exporter/netheal.prom
        netheal_interfaces:
          - name: eth0
            target: [gateway, 198.51.100.1]
            quorum: 1
            heal: [ifupdown, link]
            dry_run: "{{ netheal_test_dry_run | default(false) }}"
            interval: "{{ netheal_test_interval | default('10s') }}"
PLAY
    ap() {
        ANSIBLE_ROLES_PATH=$c/ansible/roles ANSIBLE_NOCOLOR=1 ANSIBLE_LOCALHOST_WARNING=0 \
            ANSIBLE_INVENTORY_UNPARSED_WARNING=0 ANSIBLE_RETRY_FILES_ENABLED=0 \
            ansible-playbook -i localhost, "$T/play.yml" "$@"
    }
    ap --check >"$T/a0" 2>&1 || { fail "ansible-playbook --check"; tail -20 "$T/a0" >&2; }
    check "--check run: wrote nothing into the root" test ! -e "$r/etc/netheal.conf" -a ! -e "$r/usr/sbin/netheal"
    check "--check run: reports the changes it would make" grep -Eq 'changed=[1-9]' "$T/a0"
    if ap >"$T/a1" 2>&1; then pass "ansible-playbook (local connection, throw-away root)"; else
        fail "ansible-playbook (local connection, throw-away root)"
        tail -30 "$T/a1" >&2
    fi
    check "the binary is installed, 0755" sh -c "cmp '$bin' '$r/usr/sbin/netheal' && test \"\$(stat -c %a '$r/usr/sbin/netheal')\" = 755"
    check "netheal --check accepts the written config" "$r/usr/sbin/netheal" --check -c "$r/etc/netheal.conf"
    check "the config names eth0 and its ladder" \
        sh -c "grep -qx '\[eth0\]' '$r/etc/netheal.conf' && grep -qx 'heal = ifupdown link' '$r/etc/netheal.conf' && grep -qx 'dry-run = no' '$r/etc/netheal.conf'"
    check "the reload handler was notified" grep -q 'RUNNING HANDLER \[netheal : Reload netheal\]' "$T/a1"
    ap >"$T/a2" 2>&1
    check "a second run changes nothing" grep -Eq 'changed=0 .*failed=0' "$T/a2"
    ap -e netheal_test_interval=20s >"$T/a3" 2>&1
    check "a changed setting rewrites the file and notifies reload" \
        sh -c "grep -qx 'interval = 20s' '$r/etc/netheal.conf' && grep -q 'RUNNING HANDLER \[netheal : Reload netheal\]' '$T/a3'"
    cp "$r/etc/netheal.conf" "$T/good"
    check "an invalid setting fails the play" sh -c "! ANSIBLE_ROLES_PATH='$c/ansible/roles' ANSIBLE_NOCOLOR=1 ansible-playbook -i localhost, '$T/play.yml' -e netheal_test_interval=soon >'$T/a4' 2>&1"
    check "... with netheal --check's message" grep -q "interval" "$T/a4"
    check "... and leaves the good file in place" cmp "$T/good" "$r/etc/netheal.conf"
fi
