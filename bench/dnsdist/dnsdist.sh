#!/usr/bin/env bash
# bench/dnsdist/dnsdist.sh — dnsdist as a transparent relay, the yardstick: a packet cache, the
# same 100k-name block list answered NXDOMAIN, everything else to 10.53.2.53. In the foreground,
# inside the rtr namespace (bench/lab/qps.sh starts it).
#
# dnsdist (1.7) has no transparent listener option: it listens on 0.0.0.0:53 and TPROXY delivers
# there (the original port, so that its reply leaves from the port the client asked); the Lua
# maintenance hook sets IP_TRANSPARENT on its port-53 sockets through LuaJIT's FFI (TPROXY skips
# sockets without it, and replying from an address that is not local needs it), keeping
# CAP_NET_ADMIN to do so. Its own queries leave on wan0 and are not captured (lan0 only).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${BENCH_WORK:-/tmp/tproxy-relay-bench}
LIST=${1:?the block list (one name per line)}
CONF=$WORK/dnsdist-$$.conf
{
	echo "setSecurityPollSuffix('')"
	echo "setACL({'10.53.0.0/16'})"
	echo "addLocal('0.0.0.0:53', {reusePort=true})"
	cat <<'LUA'
addCapabilitiesToRetain({'CAP_NET_ADMIN'})
local ffi = require('ffi')
ffi.cdef[[
struct tb_sockaddr_in { uint16_t family; uint16_t port; uint32_t address; uint8_t zero[8]; };
int getsockname(int fd, struct tb_sockaddr_in *address, uint32_t *length);
int setsockopt(int fd, int level, int name, const void *value, uint32_t length);
]]
local made = 0
function maintenance()
  if made > 0 then return end
  local address = ffi.new('struct tb_sockaddr_in')
  local length = ffi.new('uint32_t[1]')
  local one = ffi.new('int[1]', 1)
  for fd = 3, 1023 do
    length[0] = ffi.sizeof(address)
    -- AF_INET (2) and port 53 (network order: 0x3500 read little-endian)
    if ffi.C.getsockname(fd, address, length) == 0 and address.family == 2 and address.port == 0x3500 then
      if ffi.C.setsockopt(fd, 0, 19, one, 4) == 0 then made = made + 1 end  -- SOL_IP, IP_TRANSPARENT
    end
  end
  if made > 0 then infolog('IP_TRANSPARENT on ' .. made .. ' socket(s)') end
end
LUA
	echo "newServer({address='10.53.2.53:53', name='up', checkName='bench.test.', checkInterval=1})"
	echo "pc = newPacketCache(1000000, {maxTTL=86400, minTTL=0, temporaryFailureTTL=60, staleTTL=60, numberOfShards=20})"
	echo "getPool(''):setCache(pc)"
	echo "blocked = newSuffixMatchNode()"
	echo "for line in io.lines('$LIST') do blocked:add(line) end"
	echo "addAction(SuffixMatchNodeRule(blocked, true), RCodeAction(DNSRCode.NXDOMAIN))"
} >"$CONF"
. "$HERE/../lab/tproxy.sh"
install_tproxy :53
exec dnsdist --supervised --disable-syslog -C "$CONF"
