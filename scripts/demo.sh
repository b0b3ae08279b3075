#!/usr/bin/env bash
# Sets everything up, builds the relay and runs the lab demo: a client, a router running the
# relay and an upstream DNS server in network namespaces; real queries to the LAN resolver and to
# a "hard-coded" one, answered from the address asked; fail-open after kill -9. Cleans up after.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"

bash scripts/setup.sh
echo "== swift build -c release"
swift build -c release 2>&1 | grep -Ev '^\[[0-9]+/[0-9]+\]' || true
exec .build/release/tproxy-relay lab demo
