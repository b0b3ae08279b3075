#!/usr/bin/env bash
# bench/quic.sh — relayed UDP 443 (the QUIC path) beside plain kernel forwarding through `rtr`,
# side by side in one run: iperf3 sends 1200-byte datagrams as fast as it can on one flow from
# `cli` to 10.53.4.54:443 in `up`, once through the router alone and once through the relay
# (its first datagram is not QUIC, so the flow is relayed at once, as an established QUIC flow is).
#
#   bench/quic.sh [REPS]        default 3 repetitions of each
#
# Env: DURATION=10 (seconds per run), LENGTH=1200 (datagram bytes), BUFFER=4M (iperf3 -w),
#      DIRECTION=up (or down: the server sends, as in a download),
#      PIN=0:1 (iperf3 client on CPU 0; relay and iperf3 server on CPU 1), OUT=/tmp/tproxy-relay-bench/quic-<stamp>
# Prints per run: datagrams/s received by the server, loss, and the relay's CPU µs per datagram;
# then the median ratio relay ÷ forwarding. Needs root; scripts/setup.sh installs iperf3.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
REPS=${1:-3}
DURATION=${DURATION:-10}
LENGTH=${LENGTH:-1200}
# CPUs: "CLIENT:RELAY_AND_SERVER" for taskset (as bench/lab pins load generator and SUT
# apart); empty: no pinning.
PIN=${PIN-0:1}
PIN_CLIENT=${PIN%%:*} PIN_SUT=${PIN##*:}
pin() { if [ -n "$PIN" ]; then taskset -c "$1" "${@:2}"; else "${@:2}"; fi; }
# up: client → server (iperf3's default); down: server → client (iperf3 -R, a download).
DIRECTION=${DIRECTION:-up}
REVERSE=""
[ "$DIRECTION" = down ] && REVERSE="-R"
# Socket buffers of both iperf3 ends (QUIC servers use several MB: quic-go asks for 7 MB).
BUFFER=${BUFFER:-4M}
OUT=${OUT:-/tmp/tproxy-relay-bench/quic-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"
(cd "$ROOT" && swift build -c release 2>&1 | tail -1)
BIN="$ROOT/.build/release/tproxy-relay"
NAME="qb$(printf '%04x' $((RANDOM)))"
CLI="tr-cli-$NAME" RTR="tr-rtr-$NAME" UP="tr-up-$NAME"
SERVER=10.53.4.54

cleanup() {
  [ -f "$OUT/iperf3.pid" ] && kill "$(cat "$OUT/iperf3.pid")" 2>/dev/null || true
  "$BIN" lab down --name "$NAME" >/dev/null 2>&1 || true
}
trap cleanup EXIT
"$BIN" lab up --name "$NAME" >/dev/null
pin "$PIN_SUT" ip netns exec "$UP" iperf3 -s -B "$SERVER" -p 443 -D -I "$OUT/iperf3.pid"
sleep 0.5

cat >"$OUT/relay.yaml" <<YAML
intercept:
  interfaces: [lan0]
listen:
  address: 127.0.0.1
  address6: "::1"
workers: auto
quic:
  sniff: true
YAML

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# UDP receive-buffer overflows in a namespace (where datagrams are lost when a receiver lags).
rcvbuf_errors() { ip netns exec "$1" awk '/^Udp:/ && ++n == 2 {print $6}' /proc/net/snmp; }

run_iperf() { # label: writes $OUT/label-rep.json, and prints where datagrams overflowed
  local up_before rtr_before
  up_before=$(rcvbuf_errors "$UP"); rtr_before=$(rcvbuf_errors "$RTR")
  pin "$PIN_CLIENT" ip netns exec "$CLI" iperf3 -c "$SERVER" -p 443 -u -b 0 -l "$LENGTH" -t "$DURATION" -w "$BUFFER" $REVERSE -J >"$OUT/$1-$rep.json" || true
  echo "overflows $1: server socket $(( $(rcvbuf_errors "$UP") - up_before )), relay sockets $(( $(rcvbuf_errors "$RTR") - rtr_before ))"
}

result() { # label [relay CPU seconds]: prints the RESULT line
  python3 - "$OUT/$1-$rep.json" "$1" "${2:-}" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["end"]["sum"]
received = s["packets"] - s["lost_packets"]
line = f"RESULT sut={sys.argv[2]} sent={s['packets']} received={received} lost_pct={s['lost_percent']:.2f} pps={received / s['seconds']:.0f}"
if sys.argv[3]:
    cpu = float(sys.argv[3])
    line += f" relay_cpu_s={cpu:.2f} relay_us_per_datagram={cpu * 1e6 / max(received, 1):.2f}"
print(line)
PY
}

: >"$OUT/runs.txt"
for rep in $(seq "$REPS"); do
  run_iperf forwarding
  result forwarding | tee -a "$OUT/runs.txt"
  # taskset and ip exec in turn, so $! is the relay itself (its CPU time is read from /proc).
  ${PIN:+taskset -c "$PIN_SUT"} ip netns exec "$RTR" "$BIN" run --config "$OUT/relay.yaml" >"$OUT/relay-$rep.log" 2>&1 &
  RELAY=$!
  for _ in $(seq 100); do grep -q "relaying DNS" "$OUT/relay-$rep.log" && break; sleep 0.1; done
  before=$(cpu_ticks "$RELAY")
  run_iperf relay
  after=$(cpu_ticks "$RELAY")
  cpu=$(awk -v a="$after" -v b="$before" -v hz="$(getconf CLK_TCK)" 'BEGIN {print (a - b) / hz}')
  kill -INT "$RELAY"; wait "$RELAY" || true
  result relay "$cpu" | tee -a "$OUT/runs.txt"
  grep -o "quic_flows=[0-9]* .*quic_dropped=[0-9]*" "$OUT/relay-$rep.log" | tail -1 || true
done

python3 - "$OUT/runs.txt" <<'PY'
import re, statistics, sys
rows = [dict(re.findall(r"(\w+)=([\d.]+|\w+)", l)) for l in open(sys.argv[1]) if l.startswith("RESULT")]
fwd = [float(r["pps"]) for r in rows if r["sut"] == "forwarding"]
rel = [float(r["pps"]) for r in rows if r["sut"] == "relay"]
ratios = [r / f for f, r in zip(fwd, rel)]
cpu = [float(r["relay_us_per_datagram"]) for r in rows if r["sut"] == "relay"]
print(f"\nforwarding: median {statistics.median(fwd):,.0f} datagrams/s; relay: median {statistics.median(rel):,.0f} datagrams/s")
print(f"relay ÷ forwarding, same repetition: {', '.join(f'{x:.3f}' for x in ratios)} (median {statistics.median(ratios):.3f}); relay CPU {statistics.median(cpu):.2f} µs/datagram")
PY
