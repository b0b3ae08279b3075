#!/usr/bin/env python3
"""Upstream DNS servers that misbehave on purpose, run inside the lab's `up` namespace.

  silent ADDRESS       receives queries and never answers (timeouts, SERVFAIL, next server)
  spoofing ADDRESS ALT answers each query first with forgeries the relay must drop: a wrong ID,
                       the right ID from another address (ALT), from another port, and for
                       another question; then, 100 ms later, the real answer (A 10.53.4.100)
  answering ADDRESS [TTL]
                       answers every query with A 10.53.4.100 / AAAA fd53:4::100 (TTL, default
                       60) and reports each query's name; names starting with "nx" get NXDOMAIN
                       with an SOA (minimum 30)
  midclose ADDRESS     UDP: answers TC=1 with no records (so the relay retries over TCP);
                       TCP: reads the query, sends a length of 200 and 20 bytes, and closes
  malformed ADDRESS    answers by the query's first label: rdlen* a record whose data runs past
                       the end; count* ANCOUNT 3 with one record; loop* an owner name that points
                       at itself; ttlmax* a sound answer with TTL 0xFFFFFFFF; anything else a
                       sound answer (A 10.53.4.100, TTL 60)
  stuck ADDRESS        TCP (and UDP TC=1 to move there): stuck* gets a length of 200, 20 bytes,
                       then nothing while the connection stays open; others a sound answer
  identity ADDRESS     UDP and TCP: answers A/AAAA by who asked: 10.53.5.N / fd53:5::N where N is
                       the last byte of the query's source address; reports each query's source,
                       transport and ECS option ("ADDRESS/PREFIX" or null). Answers carry an ECS
                       option when the query did, scope 0, or the number after "scope" in the
                       name's first label (scope32-x.lab.test: scope 32)

Every `query` event carries the source address and port the query came from.

Each line on stdout is a JSON event, so the test can count what the server saw and sent.
"""
import json
import socket
import sys
import time

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


