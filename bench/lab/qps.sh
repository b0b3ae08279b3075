#!/usr/bin/env bash
# bench/lab/qps.sh SCENARIO SUT [COMMAND...] — one measurement: start the SUT in rtr, check that it
# intercepts, run dnsperf from cli for $SECONDS_PER_RUN seconds, stop the SUT, print one RESULT line.
#
#   SCENARIO   blocked | hot | miss (the query files of bench/lab/data.py, in $DATA)
#   SUT        a name for the line; "direct" runs no SUT (plain forwarding through rtr)
#   COMMAND    run by sh -c inside rtr, in its own process group, pinned to CPU $PIN_SUT; it
#              installs its own interception and stays in the foreground
#
# The SUT is ready when 3 probes in a row from cli to 10.53.2.53 are answered from 10.53.2.53
# and none reached the upstream from the client's own address (they were intercepted, not
# routed). A SUT whose name ends in -source sends upstream from the client's own address on
# purpose (upstream.client_identity: source): for it, interception is told by its nft table. CPU: the SUT's process group (utime+stime of every process in it, from /proc; also apart: sut_user_us_q, sut_system_us_q) and the
# whole of CPU $PIN_SUT (/proc/stat), over the dnsperf run; per answered query in µs.
# With RESIDENCE=1, tcpdump (pinned to the load's CPU) records lan0 inside rtr over the run and
# bench/lab/residence.py adds each query's time in rtr (arrival to answer, kernel timestamps):
# res_p50_us, res_p99_us, res_p999_us, and the frames tcpdump lost (res_capture_dropped);
# KEEP_PCAP=1 keeps the capture beside the raw output.
# Env: BENCH_ID (lab), PIN_LOAD=0, PIN_SUT=1, SECONDS_PER_RUN=10, DNSPERF_EXTRA (e.g. "-Q 50000").
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
: "${BENCH_ID:?}"
WORK=${BENCH_WORK:-/tmp/tproxy-relay-bench}
SCENARIO=$1 SUT=$2
shift 2
COMMAND="$*"
read -r CLI RTR UP < <("$HERE/lab.sh" names)
PIN_LOAD=${PIN_LOAD:-0} PIN_SUT=${PIN_SUT:-1}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
RAW=${RAW:-$WORK/raw}
mkdir -p "$RAW"
stamp=$(date +%Y%m%dT%H%M%S)
out="$RAW/$stamp-$SCENARIO-$SUT.txt"
TICKS=$(getconf CLK_TCK)

counter() { ip netns exec "$UP" nft list counter inet tb_count "$1" | awk '/packets/ {print $2}'; }
group_ticks() { # utime and stime (clock ticks) of every process in the SUT's process group
	local user=0 system=0 pid fields
	for pid in $(pgrep -g "$PGID"); do
		fields=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
		# after the name: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
		set -- $fields
		user=$((user + ${12}))
		system=$((system + ${13}))
	done
	echo "$user $system"
}
core_ticks() { awk -v cpu="cpu$PIN_SUT" '$1 == cpu {print $2+$3+$4+$7+$8, $5+$6}' /proc/stat; }

probe() { # 3 answered probes in a row, from 10.53.2.53, none seen by up from the client
	local before after ok=0
	before=$(counter direct)
	for i in 1 2 3; do
		ip netns exec "$CLI" dig +time=1 +tries=1 @10.53.2.53 "probe$RANDOM.bench.test" A 2>/dev/null | grep -q 'SERVER: 10.53.2.53#53' && ok=$((ok + 1))
	done
	after=$(counter direct)
	[ "$ok" = 3 ] || return 1
	case $SUT in
	direct) return 0 ;;
	*-source) ip netns exec "$RTR" nft list table inet tproxy_relay >/dev/null 2>&1 ;;
	*) [ "$before" = "$after" ] ;;
	esac
}

PGID="" CAPTURE=""
stop_sut() {
	if [ -n "$CAPTURE" ]; then kill "$CAPTURE" 2>/dev/null || true; CAPTURE=""; fi
	[ -n "$PGID" ] || return 0
	kill -TERM -- "-$PGID" 2>/dev/null || true
	for _ in $(seq 50); do kill -0 -- "-$PGID" 2>/dev/null || break; sleep 0.1; done
	kill -KILL -- "-$PGID" 2>/dev/null || true
	PGID=""
	"$HERE/lab.sh" reset-rtr
}
trap stop_sut EXIT

"$HERE/lab.sh" reset-rtr
if [ "$SUT" != direct ]; then
	setsid ip netns exec "$RTR" taskset -c "$PIN_SUT" sh -c "$COMMAND" >"$out.sut" 2>&1 </dev/null &
	PGID=$!
	ready=0
	for _ in $(seq 100); do
		if ! kill -0 "$PGID" 2>/dev/null; then break; fi
		if probe; then ready=1; break; fi
		sleep 0.2
	done
	if [ "$ready" != 1 ]; then
		echo "RESULT scenario=$SCENARIO sut=$SUT error=not-ready raw=$out.sut"
		tail -n 5 "$out.sut" >&2 || true
		exit 1
	fi
fi

if [ "${RESIDENCE:-0}" = 1 ]; then
	ip netns exec "$RTR" taskset -c "$PIN_LOAD" tcpdump -i lan0 -n -p -s 96 -B 65536 --time-stamp-precision=nano -w "$out.pcap" udp port 53 \
		>"$out.tcpdump" 2>&1 &
	CAPTURE=$!
	for _ in $(seq 50); do grep -q "listening on" "$out.tcpdump" 2>/dev/null && break; sleep 0.1; done
