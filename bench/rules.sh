#!/usr/bin/env bash
# Rule-set cost, in one process per list: load time, resident memory added, lookup latency
# percentiles (half hits below listed names, half misses) warm, as a shuffled stream of distinct
# names, and cold (caches flushed before each; Sources/RulesBenchmark says how), and the peak
# resident memory during a reload (old set held while the new one is built).
#
#   bench/rules.sh            100k, 1M and 2M generated `||name^` rules, the in-repo list
#                             fixtures (one per format, Tests/RulesTests/Fixtures/lists), then
#                             every real list in ../shared/data/blocklists (or
#                             $TPROXY_RELAY_SHARED/data/blocklists) when there is one
#   SIZES="1000000" bench/rules.sh      only these generated sizes
#
# Then the per-query cost of filters.clients with 0 to 1,024 named addresses (rules-bench policy).
#
# Output: one JSON line per list (results/rules-<date>.jsonl), then a table.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-"100000 1000000 2000000"}
SHARED=${TPROXY_RELAY_SHARED:-$(cd .. && pwd)/shared}
LISTS_DIR="$SHARED/data/blocklists"
WORK=$(mktemp -d /tmp/rules-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p results
OUT="results/rules-$(date +%Y%m%d-%H%M%S).jsonl"

swift build -c release --product rules-bench >/dev/null
BIN=.build/release/rules-bench

for n in $SIZES; do
    "$BIN" generate "$n" "$WORK/generated-$n.txt"
    "$BIN" measure "$WORK/generated-$n.txt" | tee -a "$OUT"
    rm -f "$WORK/generated-$n.txt"
done
for f in Tests/RulesTests/Fixtures/lists/fixture.*; do
    "$BIN" measure "$f" | tee -a "$OUT"
done
if [ -d "$LISTS_DIR" ]; then
    for f in "$LISTS_DIR"/*; do
        case "$f" in *.txt|*.conf) "$BIN" measure "$f" | tee -a "$OUT" ;; esac
    done
else
    echo "(no public lists at $LISTS_DIR: measured the generated sets and the in-repo fixtures only)" >&2
fi
python3 - "$OUT" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"\n{'list':42} {'rules':>9} {'names':>9} {'load ms':>8} {'+RSS MB':>8} {'warm p50':>8} {'p99':>6} {'stream p50':>10} {'p99':>6} "
      f"{'cold p50':>8} {'p99':>6} {'reload peak/(old+new)':>22}")
for r in rows:
    print(f"{r['lists'][0][:42]:42} {r['rules']:9d} {r.get('names', 0):9d} {r['load_ms']:8.0f} {r['rss_added_mb']:8.1f} {r['lookup_p50_us']:8.2f} "
          f"{r['lookup_p99_us']:6.2f} {r['stream_p50_us']:10.2f} {r['stream_p99_us']:6.2f} {r['cold_p50_us']:8.2f} {r['cold_p99_us']:6.2f} "
          f"{r['reload_peak_vs_old_plus_new']:22.3f}")
print("(µs per lookup; warm: 20,000 names cycled; stream: every listed name once, shuffled; cold: caches flushed before each)")
PY
echo
echo "filters.clients, ns per lookup as the datapath asks (rules-bench policy N: N single addresses, four blocks):"
for n in 0 8 64 256 1024; do "$BIN" policy "$n"; done
