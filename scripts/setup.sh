#!/usr/bin/env bash
# Installs everything tproxy-relay needs to build, test, run the lab and benchmark, on Debian.
# Idempotent; run as root. Needs only the Debian and PyPI registries.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/setup.sh: run as root (it installs Debian packages)" >&2
  exit 1
fi

packages=(
  # build: the C libraries the Swift targets link (ldns; libnftnl + libmnl; libcurl for lists by
  # URL), found by pkg-config
  pkg-config libldns-dev libnftnl-dev libmnl-dev libcurl4-openssl-dev
  # lab and tests: namespaces, nft (to inspect the relay's table), a real DNS server, real clients
  iproute2 nftables knot knot-dnsutils bind9-dnsutils util-linux procps python3 python3-pip
  # benchmark (bench/run.sh): load generator, the dnsdist yardstick, a C compiler for the floor,
  # tcpdump for the time each query spends in the router namespace (bench/lab/residence.py)
  dnsperf iperf3 dnsdist gcc libc6-dev tcpdump
  # service (issue 18): a real Prometheus and promtool for the metrics tests; lintian for the package
  prometheus lintian dpkg-dev binutils adduser
  # dnstap (issue 20): a Frame Streams receiver and a decoder, the reference the tests check against
  fstrm-bin dnstap-ldns golang-github-dnstap-golang-dnstap-cli
  # web dashboard (issue 22): a real browser and its WebDriver for the browser test
  chromium chromium-driver
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== apt-get install ${missing[*]}"
  apt-get update -qq
  # Packages with services (prometheus, knot, dnsdist) must not start them in this machine's own
  # namespace: the tests start their own, in namespaces. policy-rc.d says "not now" to
  # invoke-rc.d for the length of the install (one we did not put there is left alone).
  own_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || {
    [ -n "$own_policy" ] && rm -f /usr/sbin/policy-rc.d; exit 1; }
  [ -n "$own_policy" ] && rm -f /usr/sbin/policy-rc.d
fi
# Debian's knot package may start a knotd of its own where systemd runs; the lab starts its own.

# Python packages for the end-to-end tests, for the python3 that is first on PATH.
# aioquic: the HTTP/3 client and server of the QUIC tests (it brings cryptography, which
# makes their certificates). selenium: drives chromium in the dashboard's browser test.
if ! python3 -c 'import dns.message, pytest, aioquic, selenium' 2>/dev/null; then
  echo "== pip install dnspython pytest aioquic selenium"
  python3 -m pip install -q dnspython pytest aioquic selenium 2>/dev/null \
    || python3 -m pip install -q --break-system-packages dnspython pytest aioquic selenium
fi

if ! command -v swift >/dev/null 2>&1; then
  if [ -x /opt/swift/usr/bin/swift ]; then
    echo "note: swift is at /opt/swift/usr/bin; add it to PATH" >&2
  else
    echo "scripts/setup.sh: Swift 6 is needed and was not found" >&2
    exit 1
  fi
fi
echo "== setup done"
