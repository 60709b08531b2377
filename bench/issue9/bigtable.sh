#!/bin/sh
# RSS and CPU per round with a 200k-route table, old vs new binary
# Usage (root): /tmp/netheal-old and /tmp/netheal-new as in syscalls.sh. Namespaces nhbgh/nhbgp;
# 200 000 /64 routes in 2001:db8:f0::/46 through a veth whose both ends are in nhbgh.
set -e
H=nhbgh; P=nhbgp
ip netns add $H; ip netns add $P
trap 'ip netns del $H; ip netns del $P' EXIT
ip -n $H link set lo up; ip -n $P link set lo up
ip -n $H link add nhbga type veth peer name nhbgb netns $P
ip -n $H link set nhbga up; ip -n $P link set nhbgb up
ip -n $H addr add 2001:db8:1::2/64 dev nhbga nodad; ip -n $P addr add 2001:db8:1::1/64 dev nhbgb nodad
ip -n $H -6 route add default via 2001:db8:1::1 dev nhbga
ip -n $H link add nhbgc type veth peer name nhbgd
ip -n $H link set nhbgc up; ip -n $H link set nhbgd up
ip -n $H addr add 2001:db8:2::2/64 dev nhbgc nodad
measure() { # $1 label
  for bin in old new; do
    ip netns exec $H /tmp/netheal-$bin --log stderr --status-file none -t gateway -i 100ms -W 300ms --dry-run -v nhbga 2>/tmp/big-$bin-$1.log &
    pid=$!; sleep 2
    t0=$(awk '{print $14+$15}' /proc/$pid/stat); sleep 10; t1=$(awk '{print $14+$15}' /proc/$pid/stat)
    rss=$(awk '/VmRSS/{print $2}' /proc/$pid/status)
    kill -INT $pid; wait $pid 2>/dev/null || true
    rtt=$(grep "round [0-9]* good" /tmp/big-$bin-$1.log | tail -50 | sed 's/.* \([0-9.]*\)ms$/\1/' | sort -n | awk '{a[NR]=$1} END{print a[int(NR/2)+1]}')
    fails=$(grep -c "round [0-9]* failed" /tmp/big-$bin-$1.log || true)
    echo "$1 $bin: CPU $(( (t1-t0)*10 )) ms per 10 s (100 rounds), RSS ${rss} kB, median RTT ${rtt} ms, failed rounds $fails"
  done
}
measure empty
python3 -c "
for i in range(200000):
    print(f'route add 2001:db8:f{i>>16:x}:{i&0xffff:x}::/64 via 2001:db8:2::1 dev nhbgc')" > /tmp/big.batch
ip netns exec $H ip -6 -batch /tmp/big.batch
echo routes: $(ip -n $H -6 route show | wc -l)
measure 200k
