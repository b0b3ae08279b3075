"""Issue 19: closing the ways around the filter. The bypass answers (DDR discovery, Firefox's
canary, iCloud Private Relay), asked by a real client in the lab, answered by the relay from the
server the client asked, counted and logged with the list `bypass`; each switched off in turn."""
import json
import time

import pytest

from conftest import config, wait_for

DDR = [("_dns.resolver.arpa", "SVCB"), ("_dns.resolver.arpa", "A"), ("_dns.dns.lab.test", "SVCB")]
CANARY = [("use-application-dns.net", "A"), ("use-application-dns.net", "AAAA")]
RELAY = [("mask.icloud.com", "A"), ("mask.icloud.com", "AAAA"), ("mask.icloud.com", "HTTPS"),
         ("mask-h2.icloud.com", "A"), ("mask-h2.icloud.com", "AAAA"), ("mask-h2.icloud.com", "HTTPS")]


def relay_with(lab, relay_factory, bypass="", name="bypass"):
    log = lab.state / f"{name}-{time.monotonic_ns()}.jsonl"
    extra = f"querylog:\n  path: {log}\n" + (f"bypass:\n{bypass}" if bypass else "")
    return relay_factory(config(extra=extra), name=name), log


@pytest.mark.parametrize("server", ["10.53.2.53", "10.53.3.53", "fd53:2::53"])
def test_each_bypass_name_is_answered_by_the_relay(lab, relay_factory, server):
    relay, log = relay_with(lab, relay_factory)
    for name, rdtype in DDR:
        reply = lab.query(server, name, rdtype)
        assert (reply["rcode"], reply["answers"], reply["from"]) == ("NOERROR", [], server), (name, rdtype, reply)
    for name, rdtype in CANARY + RELAY:
        reply = lab.query(server, name, rdtype)
        assert (reply["rcode"], reply["from"]) == ("NXDOMAIN", server), (name, rdtype, reply)
    # A normal name still goes upstream.
    assert lab.query(server, "www.lab.test", "A" if ":" not in server else "AAAA")["rcode"] == "NOERROR"
    counters = relay.counters()
    assert (counters["bypass_ddr"], counters["bypass_canary"], counters["bypass_private_relay"]) == (3, 2, 6)
    assert counters["forwarded"] == 1
    # Logged as blocked, with the list "bypass" and the switch that turns it off as the rule.
    expected = 3 + 2 + 6 + 1
    assert wait_for(lambda: log.exists() and len(log.read_text().splitlines()) >= expected)
    entries = [json.loads(l) for l in log.read_text().splitlines()]
    by_name = {(e["qname"], e["qtype"]): e for e in entries if "qname" in e}
    ddr = by_name[("_dns.resolver.arpa", "SVCB")]
    assert (ddr["action"], ddr["rcode"], ddr["rule"]) == ("blocked", "NOERROR", {"list": "bypass", "line": 1, "text": "ddr"})
    assert by_name[("use-application-dns.net", "A")]["rule"]["text"] == "firefox_canary"
    assert by_name[("mask-h2.icloud.com", "HTTPS")]["rule"]["text"] == "private_relay"


def test_each_bypass_answer_can_be_switched_off(lab, relay_factory):
    relay, _ = relay_with(lab, relay_factory, "  ddr: off\n  firefox_canary: off\n  private_relay: off\n", name="bypass-off")
    # The lab's upstream serves lab.test only: it refuses the rest. What matters is that the
    # relay forwarded them instead of answering.
    for name, rdtype in [("_dns.resolver.arpa", "SVCB"), ("use-application-dns.net", "A"), ("mask.icloud.com", "A")]:
        reply = lab.query("10.53.2.53", name, rdtype)
        assert reply["rcode"] != "NXDOMAIN" or name == "_dns.resolver.arpa", (name, reply)
    counters = relay.counters()
    assert (counters["bypass_ddr"], counters["bypass_canary"], counters["bypass_private_relay"]) == (0, 0, 0)
    assert counters["forwarded"] == 3


def test_ddr_can_answer_nxdomain(lab, relay_factory):
    relay, _ = relay_with(lab, relay_factory, "  ddr: nxdomain\n", name="bypass-ddr-nx")
    assert lab.query("10.53.2.53", "_dns.resolver.arpa", "SVCB")["rcode"] == "NXDOMAIN"
    assert relay.counters()["bypass_ddr"] == 1


def test_explain_names_the_bypass(lab, relay_factory, tmp_path):
    from conftest import BINARY, run
    cfg = tmp_path / "relay.yaml"
    cfg.write_text(config())
    out = run(BINARY, "explain", "--config", str(cfg), "mask.icloud.com", check=False).stdout
    assert "iCloud Private Relay" in out and "bypass.private_relay" in out, out


HTTPS_LIST = """||blocked.lab.test^
10.53.9.9 hosts.lab.test
||noipv6.lab.test^$dnstype=AAAA
||svc.lab.test^$dnsrewrite=NOERROR;HTTPS;1 . alpn=h3\\,h2 ipv4hint=10.53.9.1
"""


def test_https_records_follow_the_rules_of_their_name(lab, relay_factory, tmp_path):
    """HTTPS of a blocked name is blocked, of a hosts name NODATA; a name whose AAAA alone is
    blocked loses the ipv6hint of its upstream HTTPS answer (which still parses); $dnsrewrite
    HTTPS answers as written."""
    import subprocess
    from conftest import HERE
    lists = tmp_path / "https.txt"
    lists.write_text(HTTPS_LIST)
    tmp_path.chmod(0o755)
    events = lab.state / f"fake-https-{time.monotonic_ns()}.jsonl"
    with open(events, "w") as out:
        fake = subprocess.Popen(["ip", "netns", "exec", lab.up, "python3", str(HERE / "fake_upstream.py"), "answering", "10.53.4.53"],
                                stdout=out, stderr=subprocess.STDOUT)
    lab.background.append(fake)
    assert wait_for(lambda: '"ready"' in events.read_text(), timeout=10)
    relay = relay_factory(config(upstream="mode: servers\n  servers: [10.53.4.53]\n  timeout: 1s",
                                 extra=f"filters:\n  lists: [{lists}]\n"), name="https")

    def dig(name):
        return lab.client("kdig", "+time=2", "+retry=0", "@10.53.2.53", name, "HTTPS").stdout

    assert "status: NXDOMAIN" in dig("blocked.lab.test")
    hosts = dig("hosts.lab.test")
    assert "status: NOERROR" in hosts and "ANSWER: 0" in hosts, hosts
    plain = dig("www.lab.test")
    assert "ipv4hint=10.53.4.100" in plain and "ipv6hint=fd53:4::100" in plain, plain
    stripped = dig("noipv6.lab.test")
    assert "status: NOERROR" in stripped and "ANSWER: 1" in stripped, stripped
    assert "ipv4hint=10.53.4.100" in stripped and "ech=" in stripped and "alpn=h2,h3" in stripped, stripped
    assert "ipv6hint" not in stripped, stripped
    assert "ns.noipv6.lab.test." in stripped and "10.53.4.53" in stripped, "the additional record kept its name"
    # Not cached: asked again, the upstream is asked again.
    before = events.read_text().count('"name": "noipv6.lab.test."')
    dig("noipv6.lab.test")
    assert wait_for(lambda: events.read_text().count('"name": "noipv6.lab.test."') == before + 1, timeout=3)
    rewritten = dig("svc.lab.test")
    assert "status: NOERROR" in rewritten and 'alpn=h3,h2 ipv4hint=10.53.9.1' in rewritten, rewritten