def family_of(address):
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def bound(address, port):
    s = socket.socket(family_of(address), socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((address, port))
    return s


def answer(query, ip):
    response = dns.message.make_response(query)
    q = query.question[0]
    rdtype = "AAAA" if ":" in ip else "A"
    response.answer.append(dns.rrset.from_text(q.name, 60, "IN", rdtype, ip))
    return response


def truncate_over_udp(main_socket, report=False):
    """In a thread: every UDP query gets TC=1 with no records, so the relay asks over TCP."""
    import threading

    def udp():
        while True:
            data, client = main_socket.recvfrom(65535)
            response = dns.message.make_response(dns.message.from_wire(data))
            response.flags |= dns.flags.TC
            main_socket.sendto(response.to_wire(), client)
            if report:
                emit("udp-truncated")

    threading.Thread(target=udp, daemon=True).start()


def read_frame(conn):
    """One length-prefixed DNS message from a TCP connection, or None when it closes first."""
    data = b""
    for want in (2, None):
        need = 2 if want else int.from_bytes(data[:2], "big")
        body = b""
        while len(body) < need:
            chunk = conn.recv(need - len(body))
            if not chunk:
                return None
            body += chunk
        data += body
    return data[2:]


def tcp_listener(address):
    listener = socket.socket(family_of(address), socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((address, 53))
    listener.listen(64)
    return listener


def malformed_answer(query, label):
    """Wire bytes of an answer to `query` that is broken the way `label` names."""
    response = answer(query, "10.53.4.100")
    response.use_edns(False)  # so that the record is the message's last 16 bytes
    wire = bytearray(response.to_wire())
    # The record is the last 16 bytes: owner pointer (2), type, class, TTL, rdlength, 4 bytes.
    record = len(wire) - 16
    if label.startswith("rdlen"):
        wire[record + 10:record + 12] = (200).to_bytes(2, "big")
    elif label.startswith("count"):
        wire[6:8] = (3).to_bytes(2, "big")
    elif label.startswith("loop"):
        wire[record:record + 2] = (0xC000 | record).to_bytes(2, "big")
    elif label.startswith("ttlmax"):
        wire[record + 6:record + 10] = (0xFFFFFFFF).to_bytes(4, "big")
    return bytes(wire)


def emit(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


def main():
    mode, address = sys.argv[1], sys.argv[2]
    main_socket = bound(address, 53)
    emit("ready", address=address)
    if mode == "midclose":
        truncate_over_udp(main_socket, report=True)
        listener = tcp_listener(address)
        while True:
            conn, client = listener.accept()
            got = read_frame(conn)
            if got is not None:
                conn.sendall((200).to_bytes(2, "big") + got[:2] + bytes(18))
            conn.close()
            emit("tcp-closed-mid-message", client=client[0])
    if mode == "malformed":
        while True:
            data, client = main_socket.recvfrom(65535)
            query = dns.message.from_wire(data)
            label = query.question[0].name.labels[0].decode().lower()
            emit("query", client=client[0], port=client[1], name=label)
            main_socket.sendto(malformed_answer(query, label), client)
    if mode == "stuck":
        import threading

        def serve(conn):
            with conn:
                while True:
                    got = read_frame(conn)
                    if got is None:
                        return
                    query = dns.message.from_wire(got)
                    label = query.question[0].name.labels[0].decode().lower()
                    emit("tcp-query", name=label)
                    if label.startswith("stuck"):
                        conn.sendall((200).to_bytes(2, "big") + got[:2] + bytes(18))
                        emit("tcp-stuck")
                        time.sleep(3600)
                        return
                    wire = answer(query, "10.53.4.100").to_wire()
                    conn.sendall(len(wire).to_bytes(2, "big") + wire)

        truncate_over_udp(main_socket)
        listener = tcp_listener(address)
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()
    if mode == "answering":
        ttl = int(sys.argv[3]) if len(sys.argv) > 3 else 60
        while True:
            data, client = main_socket.recvfrom(65535)
            query = dns.message.from_wire(data)
            q = query.question[0]
            emit("query", client=client[0], port=client[1], name=q.name.to_text(), type=dns.rdatatype.to_text(q.rdtype))
            response = dns.message.make_response(query)
            if q.name.to_text().startswith("nx"):
                # NXDOMAIN with the zone's SOA (minimum 30 s), as RFC 2308 asks
                response.set_rcode(dns.rcode.NXDOMAIN)
                response.authority.append(dns.rrset.from_text(
                    "lab.test.", 300, "IN", "SOA", "ns.lab.test. admin.lab.test. 1 3600 600 86400 30"))
            elif q.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                ip = "10.53.4.100" if q.rdtype == dns.rdatatype.A else "fd53:4::100"
                response.answer.append(dns.rrset.from_text(q.name, ttl, "IN", q.rdtype, ip))
            elif q.rdtype in (dns.rdatatype.HTTPS, dns.rdatatype.SVCB):
                # Both address hints, as a CDN's HTTPS record carries them; an A record after it.
                response.answer.append(dns.rrset.from_text(
                    q.name, ttl, "IN", q.rdtype, "1 . alpn=h2,h3 ipv4hint=10.53.4.100 ech=AAT+DQAA ipv6hint=fd53:4::100"))
                response.additional.append(dns.rrset.from_text("ns." + q.name.to_text(), ttl, "IN", "A", "10.53.4.53"))
            main_socket.sendto(response.to_wire(), client)
    if mode == "identity":
        import threading

        def respond(wire, client, proto):
            query = dns.message.from_wire(wire)
            q = query.question[0]
            ecs = None
            scope = 0
            label = q.name.labels[0].decode().lower()
            if label.startswith("scope") and label[5:].split("-")[0].isdigit():
                scope = int(label[5:].split("-")[0])
            for option in query.options:
                if option.otype == 8:
                    ecs = f"{option.address}/{option.srclen}"
            emit("query", client=client[0], port=client[1], proto=proto, name=q.name.to_text(), ecs=ecs)
            response = dns.message.make_response(query)
            last = socket.inet_pton(family_of(client[0]), client[0])[-1]
            if q.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                ip = f"10.53.5.{last}" if q.rdtype == dns.rdatatype.A else f"fd53:5::{last:x}"
                response.answer.append(dns.rrset.from_text(q.name, 60, "IN", q.rdtype, ip))
            if ecs is not None:

                subnet = next(o for o in query.options if o.otype == 8)
                response.use_edns(0, 0, 1232, options=[dns.edns.ECSOption(subnet.address, subnet.srclen, scope)])
            return response.to_wire()

        def serve_tcp(conn, client):
            with conn:
                while True:
                    got = read_frame(conn)
                    if got is None:
                        return
                    wire = respond(got, client, "tcp")
                    conn.sendall(len(wire).to_bytes(2, "big") + wire)

        listener = tcp_listener(address)

        def accept():
            while True:
                conn, client = listener.accept()
                threading.Thread(target=serve_tcp, args=(conn, client), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
        while True:
            data, client = main_socket.recvfrom(65535)
            main_socket.sendto(respond(data, client, "udp"), client)
    if mode == "silent":
        while True:
            data, client = main_socket.recvfrom(65535)
            emit("query", client=client[0])
    alt = bound(sys.argv[3], 53)
    other_port = bound(address, 5353)
    real = "fd53:4::100" if ":" in address else "10.53.4.100"
    while True:
        data, client = main_socket.recvfrom(65535)
        query = dns.message.from_wire(data)
        emit("query", client=client[0], id=query.id)
        forged = answer(query, "fd53:4::66" if ":" in address else "10.53.4.66")
        wrong_id = forged.to_wire()
        wrong_id = bytes([(wrong_id[0] ^ 0x5A), wrong_id[1]]) + wrong_id[2:]
        main_socket.sendto(wrong_id, client)
        alt.sendto(forged.to_wire(), client)
        other_port.sendto(forged.to_wire(), client)
        other_question = dns.message.make_query("other.lab.test", "A")
        other_question.id = query.id
        main_socket.sendto(answer(other_question, "10.53.4.66").to_wire(), client)
        emit("forged", count=4)
        time.sleep(0.1)
        main_socket.sendto(answer(query, real).to_wire(), client)
        emit("answered")


if __name__ == "__main__":
    main()
