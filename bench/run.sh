#!/usr/bin/env bash
# bench/run.sh — tproxy-relay beside dnsdist, the floor (a null relay) and no relay at all, side
# by side in one run, in this repository's own lab (bench/lab: three namespaces, knotd upstream,
# dnsperf load; bench/floor: the null relay; bench/dnsdist: the yardstick).
#
#   bench/run.sh [REPS]          default 3 repetitions of every scenario and SUT
#
# Env:
#   SCENARIOS="miss hot"         query sets from bench/lab/data.py: miss = unique names (forwarded),
#                                hot = 1,000 names repeated (answered from the cache),
#                                blocked = names from the 100k block list (answered locally)
#   SUTS="direct dnsdist floor tproxy-relay"   (also: floor-forward, the forwarding floor: the null
#                                relay passing every query on to the address the client asked and
#                                the answer back, the least a miss can cost (own lab only);
#                                tproxy-relay-log, the relay with the query log on;
#                                tproxy-relay-source, the relay with upstream.client_identity: source;
#                                tproxy-relay-metrics, the relay with metrics.listen, scraped every second;
#                                tproxy-relay-limited, the relay with limits.client_qps set above the load
#                                (every query goes through the shared buckets, none is limited);
#                                tproxy-relay-web, the relay with the query log and the dashboard on,
#                                one admin watching it (Live streaming, status and overview polled:
#                                bench/lab/web-viewer.py), against tproxy-relay-log;
#                                tproxy-relay-dnstap, the relay streaming dnstap (client_response) to
#                                fstrm_capture writing a file (bench/lab/dnstap-collector.sh);
#                                DNSTAP_MESSAGES and DNSTAP_QUEUE set its dnstap.messages and queue;
#                                baseline, another build of the relay given by BASELINE_BIN, run
#                                with the same configuration: before/after in the same run)
#   LOG_ROTATE=64M LOG_KEEP=5    the log SUT's rotation (the relay's defaults)
#   PROTO=udp                    udp, or tcp (dnsperf -m tcp; the floor is UDP-only and is skipped)
#   RATE_CAP=50000               an extra miss run of tproxy-relay capped at this offered rate
#                                (dnsperf -Q), to check for loss below saturation; 0 skips it
#   SECONDS_PER_RUN=10           length of each dnsperf run
#   LATENCY_QPS=20000            per repetition, scenario and SUT (the relay, with and without
#                                the log, dnsdist, the floor, the baseline): one more run of
#                                LATENCY_SECONDS=5 s at this offered rate with every answer timed
#                                (dnsperf -v -T 1): p50/p99/p99.9 in the summary; 0 skips them
#   RESIDENCE=1                  in those runs, also each query's time inside rtr from a tcpdump
#                                of lan0 (arrival to answer): p50/p99/p99.9 µs; 0 skips it
#   LAB=own                      own (bench/lab) or reference: the harness in ../shared/bench (or
#                                $BENCH), kept as a cross-check of this lab's figures
#   OUT=/tmp/tproxy-relay-bench/results/<stamp>
#
# Prints every RESULT line and a summary: qps, loss, and CPU µs per answered query of the SUT,
# with its ratio to the floor and to dnsdist measured in the same repetition.
# Needs root, dnsperf, knot and dnsdist (bash bench/setup.sh installs them).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
LAB=${LAB:-own}
if [ "$LAB" = reference ]; then
  BENCH=${BENCH:-$(cd "$ROOT/../shared/bench" && pwd)}
fi
REPS=${1:-3}
SCENARIOS=${SCENARIOS:-miss hot}
SUTS=${SUTS:-direct dnsdist floor tproxy-relay}
RATE_CAP=${RATE_CAP:-50000}
LATENCY_QPS=${LATENCY_QPS:-20000}
LATENCY_SECONDS=${LATENCY_SECONDS:-5}
RESIDENCE=${RESIDENCE:-1}
PROTO=${PROTO:-udp}
MODE_FLAGS=""
if [ "$PROTO" = tcp ]; then
  MODE_FLAGS="-m tcp"
  SUTS=${SUTS/floor/}
