#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (Fuzz/corpus/TARGET/seed-*). Run from anywhere:
    python3 Fuzz/make_seeds.py
Seeds are real messages built with dnspython (as the lab's clients and servers send them), the
RFC 9001/9369 Initial vectors, the project's own configuration and zone, list lines of every
format, and the inputs the outside test of issue 13 sent. Fuzzing adds what it finds to the same
folders (scripts/fuzz.sh); FuzzCorpusTests replays them all."""
import re
import struct
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rrset

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "Fuzz" / "corpus"


def save(target, name, data):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"seed-{name}").write_bytes(data if isinstance(data, bytes) else data.encode())


def pieces(*chunks):
    return b"".join(struct.pack("!H", len(c)) + c for c in chunks)


def queries():
    out = {
        "a": dns.message.make_query("www.lab.test", "A"),
        "aaaa-edns": dns.message.make_query("www.lab.test", "AAAA", use_edns=0, payload=1232),
        "do-cd": dns.message.make_query("signed.lab.test", "A", want_dnssec=True),
        "https": dns.message.make_query("svc.lab.test", "HTTPS", use_edns=0),
        "root-ns": dns.message.make_query(".", "NS"),
        "padded": dns.message.make_query("www.lab.test", "A", use_edns=0,
                                         options=[dns.edns.GenericOption(dns.edns.PADDING, bytes(100))]),
    }
    out["do-cd"].flags |= dns.flags.CD
    return {k: v.to_wire() for k, v in out.items()}


def answers():
    q = dns.message.make_query("www.lab.test", "A")
    q.id = 0x4242
    plain = dns.message.make_response(q)
    plain.answer.append(dns.rrset.from_text("www.lab.test.", 60, "IN", "A", "10.53.2.80"))
    chain = dns.message.make_response(q)
    chain.answer.append(dns.rrset.from_text("www.lab.test.", 60, "IN", "CNAME", "web.lab.test."))
    chain.answer.append(dns.rrset.from_text("web.lab.test.", 60, "IN", "A", "10.53.2.81", "10.53.2.82"))
    nx = dns.message.make_response(q)
    nx.set_rcode(dns.rcode.NXDOMAIN)
    nx.authority.append(dns.rrset.from_text("lab.test.", 300, "IN", "SOA", "ns.lab.test. admin.lab.test. 1 3600 600 86400 30"))
    mixed = dns.message.make_response(q)
    mixed.answer.append(dns.rrset.from_text("www.lab.test.", 60, "IN", "A", "10.53.2.80"))
    mixed.authority.append(dns.rrset.from_text("lab.test.", 300, "IN", "NS", "ns.lab.test."))
    mixed.additional.append(dns.rrset.from_text("ns.lab.test.", 300, "IN", "A", "10.53.2.53"))
    mixed.additional.append(dns.rrset.from_text("lab.test.", 300, "IN", "MX", "10 mail.lab.test."))
    mixed.additional.append(dns.rrset.from_text("_sip._udp.lab.test.", 300, "IN", "SRV", "0 5 5060 sip.lab.test."))
    mixed.additional.append(dns.rrset.from_text("lab.test.", 300, "IN", "TXT", '"v=spf1 -all"'))
    edns = dns.message.make_response(dns.message.make_query("www.lab.test", "A", use_edns=0, want_dnssec=True))
    edns.id = 0x4242
    edns.answer.append(dns.rrset.from_text("www.lab.test.", 60, "IN", "A", "10.53.2.80"))
    wires = {"a": plain.to_wire(), "cname-chain": chain.to_wire(), "nxdomain-soa": nx.to_wire(),
             "mixed": mixed.to_wire(), "edns-do": edns.to_wire()}
    # The malformed answers of finding 6 and the TTL of finding 7.
    base = bytearray(plain.to_wire())
    record = len(base) - 16
    rdlen = bytearray(base); rdlen[record + 10:record + 12] = (200).to_bytes(2, "big")
    count = bytearray(base); count[6:8] = (3).to_bytes(2, "big")
    loop = bytearray(base); loop[record:record + 2] = (0xC000 | record).to_bytes(2, "big")
    ttl = bytearray(base); ttl[record + 6:record + 10] = (0xFFFFFFFF).to_bytes(4, "big")
    wires.update({"rdlength-past-end": bytes(rdlen), "count-too-large": bytes(count),
                  "owner-loop": bytes(loop), "ttl-max": bytes(ttl)})
    return wires


def main():
    for name, wire in queries().items():
        save("query", name, wire)
    # Issue 13, finding 2: two TSIG records that leaked inside ldns_wire2pkt.
    save("query", "tsig-leak", bytes.fromhex("00010077000100000000ffff00000000000000fa00000000ffff00000000fa0000000000000000"))
    header = struct.pack("!HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
    question = b"\x03www\x03lab\x04test\x00\x00\x01\x00\x01"
    save("query", "pointer-loop", header + b"\xc0\x0c\x00\x01\x00\x01")
    save("query", "opcode-notify", struct.pack("!HHHHHH", 1, 0x2100, 1, 0, 0, 0) + question)
    save("query", "opt-twice", struct.pack("!HHHHHH", 1, 0x0100, 1, 0, 0, 2) + question + b"\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x00" * 2)

    for name, wire in answers().items():
        save("answer", name, wire)

    for path in (ROOT / "zones").glob("*.zone"):
        save("zone", path.stem, path.read_bytes())
    save("zone", "snippets", "$TTL 60\n@ IN SOA ns admin 1 2 3 4 5\n@ IN NS ns\nns IN A 10.53.5.1\n*.wild IN A 10.53.5.2\n"
         "alias IN CNAME ns\n( multi IN TXT \"a\" \"b\" )\nmx IN MX 10 ns\nv6 IN AAAA fd53:5::1\n$ORIGIN sub.fuzz.lan.\nx IN A 10.53.5.3\n")

    save("rules", "formats", "\n".join([
        "0.0.0.0 ads.lab.test", "127.0.0.1 localhost tracker.lab.test", ":: v6.lab.test", "ads2.lab.test",
        "*.wild.lab.test", "||adblock.lab.test^", "@@||allowed.lab.test^", "||important.lab.test^$important",
        "||typed.lab.test^$dnstype=AAAA", "||client.lab.test^$client=10.53.1.0/24", "||deny.lab.test^$denyallow=ok.lab.test",
        "||rewrite.lab.test^$dnsrewrite=10.53.2.99", "||rc.lab.test^$dnsrewrite=REFUSED;;",
        "|exact.lab.test^", "||mid*dle.lab.test^", "/^track[0-9]+\\./", "/^(a+)+$/", "/(\\w)\\1/",
        "address=/dnsmasq.lab.test/0.0.0.0", "local=/local.lab.test/", "server=/corp.lab.test/10.53.2.53",
        'local-zone: "unbound.lab.test" always_nxdomain', "! comment", "# comment", "[Adblock Plus 2.0]",
    ]))

    save("config", "shipped", (ROOT / "Configs" / "relay.yaml").read_bytes())
    save("config", "small", "intercept:\n  interfaces: [lan0]\nupstream:\n  mode: servers\n  servers: [10.53.2.53, \"[fd53:2::53]:53\"]\n"
         "filters:\n  lists: [a.txt]\n  clients:\n    - match: [10.53.1.0/24]\n      lists: [a.txt]\ncache:\n  entries: 100\n"
         "tcp:\n  idle_timeout: 5s\nquic:\n  hold_time: 100ms\nlimits:\n  max_quic_flows: 10\n")

    vectors = (ROOT / "Tests" / "QUICTests" / "RFCVectors.swift").read_text()
    blocks = dict(re.findall(r'static let (\w+) = hex\("""(.*?)"""\)', vectors, re.S))
    hexes = {k: bytes.fromhex(re.sub(r"\s", "", v)) for k, v in blocks.items()}
    save("quic", "rfc9001-v1", pieces(hexes["clientInitialV1"]))
    save("quic", "rfc9369-v2", pieces(hexes["clientInitialV2"]))
    save("quic", "junk-then-v1", pieces(b"\x01", hexes["clientInitialV1"]))
    save("quic-plaintext", "rfc9001-frames", pieces(hexes["clientInitialFrames"]))
    frames = hexes["clientInitialFrames"]
    save("quic-plaintext", "split", pieces(frames[:len(frames) // 2], frames[len(frames) // 2:]))

    framed = b"".join(struct.pack("!H", len(w)) + w for w in queries().values())
    save("tcp-frames", "pipelined", pieces(framed[:7], framed[7:100], framed[100:]))
    save("tcp-frames", "bad-length", pieces(b"\x00\x05hello"))

    http_seeds()

    save("log-line", "lines", "\n".join([
        '{"time":"2026-11-27T10:00:00.123456Z","client":"10.53.1.2","server":"10.53.2.53:53","proto":"udp","name":"www.lab.test",'
        '"type":"A","action":"allowed","rcode":"NOERROR","answers":["10.53.2.80"],"upstream":"10.53.2.53:53","duration_ms":1.2}',
        '{"time":"2026-11-27T10:00:01Z","client":"fd53:1::2","server":"[fd53:3::53]:53","proto":"tcp","name":"ads.lab.test",'
        '"type":"AAAA","action":"blocked","rcode":"NXDOMAIN","rule":{"list":"a.txt","line":3,"text":"||ads.lab.test^"}}',
        '{"time":"2026-11-27T10:00:02Z","client":"10.53.1.2","server":"10.53.2.80:443","proto":"quic","sni":"quic.lab.test",'
        '"action":"allowed","bytes_up":1200,"bytes_down":5000}',
        "not json", '{"time":', '{"client":"10.53.1.2"}', "",
    ]) + '\n{"time":"2026-11-27T10:00:03Z","partial":')


def http_seeds():
    """Requests as Prometheus and curl send them, split across reads, and the hostile ones."""
    scrape = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9153\r\nUser-Agent: Prometheus/2.42.0\r\nAccept: text/plain;version=0.0.4\r\n\r\n"
    save("http-head", "scrape", pieces(scrape))
    save("http-head", "scrape-split", pieces(scrape[:5], scrape[5:31], scrape[31:]))
    save("http-head", "head-healthz-lf", pieces(b"HEAD /healthz HTTP/1.0\n\n"))
    save("http-head", "post", pieces(b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"))
    save("http-head", "long-header", pieces(b"GET / HTTP/1.1\r\nX: " + b"a" * 9000))
    ctype = b"protobuf:dnstap.Dnstap"
    accept = struct.pack("!III", 0, 4 + 8 + len(ctype), 1) + struct.pack("!II", 1, len(ctype)) + ctype
    save("fstrm-control", "accept", pieces(accept))
    save("fstrm-control", "accept-split", pieces(accept[:3], accept[3:13], accept[13:]))
    save("fstrm-control", "finish", pieces(struct.pack("!III", 0, 4, 5)))
    save("fstrm-control", "data-frame", pieces(struct.pack("!I", 5) + b"hello"))
    save("fstrm-control", "huge", pieces(struct.pack("!II", 0, 0xFFFFFFF0)))
    save("fstrm-control", "field-past-end", pieces(struct.pack("!IIIII", 0, 12, 1, 1, 256)))
    save("http-head", "long-line", pieces(b"GET /" + b"b" * 3000 + b" HTTP/1.1\r\n\r\n"))
    # The dashboard's requests: cookies, a CSRF field, a form body (a broken escape at its end).
    dashboard = (b"POST /api/pause?x=%41 HTTP/1.1\r\nHost: relay\r\nCookie: a=1; tproxy_relay_session=" + b"0" * 32
                 + b"\r\nX-CSRF-Token: ff\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 14\r\n\r\nseconds=30&a=%")
    save("http-head", "dashboard-post", pieces(dashboard[:40], dashboard[40:]))


if __name__ == "__main__":
    main()
