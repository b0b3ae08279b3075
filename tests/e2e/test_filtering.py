"""Filtering end to end: blocked and rewritten queries are answered by the relay, from the
address asked, and never reach the upstream; SIGHUP reloads the lists."""
import json
import signal
import time

from conftest import HERE, config


def filtered(lab, relay_factory, lines, block_with="nxdomain"):
    listfile = lab.state / "block.txt"
    listfile.write_text("\n".join(lines) + "\n")
    extra = f"filters:\n  lists: [{listfile}]\n  block_with: {block_with}\n  ttl: 42\n"
    return relay_factory(config(extra=extra)), listfile


def test_blocked_names_never_reach_the_upstream(lab, relay_factory):
    fake = lab.spawn(lab.up, "python3", str(HERE / "fake_upstream.py"), "silent", "10.53.4.53")
    assert json.loads(fake.stdout.readline())["event"] == "ready"
    relay, _ = filtered(lab, relay_factory, ["||ads.lab.test^", "@@||ok.ads.lab.test^", "10.53.9.9 nas.lab.test"])
    result = lab.query("10.53.4.53", "x.ads.lab.test", "A")
    assert result["from"] == "10.53.4.53" and result["rcode"] == "NXDOMAIN", result
    result = lab.query("fd53:4::53", "ads.lab.test", "AAAA")
    assert result["from"] == "fd53:4::53" and result["rcode"] == "NXDOMAIN", result
    # the rewrite, over UDP and over TCP
    result = lab.query("10.53.4.53", "nas.lab.test", "A")
    assert result["answers"] == ["10.53.9.9"] and result["rcode"] == "NOERROR", result
    out = lab.client("kdig", "+tcp", "+time=2", "@10.53.4.53", "nas.lab.test", "A", check=True).stdout
    assert "10.53.9.9" in out and "42" in out and "From 10.53.4.53@53(TCP)" in out, out
    # the exception is forwarded (and the silent upstream is the first to see anything)
    lab.query("10.53.4.53", "ok.ads.lab.test", "A", timeout=3)
    seen = json.loads(fake.stdout.readline())
    assert seen["event"] == "query"
    counters = relay.counters()
    assert counters["blocked"] == 2 and counters["rewritten"] == 2
    fake.kill()


def test_null_ip_answers(lab, relay_factory):
    filtered(lab, relay_factory, ["||ads.lab.test^"], block_with="null-ip")
    assert lab.query("10.53.2.53", "ads.lab.test", "A")["answers"] == ["0.0.0.0"]
    assert lab.query("10.53.2.53", "ads.lab.test", "AAAA")["answers"] == ["::"]
    https = lab.query("10.53.2.53", "ads.lab.test", "HTTPS")
    assert https["rcode"] == "NOERROR" and https["answers"] == []


def test_sighup_reloads_and_a_broken_reload_keeps_the_old_rules(lab, relay_factory):
    relay, listfile = filtered(lab, relay_factory, ["||ads.lab.test^"])
    assert lab.query("10.53.2.53", "www.lab.test")["rcode"] == "NOERROR"
    listfile.write_text("||ads.lab.test^\n0.0.0.0 www.lab.test\n")
    relay.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "reloaded:" not in relay.output():
        assert time.monotonic() < deadline, relay.output()
        time.sleep(0.05)
    time.sleep(0.2)
    assert lab.query("10.53.2.53", "www.lab.test")["rcode"] == "NXDOMAIN"
    listfile.unlink()
    relay.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "reload failed" not in relay.output():
        assert time.monotonic() < deadline, relay.output()
        time.sleep(0.05)
    assert "does not exist" in relay.output()
    assert lab.query("10.53.2.53", "www.lab.test")["rcode"] == "NXDOMAIN"
    assert lab.query("10.53.2.53", "x.ads.lab.test")["rcode"] == "NXDOMAIN"


def test_a_missing_list_stops_start_up(lab, relay_factory):
    relay = relay_factory(config(extra="filters:\n  lists: [/nonexistent/list.txt]\n"), expect_ready=False)
    assert relay.wait() == 1
    assert "/nonexistent/list.txt: does not exist" in relay.output()
    assert "tproxy_relay" not in lab.nft_tables()
