"""Filtering beyond block lists, end to end: per-client policies and $client, $dnsrewrite
(records, response codes, aliases resolved upstream), dnsmasq server=/d/ upstreams, reloads
when a list file changes (under load), and broken lists that must not cost the rules in force."""
import json
import re
import subprocess
import time

import pytest

from conftest import BINARY, HERE, config


def write_lists(lab, **lists):
    paths = {}
    for name, lines in lists.items():
        path = lab.state / f"{name}.txt"
        path.write_text("\n".join(lines) + "\n")
        paths[name] = path
    return paths


def add_client_addresses(lab, *addresses):
    for address in addresses:
        lab.exec(lab.cli, "ip", "addr", "replace", f"{address}/24", "dev", "cli0", check=True)


# With 12 more single addresses in the policy (past 8 they are hashed, not scanned: what a
# policy naming many devices becomes), every client must get the same lists.
@pytest.mark.parametrize("more_named", [0, 12])
def test_per_client_policies_and_client_modifier(lab, relay_factory, more_named):
    add_client_addresses(lab, "10.53.1.7", "10.53.1.8")
    paths = write_lists(lab, ads=["||www.lab.test^", "@@||www.lab.test^$client=10.53.1.8"], kids=["||x.wild.lab.test^"])
    others = "".join(f"\n    - match: 10.53.200.{n}\n      lists: [{paths['kids']}]" for n in range(1, more_named + 1))
    extra = f"""filters:
  lists: [{paths['ads']}, {paths['kids']}]
  block_with: null-ip
  clients:
    - match: [10.53.1.0/24]
      lists: [{paths['ads']}]
    - match: 10.53.1.7
      lists: []{others}
"""
    relay = relay_factory(config(extra=extra))
    # 10.53.1.2 gets the ads list only
    assert lab.query("10.53.2.53", "www.lab.test")["answers"] == ["0.0.0.0"]
    assert lab.query("10.53.2.53", "x.wild.lab.test")["answers"] == ["10.53.2.100"]
    # 10.53.1.7 gets no filtering at all
    assert lab.query("10.53.2.53", "www.lab.test", source="10.53.1.7")["answers"] == ["10.53.2.80"]
    # 10.53.1.8 gets the ads list, where an exception names it
    assert lab.query("10.53.2.53", "www.lab.test", source="10.53.1.8")["answers"] == ["10.53.2.80"]
    # fd53:1::2 matches no policy: every list
    assert lab.query("fd53:2::53", "x.wild.lab.test", "AAAA")["answers"] == ["::"]
    counters = relay.counters()
    assert counters["blocked"] == 2, counters
    out = subprocess.run([BINARY, "explain", "--config", str(relay.config), "www.lab.test", "--client", "10.53.1.8"],
                         capture_output=True, text=True, timeout=20).stdout
    assert "allowed (an exception won)" in out and f"lists for this client: {paths['ads']}" in out, out
    assert f"decided by {paths['ads']}:2: @@||www.lab.test^$client=10.53.1.8" in out, out


def test_dnsrewrite_answers_records_codes_and_aliases(lab, relay_factory):
    paths = write_lists(lab, rewrites=[
        "||rw.lab.test^$dnsrewrite=10.53.9.1",
        "||rw.lab.test^$dnsrewrite=10.53.9.2",
        "||rw.lab.test^$dnsrewrite=NOERROR;TXT;hello relay",
        "||refused.lab.test^$dnsrewrite=REFUSED",
        "||gone.lab.test^$dnsrewrite=NXDOMAIN;;",
        "||safe.lab.test^$dnsrewrite=www.lab.test",
        "||www.lab.test^",  # a block loses to $dnsrewrite but applies to www itself
    ])
    relay = relay_factory(config(extra=f"filters:\n  lists: [{paths['rewrites']}]\n  ttl: 33\n"))
    a = lab.query("10.53.2.53", "rw.lab.test", "A")
    assert a["from"] == "10.53.2.53" and sorted(a["answers"]) == ["10.53.9.1", "10.53.9.2"], a
    assert lab.query("10.53.2.53", "x.rw.lab.test", "TXT")["answers"] == ['"hello relay"']
    empty = lab.query("10.53.2.53", "rw.lab.test", "AAAA")
    assert empty["rcode"] == "NOERROR" and empty["answers"] == [], empty
    assert lab.query("10.53.2.53", "refused.lab.test")["rcode"] == "REFUSED"
    assert lab.query("10.53.2.53", "gone.lab.test")["rcode"] == "NXDOMAIN"
    # The alias is resolved upstream, although a rule blocks the target when asked directly.
    alias = lab.query("10.53.2.53", "safe.lab.test", "A")
    assert alias["from"] == "10.53.2.53" and alias["rcode"] == "NOERROR", alias
    assert alias["answers"] == ["www.lab.test.", "10.53.2.80"], alias
    out = lab.client("kdig", "+tcp", "+time=2", "@10.53.2.53", "safe.lab.test", "AAAA", check=True).stdout
    assert re.search(r"safe\.lab\.test\.\s+33\s+IN\s+CNAME\s+www\.lab\.test\.", out), out
    assert "fd53:2::80" in out and "(TCP)" in out, out
    assert lab.query("10.53.2.53", "www.lab.test")["rcode"] == "NXDOMAIN"
    counters = relay.counters()
    assert counters["aliased"] == 2 and counters["rewritten"] == 7, counters


