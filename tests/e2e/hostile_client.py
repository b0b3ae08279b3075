#!/usr/bin/env python3
"""Hostile clients for the lab (issue 13), run inside the client namespace. Each prints JSON.

  tcp-big SERVER SIZE              one TCP query padded (EDNS padding) to SIZE bytes, then an
                                   ordinary query on the same connection: both rcodes
  opcode SERVER OPCODE NAME        a UDP query with that opcode: the rcode
  raw SERVER COUNT SEED            COUNT datagrams of random bytes (lengths 0-600) to UDP 53
  classes SERVER                   one datagram of each malformed class (short, header only,
                                   qdcount 0/2/65535, loops, long labels and names, cut
                                   questions, huge OPT, QR=1, unknown opcodes): what came back
  tcp-hold SERVER COUNT SECONDS    opens COUNT TCP connections to port 53 and holds them: how
                                   many connected, and how many were closed by the server
  quic-junk SERVER SNI JUNK        JUNK junk datagrams, then a real QUIC Initial for SNI (aioquic),
                                   all from one socket to SERVER:443; which came back (an echo
                                   server there returns every datagram it gets)
  sequential SERVER COUNT PREFIX [PAUSE]  COUNT queries one at a time, each for a new name PREFIX<i>
  flood SERVER COUNT PREFIX        COUNT queries for new names as fast as they go
  spoofed SERVER COUNT SEED        COUNT queries from random spoofed IPv4 sources (raw socket)
  oversize SERVER SIZE             one UDP query padded to SIZE bytes (fragmented): answered or not
  quic-flood SERVER COUNT          COUNT Initial-looking datagrams (random connection IDs), each
                                   from its own source port, as fast as they go

Only ever sends to the address it is given, which must be in 10.53.0.0/16 or fd53::/16.
"""
import json
import os
import random
import socket
import struct
import sys
import time

import dns.edns
import dns.message
import dns.opcode
import dns.rcode

from tcpclient import read_message


def family_of(address):
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def check_lab_address(address):
    if not (address.startswith("10.53.") or address.lower().startswith("fd53:")):
        sys.exit(f"refusing to send to {address}: the lab uses 10.53.0.0/16 and fd53::/16 only")


def tcp_exchange(s, wire):
    s.sendall(struct.pack("!H", len(wire)) + wire)
    return read_message(s)


def tcp_big(server, size):
    query = dns.message.make_query("www.lab.test", "A", use_edns=0, payload=1232)
    base = len(query.to_wire())
    pad = max(0, size - base - 4)
    query.use_edns(0, payload=1232, options=[dns.edns.GenericOption(dns.edns.PADDING, b"\x00" * pad)])
    wire = query.to_wire(max_size=65535)
    out = {"size": len(wire)}
    s = socket.create_connection((server, 53), timeout=5)
    try:
        big = tcp_exchange(s, wire)
        out["big"] = None if big is None else dns.rcode.to_text(big.rcode())
        small = tcp_exchange(s, dns.message.make_query("www.lab.test", "A").to_wire())
        out["after"] = None if small is None else dns.rcode.to_text(small.rcode())
        out["answers"] = [] if small is None else [rr.to_text() for rrset in small.answer for rr in rrset]
    except (socket.timeout, ConnectionError) as error:
        out["error"] = str(error)
    finally:
        s.close()
    return out


def opcode(server, value, name):
    query = dns.message.make_query(name, "A")
    wire = bytearray(query.to_wire())
    wire[2] = (wire[2] & 0x87) | (int(value) << 3)
    s = socket.socket(family_of(server), socket.SOCK_DGRAM)
    s.settimeout(3)
    s.sendto(bytes(wire), (server, 53))
    try:
        data, _ = s.recvfrom(65535)
    except socket.timeout:
        return {"timeout": True}
    return {"rcode": data[3] & 0x0F, "opcode": (data[2] >> 3) & 0x0F, "qr": data[2] >> 7, "length": len(data)}


def header(flags=0x0100, qd=1, an=0, ns=0, ar=0, ident=0x4242):
    return struct.pack("!HHHHHH", ident, flags, qd, an, ns, ar)


QUESTION = b"\x03www\x03lab\x04test\x00\x00\x01\x00\x01"


