"""Issue 17: the upstream sees the client (`upstream.client_identity`).

A fake upstream on `up` (10.53.4.53, fd53:4::53; fake_upstream.py `identity`) reports the source
address, transport and ECS option of every query and answers by who asked (10.53.5.N for a query
from an address ending in N). With `source` it must see the client's own address over UDP and TCP,
v4 and v6, while the client still gets its answer from the address it asked; with `none`, the
router's; with `subnet`, an ECS option with the client's /24 or /56, taken out of the client's
answer. The cache never gives one client an answer obtained with another's identity. Forged answers
to the client-address sockets are dropped; 2,000 client addresses keep the descriptors bounded;
kill -9 leaves DNS working."""
import json
import os
import re
import select
import subprocess
import threading
import time

import pytest

from conftest import BINARY, HERE, config, kill_9_and_expect_direct_dns, wait_for

SERVERS = {"v4": ("10.53.4.53", "10.53.1.2", "10.53.2.1"), "v6": ("fd53:4::53", "fd53:1::2", "fd53:2::1")}


_running = {}


def identity_upstream(lab, address):
    """The fake upstream on `address`; one left by an earlier test of the module is stopped first."""
    old = _running.pop(address, None)
    if old is not None and old.poll() is None:
        old.kill()
        old.wait()
    fake = lab.spawn(lab.up, "python3", str(HERE / "fake_upstream.py"), "identity", address)
    assert json.loads(fake.stdout.readline())["event"] == "ready"
    _running[address] = fake
    return fake


def events(fake, timeout=0.5):
    """Query events the fake upstream reported since the last call (reads the pipe directly:
    a buffered readline could hide lines from select)."""
    buffered = getattr(fake, "pending", b"")
    fd = fake.stdout.fileno()
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buffered += chunk
    lines, _, fake.pending = buffered.rpartition(b"\n")
    out = []
    for line in lines.decode().splitlines():
        if not line.startswith("{"):
            raise AssertionError("the fake upstream failed:\n" + lines.decode())
        event = json.loads(line)
        if event["event"] == "query":
            out.append(event)
    return out


def identity_config(lab, name, identity="source", extra_upstream="", extra="", workers=2):
    """A relay config for these tests: two workers unless `workers` says otherwise."""
    log = lab.state / f"{name}-queries.jsonl"
    text = config(upstream=f"mode: original\n  timeout: 1s\n  client_identity: {identity}{extra_upstream}",
                  extra=f"querylog:\n  path: {log}\n{extra}")
    return text.replace("workers: 2", f"workers: {workers}"), log


def log_entries(log):
    return [json.loads(l) for l in log.read_text().splitlines() if l.startswith("{")] if log.exists() else []


def fd_count(relay):
    return len(os.listdir(f"/proc/{relay.process.pid}/fd"))


@pytest.mark.parametrize("family", ["v4", "v6"])
@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_source_upstream_sees_the_client(lab, relay_factory, family, transport):
    server, client, _ = SERVERS[family]
    fake = identity_upstream(lab, server)
    text, log = identity_config(lab, f"source-{family}-{transport}")
    relay = relay_factory(text, name=f"source-{family}-{transport}")
    name = f"{transport}-{family}.lab.test"
    result = lab.query(server, name, "A", tcp=transport == "tcp")
    assert result.get("rcode") == "NOERROR", result
    assert result["from"] == server, "the answer must come from the address the client asked"
    assert result["answers"] == [f"10.53.5.{2}"], "the upstream answered by the client's own address"
    seen = events(fake)
    assert [(e["client"], e["proto"]) for e in seen] == [(client, transport)]
    assert seen[0]["ecs"] is None
    entry = wait_for(lambda: [e for e in log_entries(log) if e.get("qname") == name])
    assert entry and entry[0]["identity"] == client, entry
    assert relay.counters()["source_sockets_opened"] >= 1


@pytest.mark.parametrize("family", ["v4", "v6"])
def test_none_upstream_sees_the_router(lab, relay_factory, family):
    server, _, router = SERVERS[family]
    fake = identity_upstream(lab, server)
    text, log = identity_config(lab, f"none-{family}", identity="none")
    relay_factory(text, name=f"none-{family}")
    result = lab.query(server, "none.lab.test", "A")
    assert result["from"] == server and result["answers"] == ["10.53.5.1"], result
    assert [e["client"] for e in events(fake)] == [router]
    entry = wait_for(lambda: [e for e in log_entries(log) if e.get("qname") == "none.lab.test"])
    assert "identity" not in entry[0]


def test_source_two_clients_each_get_their_own_answer_also_cached(lab, relay_factory):
    lab.exec(lab.cli, "ip", "addr", "add", "10.53.1.3/24", "dev", "cli0", check=False)
    fake = identity_upstream(lab, "10.53.4.53")
    text, _ = identity_config(lab, "two-clients", workers=1)
    relay_factory(text, name="two-clients")
    for _ in range(2):  # the second round comes from the cache
        a = lab.query("10.53.4.53", "shared.lab.test", "A", source="10.53.1.2")
        b = lab.query("10.53.4.53", "shared.lab.test", "A", source="10.53.1.3")
        assert a["answers"] == ["10.53.5.2"] and b["answers"] == ["10.53.5.3"], (a, b)
    # One upstream query per client: the second round was answered from each client's own entry.
    assert sorted(e["client"] for e in events(fake)) == ["10.53.1.2", "10.53.1.3"]