fi
u0=$(counter queries) d0=$(counter direct)
read -r gu0 gs0 < <([ -n "$PGID" ] && group_ticks || echo 0 0)
read -r busy0 idle0 < <(core_ticks)
t0=$(date +%s.%N)
ip netns exec "$CLI" taskset -c "$PIN_LOAD" dnsperf -s 10.53.2.53 -d "${DATA:-$WORK/lab-data}/$SCENARIO.q" -l "$SECONDS_PER_RUN" -T 2 -c 32 -q 200 \
	-t 2 ${DNSPERF_EXTRA:-} >"$out" 2>&1 || true
t1=$(date +%s.%N)
read -r gu1 gs1 < <([ -n "$PGID" ] && group_ticks || echo 0 0)
g0=$((gu0 + gs0)) g1=$((gu1 + gs1))
read -r busy1 idle1 < <(core_ticks)
u1=$(counter queries) d1=$(counter direct)
residence=""
if [ -n "$CAPTURE" ]; then
	kill -INT "$CAPTURE" 2>/dev/null || true
	wait "$CAPTURE" 2>/dev/null || true
	residence="$(python3 "$HERE/residence.py" "$out.pcap") res_capture_dropped=$(sed -n 's/^\([0-9]*\) packets dropped by kernel.*/\1/p' "$out.tcpdump")"
	[ -n "${KEEP_PCAP:-}" ] || rm -f "$out.pcap"
	CAPTURE=""
fi
stop_sut
trap - EXIT

field() { sed -n "s/^ *$1 *\([0-9.]*\).*/\1/p" "$out" | head -1; }
sent=$(field "Queries sent:")
completed=$(field "Queries completed:")
lost=$(field "Queries lost:")
qps=$(field "Queries per second:")
avg=$(sed -n 's/^ *Average Latency (s): *\([0-9.]*\).*max \([0-9.]*\).*/\1/p' "$out" | head -1)
max=$(sed -n 's/^ *Average Latency (s): *[0-9.]* *(min [0-9.]*, max \([0-9.]*\)).*/\1/p' "$out" | head -1)
rcodes=$(sed -n 's/^ *Response codes: *//p' "$out" | head -1 | tr -d ' ' )
elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')
sut_us=$(awk -v t=$((g1 - g0)) -v hz="$TICKS" -v q="${completed:-0}" 'BEGIN {if (q > 0) printf "%.2f", t / hz * 1e6 / q; else print "NA"}')
# The same split into user and kernel time (ticks as the kernel accounts them): the SUT's own code
# against the system calls and network stack it drives, the part that changes least between runs.
user_us=$(awk -v t=$((gu1 - gu0)) -v hz="$TICKS" -v q="${completed:-0}" 'BEGIN {if (q > 0) printf "%.2f", t / hz * 1e6 / q; else print "NA"}')
system_us=$(awk -v t=$((gs1 - gs0)) -v hz="$TICKS" -v q="${completed:-0}" 'BEGIN {if (q > 0) printf "%.2f", t / hz * 1e6 / q; else print "NA"}')
core_us=$(awk -v t=$((busy1 - busy0)) -v hz="$TICKS" -v q="${completed:-0}" 'BEGIN {if (q > 0) printf "%.2f", t / hz * 1e6 / q; else print "NA"}')
cpu_sut=$(awk -v t=$((g1 - g0)) -v hz="$TICKS" -v e="$elapsed" 'BEGIN {printf "%d%%", t / hz / e * 100}')
core_idle=$(awk -v b=$((busy1 - busy0)) -v i=$((idle1 - idle0)) 'BEGIN {if (b + i > 0) printf "%d%%", i * 100 / (b + i); else print "NA"}')
# With dnsperf -v (bench/run.sh's latency runs), every answer is a line "> RCODE NAME TYPE SECONDS":
# their percentiles, then those lines are dropped from the raw file (a run holds 100,000).
latency=""
if grep -q '^> ' "$out"; then
	latency=$(grep '^> ' "$out" | awk '$NF ~ /^[0-9.]+$/ {print $NF * 1000}' | sort -n | awk '
		{v[NR] = $1} END {if (NR > 0) printf " answers_timed=%d p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f", NR, v[int(NR * 0.5) + 1], v[int(NR * 0.99) + 1], v[int(NR * 0.999) + 1]}')
	sed -i '/^> /d' "$out"
fi
line="RESULT scenario=$SCENARIO sut=$SUT qps=${qps:-NA} avg_ms=$(awk -v a="${avg:-0}" 'BEGIN {printf "%.3f", a * 1000}') max_ms=$(awk -v a="${max:-0}" 'BEGIN {printf "%.1f", a * 1000}') sent=${sent:-NA} completed=${completed:-NA} lost=${lost:-NA} rcodes=${rcodes:-NA} upstream_q=$((u1 - u0)) upstream_direct=$((d1 - d0)) cpu_sut=$cpu_sut sut_core_idle=$core_idle sut_us_q=$sut_us sut_user_us_q=$user_us sut_system_us_q=$system_us core_us_q=$core_us$latency$residence raw=$out"
echo "$line" | tee -a "$out"
