"""QUIC end to end: real HTTP/3 (aioquic) from `cli` to a server on 10.53.2.80:443 in `up`,
relayed transparently by the relay in `rtr`. The SNI read from the Initial packets is logged and
the rules apply to it; `quic.block` blocks all QUIC; other UDP 443 traffic is relayed without an
SNI; 10,000 flows come and go without leaking a descriptor."""
import datetime
import json
import os
import threading
import time

import pytest

from conftest import HERE, config, wait_for

SERVER = "10.53.2.80"
ECHO = "10.53.4.54"


@pytest.fixture(scope="module")
def h3(lab):
    pytest.importorskip("aioquic")
    directory = lab.state / "quic"
    directory.mkdir(exist_ok=True)
    lab.exec(lab.up, "python3", str(HERE / "quicpeer.py"), "cert", str(directory), "quic.lab.test", "blocked.lab.test",
             "other.lab.test", check=True)
    lab.exec(lab.up, "ip", "addr", "add", f"{SERVER}/24", "dev", "up0", check=True)
    server = lab.spawn(lab.up, "python3", str(HERE / "quicpeer.py"), "server", SERVER, "443", str(directory))
    assert server.stdout.readline().strip() == "listening"
    echo = lab.spawn(lab.up, "python3", str(HERE / "quicpeer.py"), "echo", ECHO, "443")
    assert echo.stdout.readline().strip() == "listening"
    return directory


def get(lab, directory, sni, timeout=4.0):
    out = lab.client("python3", str(HERE / "quicpeer.py"), "get", SERVER, "443", sni, str(directory / "ca.pem"),
                     "--timeout", str(timeout), timeout=timeout + 20)
    return json.loads(out.stdout)


def quic_entries(path):
    """Every QUIC line: a flow's decision and, once it ended, its end entry."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if '"proto":"quic"' in line]


def decided(path):
    """The entries written when flows were decided (one per flow, unless a later ClientHello blocked it)."""
    return [e for e in quic_entries(path) if "event" not in e]


def ended(path):
    """The entries written when flows ended, with their bytes and duration."""
    return [e for e in quic_entries(path) if e.get("event") == "end"]


def quic_relay(lab, relay_factory, quic="", name="relay", idle="1s"):
    lists = lab.state / f"{name}-quic-rules.txt"
    lists.write_text("||blocked.lab.test^\n")
    log = lab.state / f"{name}-queries.jsonl"
    text = config(extra=f"""filters:
  lists: [{lists}]
querylog:
  path: {log}
