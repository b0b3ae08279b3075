#!/usr/bin/env bash
# Sets everything up and runs every test: Swift unit tests, then the end-to-end suite in
# network-namespace labs (needs root). Exits non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"

if [ "${TPROXY_RELAY_SHARED_HIDDEN:-0}" != 1 ]; then
  bash scripts/setup.sh

  echo "== swift build"
  swift build --build-tests 2>&1 | grep -Ev '^\[[0-9]+/[0-9]+\]' || true
  test -x .build/debug/tproxy-relay || { echo "build failed" >&2; exit 1; }

  # The suite must stand on the clone alone (issue 15). Where a ../shared directory happens to be
  # beside it (CI has one), the public lists are read once as a cross-check, then the whole suite
  # runs in a private mount namespace with an empty, read-only tmpfs over ../shared: any test or
  # helper that reaches for it fails or skips exactly as on a newcomer's machine.
  shared="$(cd .. && pwd)/shared"
  if [ -d "$shared" ] && [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
    echo "== the public lists beside the clone, as a cross-check (RealListTests)"
    if ! TPROXY_RELAY_SHARED="$shared" swift test --skip-build --filter RealListTests >.build/real-lists.log 2>&1; then
      grep -E '✘' .build/real-lists.log | head -n 20
      echo "the public lists did not load as they should (log: .build/real-lists.log)" >&2
      exit 1
    fi
    grep -E 'Test run with' .build/real-lists.log
    echo "== hiding $shared (empty read-only tmpfs, private mount namespace): the rest runs on the clone alone"
    exec unshare --mount --propagation private env -u TPROXY_RELAY_SHARED TPROXY_RELAY_SHARED_HIDDEN=1 \
      bash -c 'mount -t tmpfs -o ro,size=64k tproxy-relay-no-shared "$1" && shift && exec bash "$@"' _ "$shared" "$0" "$@"
  fi
else
  test -z "$(ls -A "$(cd .. && pwd)/shared" 2>/dev/null)" || { echo "../shared is still visible" >&2; exit 1; }
  echo "== ../shared is hidden: $(cd .. && pwd)/shared is empty"
fi

echo "== swift test (unit)"
log=.build/unit-tests.log
if ! swift test --skip-build >"$log" 2>&1; then
  grep -Ev '^(◇|↳)' "$log" | tail -n 80
  echo "unit tests failed (full log: $log)" >&2
  exit 1
fi
grep -E '✘|Test run with' "$log"

echo "== fuzz smoke (every parser of untrusted bytes: corpus replayed under ASan, then a few seconds of libFuzzer)"
if [ "${SKIP_FUZZ:-0}" != 1 ]; then
  bash scripts/fuzz.sh smoke "${FUZZ_SMOKE_SECONDS:-5}"
fi

# The release build (shared with the bench smoke below) and the Debian package, checked by
# lintian; the e2e suite installs it, runs it and removes it (tests/e2e/test_package.py).
echo "== Debian package: scripts/package.sh --lint"
log=.build/package.log
if ! bash scripts/package.sh --lint >"$log" 2>&1; then
  tail -n 30 "$log"
  echo "package build or lintian failed (log: $log)" >&2
  exit 1
fi
grep -E '^== built' "$log"
deb=$(ls .build/package/tproxy-relay_*.deb)

# No allocation on the pipeline's hot paths (blocked, forward, cache hit): a release-built check,
# as only the optimized code says what the relay allocates (Sources/AllocationCheck).
echo "== alloc-check (release): allocations per query on the hot paths"
swift build -c release --product alloc-check 2>&1 | grep -Ev '^\[[0-9]+/[0-9]+\]|^Building|^Compiling|^Build of' || true
.build/release/alloc-check

echo "== end-to-end (namespace lab, real clients)"
(cd tests/e2e && TPROXY_RELAY_BIN="$PWD/../../.build/debug/tproxy-relay" TPROXY_RELAY_DEB="$PWD/../../$deb" \
  python3 -m pytest -q -p no:cacheprovider "$@")

# The benchmark runs from the clone too (its own lab, floor and dnsdist): one short repetition
# proves every SUT starts, intercepts and answers. Figures come from full runs, not from this.
if [ "${SKIP_BENCH_SMOKE:-0}" != 1 ]; then
  echo "== bench smoke: bench/run.sh from this clone (2 s per SUT, blocked names; a release build)"
  log=.build/bench-smoke.log
  if ! SECONDS_PER_RUN=2 SCENARIOS=blocked SUTS="floor floor-forward tproxy-relay dnsdist" RATE_CAP=0 LATENCY_QPS=5000 LATENCY_SECONDS=2 \
       bash bench/run.sh 1 >"$log" 2>&1; then
    tail -n 30 "$log"
    echo "bench smoke failed (log: $log)" >&2
    exit 1
  fi
  # (floor-forward, the null forwarder, passes the blocked names on to knotd: it answers them too.)
  for sut in floor floor-forward tproxy-relay dnsdist; do
    grep -q "^rep=1 RESULT scenario=blocked sut=$sut qps=[0-9]" "$log" || { tail -n 30 "$log"; echo "bench smoke: no result for $sut" >&2; exit 1; }
    # The latency run: every answer timed, percentiles in the line.
    grep -q "^rep=1 latency=5000 RESULT scenario=blocked sut=$sut .* p99_ms=[0-9]" "$log" \
      || { tail -n 30 "$log"; echo "bench smoke: no latency percentiles for $sut" >&2; exit 1; }
    # ... and the time in rtr from the capture of lan0 (most of the 10,000 queries paired).
    grep "^rep=1 latency=5000 RESULT scenario=blocked sut=$sut " "$log" | grep -Eq " res_pairs=[0-9]{4,} .* res_p99_us=[0-9]" \
      || { tail -n 30 "$log"; echo "bench smoke: no residence percentiles for $sut" >&2; exit 1; }
  done
  grep '^rep=' "$log" | sed 's/ raw=.*//'
fi