def test_subnet_sends_the_clients_prefix_and_strips_it_from_answers(lab, relay_factory):
    lab.exec(lab.cli, "ip", "addr", "add", "10.53.1.3/24", "dev", "cli0", check=False)
    fake4 = identity_upstream(lab, "10.53.4.53")
    fake6 = identity_upstream(lab, "fd53:4::53")
    text, log = identity_config(lab, "subnet", identity="subnet", workers=1)
    relay = relay_factory(text, name="subnet")
    plain = lab.query("10.53.4.53", "plain.lab.test", "A")
    assert plain["rcode"] == "NOERROR" and plain["edns"] is False, "a client that sent no OPT gets none back"
    with_edns = lab.query("10.53.4.53", "edns.lab.test", "A", edns=True)
    assert with_edns["edns"] is True and with_edns["ecs"] == [], "the ECS the relay added is not passed back"
    seen = events(fake4)
    assert {e["ecs"] for e in seen} == {"10.53.1.0/24"} and {e["client"] for e in seen} == {"10.53.2.1"}
    v6 = lab.query("fd53:4::53", "six.lab.test", "AAAA")
    assert v6["rcode"] == "NOERROR"
    assert [e["ecs"] for e in events(fake6)] == ["fd53:1::/56"]
    entry = wait_for(lambda: [e for e in log_entries(log) if e.get("qname") == "plain.lab.test"])
    assert entry[0]["identity"] == "10.53.1.0/24"
    over_tcp = lab.query("10.53.4.53", "tcp.lab.test", "A", tcp=True)
    assert over_tcp["rcode"] == "NOERROR" and over_tcp["edns"] is False
    assert [(e["proto"], e["ecs"]) for e in events(fake4)] == [("tcp", "10.53.1.0/24")]

    # Scope 0 (and no ECS): one answer for every client. Scope /32: never another client's.
    for source in ("10.53.1.2", "10.53.1.3"):
        assert lab.query("10.53.4.53", "scope0-a.lab.test", "A", source=source)["rcode"] == "NOERROR"
        assert lab.query("10.53.4.53", "scope32-a.lab.test", "A", source=source)["rcode"] == "NOERROR"
    names = [e["name"] for e in events(fake4)]
    assert names.count("scope0-a.lab.test.") == 1, names
    assert names.count("scope32-a.lab.test.") == 2, names
    assert relay.counters()["subnet_scope_narrow"] == 2


def test_subnet_replaces_or_keeps_the_clients_own_option(lab, relay_factory):
    fake = identity_upstream(lab, "10.53.4.53")
    text, _ = identity_config(lab, "replace", identity="subnet")
    relay = relay_factory(text, name="replace")
    lab.query("10.53.4.53", "own.lab.test", "A", ecs="192.0.2.0/24")
    assert [e["ecs"] for e in events(fake)] == ["10.53.1.0/24"], "the client's own ECS is replaced"
    relay.stop()
    text, _ = identity_config(lab, "keep", identity="subnet", extra_upstream="\n  keep_client_subnet: true", workers=1)
    relay = relay_factory(text, name="keep")
    for _ in range(2):
        result = lab.query("10.53.4.53", "kept.lab.test", "A", ecs="192.0.2.0/24")
        assert result["ecs"] == ["192.0.2.0/24/0"], "a kept option comes back to the client"
    assert [e["ecs"] for e in events(fake)] == ["192.0.2.0/24"] * 2, "kept, and not answered from the cache"
    assert relay.counters()["subnet_kept"] == 2


def test_forged_answers_to_client_address_sockets_are_dropped(lab, relay_factory):
    old = _running.pop("10.53.4.53", None)
    if old is not None:
        old.kill()
        old.wait()
    fake = lab.spawn(lab.up, "python3", str(HERE / "fake_upstream.py"), "spoofing", "10.53.4.53", "10.53.4.54")
    assert json.loads(fake.stdout.readline())["event"] == "ready"
    text, _ = identity_config(lab, "forged")
    relay = relay_factory(text, name="forged")
    result = lab.query("10.53.4.53", "forged.lab.test", "A", timeout=3)
    assert result["answers"] == ["10.53.4.100"], "only the real answer gets through"
    counters = relay.counters()
    # Wrong ID and another question reach the socket and are refused; the kernel keeps a
    # connected socket from seeing the other address and port at all.
    assert counters["upstream_mismatch"] >= 2
    assert counters["answered"] == 1


