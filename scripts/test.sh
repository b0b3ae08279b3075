#!/usr/bin/env bash
# Sets everything up and runs every test: Swift unit tests, then the end-to-end suite in
# network-namespace labs (needs root). Exits non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"

bash scripts/setup.sh

echo "== swift build"
swift build --build-tests 2>&1 | grep -Ev '^\[[0-9]+/[0-9]+\]' || true
test -x .build/debug/tproxy-relay || { echo "build failed" >&2; exit 1; }

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

echo "== end-to-end (namespace lab, real clients)"
cd tests/e2e
TPROXY_RELAY_BIN="$PWD/../../.build/debug/tproxy-relay" python3 -m pytest -q -p no:cacheprovider "$@"
