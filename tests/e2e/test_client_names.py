"""Issue 23, part 2: clients shown by name. A dnsmasq lease file and a hosts file name the lab's
client addresses, the lab's knotd answers PTR for the one neither names; the names appear in the
query log ("client_name"), in `tail` (a column, and --client by name) and in `stats`; editing the
lease file renames a client within 2 s; `filters.clients` matches by name and follows the lease
file; a lease file's garbage lines are reported by file:line and the rest used; a flood of 10k
new clients keeps reverse lookups at their rate and the relay's memory flat."""
import json
import re
import subprocess
import time

import pytest

from conftest import BINARY, HERE, config, run, wait_for

LEASE = "{expiry} 02:00:0a:35:01:02 {address} {name} 01:02:00:0a:35:01:02\n"


@pytest.fixture(scope="module")
def second_address(lab):
    """10.53.1.3 on the client too: a second client for the hosts file."""
    lab.exec(lab.cli, "ip", "addr", "add", "10.53.1.3/24", "dev", "cli0", check=True)
    return "10.53.1.3"


def lease_text(address, name, garbage=False):
    expiry = int(time.time()) + 3600
    text = LEASE.format(expiry=expiry, address=address, name=name)
    if garbage:
        text = "this is not a lease\n" + text + "1767225600 02:00:0a:35:01:09 10.53.1.999 bad-address *\n"
    return text


def names_config(lab, name, leases, hosts, ptr=True, extra=""):
    log = lab.state / f"{name}-queries.jsonl"
    ptr_line = "\n    ptr: 10.53.2.53\n    ptr_qps: 20" if ptr else ""
    text = config(extra=f"""querylog:
  path: {log}
metrics:
  listen: 127.0.0.1:9153
clients:
  names:
    hosts: [{hosts}]
    leases: [{leases}]{ptr_line}
{extra}""")
    return text, log


def entries(log):
    return [json.loads(l) for l in log.read_text().splitlines() if l.startswith("{") and '"qname"' in l] if log.exists() else []


def ask(lab, name="www.lab.test", source=None, server="10.53.2.53", rdtype="A"):
    args = ["kdig", "+time=2", "+retry=0", f"@{server}", name, rdtype]
    if source:
        args.insert(1, f"-b{source}")
    return lab.client(*args, check=True).stdout


def names_of(log, client):
    return [e.get("client_name") for e in entries(log) if e["client"].rsplit(":", 1)[0].strip("[]") == client]


def metrics(lab):
    return lab.exec(lab.rtr, "python3", "-c", "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9153/metrics').read().decode())",
                    check=True).stdout


def test_names_from_leases_hosts_and_ptr_everywhere_a_user_looks(lab, relay_factory, second_address):
    leases = lab.state / "names.leases"
    leases.write_text(lease_text("10.53.1.2", "kids-ipad", garbage=True))
    hosts = lab.state / "names.hosts"
    hosts.write_text("# the office printer\n10.53.1.3 printer.lan printer\n")
    text, log = names_config(lab, "names", leases, hosts)
    relay = relay_factory(text, name="names")
    # Garbage lines: named by file:line, the rest used.
    assert f"{leases}:1: not a dnsmasq lease" in relay.output(), relay.output()
    assert f"{leases}:3: '10.53.1.999' is not an IP address" in relay.output(), relay.output()
    assert "client names: 1 from hosts files, 1 from lease files" in relay.output()
    ask(lab)
    ask(lab, source="10.53.1.3")
    # fd53:1::2 is in neither file: its name comes from knotd's PTR (asked after its first query).
    assert wait_for(lambda: ask(lab, server="fd53:2::53", rdtype="AAAA") and "lab-client6.lab.test" in names_of(log, "fd53:1::2"), timeout=8), entries(log)[-3:]
    assert wait_for(lambda: "kids-ipad" in names_of(log, "10.53.1.2") and "printer.lan" in names_of(log, "10.53.1.3"), timeout=5), entries(log)
    line = next(l for l in log.read_text().splitlines() if '"client_name":"kids-ipad"' in l)
    assert re.search(r'"client":"10\.53\.1\.2:\d+","client_name":"kids-ipad","server":"10\.53\.2\.53:53"', line), line
    # tail: a column, and --client by name.
    plain = run(BINARY, "tail", "--file", str(log), "-n", "50").stdout
    assert re.search(r"10\.53\.1\.2\s+kids-ipad\s+→", plain), plain
    by_name = run(BINARY, "tail", "--file", str(log), "--json", "-n", "50", "--client", "kids-ipad").stdout.splitlines()
    assert by_name and all('"client":"10.53.1.2:' in l for l in by_name), by_name
    assert run(BINARY, "tail", "--file", str(log), "--json", "-n", "50", "--client", "printer").stdout.count("10.53.1.3") >= 1
    # stats: top clients with their names, and by name.
    stats = json.loads(run(BINARY, "stats", "--file", str(log), "--json").stdout)
    assert {"client": "10.53.1.2", "count": 1, "name": "kids-ipad"} in stats["top_clients"], stats["top_clients"]
    assert any(row["name"] == "lab-client6.lab.test" for row in stats["top_client_names"]), stats
    assert "10.53.1.2 (kids-ipad)" in run(BINARY, "stats", "--file", str(log)).stdout
    # metrics: counts per source, never a name as a label.
    page = metrics(lab)
    assert 'tproxy_relay_client_names{source="leases"} 1' in page and 'tproxy_relay_client_names{source="hosts"} 1' in page, page
    assert re.search(r'tproxy_relay_client_name_lookups_total\{result="named"\} [1-9]', page), page
    assert "kids-ipad" not in page


