#!/usr/bin/env bash
# bench/floor/floor.sh [-f] — the floor SUT: nullrelay.c behind the same TPROXY interception, in the
# foreground (bench/lab/qps.sh runs it inside the rtr namespace, pinned to the SUT's CPU). With -f,
# the forwarding floor: every query goes on to the address the client asked (the miss scenario's floor).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${BENCH_WORK:-/tmp/tproxy-relay-bench}/nullrelay
if [ ! -x "$BIN" ] || [ "$HERE/nullrelay.c" -nt "$BIN" ]; then
	"${CC:-$(command -v cc || command -v clang)}" -O2 -Wall -Wextra -pthread -o "$BIN" "$HERE/nullrelay.c"
fi
. "$HERE/../lab/tproxy.sh"
install_tproxy 127.0.0.1:15353
exec "$BIN" "$@" -l 127.0.0.1:15353 -t "${FLOOR_THREADS:-1}"