def test_two_thousand_client_addresses_keep_descriptors_bounded(lab, relay_factory):
    # 10.53.16.0/21 on the client, routed by the router to lan0.
    batch = "\n".join(f"addr add 10.53.{16 + i // 256}.{i % 256}/32 dev cli0" for i in range(2000)) + "\n"
    subprocess.run(["ip", "-n", lab.cli, "-batch", "-"], input=batch, text=True, check=True, timeout=60)
    # Routed via the client's main address: one neighbour entry, not 2,000 (the kernel's
    # neighbour table is shared by all namespaces and holds 1,024 by default).
    lab.exec(lab.rtr, "ip", "route", "replace", "10.53.16.0/21", "via", "10.53.1.2", "dev", "lan0", check=True)
    try:
        many_clients(lab, relay_factory)
    finally:
        lab.exec(lab.rtr, "ip", "route", "del", "10.53.16.0/21")
        subprocess.run(["ip", "-n", lab.cli, "-batch", "-"], input=batch.replace("addr add", "addr del"), text=True, timeout=60)


def many_clients(lab, relay_factory):
    fake = identity_upstream(lab, "10.53.4.53")
    # Its 2,000 query reports must be read, or the pipe fills and the fake stops answering.
    threading.Thread(target=lambda: [None for _ in iter(lambda: os.read(fake.stdout.fileno(), 65536), b"")], daemon=True).start()
    text, _ = identity_config(lab, "many", extra_upstream="\n  source_sockets: 64")
    relay = relay_factory(text, name="many")
    before = fd_count(relay)
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            try:
                peak[0] = max(peak[0], fd_count(relay))
            except FileNotFoundError:
                return
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out = lab.client("python3", str(HERE / "dnsclient.py"), "sources", "10.53.4.53", "10.53.16.0", "2000", check=True, timeout=120)
    done.set()
    sampler.join()
    result = json.loads(out.stdout)
    counters = relay.counters()
    after = wait_for(lambda: fd_count(relay) <= before + 64 + 2 and fd_count(relay), timeout=3) or fd_count(relay)
    print(f"fds: before {before}, peak {peak[0]}, after {after}; counters {counters['source_sockets_opened']} opened, "
          f"{counters['source_sockets_open']} open, {counters['source_fallback']} fallbacks")
    assert result["answered"] == 2000, result
    assert counters["servfail"] == 0 and counters["answered"] == 2000, counters
    assert counters["source_sockets_open"] <= 64
    assert counters["source_sockets_opened"] >= 2000
    # The bound: 64 sockets in the tables, and per worker (2) at most 256 retired sockets that
    # wait for answers in each of its three turnovers (client addresses, IPv4 and IPv6 pools).
    assert peak[0] <= before + 64 + 2 * 3 * 256, (before, peak[0])
    # Once answered, the retired ones close: the table's 64 stay, and a reply socket per worker.
    assert after <= before + 64 + 2, (before, after)


def test_src_valid_mark_does_not_stop_answers_to_client_addresses(lab, relay_factory):
    key = "net.ipv4.conf.all.src_valid_mark"
    lab.exec(lab.rtr, "sysctl", "-qw", f"{key}=1", check=True)
    try:
        fake = identity_upstream(lab, "10.53.4.53")
        text, _ = identity_config(lab, "svm")
        relay_factory(text, name="svm")
        assert lab.query("10.53.4.53", "svm.lab.test", "A")["answers"] == ["10.53.5.2"]
        assert [e["client"] for e in events(fake)] == ["10.53.1.2"]
    finally:
        lab.exec(lab.rtr, "sysctl", "-qw", f"{key}=0")


def test_kill_9_leaves_dns_answered_directly(lab, relay_factory):
    text, _ = identity_config(lab, "kill")
    relay = relay_factory(text, name="kill")
    assert lab.query("10.53.2.53", "www.lab.test", "A")["answers"] == ["10.53.2.80"]
    assert "fwmark 0x56 lookup 153" in lab.ip_rules()
    kill_9_and_expect_direct_dns(lab, relay)
    # What remains are rules for a mark nothing sets any more; the next start replaces them.
    relay_factory(text, name="kill-again")
    assert lab.ip_rules().count("fwmark 0x56 lookup 153") == 1
    assert lab.ip_rules().count("fwmark 0x56 iif lo lookup main") == 1


def test_check_says_where_source_identity_can_work(lab):
    path = lab.state / "check-identity.yaml"
    path.write_text(config(upstream='mode: servers\n  servers: ["10.53.4.53", "10.53.2.53", {address: "10.53.1.50", client_identity: source}]\n'
                                    "  client_identity: source"))
    out = lab.exec(lab.rtr, BINARY, "check", "--config", str(path)).stdout
    assert re.search(r"note: upstream 10\.53\.4\.53:53 is not on a directly connected network \(next hop 10\.53\.2\.53 on wan0\)", out), out
    assert "note: upstream 10.53.2.53:53 is directly connected on wan0" in out, out
    assert "warning: upstream 10.53.1.50:53 is reached through lan0, an intercepted interface" in out, out
    assert ": ok" in out
