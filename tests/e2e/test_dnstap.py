"""Issue 20: dnstap out. Real receivers take the relay's stream and real decoders read it:
`fstrm_capture` (fstrm-bin) over a unix socket and TCP, and golang-dnstap's `dnstap` as a second,
independent receiver and decoder (`-j`: one JSON object per frame); `dnstap-ldns -r -y` reads the
same files. Every query the client sent appears once, with the client, the address it asked (v4
and v6), the transport, and for a blocked name the list and rule as the Policy. A collector that
is absent at start is connected once it comes; one killed mid-run leaves DNS answering, with the
frames dropped counted and memory flat."""
import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest

import dnstap_policy
from conftest import HERE, config, wait_for

CONTENT_TYPE = "protobuf:dnstap.Dnstap"


def tap_config(lab, target, messages="[client_query, client_response, forwarder_query, forwarder_response]", queue=None):
    (lab.state / "ads.txt").write_text("! a list\n||ads.lab.test^\n")
    return config(upstream="mode: servers\n  servers: [10.53.2.53]\n  timeout: 1s",
                  extra=f"filters:\n  lists: [{lab.state / 'ads.txt'}]\n"
                        f"dnstap:\n  socket: {target}\n  identity: lab-router\n  messages: {messages}\n"
                        + (f"  queue: {queue}\n" if queue else "")
                        + "metrics:\n  listen: [\"127.0.0.1:9153\"]\n")


def plan():
    """Distinct names, so that each query is found by its name: v4 and v6 over UDP, TCP, blocked."""
    items = [(f"10.53.2.53", f"v4-{i}.wild.lab.test", "A", "udp") for i in range(10)]
    items += [(f"fd53:2::53", f"v6-{i}.wild.lab.test", "AAAA", "udp") for i in range(10)]
    items += [(f"10.53.3.53", f"tcp-{i}.wild.lab.test", "A", "tcp") for i in range(5)]
    items += [("10.53.3.53", "ads.lab.test", "A", "udp"), ("fd53:3::53", "ads.lab.test", "AAAA", "udp")]
    return items


def send(lab, items):
    args = [f"{s},{n},{t}" + (",tcp" if p == "tcp" else "") for s, n, t, p in items]
    out = lab.client("python3", str(HERE / "dnsclient.py"), "many", str(len(items)), *args, check=True, timeout=120).stdout
    result = json.loads(out)
    assert result["answered"] == len(items), result
    return result