def test_editing_the_lease_file_renames_the_client_within_2_s(lab, relay_factory):
    leases = lab.state / "rename.leases"
    leases.write_text(lease_text("10.53.1.2", "kids-ipad"))
    text, log = names_config(lab, "rename", leases, lab.state / "no-such-hosts", ptr=False)
    relay = relay_factory(text, name="rename")
    assert "no-such-hosts" in relay.output()  # a missing file is said, not fatal
    ask(lab)
    assert wait_for(lambda: "kids-ipad" in names_of(log, "10.53.1.2"), timeout=3)
    # dnsmasq rewrites its file in place: so do we.
    leases.write_text(lease_text("10.53.1.2", "kids-laptop"))
    edited = time.monotonic()
    renamed = None
    while time.monotonic() - edited < 4:
        ask(lab)
        time.sleep(0.05)
        if "kids-laptop" in names_of(log, "10.53.1.2"):
            renamed = time.monotonic() - edited
            break
    assert renamed is not None and renamed < 2.0, (renamed, names_of(log, "10.53.1.2")[-5:])


def test_filters_clients_match_by_name_and_follow_the_lease_file(lab, relay_factory, second_address):
    leases = lab.state / "policy.leases"
    leases.write_text(lease_text("10.53.1.2", "kids-ipad"))
    rules = lab.state / "policy-rules.txt"
    rules.write_text("||www.lab.test^\n")
    text, log = names_config(lab, "policy", leases, lab.state / "no-such-hosts", ptr=False, extra=f"""filters:
  lists: [{rules}]
  clients:
    - {{match: [kids-ipad], lists: []}}
""")
    relay = relay_factory(text, name="policy")
    # kids-ipad is not filtered; everyone else is.
    assert "status: NOERROR" in ask(lab) and "status: NXDOMAIN" in ask(lab, source="10.53.1.3")

    # `explain` reads the same files: its verdict is the relay's, by address or by name.
    def explain(client):
        return subprocess.run([BINARY, "explain", "--config", str(relay.config), "www.lab.test", "--client", client],
                              capture_output=True, text=True, timeout=20)
    for client in ("10.53.1.2", "kids-ipad"):
        out = explain(client)
        assert out.returncode == 0 and "from 10.53.1.2 (kids-ipad): allowed" in out.stdout, out.stdout
        assert "lists for this client: none" in out.stdout, out.stdout
    assert "from 10.53.1.3: blocked" in explain("10.53.1.3").stdout
    missing = explain("nobody-here")
    assert missing.returncode == 1 and "no clients.names hosts or leases file gives 'nobody-here' an address" in missing.stdout, missing.stdout
    bad = explain("not a name!")
    assert bad.returncode == 1 and "neither an IP address nor a client name" in bad.stdout, bad.stdout
    # The lease moves to 10.53.1.3: the policy follows within 2 s.
    leases.write_text(lease_text("10.53.1.3", "kids-ipad"))
    assert wait_for(lambda: "status: NOERROR" in ask(lab, source="10.53.1.3") and "status: NXDOMAIN" in ask(lab), timeout=3)


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def relay_pid(relay):
    """The relay itself (the Popen is `ip netns exec`, which execs it: the same pid)."""
    return relay.process.pid


def test_a_flood_of_new_clients_keeps_lookups_at_their_rate_and_memory_flat(lab, relay_factory):
    leases = lab.state / "flood.leases"
    leases.write_text("")
    text, log = names_config(lab, "flood", leases, lab.state / "no-such-hosts")
    relay = relay_factory(text, name="flood")
    started = time.monotonic()

    def flood(seed, logged):
        # 10,000 queries from random addresses of 10.53.128.0/17 (a raw socket in the client
        # writes the source): thousands of clients nothing names.
        out = lab.client("python3", str(HERE / "hostile_client.py"), "spoofed", "10.53.2.53", "10000", str(seed), check=True, timeout=120)
        assert json.loads(out.stdout)["sent"] == 10000, out.stdout + out.stderr
        assert wait_for(lambda: len(entries(log)) >= logged, timeout=20), len(entries(log))
        time.sleep(1)
        return rss_kb(relay_pid(relay))

    # The first flood fills what any flood fills (the answer cache, the upstream sockets); the
    # second, from other addresses for the same names, shows what new clients alone cost.
    warm = flood(23, 9000)
    after = flood(24, 18000)
    elapsed = time.monotonic() - started
    page = metrics(lab)
    sent = int(re.search(r'tproxy_relay_client_name_lookups_total\{result="sent"\} (\d+)', page).group(1))
    dropped = int(re.search(r"tproxy_relay_client_name_lookups_dropped_total (\d+)", page).group(1))
    # At most ptr_qps (20) a second, plus the first second's burst.
    assert sent <= 20 * (elapsed + 1) + 20, (sent, elapsed)
    assert dropped > 1000, dropped
    assert after - warm < 4 * 1024, (warm, after)
    print(f"flood: {len(entries(log))} logged in {elapsed:.1f} s, {sent} lookups sent, {dropped} asks dropped, RSS {warm} → {after} kB")