fi
export BENCH_WORK=${BENCH_WORK:-/tmp/tproxy-relay-bench}
OUT=${OUT:-$BENCH_WORK/results/$(date +%Y%m%d-%H%M%S)-${PROTO:-udp}}
mkdir -p "$OUT"
export RAW="$OUT/raw"

[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"
(cd "$ROOT" && swift build -c release --product tproxy-relay --static-swift-stdlib 2>&1 | tail -1)
BIN="$ROOT/.build/release/tproxy-relay"
CONFIG="$OUT/relay.yaml"
cat >"$CONFIG" <<YAML
intercept:
  interfaces: [lan0]
listen:
  address: 127.0.0.1
  address6: "::1"     # the reference lab disables IPv6: the relay warns and relays IPv4
  dns_port: 15353
workers: auto           # qps.sh pins the SUT to one CPU, so one worker
upstream:
  mode: original
  timeout: 2s
filters:
  lists: [$OUT/blocklist-100k.adblock.txt]   # the 100k names dnsdist blocks, as ||name^ (name and below, as dnsdist)
  block_with: nxdomain
YAML
# The same relay with the query log on (SUT tproxy-relay-log), rotated as the relay does by
# default (64 MiB, 5 kept; LOG_ROTATE and LOG_KEEP change it). Whether it kept up is read from the
# writer's own totals, which the relay logs at stop ("query log: N entries written, M dropped"),
# and compared with the queries answered; the files kept are counted too.
CONFIG_LOG="$OUT/relay-log.yaml"
cp "$CONFIG" "$CONFIG_LOG"
printf 'querylog:\n  path: %s\n  rotate_size: %s\n  keep: %s\n' "$OUT/queries.jsonl" "${LOG_ROTATE:-64M}" "${LOG_KEEP:-5}" >>"$CONFIG_LOG"
# The relay with upstream.client_identity: source (SUT tproxy-relay-source): the upstream sees the
# client's address; its cost per query against tproxy-relay is what the miss scenario measures.
CONFIG_SOURCE="$OUT/relay-source.yaml"
sed 's/^  timeout: 2s$/  timeout: 2s\n  client_identity: source/' "$CONFIG" >"$CONFIG_SOURCE"
# The relay with the metrics endpoint on and scraped every second (SUT tproxy-relay-metrics): the
# tallies on every answer plus the scrapes, against tproxy-relay in the same repetition.
CONFIG_METRICS="$OUT/relay-metrics.yaml"
cp "$CONFIG" "$CONFIG_METRICS"
printf 'metrics:\n  listen: 127.0.0.1:9153\n' >>"$CONFIG_METRICS"
# The relay with per-client rate limiting on (SUT tproxy-relay-limited), set high enough that
# dnsperf's one client is never limited: what the buckets cost per query.
CONFIG_LIMITED="$OUT/relay-limited.yaml"
cp "$CONFIG" "$CONFIG_LIMITED"
printf 'limits:\n  client_qps: 1000000\n' >>"$CONFIG_LIMITED"
# The relay with the query log and the web dashboard on, and an admin watching (SUT
# tproxy-relay-web): what an open dashboard costs, against tproxy-relay-log in the same repetition.
CONFIG_WEB="$OUT/relay-web.yaml"
cp "$CONFIG_LOG" "$CONFIG_WEB"
echo "bench-dashboard" | "$BIN" passwd --file "$OUT/web-password" --password-stdin >/dev/null
printf 'web:\n  listen: 127.0.0.1:8053\n  password_file: %s\n' "$OUT/web-password" >>"$CONFIG_WEB"
# The relay streaming dnstap to a collector (SUT tproxy-relay-dnstap): the worker's copy into its
# ring plus the writer's encoding, against tproxy-relay in the same repetition.
CONFIG_DNSTAP="$OUT/relay-dnstap.yaml"
cp "$CONFIG" "$CONFIG_DNSTAP"
printf 'dnstap:\n  socket: unix:%s/dnstap.sock\n  messages: [%s]\n  queue: %s\n' "$OUT" "${DNSTAP_MESSAGES:-client_response}" \
  "${DNSTAP_QUEUE:-8192}" >>"$CONFIG_DNSTAP"
if [ "$LAB" = reference ]; then
  cd "$BENCH"
  DATA=$BENCH_WORK/data
  [ -s "$DATA/miss.q" ] || ./gen-data.sh
  LAB_CMD=./lab.sh
else
  cd "$HERE"
  # Apart from the reference harness's data/ (its files have other names and its own .lua list).
  export DATA=$BENCH_WORK/lab-data
  python3 "$HERE/lab/data.py" "$DATA"
  export BENCH_ID=${BENCH_ID:-$$}
  LAB_CMD="$HERE/lab/lab.sh"
fi
sed 's/.*/||&^/' "$DATA/blocklist-100k.txt" >"$OUT/blocklist-100k.adblock.txt"
"$BIN" check --config "$CONFIG" >/dev/null
$LAB_CMD up
trap '$LAB_CMD down >/dev/null 2>&1 || true' EXIT

sut_env() {
  case $1 in
    direct) echo "direct" ;;
    dnsdist) [ "$LAB" = reference ] && echo "dnsdist" || echo "cmd dnsdist $HERE/dnsdist/dnsdist.sh $DATA/blocklist-100k.txt" ;;
    floor) [ "$LAB" = reference ] && echo "cmd floor $BENCH/floor/nullrelay.sh" || echo "cmd floor $HERE/floor/floor.sh" ;;
    floor-forward) echo "cmd floor-forward $HERE/floor/floor.sh -f" ;;
    tproxy-relay) echo "cmd tproxy-relay $BIN run --config $CONFIG" ;;
    tproxy-relay-log) echo "cmd tproxy-relay-log $BIN run --config $CONFIG_LOG" ;;
    tproxy-relay-source) echo "cmd tproxy-relay-source $BIN run --config $CONFIG_SOURCE" ;;
    tproxy-relay-limited) echo "cmd tproxy-relay-limited $BIN run --config $CONFIG_LIMITED" ;;
    # sh's $$ is the relay's PID after exec; the scraper has its own session (its CPU is not the SUT's).
    tproxy-relay-metrics) echo "cmd tproxy-relay-metrics setsid python3 $HERE/lab/scrape.py \$\$ http://127.0.0.1:9153/metrics & exec $BIN run --config $CONFIG_METRICS" ;;
    # The collector first (the relay's first connection then succeeds), in its own session.
    tproxy-relay-web) echo "cmd tproxy-relay-web setsid taskset -c ${PIN_LOAD:-0} python3 $HERE/lab/web-viewer.py \$\$ 127.0.0.1:8053 bench-dashboard & exec $BIN run --config $CONFIG_WEB" ;;
    tproxy-relay-dnstap) echo "cmd tproxy-relay-dnstap setsid sh $HERE/lab/dnstap-collector.sh \$\$ $OUT/dnstap.sock $OUT/dnstap.fstrm & while [ ! -S $OUT/dnstap.sock ]; do sleep 0.05; done; exec $BIN run --config $CONFIG_DNSTAP" ;;
    baseline) echo "cmd baseline ${BASELINE_BIN:?BASELINE_BIN names the build to compare with} run --config $CONFIG" ;;
  esac
}