def test_server_rules_send_a_domain_to_its_own_upstream(lab, relay_factory):
    fake = lab.spawn(lab.up, "python3", str(HERE / "fake_upstream.py"), "answering", "10.53.4.54")
    assert json.loads(fake.stdout.readline())["event"] == "ready"
    paths = write_lists(lab, corp=["server=/corp.lab.test/10.53.4.54", "server=/public.corp.lab.test/#", "||ads.corp.lab.test^"])
    relay = relay_factory(config(extra=f"filters:\n  lists: [{paths['corp']}]\n"))
    result = lab.query("10.53.2.53", "host.corp.lab.test")
    assert result["from"] == "10.53.2.53" and result["answers"] == ["10.53.4.100"], result
    seen = json.loads(fake.stdout.readline())
    assert seen["name"] == "host.corp.lab.test." and seen["client"] == "10.53.2.1", seen
    # the longer server=/…/# sends its names to the usual upstream (knot: NXDOMAIN, not 10.53.4.100)
    assert lab.query("10.53.2.53", "x.public.corp.lab.test")["rcode"] == "NXDOMAIN"
    assert lab.query("10.53.2.53", "ads.corp.lab.test")["rcode"] == "NXDOMAIN"
    assert lab.query("10.53.2.53", "www.lab.test")["answers"] == ["10.53.2.80"]
    counters = relay.counters()
    assert counters["forwarded_by_rule"] == 1 and counters["blocked"] == 1, counters
    fake.kill()


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_editing_a_list_applies_within_two_seconds_under_load(lab, relay_factory):
    paths = write_lists(lab, live=["||ads.lab.test^"])
    relay = relay_factory(config(extra=f"filters:\n  lists: [{paths['live']}]\n"))
    names = lab.state / "dnsperf-names.txt"
    names.write_text("".join(f"{n} A\n" for n in ["www.lab.test", "alias.lab.test", "a.wild.lab.test", "ads.lab.test"]))
    load = subprocess.Popen(["ip", "netns", "exec", lab.cli, "dnsperf", "-s", "10.53.2.53", "-d", str(names),
                             "-l", "8", "-Q", "3000", "-t", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(1.5)
        took = []
        # in place (IN_CLOSE_WRITE), then replaced by rename as editors do (IN_MOVED_TO)
        for lines, name, expected in [(["||ads.lab.test^", "||www.lab.test^"], "www.lab.test", "NXDOMAIN"),
                                      (["||ads.lab.test^"], "www.lab.test", "NOERROR")]:
            started = time.monotonic()
            if expected == "NXDOMAIN":
                paths["live"].write_text("\n".join(lines) + "\n")
            else:
                fresh = paths["live"].with_suffix(".new")
                fresh.write_text("\n".join(lines) + "\n")
                fresh.rename(paths["live"])
            done = wait_for(lambda: lab.query("10.53.2.53", name, timeout=1)["rcode"] == expected, 5, f"{name} {expected}")
            took.append(done - started)
        assert all(t < 2.0 for t in took), took
        print(f"list edits applied after {', '.join(f'{t:.2f}s' for t in took)}")
    finally:
        out, _ = load.communicate(timeout=30)
    completed = re.search(r"Queries completed:\s+(\d+)", out)
    lost = re.search(r"Queries lost:\s+(\d+)", out)
    assert completed and lost, out
    assert int(completed.group(1)) > 15000 and int(lost.group(1)) == 0, out
    assert relay.output().count("a list changed on disk") >= 2, relay.output()


def test_broken_lists_keep_the_rules_in_force(lab, relay_factory):
    paths = write_lists(lab, fragile=["||ads.lab.test^"])
    relay = relay_factory(config(extra=f"filters:\n  lists: [{paths['fragile']}]\n"))
    assert lab.query("10.53.2.53", "ads.lab.test")["rcode"] == "NXDOMAIN"
    breakages = [
        (bytes(range(256)) * 64, "not a text file"),
        (b"a" * (10 << 20), "a rule is at most 8192"),
        (b"\xff\xfe\xfd\n\xc3\x28\n", "not valid UTF-8"),
        (b"/unterminated[0-9]+\n", "closing '/'"),
    ]
    for i, (content, reason) in enumerate(breakages, start=1):
        paths["fragile"].write_bytes(content)
        wait_for(lambda: relay.output().count("reload failed") >= i, 5, f"reload failure {i} ({reason})")
        assert reason in relay.output().split("reload failed")[-1].splitlines()[0], relay.output()[-600:]
        assert lab.query("10.53.2.53", "ads.lab.test")["rcode"] == "NXDOMAIN"
        assert lab.query("10.53.2.53", "www.lab.test")["answers"] == ["10.53.2.80"]
    # a fixed list applies again
    paths["fragile"].write_text("||www.lab.test^\n")
    wait_for(lambda: lab.query("10.53.2.53", "www.lab.test", timeout=1)["rcode"] == "NXDOMAIN", 5, "the fixed list")
