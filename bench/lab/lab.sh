#!/usr/bin/env bash
# bench/lab/lab.sh up|down|reset-rtr|names — the benchmark lab, on this host only.
#
#   cli 10.53.1.2 ──veth── lan0 10.53.1.1 [ rtr ] wan0 10.53.2.1 ──veth── up 10.53.2.53 (knotd)
#   dnsperf (CPU 0)          SUT here (CPU 1), ip_forward=1            zone test.: *.bench A 10.53.2.100
#
# Namespaces are named tb-{cli,rtr,up}-$BENCH_ID (BENCH_ID: run.sh sets one per run), so a lab
# never meets another (the e2e suite's, a second bench). `down` removes them and every process
# started in them. `reset-rtr` removes what a SUT installed in rtr (its nft tables, policy rules,
# the routes of non-default tables). In `up`, an nft counter counts the DNS queries that arrive
# from the client's own address: a SUT that intercepts must leave it at 0.
set -euo pipefail
: "${BENCH_ID:?BENCH_ID names this lab (bench/run.sh sets it)}"
WORK=${BENCH_WORK:-/tmp/tproxy-relay-bench}
STATE=$WORK/lab-$BENCH_ID
CLI=tb-cli-$BENCH_ID RTR=tb-rtr-$BENCH_ID UP=tb-up-$BENCH_ID
PIN_SUT=${PIN_SUT:-1}

log() { echo "[lab $BENCH_ID] $*" >&2; }
exists() { ip netns list | awk '{print $1}' | grep -qx "$1"; }

kill_namespace_processes() {
	local ns=$1 pids
	exists "$ns" || return 0
	pids=$(ip netns pids "$ns" 2>/dev/null || true)
	[ -n "$pids" ] && kill $pids 2>/dev/null || true
	for _ in $(seq 30); do
		[ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && return 0
		sleep 0.1
	done
	pids=$(ip netns pids "$ns" 2>/dev/null || true)
	[ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
}

down() {
	for ns in $CLI $RTR $UP; do
		kill_namespace_processes "$ns"
		exists "$ns" && ip netns del "$ns"
	done
	rm -rf "$STATE"
}

start_knot() {
	local d=$STATE/knot
	mkdir -p "$d/db"
	cat >"$d/test.zone" <<'ZONE'
$ORIGIN test.
$TTL 3600
@        IN SOA ns.test. hostmaster.test. 1 3600 900 604800 300
@        IN NS  ns
ns       IN A   10.53.2.53
*        IN A   10.53.2.200
*.bench  IN A   10.53.2.100
ZONE
	cat >"$d/knot.conf" <<CONF
server:
    rundir: "$d"
    listen: 10.53.2.53@53
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: "$d/knot.log"
    any: warning
database:
    storage: "$d/db"
template:
  - id: default
    storage: "$d"
    file: "%s.zone"
    semantic-checks: off
    journal-content: none
    zonefile-sync: -1
zone:
  - domain: test.
CONF
	# The upstream shares the SUT's core: what a query costs on that core is the SUT's plus knot's.
	setsid ip netns exec "$UP" taskset -c "$PIN_SUT" knotd -c "$d/knot.conf" >"$d/knotd.out" 2>&1 </dev/null &
	for _ in $(seq 100); do
		if ip netns exec "$CLI" dig +time=1 +tries=1 +short @10.53.2.53 probe.bench.test A 2>/dev/null | grep -qx '10.53.2.100'; then
			return 0
		fi
		sleep 0.1
	done
	log "knotd does not answer (see $d)"
	return 1
}

up() {
	down
	mkdir -p "$STATE"
	for ns in $CLI $RTR $UP; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
	ip link add "tbc$BENCH_ID" type veth peer name lan0 netns "$RTR"
	ip link set "tbc$BENCH_ID" netns "$CLI"
	ip -n "$CLI" link set "tbc$BENCH_ID" name eth0
	ip link add "tbu$BENCH_ID" type veth peer name wan0 netns "$RTR"
	ip link set "tbu$BENCH_ID" netns "$UP"
	ip -n "$UP" link set "tbu$BENCH_ID" name eth0
	ip -n "$CLI" addr add 10.53.1.2/24 dev eth0
	ip -n "$RTR" addr add 10.53.1.1/24 dev lan0
	ip -n "$RTR" addr add 10.53.2.1/24 dev wan0
	ip -n "$UP" addr add 10.53.2.53/24 dev eth0
	for pair in "$CLI eth0" "$RTR lan0" "$RTR wan0" "$UP eth0"; do set -- $pair; ip -n "$1" link set "$2" up; done
	ip -n "$CLI" route add default via 10.53.1.1
	ip -n "$UP" route add default via 10.53.2.1
	ip netns exec "$RTR" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
		net.ipv4.conf.lan0.rp_filter=0 net.ipv4.conf.wan0.rp_filter=0
	# IPv6 is not part of this lab.
	for ns in $CLI $RTR $UP; do ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1; done
	ip netns exec "$UP" nft -f - <<'NFT'
table inet tb_count {
	chain input {
		type filter hook input priority 0;
		ip saddr 10.53.1.2 udp dport 53 counter name direct
		udp dport 53 counter name queries
	}
	counter direct {}
	counter queries {}
}
NFT
	start_knot
	log "up: $CLI(10.53.1.2) -> $RTR(lan0 10.53.1.1 | wan0 10.53.2.1) -> $UP(10.53.2.53, knotd)"
}

reset_rtr() {
	exists "$RTR" || return 0
	ip netns exec "$RTR" nft flush ruleset
	# Every policy rule but the kernel's three (priorities 0, 32766, 32767).
	ip netns exec "$RTR" ip rule show | awk -F: '$1 != 0 && $1 != 32766 && $1 != 32767 {print $1}' | sort -u | while read -r priority; do
		while ip netns exec "$RTR" ip rule del priority "$priority" 2>/dev/null; do :; done
	done
	for table in $(ip netns exec "$RTR" ip route show table all | grep -o 'table [0-9]*' | awk '{print $2}' | sort -u); do
		ip netns exec "$RTR" ip route flush table "$table" 2>/dev/null || true
	done
}

case ${1:-} in
	up) up ;;
	down) down ;;
	reset-rtr) reset_rtr ;;
	names) echo "$CLI $RTR $UP" ;;
	*) echo "usage: $0 up|down|reset-rtr|names" >&2; exit 2 ;;
esac