def malformed_classes():
    name300 = b"".join(b"\x3f" + b"a" * 63 for _ in range(5)) + b"\x00"
    cases = {
        "empty": b"",
        "short": b"\x12\x34\x01",
        "header-only": header(qd=0),
        "qdcount-0": header(qd=0) + QUESTION,
        "qdcount-2": header(qd=2) + QUESTION + QUESTION,
        "qdcount-65535": header(qd=65535) + QUESTION,
        "question-pointer-loop": header() + b"\xc0\x0c\x00\x01\x00\x01",
        "label-64": header() + b"\x40" + b"a" * 64 + b"\x00\x00\x01\x00\x01",
        "name-over-255": header() + name300 + b"\x00\x01\x00\x01",
        "question-cut": header() + QUESTION[:9],
        "question-no-type": header() + QUESTION[:-4],
        "opt-huge-rdlength": header(ar=1) + QUESTION + b"\x00\x00\x29\x10\x00\x00\x00\x00\x00\xff\xff",
        "opt-twice": header(ar=2) + QUESTION + b"\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x00" * 2,
        "arcount-lies": header(ar=40) + QUESTION,
        "record-owner-loop": header(ar=1) + QUESTION + b"\xc0\x1e\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x0a\x35\x02\x50",
        "qr-set": header(flags=0x8100) + QUESTION,
        "opcode-status": header(flags=0x1100) + QUESTION,
        "opcode-notify": header(flags=0x2100) + QUESTION,
        "opcode-15": header(flags=0x7900) + QUESTION,
    }
    return cases


def classes(server):
    out = {}
    s = socket.socket(family_of(server), socket.SOCK_DGRAM)
    s.settimeout(0.5)
    for what, wire in malformed_classes().items():
        s.sendto(wire, (server, 53))
        try:
            data, _ = s.recvfrom(65535)
            out[what] = {"rcode": data[3] & 0x0F, "qr": data[2] >> 7, "length": len(data)}
        except socket.timeout:
            out[what] = None
    return out


def blast(server, datagrams):
    """Sends every datagram as fast as the socket takes it, draining (and ignoring) answers."""
    s = socket.socket(family_of(server), socket.SOCK_DGRAM)
    s.setblocking(False)
    sent = 0
    for datagram in datagrams:
        while True:
            try:
                s.sendto(datagram, (server, 53))
                sent += 1
                break
            except BlockingIOError:
                time.sleep(0.0005)
        try:
            while True:
                s.recv(65535)
        except BlockingIOError:
            pass
    return {"sent": sent}


def raw(server, count, seed):
    rng = random.Random(seed)
    return blast(server, (rng.randbytes(rng.randrange(0, 600)) for _ in range(count)))


