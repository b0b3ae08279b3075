#!/usr/bin/env python3
"""bench/lab/residence.py PCAP — how long each query stayed in the router namespace: from the
query's arrival on lan0 to its answer leaving lan0, both stamped by the kernel (tcpdump in rtr,
nanosecond timestamps). Prints " res_pairs=N res_unanswered=U res_p50_us=… res_p99_us=…
res_p999_us=…" for qps.sh's RESULT line.

Why not only dnsperf's own latency: on this 2-core machine the load generator shares one core with
its own threads and the client side of the network, and its scheduling delays (1–6 ms, seen with
perf sched) land in every answer it times, whoever the SUT is. The residence time is what the SUT
alone is answerable for: its wake-up, its work and its kernel path, nothing of the client's.

Queries are told by (client port, DNS id): the answer pairs with the earliest query of that key
still open. Only Ethernet/IPv4/UDP frames to or from port 53 are read (the lab's traffic);
anything else, and frames cut short, are skipped. No third-party module: the pcap format is a
24-byte header and a 16-byte record header.
"""
import struct
import sys
from collections import defaultdict, deque


def frames(path):
    with open(path, "rb") as f:
        head = f.read(24)
        if len(head) < 24:
            return
        magic = struct.unpack("<I", head[:4])[0]
        if magic == 0xA1B23C4D:
            endian, scale = "<", 1  # nanoseconds
        elif magic == 0xA1B2C3D4:
            endian, scale = "<", 1000  # microseconds
        elif magic == 0x4D3CB2A1:
            endian, scale = ">", 1
        elif magic == 0xD4C3B2A1:
            endian, scale = ">", 1000
        else:
            raise SystemExit(f"{path}: not a pcap file")
        linktype = struct.unpack(endian + "I", head[20:24])[0]
        record = struct.Struct(endian + "IIII")
        while True:
            h = f.read(16)
            if len(h) < 16:
                return
            sec, frac, caplen, _ = record.unpack(h)
            data = f.read(caplen)
            if len(data) < caplen:
                return
            yield sec * 1_000_000_000 + frac * scale, linktype, data


def udp53(linktype, data):
    """(query?, client port, dns id) of an IPv4 UDP frame to or from port 53, else None."""
    if linktype == 1:  # Ethernet
        if len(data) < 14 or data[12:14] != b"\x08\x00":
            return None
        data = data[14:]
    elif linktype == 113:  # Linux cooked (any interface)
        if len(data) < 16 or data[14:16] != b"\x08\x00":
            return None
        data = data[16:]
    else:
        return None
    if len(data) < 20 or data[0] >> 4 != 4 or data[9] != 17:
        return None
    ihl = (data[0] & 0x0F) * 4
    if len(data) < ihl + 8 + 2:
        return None
    sport, dport = struct.unpack("!HH", data[ihl:ihl + 4])
    dns_id = struct.unpack("!H", data[ihl + 8:ihl + 10])[0]
    if dport == 53:
        return True, sport, dns_id
    if sport == 53:
        return False, dport, dns_id
    return None


def percentile(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p))]


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: residence.py PCAP")
    open_queries = defaultdict(deque)
    times = []
    for stamp, linktype, data in frames(sys.argv[1]):
        seen = udp53(linktype, data)
        if seen is None:
            continue
        is_query, port, dns_id = seen
        if is_query:
            open_queries[(port, dns_id)].append(stamp)
        elif open_queries.get((port, dns_id)):
            times.append(stamp - open_queries[(port, dns_id)].popleft())
    unanswered = sum(len(q) for q in open_queries.values())
    if not times:
        print(f" res_pairs=0 res_unanswered={unanswered}")
        return
    times.sort()
    us = lambda p: percentile(times, p) / 1000
    print(f" res_pairs={len(times)} res_unanswered={unanswered} res_p50_us={us(0.5):.1f} res_p99_us={us(0.99):.1f} "
          f"res_p999_us={us(0.999):.1f}")


if __name__ == "__main__":
    main()
