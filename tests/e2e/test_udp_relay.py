"""The UDP relay end to end in the namespace lab, with real clients (kdig, dig, Python)."""
import json
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BINARY, HERE, config, kill_9_and_expect_direct_dns, run

SERVERS = [("10.53.2.53", "A", "10.53.2.80"), ("10.53.3.53", "A", "10.53.2.80"),
           ("fd53:2::53", "AAAA", "fd53:2::80"), ("fd53:3::53", "AAAA", "fd53:2::80")]


@pytest.mark.parametrize("server,rdtype,expected", SERVERS)
def test_answers_come_from_the_address_asked(lab, relay, server, rdtype, expected):
    before = relay.counters()
    result = lab.query(server, "www.lab.test", rdtype)
    assert result.get("from") == server and result["port"] == 53, result
    assert result["rcode"] == "NOERROR" and any(expected in a for a in result["answers"]), result
    assert result["id"] == result["sent_id"]
    after = relay.counters()
    assert after["received"] - before["received"] == 1
    assert after["answered"] - before["answered"] == 1


@pytest.mark.parametrize("tool", ["kdig", "dig"])
@pytest.mark.parametrize("server,rdtype,expected", SERVERS)
def test_real_clients_get_answers(lab, relay, tool, server, rdtype, expected):
    before = relay.counters()
    out = lab.client(tool, "+time=2", "+tries=1" if tool == "dig" else "+retry=0", f"@{server}", "www.lab.test", rdtype, check=True).stdout
    assert expected in out, out
    # kdig and dig only accept an answer from the server they asked; say so explicitly too.
    if tool == "kdig":
        assert f"From {server}@53(UDP)" in out, out
    else:
        assert re.search(rf"SERVER: {re.escape(server)}#53", out), out
    after = relay.counters()
    assert after["answered"] - before["answered"] == 1


def test_edns_and_case_pass_through(lab, relay):
    result = lab.query("10.53.2.53", "WwW.LaB.tEsT", "A", edns=True)
    assert result["edns"], result
    assert result["question"][0].startswith("WwW.LaB.tEsT."), result


def test_upstream_sees_the_router_not_the_client(lab, relay):
    """Queries were relayed (the upstream sees rtr's 10.53.2.1), not routed from 10.53.1.2."""
    fake = lab.spawn(lab.up, "python3", str(HERE / "fake_upstream.py"), "silent", "10.53.4.53")
    assert json.loads(fake.stdout.readline())["event"] == "ready"
    lab.query("10.53.4.53", "seen.lab.test", "A", timeout=3)
    seen = json.loads(fake.stdout.readline())
    assert seen == {"event": "query", "client": "10.53.2.1"}
    fake.kill()


def test_silent_upstream_gives_servfail_within_the_timeout(lab, relay_factory):
    relay = relay_factory(config(upstream="mode: original\n  timeout: 500ms"))
    fake = lab.spawn(lab.up, "python3", str(HERE / "fake_upstream.py"), "silent", "10.53.4.53")
    assert json.loads(fake.stdout.readline())["event"] == "ready"
    result = lab.query("10.53.4.53", "silent.lab.test", "A", timeout=3, edns=True)
    assert result.get("from") == "10.53.4.53", result
    assert result["rcode"] == "SERVFAIL", result
    assert result["id"] == result["sent_id"]
    assert result["edns"], "SERVFAIL to an EDNS query carries OPT"
    assert 0.45 <= result["elapsed"] <= 1.0, result
    counters = relay.counters()
    assert counters["upstream_timeout"] >= 1 and counters["servfail"] >= 1
    fake.kill()


@pytest.mark.parametrize("server,alt", [("10.53.4.53", "10.53.4.54"), ("fd53:4::53", "fd53:4::54")])
def test_forged_upstream_answers_are_dropped(lab, relay, server, alt):
    fake = lab.spawn(lab.up, "python3", str(HERE / "fake_upstream.py"), "spoofing", server, alt)
    assert json.loads(fake.stdout.readline())["event"] == "ready"
    before = relay.counters()
    result = lab.query(server, "real.lab.test", "AAAA" if ":" in server else "A", timeout=3)
    real = "fd53:4::100" if ":" in server else "10.53.4.100"
    assert result.get("from") == server, result
    assert result["answers"] == [real], result
    after = relay.counters()
    # wrong ID, wrong address, wrong port, wrong question
    assert after["upstream_mismatch"] - before["upstream_mismatch"] == 4, (before, after)
    assert after["answered"] - before["answered"] == 1
    fake.kill()


def test_malformed_burst_never_stops_the_relay(lab, relay):
    before = relay.counters()
    out = lab.client("python3", str(HERE / "dnsclient.py"), "burst", "10.53.2.53", "--repeat", "50", check=True).stdout
    replies = json.loads(out)["replies"]
    # FORMERR for a readable header with qdcount=2 and for an unparsable body, from the address asked;
    # nothing at all for empty, 11-byte and QR=1 datagrams.
    by_id = {}
    for r in replies:
        assert r["from"] == "10.53.2.53" and r["port"] == 53
        by_id.setdefault(r["id"], []).append(r["rcode"])
    assert by_id.get(0x3333) == [1] * 50, by_id.keys()
    assert by_id.get(0x4444) == [1] * 50
    assert 0x2222 not in by_id
    after = relay.counters()
    assert after["dropped_short"] - before["dropped_short"] >= 100
    # 50 QR=1 datagrams, plus the random ones that happen to have the QR bit set.
    assert after["dropped_qr"] - before["dropped_qr"] >= 50
    assert after["formerr"] - before["formerr"] >= 100
    assert after["received"] - before["received"] == 6 * 50
    assert after["forwarded"] == before["forwarded"]
    # ... and the next valid query is answered.
    result = lab.query("10.53.2.53", "www.lab.test", "A")
    assert result["rcode"] == "NOERROR" and result["from"] == "10.53.2.53"
    assert relay.process.poll() is None


