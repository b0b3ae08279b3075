#!/usr/bin/env bash
# bench/querylog.sh — what the query log's writer thread costs per line, without the network:
# the real QueryLogWriter drains a ring that a producer fills like a worker (querylog-bench),
# and its thread's CPU is read from /proc. Each repetition runs every kind to a file (page cache)
# and to /dev/null, so formatting and the kernel's copy can be told apart, side by side.
#
#   bench/querylog.sh [REPS]         default 3
#
# Env: KINDS="blocked hot miss", COUNT=1000000 lines per run, RATE=200000 lines/s offered,
#      WORKERS=1 rings (one producer thread each; the writer merges them),
#      DIR (default a fresh directory under /tmp, removed at the end).
# Prints one JSON line per run, then the median CPU µs per line per kind and sink.
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${1:-3}
KINDS=${KINDS:-blocked hot miss}
COUNT=${COUNT:-1000000}
RATE=${RATE:-200000}
WORKERS=${WORKERS:-1}
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"
WORK=${DIR:-$(mktemp -d /tmp/querylog-bench.XXXXXX)}
[ -n "${DIR:-}" ] || trap 'rm -rf "$WORK"' EXIT
swift build -c release --product querylog-bench >/dev/null
BIN=.build/release/querylog-bench
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
for rep in $(seq "$REPS"); do
    for kind in $KINDS; do
        for sink in file null; do
            "$BIN" --kind "$kind" --sink "$sink" --count "$COUNT" --rate "$RATE" --workers "$WORKERS" --dir "$WORK" | tee -a "$RESULTS"
        done
    done
done
python3 - "$RESULTS" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
print("\n| kind | sink | runs | bytes/line | CPU µs/line (median) | user | system |")
print("|---|---|---|---|---|---|---|")
for key in sorted({(r["kind"], r["sink"]) for r in runs}):
    rs = [r for r in runs if (r["kind"], r["sink"]) == key]
    med = lambda f: statistics.median(r[f] for r in rs)
    print(f"| {key[0]} | {key[1]} | {len(rs)} | {max(r['bytes_per_line'] for r in rs)} | "
          f"{med('cpu_us_per_line'):.3f} | {med('user_us_per_line'):.3f} | {med('system_us_per_line'):.3f} |")
PY
