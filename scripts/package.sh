#!/usr/bin/env bash
# Builds the Debian package: .build/package/tproxy-relay_<version>-1_<arch>.deb (issue 18).
# No network: a release build of this clone with the Swift runtime linked statically (the
# package does not need a Swift toolchain), its man page and shell completions generated from
# the binary's own command line, the unit from packaging/, and a default configuration that
# passes `check` and captures nothing until intercept.interfaces names an interface.
# Usage: scripts/package.sh [--lint]   (--lint: run lintian and fail on any error)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"
for tool in dpkg-deb dpkg-shlibdeps strip gzip python3; do
  command -v "$tool" >/dev/null || { echo "scripts/package.sh: $tool is missing: run scripts/setup.sh" >&2; exit 1; }
done

version=$(sed -n 's/.*public static let version = "\(.*\)".*/\1/p' Sources/RelayCore/BuildInfo.swift)
[ -n "$version" ] || { echo "scripts/package.sh: no version in Sources/RelayCore/BuildInfo.swift" >&2; exit 1; }
revision=1
arch=$(dpkg --print-architecture)
out=.build/package
root=$out/root
deb=$out/tproxy-relay_${version}-${revision}_${arch}.deb

# The same release build as bench/run.sh (one build serves both).
echo "== swift build -c release --static-swift-stdlib"
swift build -c release --product tproxy-relay --static-swift-stdlib 2>&1 | grep -Ev '^\[[0-9]+/[0-9]+\]|mktemp' || true
binary=.build/release/tproxy-relay
test -x "$binary" || { echo "release build failed" >&2; exit 1; }
if ldd "$binary" | grep -q libswift; then
  echo "scripts/package.sh: $binary links the Swift runtime dynamically" >&2; exit 1
fi