def test_kill_9_fails_open_within_a_second(lab, relay_factory):
    relay = relay_factory()
    assert "tproxy_relay" in lab.nft_tables()
    kill_9_and_expect_direct_dns(lab, relay)
    # Routes outlive a kill -9 (they have no owner); the next start must cope (idempotent add).
    assert "fwmark 0x53 iif lan0 lookup 153" in lab.ip_rules()
    again = relay_factory(name="relay-again")
    assert lab.ip_rules().count("fwmark 0x53 iif lan0 lookup 153") == 1
    assert lab.ip_rules("-6").count("fwmark 0x53 iif lan0 lookup 153") == 1
    assert lab.query("10.53.2.53")["from"] == "10.53.2.53"
    assert again.counters()["answered"] == 1


def test_sigterm_removes_everything_and_exits_0(lab, relay_factory):
    relay = relay_factory()
    assert lab.query("10.53.3.53")["from"] == "10.53.3.53"
    relay.process.send_signal(signal.SIGTERM)
    assert relay.wait() == 0
    assert "tproxy_relay" not in lab.nft_tables()
    assert "lookup 153" not in lab.ip_rules()
    assert "lookup 153" not in lab.ip_rules("-6")
    assert run("ip", "-n", lab.rtr, "route", "show", "table", "153", check=False).stdout.strip() == ""
    assert "stopped; counters: received=1" in relay.output()


def test_a_second_instance_is_refused(lab, relay_factory):
    relay_factory()
    second = relay_factory(name="second", expect_ready=False)
    assert second.wait() == 1
    assert "already exists and belongs to another process" in second.output()
    # The first one is untouched.
    assert lab.query("10.53.2.53")["from"] == "10.53.2.53"


def test_missing_interface_is_refused(lab, relay_factory):
    relay = relay_factory(config(interfaces="[lan0, nosuch0]"), expect_ready=False)
    assert relay.wait() == 1
    assert "interface nosuch0 (intercept.interfaces) does not exist" in relay.output()
    assert "tproxy_relay" not in lab.nft_tables()
    assert "lookup 153" not in lab.ip_rules()


def test_without_cap_net_admin_it_refuses_clearly(lab, relay_factory):
    cfg = lab.state / "nocap.yaml"
    cfg.write_text(config())
    cfg.chmod(0o644)
    out = lab.exec(lab.rtr, "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                   "--inh-caps=-all", BINARY, "run", "--config", str(cfg))
    assert out.returncode == 1
    # Every missing capability is named, with what it is for (issue 18).
    text = out.stdout + out.stderr
    for name in ("CAP_NET_ADMIN (the nft table", "CAP_NET_RAW (", "CAP_NET_BIND_SERVICE ("):
        assert name in text, text
    assert "lacks" in text


def test_servers_mode_falls_through_to_the_next_server(lab, relay_factory):
    fake = lab.spawn(lab.up, "python3", str(HERE / "fake_upstream.py"), "silent", "10.53.4.53")
    assert json.loads(fake.stdout.readline())["event"] == "ready"
    relay = relay_factory(config(upstream='mode: servers\n  servers: ["10.53.4.53", "[fd53:2::53]:53"]\n  timeout: 300ms'))
    # The client asks 10.53.3.53; the relay asks the silent server, then the next one; the answer
    # still comes from 10.53.3.53.
    result = lab.query("10.53.3.53", "www.lab.test", "A", timeout=3)
    assert result.get("from") == "10.53.3.53" and "10.53.2.80" in result["answers"], result
    assert 0.25 <= result["elapsed"] < 1.0
    counters = relay.counters()
    assert counters["upstream_retry"] == 1 and counters["answered"] == 1
    fake.kill()


def test_query_to_the_listener_itself_is_refused_not_looped(lab, relay):
    out = lab.exec(lab.rtr, "kdig", "+time=2", "+retry=0", "-p", "15353", "@127.0.0.1", "www.lab.test", check=True).stdout
    assert "status: REFUSED" in out, out
    assert relay.counters()["refused_loop"] == 1


def test_without_a_usable_ipv6_address_it_relays_ipv4_and_says_so(lab, relay_factory):
    """A transparent socket binds to any address, so the relay must probe whether the IPv6 listen
    address is real; on a host with IPv6 disabled, `ip -6 rule` would fail with EACCES."""
    cfg = config().replace('address6: "::1"', 'address6: "fd53:99::1"')
    relay = relay_factory(cfg)
    assert "IPv6 is off: fd53:99::1 is not an address of this host" in relay.output()
    assert lab.query("10.53.2.53")["from"] == "10.53.2.53"
    assert "lookup 153" not in lab.ip_rules("-6")
    # IPv6 queries are not captured: they reach the server directly.
    assert lab.query("fd53:2::53", rdtype="AAAA")["from"] == "fd53:2::53"
    assert relay.counters()["received"] == 1