quic:
  idle_timeout: {idle}
{quic}""")
    return relay_factory(text, name=name), log, lists


def test_http3_through_the_relay_is_logged_with_its_sni(lab, relay_factory, h3):
    relay, log, _ = quic_relay(lab, relay_factory, name="h3", idle="3s")
    # The request runs beside; the log is watched meanwhile.
    outcome = {}
    request = threading.Thread(target=lambda: outcome.update(get(lab, h3, "quic.lab.test")))
    request.start()
    seen = wait_for(lambda: decided(log) and time.time(), timeout=10)
    request.join()
    result = outcome
    assert result["ok"] and result["status"] == 200, result
    assert result["body"] == "hello over h3 from quic.lab.test /index", result
    # The decision is logged when the SNI is read: within a second of the first Initial (the
    # entry's time), while the flow is still open (it idles out 3 s after its last datagram).
    entries = decided(log)
    first_initial = datetime.datetime.strptime(entries[0]["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()
    assert seen and seen - first_initial < 1.0, (seen, entries)
    assert relay.counters()["quic_open"] == 1 and ended(log) == [], relay.counters()
    assert len(entries) == 1, entries
    entry = entries[0]
    assert entry["sni"] == "quic.lab.test" and entry["quic_version"] == "1", entry
    assert entry["action"] == "allowed" and entry["rule"] is None, entry
    assert entry["client"].startswith("10.53.1.2:") and entry["server"] == f"{SERVER}:443", entry
    assert entry["bytes_up"] >= 1200 and entry["duration_us"] < 1_000_000, entry
    assert "sni_error" not in entry and "qname" not in entry, entry
    # The end entry carries the flow's bytes each way and its lifetime.
    end = wait_for(lambda: ended(log), timeout=8)
    assert len(end) == 1, end
    end = end[0]
    assert end["sni"] == "quic.lab.test" and end["action"] == "allowed" and end["client"] == entry["client"], end
    assert end["bytes_up"] >= entry["bytes_up"] and end["bytes_up"] >= 1200 and end["bytes_down"] > 1000, end
    assert end["duration_us"] >= 3_000_000 and end["time"] == entry["time"], end
    counters = relay.counters()
    assert counters["quic_flows"] == 1 and counters["quic_blocked"] == 0 and counters["quic_closed"] == 1, counters
    assert counters["quic_packets_up"] >= 3 and counters["quic_packets_down"] >= 3, counters


def test_a_blocked_sni_fails_the_connection_and_is_logged_with_its_rule(lab, relay_factory, h3):
    # A long idle timeout: the client's retransmissions (1 s, 2 s apart) stay in one flow.
    relay, log, lists = quic_relay(lab, relay_factory, name="blocked", idle="10s")
    result = get(lab, h3, "blocked.lab.test", timeout=3.0)
    assert not result["ok"], result
    # Blocked flows are logged at once, with the rule that blocked them.
    entries = wait_for(lambda: decided(log), timeout=1)
    assert len(entries) == 1, entries
    entry = entries[0]
    assert entry["sni"] == "blocked.lab.test" and entry["action"] == "blocked", entry
    assert entry["rule"] == {"list": str(lists), "line": 1, "text": "||blocked.lab.test^"}, entry
    assert entry["bytes_down"] == 0, entry
    # Other names still pass through the same relay.
    assert get(lab, h3, "other.lab.test")["ok"]
    counters = relay.counters()
    assert counters["quic_blocked"] == 1 and counters["quic_flows"] == 2, counters


def test_quic_block_true_blocks_every_flow(lab, relay_factory, h3):
    relay, log, _ = quic_relay(lab, relay_factory, quic="  block: true\n", name="blockall", idle="10s")
    result = get(lab, h3, "quic.lab.test", timeout=3.0)
    assert not result["ok"], result
    entries = wait_for(lambda: decided(log), timeout=1)
    assert len(entries) == 1 and entries[0]["action"] == "blocked" and entries[0]["sni"] is None, entries
    assert relay.counters()["quic_packets_up"] == 0


def test_sniff_false_relays_without_reading(lab, relay_factory, h3):
    relay, log, _ = quic_relay(lab, relay_factory, quic="  sniff: false\n", name="nosniff")
    # Even the blocked name passes: nothing is read.
    assert get(lab, h3, "blocked.lab.test")["ok"]
    entries = wait_for(lambda: decided(log), timeout=1)
    assert len(entries) == 1 and entries[0]["sni"] is None and entries[0]["action"] == "allowed", entries
    end = wait_for(lambda: ended(log))
    assert len(end) == 1 and end[0]["bytes_down"] > 1000, end


def test_udp_443_that_is_not_quic_is_relayed_and_logged_without_an_sni(lab, relay_factory, h3):
    relay, log, _ = quic_relay(lab, relay_factory, name="notquic")
    out = lab.client("python3", str(HERE / "quicpeer.py"), "flows", ECHO, "443", "3", check=True)
    assert json.loads(out.stdout) == {"sent": 3, "answered": 3}
    # No SNI: decided (and logged) at the first datagram, which is not QUIC.
    entries = wait_for(lambda: len(decided(log)) == 3 and decided(log), timeout=2)
    assert entries and all(e["sni"] is None and e["sni_error"] == "not QUIC" and e["action"] == "allowed" for e in entries), entries
    end = wait_for(lambda: len(ended(log)) == 3 and ended(log))
    assert end and all(e["bytes_up"] == e["bytes_down"] > 60 and e["sni_error"] == "not QUIC" for e in end), end
    assert relay.counters()["quic_no_sni"] == 3


def test_ten_thousand_flows_come_and_go_without_leaking_descriptors(lab, relay_factory, h3):
    relay, log, _ = quic_relay(lab, relay_factory, quic="limits:\n  max_quic_flows: 40000\n", name="flows")
    pid = relay.process.pid
    links = lambda: {f: os.readlink(f"/proc/{pid}/fd/{f}") for f in os.listdir(f"/proc/{pid}/fd")}
    fds = lambda: len(links())
    first = links()
    before = len(first)
    out = lab.client("python3", str(HERE / "quicpeer.py"), "flows", ECHO, "443", "10000", check=True, timeout=120)
    result = json.loads(out.stdout)
    assert result["sent"] == 10000 and result["answered"] >= 9900, result
    counters = wait_for(lambda: (c := relay.counters())["quic_open"] == 0 and c, timeout=10)
    quic = {k: v for k, v in (counters or {}).items() if k.startswith("quic")}
    assert quic["quic_flows"] == 10000 and quic["quic_closed"] == 10000 and quic["quic_refused"] == 0, quic
    # Every flow socket (connected to the echo server) is closed ...
    rows = [l.split() for l in lab.exec(lab.rtr, "cat", "/proc/net/udp").stdout.splitlines()[1:]]
    connected = [r for r in rows if r[2] == "3604350A:01BB"]  # rem_address 10.53.4.54:443
    assert len([r for r in rows if r[1] == "3604350A:01BB"]) == 2  # the reply sockets, one per worker
    assert connected == [], connected
    # ... and the descriptor count is back where it was (10,000 flows held up to ~2,000 at once),
    # but for one reply socket per worker and the DNS upstream pools' rotation (each second a
    # fresh socket per pool, the old one kept until its queries could have timed out).
    assert fds() <= before + 2 + 16, (before, fds(), {f: t for f, t in links().items() if first.get(f) != t})
    assert len(decided(log)) == 10000 and len(ended(log)) == 10000


def test_flows_beyond_the_cap_are_refused_and_counted(lab, relay_factory, h3):
    relay, log, _ = quic_relay(lab, relay_factory, quic="limits:\n  max_quic_flows: 20\n", name="cap", idle="10s")
    out = lab.client("python3", str(HERE / "quicpeer.py"), "flows", ECHO, "443", "50", check=True)
    result = json.loads(out.stdout)
    counters = relay.counters()
    # 10 per worker; which worker a flow lands on is the kernel's choice (SO_REUSEPORT hash).
    assert counters["quic_open"] == 20 and counters["quic_refused"] == 30 and result["answered"] == 20, (counters, result)


def test_bad_quic_configuration_is_refused_with_file_and_line(lab, relay_factory):
    relay = relay_factory(config(extra="quic:\n  idle_timeout: never\n"), name="badquic", expect_ready=False)
    assert relay.wait(timeout=10) != 0
    assert "quic.idle_timeout: expected a duration such as 2s or 500ms, got 'never'" in relay.output()
