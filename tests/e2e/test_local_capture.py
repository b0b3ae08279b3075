"""Issue 16: the router's own DNS (`intercept.local`). Programs in the `rtr` namespace (not the
relay) query servers out on `up`: their queries go through an output chain (mark), the policy
route (to lo), prerouting on lo (tproxy) and reach the relay, which filters, logs them with
"origin":"local" and answers from the address asked. The relay's own upstream queries are not
captured (the upstream sees each local query once); bypass users and groups, and queries to the
router's own addresses, go out directly; kill -9 leaves local DNS working within a second."""
import json
import re
import signal
import subprocess
import time

from conftest import BINARY, config, wait_for
from test_cache import answering, seen


def local_config(lab, name, local="true", extra="", upstream="mode: original\n  timeout: 1s"):
    listfile = lab.state / f"{name}-rules.txt"
    listfile.write_text("||ads.lab.test^\n")
    log = lab.state / f"{name}-queries.jsonl"
    text = config(upstream=upstream, interfaces=f"[lan0]\n  local: {local}\n{extra}",
                  extra=f"filters:\n  lists: [{listfile}]\nquerylog:\n  path: {log}\n")
    return text, log


def dig(lab, *args, user=None):
    command = ["dig", "+time=2", "+tries=1", *args]
    if user:
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *command]
    return lab.exec(lab.rtr, *command, timeout=20).stdout


def answer(out):
    return re.findall(r"^\S+\s+\d+\s+IN\s+(?:A|AAAA)\s+(\S+)$", out, re.M)


def entries(log):
    return [json.loads(l) for l in log.read_text().splitlines() if l.startswith("{")] if log.exists() else []


def test_the_routers_own_queries_go_through_the_relay(lab, relay_factory):
    text, log = local_config(lab, "local")
    relay = relay_factory(text, name="local")
    before = relay.counters()
    # UDP and TCP, IPv4 and IPv6, to the "hard-coded" resolver and to the LAN's.
    out = dig(lab, "@10.53.3.53", "www.lab.test", "A")
    assert answer(out) == ["10.53.2.80"] and "SERVER: 10.53.3.53#53(10.53.3.53) (UDP)" in out, out
    out = dig(lab, "+tcp", "@10.53.2.53", "www.lab.test", "A")
    assert answer(out) == ["10.53.2.80"] and "SERVER: 10.53.2.53#53(10.53.2.53) (TCP)" in out, out
    out = dig(lab, "@fd53:3::53", "www.lab.test", "AAAA")
    assert "SERVER: fd53:3::53#53" in out and "status: NOERROR" in out, out
    out = dig(lab, "+tcp", "@fd53:2::53", "www.lab.test", "A")
    assert answer(out) == ["10.53.2.80"], out
    # A listed name is blocked for the router too.
    out = dig(lab, "@10.53.3.53", "ads.lab.test", "A")
    assert "status: NXDOMAIN" in out, out
    after = relay.counters()
    assert after["received"] - before["received"] == 3 and after["tcp_queries"] - before["tcp_queries"] == 2, (before, after)
    assert after["blocked"] - before["blocked"] == 1, after
    logged = wait_for(lambda: len(entries(log)) >= 5 and entries(log))
    assert logged and all(e.get("origin") == "local" for e in logged), logged
    assert {e["server"] for e in logged} >= {"10.53.3.53:53", "10.53.2.53:53", "[fd53:3::53]:53", "[fd53:2::53]:53"}, logged
    assert any(e["action"] == "blocked" and e["qname"] == "ads.lab.test" for e in logged), logged
    # LAN queries still carry no origin field.
    assert lab.query("10.53.2.53", "www.lab.test")["answers"] == ["10.53.2.80"]
    lan = wait_for(lambda: [e for e in entries(log) if e["client"].startswith("10.53.1.2:")])
    assert lan and "origin" not in lan[0], lan
    # tail tells the two apart; a bad --origin is an error.
    def tail(*args):
        return subprocess.run([BINARY, "tail", "--file", str(log), "--json", "-n", "100", *args], capture_output=True, text=True, timeout=20)
    local = [json.loads(l) for l in tail("--origin", "local").stdout.splitlines()]
    assert len(local) == 5 and all(e["origin"] == "local" for e in local), local
    others = [json.loads(l) for l in tail("--origin", "lan").stdout.splitlines()]
    assert len(others) == 1 and others[0]["client"].startswith("10.53.1.2:"), others
    bad = tail("--origin", "wan")
    assert bad.returncode == 1 and "--origin takes local or lan, not 'wan'" in bad.stdout, bad.stdout
    stats = subprocess.run([BINARY, "stats", "--file", str(log)], capture_output=True, text=True, timeout=20).stdout
    assert "from this host itself: 5" in stats, stats