run_one() { # scenario sut [dnsperf extra]
  local scen=$1 sut=$2 extra=${3:-} spec kind name cmd
  spec=$(sut_env "$sut")
  kind=${spec%% *}
  if [ "$LAB" != reference ]; then
    if [ "$kind" = cmd ]; then
      name=$(echo "$spec" | cut -d' ' -f2)
      cmd=$(echo "$spec" | cut -d' ' -f3-)
      DNSPERF_EXTRA="$MODE_FLAGS $extra" "$HERE/lab/qps.sh" "$scen" "$name" "$cmd"
    else
      DNSPERF_EXTRA="$MODE_FLAGS $extra" "$HERE/lab/qps.sh" "$scen" direct
    fi
  elif [ "$kind" = cmd ]; then
    name=$(echo "$spec" | cut -d' ' -f2)
    cmd=$(echo "$spec" | cut -d' ' -f3-)
    DNSPERF_EXTRA="$MODE_FLAGS $extra" SUT_NAME="$name" SUT_CMD="$cmd" ./qps.sh "$scen" cmd
  else
    DNSPERF_EXTRA="$MODE_FLAGS $extra" ./qps.sh "$scen" "$kind"
  fi
}

# Each repetition starts the SUTs one place further round (rep 1: a b c, rep 2: b c a, ...), so
# that no SUT always runs first after the lab is built or right after a given other SUT: the
# machine's drift within a run falls on each in turn.
read -r -a SUT_LIST <<< "$SUTS"
suts_of_rep() {
  local shift=$(( ($1 - 1) % ${#SUT_LIST[@]} ))
  echo "${SUT_LIST[@]:$shift} ${SUT_LIST[@]:0:$shift}"
}

for rep in $(seq "$REPS"); do
  for scen in $SCENARIOS; do
    for sut in $(suts_of_rep "$rep"); do
      [ "$sut" = tproxy-relay-log ] && rm -f "$OUT"/queries.jsonl*
      line=$(run_one "$scen" "$sut" | grep '^RESULT' || true)
      if [ "$sut" = tproxy-relay-log ]; then
        # Every answered query must be in the log: the writer's totals at stop, and the lines
        # in the files still kept (all of them unless rotation removed some).
        sutlog=${STATE:-/tmp/dnsbench}/sut.log
        [ "$LAB" = reference ] || sutlog="$(echo "$line" | sed -n 's/.* raw=\([^ ]*\).*/\1/p').sut"
        totals=$(grep -o 'query log: [0-9]* entries written, [0-9]* dropped' "$sutlog" | tail -1)
        written=$(echo "$totals" | awk '{print $3}')
        dropped=$(echo "$totals" | awk '{print $6}')
        kept=$(cat "$OUT"/queries.jsonl* 2>/dev/null | grep -vc '"log":"status"' || true)
        line="$line log_written=${written:-?} log_dropped=${dropped:-?} log_lines_kept=$kept"
      fi
      if [ "$sut" = tproxy-relay-dnstap ]; then
        # No frame may be dropped: the writer's totals at stop.
        sutlog="$(echo "$line" | sed -n 's/.* raw=\([^ ]*\).*/\1/p').sut"
        totals=$(grep -o 'frames sent, [0-9]* dropped' "$sutlog" | tail -1)
        sent=$(grep -o '[0-9]* frames sent' "$sutlog" | tail -1 | awk '{print $1}')
        line="$line dnstap_sent=${sent:-?} dnstap_dropped=$(echo "$totals" | awk '{print $3}')"
      fi
      echo "rep=$rep $line" | tee -a "$OUT/runs.txt"
    done
  done
  if [ "$RATE_CAP" != 0 ] && [[ " $SUTS " == *" tproxy-relay "* ]]; then
    line=$(run_one miss tproxy-relay "-Q $RATE_CAP" | grep '^RESULT' || true)
    echo "rep=$rep capped=$RATE_CAP $line" | tee -a "$OUT/runs.txt"
  fi
  if [ "$LATENCY_QPS" != 0 ]; then
    # Latency below saturation (at saturation it is the queue's length, whoever serves it):
    # every answer timed by dnsperf -v, at the same offered rate for every SUT. One dnsperf
    # thread (-T 1): at -T 2 its four threads on one core delayed each other by 1-6 ms (perf
    # sched), which landed in every SUT's percentiles. And the time each query spent in rtr,
    # stamped by the kernel on lan0 (RESIDENCE, bench/lab/residence.py): what the SUT alone
    # answers for, free of the load generator's scheduling.
    for scen in $SCENARIOS; do
      for sut in $(suts_of_rep "$rep"); do
        case "$sut" in tproxy-relay|tproxy-relay-log|dnsdist|floor|floor-forward|baseline) ;; *) continue ;; esac
        line=$(RESIDENCE=$RESIDENCE SECONDS_PER_RUN=$LATENCY_SECONDS run_one "$scen" "$sut" "-v -T 1 -Q $LATENCY_QPS" | grep '^RESULT' || true)
        echo "rep=$rep latency=$LATENCY_QPS $line" | tee -a "$OUT/runs.txt"
      done
    done
  fi
done

python3 "$HERE/summarize.py" "$OUT/runs.txt" | tee "$OUT/summary.md"
