#!/usr/bin/env python3
"""A DNS client for the lab that checks what dig cannot: the exact source of each answer.

Runs inside the client namespace (`ip netns exec tr-cli-X python3 dnsclient.py ...`) and prints
one JSON object. Only ever sends to the address it is given (the lab's 10.53/16 or fd53::/16).
"""
import argparse
import json
import os
import socket
import struct
import sys
import time

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype


def family_of(address):
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def check_lab_address(address):
    if not (address.startswith("10.53.") or address.lower().startswith("fd53:")):
        sys.exit(f"refusing to send to {address}: the lab uses 10.53.0.0/16 and fd53::/16 only")


def query(args):
    check_lab_address(args.server)
    options = []
    if args.ecs:

        address, prefix = args.ecs.split("/")
        options.append(dns.edns.ECSOption(address, int(prefix)))
    msg = dns.message.make_query(args.name, args.type, use_edns=args.edns or bool(options), options=options)
    msg.id = args.id if args.id is not None else int.from_bytes(os.urandom(2), "big")
    wire = msg.to_wire()
    s = socket.socket(family_of(args.server), socket.SOCK_STREAM if args.tcp else socket.SOCK_DGRAM)
    if args.source:
        s.bind((args.source, 0))
    s.settimeout(args.timeout)
    started = time.monotonic()
    out = {"sent_id": msg.id}
    try:
        if args.tcp:
            s.connect((args.server, 53))
            s.sendall(len(wire).to_bytes(2, "big") + wire)
            data = b""
            while len(data) < 2 or len(data) < 2 + int.from_bytes(data[:2], "big"):
                chunk = s.recv(65535)
                if not chunk:
                    raise socket.timeout()
                data += chunk
            data = data[2:]
            source = s.getpeername()
        else:
            s.sendto(wire, (args.server, 53))
            data, source = s.recvfrom(65535)
    except (socket.timeout, ConnectionError):
        out["timeout"] = True
        print(json.dumps(out))
        return
    out["elapsed"] = time.monotonic() - started
    out["from"] = source[0]
    out["port"] = source[1]
    response = dns.message.from_wire(data)
    out["id"] = response.id
    out["rcode"] = dns.rcode.to_text(response.rcode())
    out["question"] = [q.to_text() for q in response.question]
    out["answers"] = [rr.to_text() for rrset in response.answer for rr in rrset]
    out["edns"] = response.edns >= 0
    out["ttls"] = [rrset.ttl for rrset in response.answer]
    out["authority"] = [f"{rrset.name} {rrset.ttl} {dns.rdatatype.to_text(rrset.rdtype)}" for rrset in response.authority]
    out["aa"] = bool(response.flags & dns.flags.AA)
    out["ecs"] = [f"{o.address}/{o.srclen}/{o.scopelen}" for o in response.options if o.otype == 8]
    print(json.dumps(out))


def sources(args):
    """Sends one query from each address of FIRST..FIRST+COUNT-1 (IPv4, addresses of this
    namespace), a few hundred at a time, and reports how many were answered."""
    check_lab_address(args.server)
    import ipaddress
    first = ipaddress.ip_address(args.first)
    answered = 0
    for start in range(0, args.count, 250):
        batch = []
        for i in range(start, min(args.count, start + 250)):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((str(first + i), 0))
            msg = dns.message.make_query(f"c{i}.lab.test", "A")
            s.sendto(msg.to_wire(), (args.server, 53))
            batch.append(s)
        deadline = time.monotonic() + 5
        for s in batch:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                s.recvfrom(65535)
                answered += 1
            except socket.timeout:
                pass
            s.close()
    print(json.dumps({"sent": args.count, "answered": answered}))


def many(args):
    """Sends `count` queries one after another, cycling through SERVER,NAME,TYPE triples (UDP,
    or TCP for a triple that ends in ,tcp); reports how many were answered, by outcome."""
    plan = [item.split(",") for item in args.plan]
    for item in plan:
        check_lab_address(item[0])
    answered = 0
    outcomes = {}
    for i in range(args.count):
        server, name, rdtype = plan[i % len(plan)][:3]
        tcp = len(plan[i % len(plan)]) > 3 and plan[i % len(plan)][3] == "tcp"
        query = dns.message.make_query(name, rdtype)
        try:
            if tcp:
                response = dns.query.tcp(query, server, timeout=2)
            else:
                response = dns.query.udp(query, server, timeout=2)
        except Exception:
            outcomes["timeout"] = outcomes.get("timeout", 0) + 1
            continue
        answered += 1
        key = dns.rcode.to_text(response.rcode())
        outcomes[key] = outcomes.get(key, 0) + 1
    print(json.dumps({"sent": args.count, "answered": answered, "outcomes": outcomes}))


def burst(args):
    """Sends malformed datagrams, then reports what came back for each kind."""
    check_lab_address(args.server)
    good = dns.message.make_query("www.lab.test", "A", use_edns=False)
    good.id = 0x1111
    wire = bytearray(good.to_wire())
    qr = bytearray(wire)
    qr[0:2] = b"\x22\x22"
    qr[2] |= 0x80
    qd2 = bytearray(wire)
    qd2[0:2] = b"\x33\x33"
    qd2[5] = 2
    garbage_with_header = b"\x44\x44\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + bytes([0xFF] * 40)
    kinds = {
        "empty": b"",
        "short11": bytes(range(11)),
        "random": os.urandom(200),
        "qr": bytes(qr),
        "qdcount2": bytes(qd2),
        "badbody": garbage_with_header,
    }
    s = socket.socket(family_of(args.server), socket.SOCK_DGRAM)
    s.settimeout(0.3)
    results = {}
    for name, payload in kinds.items():
        for _ in range(args.repeat):
            s.sendto(payload, (args.server, 53))
    deadline = time.monotonic() + 1.5
    replies = []
    while time.monotonic() < deadline:
        try:
            data, source = s.recvfrom(65535)
        except socket.timeout:
            continue
        if len(data) >= 12:
            rid, flags = struct.unpack("!HH", data[:4])
            replies.append({"id": rid, "rcode": flags & 0xF, "from": source[0], "port": source[1]})
    results["replies"] = replies
    print(json.dumps(results))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("query")
    q.add_argument("server")
    q.add_argument("name")
    q.add_argument("type", nargs="?", default="A")
    q.add_argument("--timeout", type=float, default=3.0)
    q.add_argument("--edns", action="store_true")
    q.add_argument("--id", type=int)
    q.add_argument("--source", help="the address to send from (one of the client namespace's)")
    q.add_argument("--tcp", action="store_true")
    q.add_argument("--ecs", help="send an EDNS Client Subnet option, ADDRESS/PREFIX")
    q.set_defaults(func=query)
    b = sub.add_parser("burst")
    b.add_argument("server")
    b.add_argument("--repeat", type=int, default=20)
    m = sub.add_parser("many")
    m.add_argument("count", type=int)
    m.add_argument("plan", nargs="+", help="SERVER,NAME,TYPE[,tcp] ...")
    m.set_defaults(func=many)
    a = sub.add_parser("sources")
    a.add_argument("server")
    a.add_argument("first", help="the first source address")
    a.add_argument("count", type=int)
    a.set_defaults(func=sources)
    b.set_defaults(func=burst)
    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