# Every Swift package the binary links must be named in the copyright file.
for checkout in .build/checkouts/*; do
  name=$(basename "$checkout")
  grep -q "^Files: $name/" packaging/debian/copyright || { echo "scripts/package.sh: $name is not in packaging/debian/copyright" >&2; exit 1; }
done

rm -rf "$out" && mkdir -p "$root/DEBIAN"
install -D -m 755 "$binary" "$root/usr/sbin/tproxy-relay"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/sbin/tproxy-relay"

# The man page, from the command line's own help (argument-parser's generate-manual plugin).
echo "== man page and completions"
mkdir -p "$out/man"
swift package --allow-writing-to-directory "$out/man" generate-manual --configuration debug --section 8 \
  --date "$(date -u -r Sources/RelayCore/BuildInfo.swift +%Y-%m-%d)" -o "$out/man" >/dev/null 2>&1 \
  || { echo "scripts/package.sh: generate-manual failed" >&2; exit 1; }
install -D -m 644 "$out/man/tproxy-relay.8" "$root/usr/share/man/man8/tproxy-relay.8"
gzip -9n "$root/usr/share/man/man8/tproxy-relay.8"
# bash-completion files are sourced, not run: no #! line.
"$binary" --generate-completion-script bash | sed '1{/^#!/d}' | install -D -m 644 /dev/stdin "$root/usr/share/bash-completion/completions/tproxy-relay"
"$binary" --generate-completion-script zsh | install -D -m 644 /dev/stdin "$root/usr/share/zsh/vendor-completions/_tproxy-relay"
"$binary" --generate-completion-script fish | install -D -m 644 /dev/stdin "$root/usr/share/fish/vendor_completions.d/tproxy-relay.fish"

install -D -m 644 packaging/tproxy-relay.service "$root/lib/systemd/system/tproxy-relay.service"

# The installed configuration: the annotated default, with nothing captured until an
# interface is named, the query log in the unit's LogsDirectory, and metrics on loopback.
python3 - Configs/relay.yaml "$root/etc/tproxy-relay/relay.yaml" <<'PY'
import sys, pathlib
text = pathlib.Path(sys.argv[1]).read_text()
edits = [
    ("  interfaces: [lan0]\n",
     "  interfaces: []   # name your LAN interface(s), such as [eth1]: nothing is captured until then\n"),
    ("# top-level zones/) is answered", "# /etc/tproxy-relay/zones/) is answered"),
    ("zones: ../zones/\n", "# zones: zones/\n"),
    ("# querylog:\n#   path: /var/log/tproxy-relay/queries.jsonl\n", "querylog:\n  path: /var/log/tproxy-relay/queries.jsonl\n"),
    ("# metrics:\n#   listen: 127.0.0.1:9153\n", "metrics:\n  listen: 127.0.0.1:9153\n"),
]
for old, new in edits:
    if text.count(old) != 1:
        sys.exit(f"scripts/package.sh: Configs/relay.yaml no longer has {old!r} once; update the edits")
    text = text.replace(old, new)
out = pathlib.Path(sys.argv[2])
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text("# Installed by the tproxy-relay package; edit freely (a conffile: upgrades keep your changes).\n" + text)
PY
chmod 644 "$root/etc/tproxy-relay/relay.yaml"
install -d -m 755 "$root/etc/tproxy-relay/zones"

doc=$root/usr/share/doc/tproxy-relay
install -D -m 644 packaging/debian/copyright "$doc/copyright"
install -D -m 644 packaging/debian/lintian-overrides "$root/usr/share/lintian/overrides/tproxy-relay"
for f in README.md docs/*.md; do install -m 644 "$f" "$doc/"; done
gzip -9n "$doc"/*.md
{
  echo "tproxy-relay ($version-$revision) unstable; urgency=medium"
  echo
  echo "  * Built from $(git rev-parse --short HEAD 2>/dev/null || echo 'a source tree') by scripts/package.sh."
  echo
  echo " -- tproxy-relay team <team@tproxy-relay.org>  $(date -u -R -r Sources/RelayCore/BuildInfo.swift)"
} > "$doc/changelog.Debian"
gzip -9n "$doc/changelog.Debian"

for script in postinst prerm postrm; do install -m 755 "packaging/debian/$script" "$root/DEBIAN/$script"; done
echo "/etc/tproxy-relay/relay.yaml" > "$root/DEBIAN/conffiles"

# Shared-library dependencies, as dpkg-shlibdeps reads them from the binary.
shlibs=$(cd "$out" && mkdir -p debian && printf 'Source: tproxy-relay\n\nPackage: tproxy-relay\nArchitecture: any\n' > debian/control \
  && dpkg-shlibdeps -O -e root/usr/sbin/tproxy-relay 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "scripts/package.sh: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
rm -rf "$out/debian"

cat > "$root/DEBIAN/control" <<CONTROL
Package: tproxy-relay
Version: $version-$revision
Architecture: $arch
Maintainer: tproxy-relay team <team@tproxy-relay.org>
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: $shlibs, adduser
Section: net
Priority: optional
Homepage: https://github.com/tproxy-relay/tproxy-relay
Description: transparent DNS and QUIC relay for a LAN (nftables TPROXY)
 tproxy-relay captures a LAN's DNS (UDP and TCP 53) and QUIC (UDP 443) with
 nftables TPROXY, even from devices with a hard-coded resolver, filters it with
 the block lists people already use (hosts, adblock, AdGuard, dnsmasq), answers
 local zones, caches, and answers from the address each client asked. It
 relays QUIC while reading its SNI, writes a JSON query log, and exports
 Prometheus metrics.
 .
 Interception lives in an nft table owned by the process: when it stops or
 dies, DNS flows directly again. The unit runs it as its own user with three
 capabilities. Nothing is captured until intercept.interfaces is set in
 /etc/tproxy-relay/relay.yaml.
CONTROL

dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "== built $deb ($(du -h "$deb" | cut -f1))"

if [ "${1:-}" = --lint ]; then
  command -v lintian >/dev/null || { echo "scripts/package.sh: lintian is missing: run scripts/setup.sh" >&2; exit 1; }
  echo "== lintian"
  lintian --tag-display-limit 0 --fail-on error "$deb"
fi