def test_the_relays_own_queries_are_not_captured_again(lab, relay_factory):
    fake = answering(lab, "10.53.4.53")
    try:
        text, _ = local_config(lab, "noloop")
        relay = relay_factory(text, name="noloop")
        names = []
        for i in range(10):
            out = dig(lab, "@10.53.4.53", f"n{i}.loop.test", "A")
            assert "10.53.4.100" in out, out
            names += seen(fake, timeout=0.3)
        # Each local query reached the upstream once: from the relay, not captured again.
        assert sorted(names) == sorted(f"n{i}.loop.test." for i in range(10)), names
        counters = relay.counters()
        assert counters["received"] == 10 and counters["refused_loop"] == 0, counters
    finally:
        fake.kill()


def test_bypass_users_and_the_routers_own_addresses_go_direct(lab, relay_factory):
    text, _ = local_config(lab, "bypass", extra="  local_bypass_users: [65534]\n")
    relay = relay_factory(text, name="bypass")
    out = dig(lab, "@10.53.3.53", "www.lab.test", "A", user="65534")
    assert answer(out) == ["10.53.2.80"], out
    assert relay.counters()["received"] == 0, relay.counters()
    # Another user is captured.
    out = dig(lab, "@10.53.3.53", "www.lab.test", "A", user="65533")
    assert answer(out) == ["10.53.2.80"] and relay.counters()["received"] == 1, relay.counters()
    # A query to the router's own address is not captured (nothing listens: refused at once).
    out = dig(lab, "@10.53.1.1", "www.lab.test", "A")
    assert "connection refused" in out.lower() or "no servers could be reached" in out.lower(), out
    assert relay.counters()["received"] == 1, relay.counters()


def test_local_false_leaves_the_routers_queries_alone(lab, relay_factory):
    text, _ = local_config(lab, "off", local="false")
    relay = relay_factory(text, name="off")
    out = dig(lab, "@10.53.3.53", "www.lab.test", "A")
    assert answer(out) == ["10.53.2.80"], out
    dig(lab, "+tcp", "@10.53.3.53", "ads.lab.test", "A")
    counters = relay.counters()
    assert counters["received"] == 0 and counters["tcp_queries"] == 0 and counters["blocked"] == 0, counters
    assert "chain output" not in lab.exec(lab.rtr, "nft", "list", "table", "inet", "tproxy_relay").stdout


def test_kill_9_gives_local_dns_back_within_a_second(lab, relay_factory):
    text, _ = local_config(lab, "kill")
    relay = relay_factory(text, name="kill")
    assert answer(dig(lab, "@10.53.3.53", "www.lab.test", "A")) == ["10.53.2.80"]
    relay.process.send_signal(signal.SIGKILL)
    relay.process.wait()
    killed = time.monotonic()
    # The owned table goes with the process; the policy rule stays but marks no packet any more.
    out = dig(lab, "+time=1", "@10.53.3.53", "www.lab.test", "A")
    assert answer(out) == ["10.53.2.80"] and time.monotonic() - killed < 1.0, out
    assert "tproxy_relay" not in lab.nft_tables()


def test_bad_local_settings_are_refused_with_file_and_line(lab, relay_factory):
    text, _ = local_config(lab, "bad", extra="  local_bypass_users: [no-such-user-here]\n")
    relay = relay_factory(text, name="bad", expect_ready=False)
    assert relay.wait(timeout=10) != 0
    assert re.search(r":5: intercept.local_bypass_users: 'no-such-user-here' is not a user on this host", relay.output()), relay.output()
    text, _ = local_config(lab, "bad2", extra="  local_mark: 0x53\n")
    relay = relay_factory(text, name="bad2", expect_ready=False)
    assert relay.wait(timeout=10) != 0
    assert "intercept.local_mark: must differ from intercept.mark and intercept.bypass_mark" in relay.output(), relay.output()
    text, _ = local_config(lab, "bad3", extra="  local_bypass_groups: [nogroup-nope]\n")
    path = lab.state / "bad3.yaml"
    path.write_text(text)
    out = subprocess.run([BINARY, "check", "--config", str(path)], capture_output=True, text=True, timeout=20)
    assert out.returncode != 0 and "'nogroup-nope' is not a group on this host" in out.stdout + out.stderr, out
