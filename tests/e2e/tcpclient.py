#!/usr/bin/env python3
"""TCP DNS clients for the lab (run inside the client namespace); each prints one JSON object.

  pipeline SERVER --count N     N queries written at once on one connection; answers matched by ID
  trickle SERVER                a length, then one byte every 0.3 s (slowloris); when was it closed?
  limit SERVER --hold N         N connections held open, then one more: is it refused? do the N work?
  noread SERVER --count N       N queries for a 3 KB answer, never reading; is it closed?
  malformed SERVER --kind K     a length below 12, or a garbage message; what comes back?
"""
import argparse
import json
import os
import socket
import struct
import sys
import time

import dns.message


def connect(server):
    if not (server.startswith("10.53.") or server.lower().startswith("fd53:")):
        sys.exit(f"refusing to connect to {server}: the lab uses 10.53.0.0/16 and fd53::/16 only")
    s = socket.socket(socket.AF_INET6 if ":" in server else socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect((server, 53))
    return s


def frame(msg):
    wire = msg.to_wire()
    return struct.pack("!H", len(wire)) + wire


def read_message(s):
    head = b""
    while len(head) < 2:
        chunk = s.recv(2 - len(head))
        if not chunk:
            return None
        head += chunk
    (length,) = struct.unpack("!H", head)
    body = b""
    while len(body) < length:
        chunk = s.recv(length - len(body))
        if not chunk:
            return None
        body += chunk
    return dns.message.from_wire(body)


def closed_within(s, seconds):
    """True when the peer closes (EOF or reset) within `seconds`."""
    s.settimeout(seconds)
    try:
        while True:
            data = s.recv(65535)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def pipeline(args):
    s = connect(args.server)
    peer = list(s.getpeername()[:2])
    queries = {}
    blob = b""
    for i in range(args.count):
        q = dns.message.make_query(f"n{i}.bench.lab.test", "A")
        q.id = (i * 7919 + 1) & 0xFFFF
        queries[q.id] = q
        blob += frame(q)
    s.sendall(blob)
    answered = mismatched = 0
    for _ in range(args.count):
        r = read_message(s)
        if r is None:
            break
        q = queries.pop(r.id, None)
        if q is None or r.question[0].name != q.question[0].name:
            mismatched += 1
        else:
            answered += 1
    print(json.dumps({"peer": peer, "answered": answered, "mismatched": mismatched}))


def trickle(args):
    s = connect(args.server)
    started = time.monotonic()
    q = dns.message.make_query("slow.lab.test", "A").to_wire()
    data = struct.pack("!H", len(q)) + q
    closed = False
    for byte in data[:-1]:
        try:
            s.send(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        if closed_within(s, 0.3):
            closed = True
            break
        if time.monotonic() - started > 8:
            break
    print(json.dumps({"closed_by_relay": closed, "seconds": time.monotonic() - started}))


def limit(args):
    held = [connect(args.server) for _ in range(args.hold)]
    time.sleep(0.2)
    extra = connect(args.server)
    extra_closed = closed_within(extra, 2.0)
    answered = 0
    for s in held:
        s.sendall(frame(dns.message.make_query("www.lab.test", "A")))
        r = read_message(s)
        answered += 1 if r is not None and r.answer else 0
    print(json.dumps({"extra_closed": extra_closed, "held_answered": answered}))


def noread(args):
    s = connect(args.server)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    blob = b"".join(frame(dns.message.make_query("big.lab.test", "TXT")) for _ in range(args.count))
    s.settimeout(20)
    closed = False
    try:
        s.sendall(blob)
    except (BrokenPipeError, ConnectionResetError):
        closed = True
    if not closed:
        # Still not reading anything: wait for the relay to give up on us.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            time.sleep(0.2)
            try:
                s.send(b"")
                info = s.getsockopt(socket.SOL_TCP, socket.TCP_INFO, 8)
                if info[0] in (7, 8, 9):  # TCP_CLOSE, TCP_CLOSE_WAIT, TCP_LAST_ACK
                    closed = True
                    break
            except OSError:
                closed = True
                break
    print(json.dumps({"closed_by_relay": closed}))


def malformed(args):
    s = connect(args.server)
    if args.kind == "short-length":
        s.sendall(struct.pack("!H", 5) + b"\x00" * 5)
        rcode = None
    else:
        body = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + os.urandom(4) + b"\xff" * 30
        s.sendall(struct.pack("!H", len(body)) + body)
        head = s.recv(2)
        rcode = None
        if len(head) == 2:
            reply = s.recv(struct.unpack("!H", head)[0])
            rcode = reply[3] & 0xF if len(reply) >= 4 else None
    print(json.dumps({"closed_by_relay": closed_within(s, 2.0), "rcode": rcode}))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    for name, func in [("pipeline", pipeline), ("trickle", trickle), ("limit", limit), ("noread", noread), ("malformed", malformed)]:
        c = sub.add_parser(name)
        c.add_argument("server")
        c.add_argument("--count", type=int, default=100)
        c.add_argument("--hold", type=int, default=3)
        c.add_argument("--kind", default="short-length")
        c.set_defaults(func=func)
    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