def capture(lab, path, *listen):
    """fstrm_capture writing `path`; it writes its file out when SIGINT stops it."""
    return subprocess.Popen(["fstrm_capture", "-t", CONTENT_TYPE, "-w", str(path), *listen],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop_capture(process):
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError("fstrm_capture did not stop on SIGINT")


def decode(path):
    """Frames as golang-dnstap's `dnstap -j` prints them: one JSON object each."""
    out = subprocess.run(["dnstap", "-r", str(path), "-j"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def qname(frame):
    message = frame["message"]
    text = message.get("query_message") or message.get("response_message") or ""
    found = re.search(r";([^\s;]+)\.\s+IN\s+\w+", text)
    return found.group(1) if found else None


def ldns(path):
    out = subprocess.run(["dnstap-ldns", "-r", str(path), "-y"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


def wait_socket(path):
    assert wait_for(lambda: path.exists(), timeout=5), f"{path} never appeared"


def check_stream(frames, items):
    by_kind = {}
    for frame in frames:
        assert frame["type"] == "MESSAGE" and frame["identity"] == "lab-router", frame
        assert frame["version"].startswith("tproxy-relay "), frame
        by_kind.setdefault(frame["message"]["type"], []).append(frame)
    responses = by_kind.get("CLIENT_RESPONSE", [])
    queries = by_kind.get("CLIENT_QUERY", [])
    for server, name, rdtype, proto in items:
        for kind, found in (("CLIENT_QUERY", queries), ("CLIENT_RESPONSE", responses)):
            mine = [f for f in found if qname(f) == name and f["message"]["response_address"] == server]
            assert len(mine) == 1, f"{kind} {name} @{server}: {len(mine)} frames"
            m = mine[0]["message"]
            assert m["query_address"] == ("10.53.1.2" if ":" not in server else "fd53:1::2"), m
            assert m["response_port"] == 53 and m["query_port"] > 0, m
            assert m["socket_family"] == ("INET6" if ":" in server else "INET"), m
            assert m["socket_protocol"] == proto.upper(), m
    forwarded = [n for _, n, _, _ in items if n != "ads.lab.test"]
    for kind in ("FORWARDER_QUERY", "FORWARDER_RESPONSE"):
        names = [qname(f) for f in by_kind.get(kind, [])]
        assert sorted(n for n in names if n in forwarded) == sorted(forwarded), kind
        for f in by_kind[kind]:
            # The shared upstream sockets: the relay's side left out, the upstream given.
            assert f["message"]["response_address"] == "10.53.2.53" and "query_address" not in f["message"], f
    assert "ads.lab.test" not in [qname(f) for f in by_kind["FORWARDER_QUERY"]]
    return by_kind


def check_policies(lab, path, items):
    """The blocked name's answers carry the list and rule; no other answer carries a policy."""
    responses = [f for f in dnstap_policy.frames(path) if f["type"] == "CLIENT_RESPONSE"]
    assert len(responses) == len(items)
    for f in responses:
        if f["qname"] == "ads.lab.test":
            assert f["policy"] == {"type": "ads.txt", "rule": "||ads.lab.test^", "action": "NXDOMAIN", "match": "QNAME"}, f
        else:
            assert f["policy"] is None, f


def test_every_query_once_over_a_unix_socket(lab, relay_factory):
    sock, out = lab.state / "tap.sock", lab.state / "tap-unix.fstrm"
    receiver = capture(lab, out, "-u", str(sock))
    try:
        wait_socket(sock)
        relay = relay_factory(tap_config(lab, f"unix:{sock}"))
        assert wait_for(lambda: "dnstap: streaming to unix:" in relay.output()), relay.output()
        items = plan()
        send(lab, items)
        relay.stop()  # STOP, FINISH: the stream ends cleanly
        assert re.search(r"dnstap to unix:\S+: \d+ frames sent, 0 dropped", relay.output()), relay.output()
    finally:
        stop_capture(receiver)
    frames = decode(out)
    by_kind = check_stream(frames, items)
    check_policies(lab, out, items)
    # The standard C decoder reads the same file.
    text = ldns(out)
    assert text.count("type: CLIENT_RESPONSE") == len(items)
    assert 'response_address: "fd53:2::53"' in text and 'query_address: "fd53:1::2"' in text


def test_every_query_once_over_tcp_to_a_collector_upstream(lab, relay_factory):
    """The collector on the far side (the upstream namespace), over TCP; the relay's connection
    carries the bypass mark."""
    out = lab.state / "tap-tcp.fstrm"
    receiver = lab.spawn(lab.up, "fstrm_capture", "-t", CONTENT_TYPE, "-w", str(out), "-a", "10.53.2.53", "-p", "6000")
    try:
        assert wait_for(lambda: ":6000" in lab.exec(lab.up, "ss", "-ltn").stdout, timeout=5)
        relay = relay_factory(tap_config(lab, "tcp:10.53.2.53:6000"))
        assert wait_for(lambda: "dnstap: streaming to tcp:10.53.2.53:6000" in relay.output()), relay.output()
        marks = lab.exec(lab.rtr, "ss", "-tnie", "dst", "10.53.2.53:6000").stdout
        assert "fwmark:0x54" in marks, marks
        items = plan()
        send(lab, items)
        relay.stop()
    finally:
        stop_capture(receiver)
    check_stream(decode(out), items)
    check_policies(lab, out, items)


def test_the_file_target(lab, relay_factory):
    out = lab.state / "tap-file.fstrm"
    relay = relay_factory(tap_config(lab, f"file:{out}", messages="[client_response]"))
    items = plan()
    send(lab, items)
    relay.stop()
    frames = decode(out)
    assert [f["message"]["type"] for f in frames] == ["CLIENT_RESPONSE"] * len(items)
    check_policies(lab, out, items)
    data = out.read_bytes()
    # START with the content type first; STOP last.
    assert data[:8] == b"\0\0\0\0\0\0\0\x22" and data[8:12] == b"\0\0\0\x02" and CONTENT_TYPE.encode() in data[:42]
    assert data[-12:] == b"\0\0\0\0\0\0\0\x04\0\0\0\x03"
    assert ldns(out).count("type: CLIENT_RESPONSE") == len(items)


def metrics(lab):
    out = lab.exec(lab.rtr, "python3", str(HERE / "httppeer.py"), "get", "127.0.0.1", "9153", "/metrics", check=True)
    text = json.loads(out.stdout)["body"]
    values = {}
    for line in text.splitlines():
        if line.startswith("tproxy_relay_dnstap_"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def test_a_collector_absent_at_start_is_connected_when_it_comes(lab, relay_factory):
    """golang-dnstap's own receiver this time (`dnstap -u SOCKET`), started after the relay."""
    sock, out = lab.state / "late.sock", lab.state / "late.json"
    relay = relay_factory(tap_config(lab, f"unix:{sock}", messages="[client_response]"))
    assert wait_for(lambda: "dnstap: unix:" in relay.output()), relay.output()
    send(lab, plan()[:5])  # answered while nothing listens
    before = metrics(lab)
    assert before["tproxy_relay_dnstap_connected"] == 0 and before["tproxy_relay_dnstap_frames_dropped_total"] == 5, before
    receiver = subprocess.Popen(["dnstap", "-u", str(sock), "-j", "-w", str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert wait_for(lambda: "dnstap: streaming to unix:" in relay.output(), timeout=8), relay.output()
        items = plan()[5:15]
        send(lab, items)
        assert wait_for(lambda: metrics(lab)["tproxy_relay_dnstap_frames_sent_total"] == 10, timeout=5), metrics(lab)
        relay.stop()
        assert wait_for(lambda: out.exists() and len(out.read_text().splitlines()) == 10, timeout=5)
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)
    frames = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(qname(f) for f in frames) == sorted(n for _, n, _, _ in items)


def test_a_collector_killed_mid_run_costs_no_answer_and_no_memory(lab, relay_factory):
    sock, out = lab.state / "killed.sock", lab.state / "killed.fstrm"
    receiver = capture(lab, out, "-u", str(sock))
    wait_socket(sock)
    # A small queue (512 KiB rings) that the first load wraps: RSS is then measured with every
    # page of the rings touched.
    relay = relay_factory(tap_config(lab, f"unix:{sock}", messages="[client_query, client_response]", queue=1024))
    assert wait_for(lambda: "dnstap: streaming to unix:" in relay.output()), relay.output()
    send(lab, plan()[:4])
    receiver.kill()
    receiver.wait()
    pid = relay.process.pid

    def rss():
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

    def load(count):
        names = lab.state / "killed-names.txt"
        names.write_text("".join(f"k{i}.wild.lab.test A\n" for i in range(500)))
        result = lab.client("dnsperf", "-s", "10.53.2.53", "-d", str(names), "-n", str(count // 500), "-Q", "5000", "-c", "4",
                            "-t", "2", check=True, timeout=120).stdout
        return int(re.search(r"Queries completed:\s+(\d+)", result).group(1))

    assert load(20_000) == 20_000  # DNS answers every query while the collector is gone
    assert wait_for(lambda: "dnstap: " in relay.output() and "frames dropped" in relay.output()), relay.output()
    filled = rss()
    assert load(40_000) == 40_000
    after = rss()
    assert after - filled < 2048, f"RSS grew {after - filled} KiB over 40k queries with no collector"
    counted = metrics(lab)
    assert counted["tproxy_relay_dnstap_connected"] == 0
    # Two frames per query (its query and its answer) from here on are all dropped.
    assert counted["tproxy_relay_dnstap_frames_dropped_total"] >= 2 * 60_000, counted
