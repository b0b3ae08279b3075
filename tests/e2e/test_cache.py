"""The answer cache end to end: one upstream query for many identical client queries, TTLs that
count down, the client's ID and letter case, negative caching, serve-stale when the upstream is
gone, prefetch, rules that apply to cached names at once, and a bound that holds."""
import json
import re
import subprocess
import time

import pytest

from conftest import HERE, config


def answering(lab, address="10.53.4.54", ttl=60):
    fake = lab.spawn(lab.up, "python3", str(HERE / "fake_upstream.py"), "answering", address, str(ttl))
    assert json.loads(fake.stdout.readline())["event"] == "ready"
    return fake


def seen(fake, timeout=0.5):
    """Queries the fake upstream reported so far (reads what is buffered, waits briefly)."""
    import selectors
    names = []
    sel = selectors.DefaultSelector()
    sel.register(fake.stdout, selectors.EVENT_READ)
    while sel.select(timeout):
        line = fake.stdout.readline()
        if not line:
            break
        event = json.loads(line)
        if event["event"] == "query":
            names.append(event["name"])
    return names


def cached(lab, relay_factory, extra="", upstream="mode: servers\n  servers: [10.53.4.54]\n  timeout: 500ms", workers=1):
    text = config(upstream=upstream, extra=extra).replace("workers: 2", f"workers: {workers}")
    return relay_factory(text)


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_ten_identical_queries_reach_the_upstream_once(lab, relay_factory, workers):
    """Each query from a socket of its own (a new source port): SO_REUSEPORT spreads them over the
    workers, and the one cache they share answers all but the first (issue 21)."""
    fake = answering(lab)
    relay = cached(lab, relay_factory, workers=workers)
    first = lab.query("10.53.2.53", "host.cache.test")
    assert first["answers"] == ["10.53.4.100"] and first["ttls"] == [60], first
    for _ in range(9):
        again = lab.query("10.53.2.53", "host.cache.test")
        assert again["answers"] == ["10.53.4.100"] and again["from"] == "10.53.2.53", again
    assert seen(fake) == ["host.cache.test."]
    counters = relay.counters()
    assert counters["cache_hits"] == 9 and counters["cache_inserted"] == 1, counters
    # The TTL counts down; the client's ID and its letter case come back.
    time.sleep(2.1)
    later = lab.query("10.53.2.53", "HoSt.CaChE.TeSt")
    assert later["ttls"][0] <= 58, later
    assert later["id"] == later["sent_id"] and later["question"] == ["HoSt.CaChE.TeSt. IN A"], later
    assert seen(fake) == []
    fake.kill()


def test_negative_answers_are_cached_for_the_soa_minimum(lab, relay_factory):
    fake = answering(lab)
    cached(lab, relay_factory)
    for _ in range(3):
        result = lab.query("10.53.2.53", "nx-missing.cache.test")
        assert result["rcode"] == "NXDOMAIN" and result["authority"], result
    assert seen(fake) == ["nx-missing.cache.test."]
    fake.kill()


def test_stale_answers_when_the_upstream_is_gone(lab, relay_factory):
    fake = answering(lab, ttl=1)
    relay = cached(lab, relay_factory, extra="cache:\n  serve_stale: 1h\n")
    assert lab.query("10.53.2.53", "old.cache.test")["answers"] == ["10.53.4.100"]
    fake.kill()
    fake.wait()
    time.sleep(1.6)  # expired now
    stale = lab.query("10.53.2.53", "old.cache.test", timeout=5)
    assert stale["answers"] == ["10.53.4.100"] and stale["ttls"] == [30], stale
    never = lab.query("10.53.2.53", "never.cache.test", timeout=5)
    assert never["rcode"] == "SERVFAIL", never
    counters = relay.counters()
    assert counters["cache_stale"] == 1 and counters["servfail"] == 1, counters


@pytest.mark.parametrize("workers", [1, 4])
def test_popular_entries_are_refreshed_before_they_expire(lab, relay_factory, workers):
    """Refreshed once, whichever worker sees it first: one prefetch in flight, not one per worker."""
    fake = answering(lab, ttl=10)
    relay = cached(lab, relay_factory, workers=workers)
    for _ in range(4):
        lab.query("10.53.2.53", "popular.cache.test")
        if _ == 0:
            stored = time.monotonic()
    assert seen(fake) == ["popular.cache.test."]
    # In the last 2 s of 10 (ages are whole seconds, so aim at the middle): about 8.5 s old.
    time.sleep(max(0, stored + 8.3 - time.monotonic()))
    # One query per worker's worth, each from a socket of its own, within milliseconds.
    lab.client("python3", str(HERE / "dnsclient.py"), "many", str(workers), "10.53.2.53,popular.cache.test,A", check=True)
    assert seen(fake, timeout=1) == ["popular.cache.test."], "no prefetch, or more than one"
    time.sleep(2.2)  # past the first answer's TTL: the refreshed one answers
    result = lab.query("10.53.2.53", "popular.cache.test")
    assert result["answers"] == ["10.53.4.100"] and result["ttls"][0] >= 5, result
    assert seen(fake) == []
    assert relay.counters()["cache_prefetches"] == 1


def test_a_reloaded_rule_applies_to_cached_names_at_once(lab, relay_factory):
    listfile = lab.state / "cache-rules.txt"
    listfile.write_text("||ads.lab.test^\n")
    relay = relay_factory(config(extra=f"filters:\n  lists: [{listfile}]\n"))
    for _ in range(3):
        assert lab.query("10.53.2.53", "www.lab.test")["answers"] == ["10.53.2.80"]
    listfile.write_text("||ads.lab.test^\n||www.lab.test^\n")
    deadline = time.monotonic() + 3
    while lab.query("10.53.2.53", "www.lab.test")["rcode"] != "NXDOMAIN":
        assert time.monotonic() < deadline, relay.output()
        time.sleep(0.1)
    assert relay.counters()["cache_hits"] >= 1


def test_the_bound_holds_under_unique_names(lab, relay_factory):
    relay = relay_factory(config(extra="cache:\n  entries: 500\n"))
    names = lab.state / "unique.txt"

    def load(start, count):
        names.write_text("".join(f"u{i}.wild.lab.test A\n" for i in range(start, start + count)))
        out = subprocess.run(["ip", "netns", "exec", lab.cli, "dnsperf", "-s", "10.53.2.53", "-d", str(names),
                              "-n", "1", "-Q", "5000", "-t", "2"], capture_output=True, text=True, timeout=60).stdout
        assert re.search(r"Queries lost:\s+0 ", out), out

    def rss():
        return int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{relay_pid(relay)}/status").read()).group(1))

    load(0, 5000)
    first = rss()
    load(5000, 20000)
    second = rss()
    counters = relay.counters()
    # One cache for both workers: its bound is the relay's.
    assert counters["cache_entries"] <= 500 and counters["cache_evicted"] >= 24000, counters
    assert second - first < 2048, (first, second)  # KiB: flat


def relay_pid(relay):
    """The relay's own pid (the Popen is `ip netns exec`, which execs it)."""
    return relay.process.pid
