#!/bin/sh
# bench/lab/dnstap-collector.sh PID SOCKET FILE — the collector of bench/run.sh's SUT
# tproxy-relay-dnstap: Debian's fstrm_capture on the unix socket SOCKET, writing FILE, until the
# process PID (the relay) exits; then the file's size is said and the file removed (a 10 s run
# writes ~100 MB). Started in its own session and pinned to the load's CPU ($PIN_LOAD): a
# collector is another machine's work, and its CPU is not counted as the relay's.
pid=$1 sock=$2 file=$3
rm -f "$sock" "$file"
taskset -c "${PIN_LOAD:-0}" fstrm_capture -t protobuf:dnstap.Dnstap -u "$sock" -w "$file" 2>/dev/null &
capture=$!
while [ -e "/proc/$pid" ]; do sleep 0.2; done
kill -INT "$capture" 2>/dev/null
wait "$capture" 2>/dev/null
echo "dnstap-collector: $(stat -c %s "$file" 2>/dev/null || echo 0) bytes received" >&2
rm -f "$sock" "$file"
