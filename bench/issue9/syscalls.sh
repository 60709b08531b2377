#!/bin/sh
# Usage (root): copy the binary before this issue to /tmp/netheal-old and the current one to
# /tmp/netheal-new. Namespaces nhsch/nhscp (both veth ends inside them), 198.51.100.0/24 only.
set -e
H=nhsch; P=nhscp
ip netns add $H; ip netns add $P
trap 'ip netns del $H; ip netns del $P' EXIT
ip -n $H link set lo up; ip -n $P link set lo up
ip -n $H link add nhsca type veth peer name nhscb netns $P
ip -n $H link set nhsca up; ip -n $P link set nhscb up
ip -n $H addr add 198.51.100.2/24 dev nhsca; ip -n $P addr add 198.51.100.1/24 dev nhscb
ip -n $H route add default via 198.51.100.1 dev nhsca
sleep 1
for bin in old new; do for d in 5 15; do
  timeout -s INT $d ip netns exec $H strace -f -c -o /tmp/sd-$bin-$d.txt /tmp/netheal-$bin --log stderr --status-file none -t gateway -i 100ms -W 300ms --dry-run nhsca 2>/dev/null || true
done
a=$(awk '$NF=="total"{print $4}' /tmp/sd-$bin-5.txt); b=$(awk '$NF=="total"{print $4}' /tmp/sd-$bin-15.txt)
echo "$bin gateway, no -v: $a calls in 5s, $b in 15s: $(echo "scale=2; ($b-$a)/100" | bc) per round (10s = 100 rounds)"
done
