#!/usr/bin/env bash
# Fuzzes the parsers of untrusted bytes with libFuzzer (issue 13). Needs only a clone.
#
#   scripts/fuzz.sh TARGET SECONDS [LIBFUZZER-ARGS...]   fuzz one target for SECONDS
#   scripts/fuzz.sh all SECONDS                          every target, SECONDS each
#   scripts/fuzz.sh smoke [SECONDS]                      every target: replay its corpus, then SECONDS (10) of fuzzing
#   scripts/fuzz.sh list                                 the targets
#
# Targets (Sources/FuzzTargets): query, answer, zone, rules, config, quic, quic-plaintext,
# tcp-frames, http-head, fstrm-control, log-line. Seeds live in Fuzz/corpus/TARGET (committed); what fuzzing adds goes to
# .build-fuzz/corpus/TARGET, and with FUZZ_MERGE=1 the new coverage is merged back into
# Fuzz/corpus/TARGET (minimised). A crash is written to Fuzz/crashes/ and fails the script.
# The build is release with -sanitize=fuzzer,address (so LeakSanitizer too), in its own scratch
# path .build-fuzz, and every module of ours is checked for coverage and ASan instrumentation; FuzzCorpusTests replays the same corpora in the unit suite.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"

targets=(query answer zone rules config quic quic-plaintext tcp-frames http-head fstrm-control log-line client-names)
binary=.build-fuzz/release/tproxy-relay-fuzz

build() {
  echo "== building the fuzz binary (release, libFuzzer coverage and AddressSanitizer)"
  # Not `--sanitize fuzzer --sanitize address` alone: SwiftPM passes those as two -sanitize=
  # flags and swiftc keeps only the last, so the Swift modules got ASan without coverage (or
  # coverage without ASan, as the order varied). `--sanitize fuzzer` stays so that SwiftPM links
  # libFuzzer's main; the -Xswiftc flag comes last on every swiftc line and carries both.
  swift build -c release --scratch-path .build-fuzz --product tproxy-relay-fuzz --sanitize fuzzer \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xcc -fsanitize=fuzzer,address \
    2>&1 | grep -Ev '^\[[0-9]+/[0-9]+\]|Cannot export local symbol' || true
  test -x "$binary" || { echo "fuzz build failed" >&2; exit 1; }
  # Every module of ours must carry coverage counters and ASan checks, or fuzzing is blind.
  local module symbols
  for module in DNS Rules QUIC Relay Dnstap FuzzTargets; do
    # Into a variable first: `nm | grep -q` under pipefail fails when grep stops reading early.
    symbols=$(nm .build-fuzz/release/"$module".build/*.o 2>/dev/null || true)
    if [[ "$symbols" != *__sanitizer_cov_trace_cmp* || "$symbols" != *__asan_report* ]]; then
      echo "fuzz build: module $module lacks coverage or ASan instrumentation" >&2
      exit 1
    fi
  done
}

max_len() {
  case "$1" in
    query|answer|tcp-frames) echo 70000 ;;
    http-head) echo 20000 ;;   # past the 8 KiB head bound, in pieces
    fstrm-control) echo 4096 ;;   # past the 512-byte control bound, in pieces
    quic|quic-plaintext) echo 8192 ;;
    *) echo 16384 ;;
  esac
}

run() {
  local target=$1 seconds=$2; shift 2
  mkdir -p ".build-fuzz/corpus/$target" Fuzz/crashes
  echo "== fuzzing $target for ${seconds}s"
  # libFuzzer's status is the function's: a crash must fail the caller (smoke_one), whatever
  # the merge step after it does (before, the `if` below made every run succeed).
  local status=0
  FUZZ_TARGET=$target SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 "$binary" \
    -max_total_time="$seconds" -max_len="$(max_len "$target")" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="Fuzz/crashes/$target-" \
    ".build-fuzz/corpus/$target" "Fuzz/corpus/$target" "$@" || status=$?
  if [ "$status" = 0 ] && [ "${FUZZ_MERGE:-0}" = 1 ]; then
    FUZZ_TARGET=$target SWIFT_BACKTRACE=enable=no "$binary" -merge=1 -max_len="$(max_len "$target")" \
      "Fuzz/corpus/$target" ".build-fuzz/corpus/$target" 2>&1 | tail -n 1
  fi
  return "$status"
}

# Replays a target's corpus once (no mutation) under ASan and LeakSanitizer, then fuzzes it for
# SECONDS; prints one line, or the end of libFuzzer's report and fails.
smoke_one() {
  local target=$1 seconds=$2 log=".build-fuzz/smoke-$1.log"
  mkdir -p ".build-fuzz/corpus/$target" Fuzz/crashes
  if ! FUZZ_TARGET=$target SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=1 "$binary" -runs=0 \
      -max_len="$(max_len "$target")" "Fuzz/corpus/$target" >"$log" 2>&1; then
    tail -n 40 "$log"; echo "fuzz smoke: replaying Fuzz/corpus/$target failed" >&2; return 1
  fi
  local inputs; inputs=$(ls "Fuzz/corpus/$target" | wc -l)
  if ! run "$target" "$seconds" >"$log" 2>&1; then
    tail -n 40 "$log"; echo "fuzz smoke: $target crashed (Fuzz/crashes/)" >&2; return 1
  fi
  local runs cov
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+' || echo "?")
  echo "fuzz $target: $inputs saved inputs replayed, then ${seconds}s: $runs runs, coverage $cov, no crash"
}

case "${1:-}" in
  list) printf '%s\n' "${targets[@]}"; exit 0 ;;
  ""|-h|--help) sed -n 2,16p "$0"; exit 2 ;;
esac

build
case "$1" in
  all)
    for t in "${targets[@]}"; do run "$t" "${2:-60}"; done ;;
  smoke)
    for t in "${targets[@]}"; do smoke_one "$t" "${2:-10}"; done ;;
  *)
    target=$1; shift
    printf '%s\n' "${targets[@]}" | grep -qx "$target" || { echo "unknown target $target (scripts/fuzz.sh list)" >&2; exit 2; }
    run "$target" "${1:-60}" "${@:2}" ;;
esac