def tcp_hold(server, count, seconds):
    held = []
    refused = 0
    for _ in range(count):
        s = socket.socket(family_of(server), socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.connect((server, 53))
            held.append(s)
        except OSError:
            refused += 1
            s.close()
    connected = len(held)
    time.sleep(seconds)
    # A connection the relay refused or closed reads as EOF or a reset.
    closed = 0
    for s in held:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        s.close()
    return {"connected": connected, "refused": refused, "closed_by_server": closed, "open": connected - closed}


def quic_initials(sni):
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection

    configuration = QuicConfiguration(is_client=True, alpn_protocols=["h3"], server_name=sni)
    connection = QuicConnection(configuration=configuration)
    connection.connect(("10.53.4.54", 443), now=time.time())
    return [data for data, _ in connection.datagrams_to_send(now=time.time())]


def quic_junk(server, sni, junk):
    initials = quic_initials(sni)
    s = socket.socket(family_of(server), socket.SOCK_DGRAM)
    s.connect((server, 443))
    junk_datagrams = [b"\x01", bytes(40)] + [os.urandom(200) for _ in range(8)]
    sent_junk = [junk_datagrams[i % len(junk_datagrams)] for i in range(junk)]
    for datagram in sent_junk:
        s.send(datagram)
        time.sleep(0.01)
    # Past the relay's hold time (200 ms by default) the junk alone has decided the flow.
    time.sleep(0.4)
    for datagram in initials:
        s.send(datagram)
    s.settimeout(0.3)
    echoed = []
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        try:
            echoed.append(s.recv(4096))
        except socket.timeout:
            continue
    return {"junk_sent": junk, "junk_echoed": sum(1 for d in echoed if d in sent_junk),
            "initials_sent": len(initials), "initials_echoed": sum(1 for d in echoed if d in initials)}


def quic_flood(server, count):
    family = family_of(server)
    sent = 0
    failed = 0
    sockets = []
    for i in range(count):
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.setblocking(False)
        dcid = os.urandom(8)
        datagram = bytes([0xC0]) + b"\x00\x00\x00\x01" + bytes([8]) + dcid + b"\x00\x00" + b"\x44\xb0" + os.urandom(1180)
        try:
            s.sendto(datagram, (server, 443))
            sent += 1
        except OSError:
            failed += 1
        sockets.append(s)
        if len(sockets) >= 500:
            for x in sockets:
                x.close()
            sockets = []
    for x in sockets:
        x.close()
    return {"sent": sent, "failed": failed}


def sequential(server, count, prefix, pause=0.0):
    """COUNT queries one after another, each for a new name (so none is cached), PAUSE seconds
    apart."""
    s = socket.socket(family_of(server), socket.SOCK_DGRAM)
    s.settimeout(2)
    answered = 0
    for i in range(count):
        query = dns.message.make_query(f"{prefix}{i}.lab.test", "A")
        s.sendto(query.to_wire(), (server, 53))
        try:
            while True:
                data, _ = s.recvfrom(65535)
                if data[:2] == query.to_wire()[:2]:
                    answered += 1
                    break
        except socket.timeout:
            pass
        if pause:
            time.sleep(pause)
    return {"sent": count, "answered": answered}


def flood(server, count, prefix):
    """COUNT queries for new names as fast as the socket takes them; answers are not awaited."""
    return blast(server, (dns.message.make_query(f"{prefix}{i}.lab.test", "A").to_wire() for i in range(count)))


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def spoofed(server, count, seed):
    """COUNT queries from random source addresses in 10.53.128.0/17 and random ports (a raw
    socket writes the IPv4 header), each for a new name."""
    rng = random.Random(seed)
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    destination = socket.inet_aton(server)
    sent = 0
    for i in range(count):
        source = socket.inet_aton(f"10.53.{rng.randrange(128, 256)}.{rng.randrange(1, 255)}")
        payload = dns.message.make_query(f"spoof{i}.lab.test", "A").to_wire()
        sport = rng.randrange(1024, 65535)
        length = 8 + len(payload)
        pseudo = source + destination + struct.pack("!BBH", 0, 17, length)
        udp = struct.pack("!HHHH", sport, 53, length, 0) + payload
        udp = udp[:6] + struct.pack("!H", checksum(pseudo + udp) or 0xFFFF) + udp[8:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + length, i & 0xFFFF, 0, 64, 17, 0, source, destination)
        ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
        try:
            s.sendto(ip + udp, (server, 0))
            sent += 1
        except OSError:
            time.sleep(0.001)
    return {"sent": sent}


def oversize(server, size):
    """One UDP datagram of SIZE bytes (a query padded past any slot; IP fragments it)."""
    query = dns.message.make_query("www.lab.test", "A").to_wire()
    s = socket.socket(family_of(server), socket.SOCK_DGRAM)
    s.settimeout(1)
    s.sendto(query + bytes(size - len(query)), (server, 53))
    try:
        s.recvfrom(65535)
        return {"answered": True}
    except socket.timeout:
        return {"answered": False}


def main():
    command, server = sys.argv[1], sys.argv[2]
    check_lab_address(server)
    if command == "tcp-big":
        result = tcp_big(server, int(sys.argv[3]))
    elif command == "opcode":
        result = opcode(server, sys.argv[3], sys.argv[4])
    elif command == "raw":
        result = raw(server, int(sys.argv[3]), int(sys.argv[4]))
    elif command == "classes":
        result = classes(server)
    elif command == "tcp-hold":
        result = tcp_hold(server, int(sys.argv[3]), float(sys.argv[4]))
    elif command == "quic-junk":
        result = quic_junk(server, sys.argv[3], int(sys.argv[4]))
    elif command == "sequential":
        result = sequential(server, int(sys.argv[3]), sys.argv[4], float(sys.argv[5]) if len(sys.argv) > 5 else 0.0)
    elif command == "flood":
        result = flood(server, int(sys.argv[3]), sys.argv[4])
    elif command == "spoofed":
        result = spoofed(server, int(sys.argv[3]), int(sys.argv[4]))
    elif command == "oversize":
        result = oversize(server, int(sys.argv[3]))
    elif command == "quic-flood":
        result = quic_flood(server, int(sys.argv[3]))
    else:
        sys.exit(f"unknown command {command}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
