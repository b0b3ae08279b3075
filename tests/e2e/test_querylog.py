"""The query log end to end: one well-formed line per answered query with the right fields,
rotation under load followed by `tail` without losing or repeating a line, a full disk that
never stops DNS, kill -9 that leaves only complete lines, and `tail`/`stats` on fixture logs."""
import json
import os
import re
import signal
import subprocess
import time

from conftest import BINARY, HERE, config

ZONE = "$TTL 300\n@ IN SOA ns.home.lan. admin.home.lan. ( 1 3600 600 86400 60 )\nnas IN A 10.53.5.10\n"


def logged(lab, relay_factory, extra="", name="ql"):
    state = lab.state / f"{name}-{time.monotonic_ns()}"
    state.mkdir()
    (state / "zones").mkdir()
    (state / "zones" / "home.lan.zone").write_text(ZONE)
    (state / "ads.txt").write_text("! a list\n||ads.lab.test^\n")
    log = state / "queries.jsonl"
    text = config(extra=f"zones: {state / 'zones'}\nfilters:\n  lists: [{state / 'ads.txt'}]\n"
                        f"querylog:\n  path: {log}\n{extra}")
    return relay_factory(text), log, state


def lines_of(*paths):
    out = []
    for p in paths:
        if p.exists():
            out += p.read_text().splitlines()
    return out


def wait_lines(log, count, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and len(log.read_text().splitlines()) >= count:
            break
        time.sleep(0.05)
    time.sleep(0.2)  # and nothing more arrives
    return log.read_text().splitlines()


def test_every_answered_query_is_one_well_formed_line(lab, relay_factory):
    relay, log, state = logged(lab, relay_factory)
    plan = ["10.53.2.53,www.lab.test,A", "10.53.3.53,ads.lab.test,A", "10.53.2.53,nas.home.lan,A",
            "10.53.3.53,missing.lab.test,AAAA", "10.53.2.53,www.lab.test,A,tcp"]
    out = lab.client("python3", str(HERE / "dnsclient.py"), "many", "1000", *plan, check=True, timeout=120).stdout
    result = json.loads(out)
    assert result["answered"] == 1000, result
    lines = wait_lines(log, 1000)
    entries = [json.loads(line) for line in lines]
    assert len(entries) == 1000
    fields = {"time", "proto", "client", "server", "qname", "qtype", "action", "rule", "rcode", "answers", "upstream", "cached", "duration_us"}
    assert all(set(e) == fields for e in entries)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", e["time"]) for e in entries)
    by_name = {}
    for e in entries:
        by_name.setdefault((e["qname"], e["proto"]), []).append(e)
    blocked = by_name[("ads.lab.test", "udp")]
    assert len(blocked) == 200 and all(e["action"] == "blocked" and e["rcode"] == "NXDOMAIN" for e in blocked)
    assert all(e["server"] == "10.53.3.53:53" and e["client"].startswith("10.53.1.2:") for e in blocked)
    assert all(e["rule"] == {"list": str(state / "ads.txt"), "line": 2, "text": "||ads.lab.test^"} for e in blocked), blocked[0]["rule"]
    assert all(e["upstream"] is None for e in blocked)
    local = by_name[("nas.home.lan", "udp")]
    assert all(e["action"] == "local" and e["answers"] == ["10.53.5.10"] for e in local)
    www = by_name[("www.lab.test", "udp")]
    assert www[0]["action"] == "allowed" and www[0]["upstream"] == "10.53.2.53:53" and www[0]["answers"] == ["10.53.2.80"], www[0]
    # one timeline, in the order queries were answered (arrival time plus duration)
    done = [(e["time"], e["duration_us"]) for e in entries]
    import datetime
    def finished(t, d):
        return datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp() + d / 1e6
    assert all(finished(*a) <= finished(*b) + 1e-5 for a, b in zip(done, done[1:]))
    assert sum(e["action"] == "cached" for e in www) >= 190 and all(e["cached"] == (e["action"] == "cached") for e in www)
    assert all(e["server"] == "10.53.2.53:53" for e in www)
    missing = by_name[("missing.lab.test", "udp")]
    assert all(e["rcode"] == "NXDOMAIN" and e["qtype"] == "AAAA" and e["action"] in ("allowed", "cached") for e in missing)
    tcp = by_name[("www.lab.test", "tcp")]
    assert len(tcp) == 200 and all(e["proto"] == "tcp" for e in tcp)


def test_rotation_under_load_with_tail_following(lab, relay_factory):
    relay, log, state = logged(lab, relay_factory, extra="  rotate_size: 256k\n  keep: 200\n")
    tail_out = open(state / "tail.out", "w")  # a file, not a pipe: a full pipe would stall tail
    follower = subprocess.Popen([BINARY, "tail", "-f", "--file", str(log), "--json", "-n", "0"], stdout=tail_out)
    time.sleep(0.5)
    names = state / "names.txt"
    names.write_text("".join(f"{n} A\n" for n in ["www.lab.test", "ads.lab.test", "nas.home.lan", "alias.lab.test", "x.wild.lab.test"]))
    out = subprocess.run(["ip", "netns", "exec", lab.cli, "dnsperf", "-s", "10.53.2.53", "-d", str(names), "-l", "20", "-Q", "5000"],
                         capture_output=True, text=True, timeout=60).stdout
    completed = int(re.search(r"Queries completed:\s+(\d+)", out).group(1))
    assert completed > 90000 and re.search(r"Queries lost:\s+0 ", out), out
    time.sleep(1.0)
    follower.send_signal(signal.SIGTERM)
    follower.wait(timeout=10)
    tail_out.close()
    tailed = (state / "tail.out").read_text().splitlines()
    files = [f for f in state.glob("queries.jsonl*")]
    assert len(files) > 20, files  # it did rotate, many times
    stored = lines_of(*files)
    assert len(stored) == completed, (len(stored), completed)
    assert len(tailed) == completed, (len(tailed), completed)
    assert len(set(tailed)) == len(tailed)  # nothing repeated
    assert all(json.loads(line)["qname"] for line in stored)


def test_a_full_disk_never_stops_dns(lab, relay_factory):
    state = lab.state / f"full-{time.monotonic_ns()}"
    (state / "log").mkdir(parents=True)
    cfg = state / "relay.yaml"
    cfg.write_text(config(extra=f"querylog:\n  path: {state / 'log' / 'queries.jsonl'}\n"))
    logfile = open(state / "relay.log", "w")
    # The relay in its own mount namespace, the log directory a 32 KiB tmpfs there.
    relay = subprocess.Popen(["ip", "netns", "exec", lab.rtr, "unshare", "-m", "--propagation", "private", "sh", "-c",
                              f"mount -t tmpfs -o size=32k tmpfs {state / 'log'} && exec {BINARY} run --config {cfg}"],
                             stdout=logfile, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while "relaying DNS" not in (state / "relay.log").read_text():
            assert relay.poll() is None and time.monotonic() < deadline, (state / "relay.log").read_text()
            time.sleep(0.05)
        names = state / "names.txt"
        names.write_text("www.lab.test A\nmissing.lab.test A\n")
        out = subprocess.run(["ip", "netns", "exec", lab.cli, "dnsperf", "-s", "10.53.2.53", "-d", str(names), "-l", "4", "-Q", "3000"],
                             capture_output=True, text=True, timeout=60).stdout
        assert re.search(r"Queries lost:\s+0 ", out), out
        relay.send_signal(signal.SIGTERM)
        assert relay.wait(timeout=15) == 0
        text = (state / "relay.log").read_text()
        assert "query log: write to" in text and "entries are dropped and counted, DNS is not affected" in text, text
        assert text.count("query log: write to") == 1, text  # one warning, not one per batch
        dropped = int(re.search(r"query log: (\d+) entries written, (\d+) dropped", text).group(2))
        assert dropped > 5000, text
    finally:
        if relay.poll() is None:
            relay.kill()
        logfile.close()


def test_kill_9_during_a_burst_leaves_only_complete_lines(lab, relay_factory):
    relay, log, state = logged(lab, relay_factory)
    names = state / "names.txt"
    names.write_text("www.lab.test A\nads.lab.test A\nnas.home.lan A\n")
    load = subprocess.Popen(["ip", "netns", "exec", lab.cli, "dnsperf", "-s", "10.53.2.53", "-d", str(names), "-l", "3", "-Q", "20000"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(1.5)
    relay.process.send_signal(signal.SIGKILL)
    relay.process.wait()
    load.communicate(timeout=30)
    text = log.read_text()
    assert text.endswith("\n") and len(text) > 10000
    for line in text.splitlines():
        json.loads(line)


FIXTURE_OLD = [
    {"time": "2026-11-26T10:00:00.000001Z", "proto": "udp", "client": "10.53.1.2:1000", "server": "10.53.2.53:53", "qname": "www.lab.test",
     "qtype": "A", "action": "allowed", "rule": None, "rcode": "NOERROR", "answers": ["10.53.2.80"], "upstream": "10.53.2.53:53", "cached": False, "duration_us": 100},
    {"time": "2026-11-26T10:00:01.000000Z", "proto": "udp", "client": "10.53.1.3:1001", "server": "10.53.3.53:53", "qname": "ads.lab.test",
     "qtype": "A", "action": "blocked", "rule": {"list": "/x/ads.txt", "line": 2, "text": "||ads.lab.test^"}, "rcode": "NXDOMAIN", "answers": [],
     "upstream": None, "cached": False, "duration_us": 5},
]
FIXTURE_NEW = [
    {"time": "2026-11-26T10:00:02.000000Z", "proto": "tcp", "client": "10.53.1.2:1002", "server": "10.53.2.53:53", "qname": "www.lab.test",
     "qtype": "AAAA", "action": "allowed", "rule": None, "rcode": "NOERROR", "answers": ["fd53:2::80"], "upstream": "10.53.2.53:53", "cached": False, "duration_us": 300},
    {"time": "2026-11-26T10:00:03.000000Z", "proto": "udp", "client": "10.53.1.2:1003", "server": "10.53.2.53:53", "qname": "www.lab.test",
     "qtype": "A", "action": "cached", "rule": None, "rcode": "NOERROR", "answers": ["10.53.2.80"], "upstream": None, "cached": True, "duration_us": 3},
    {"time": "2026-11-26T10:00:04.000000Z", "proto": "udp", "client": "10.53.9.9:1004", "server": "10.53.3.53:53", "qname": "x.ads.lab.test",
     "qtype": "A", "action": "blocked", "rule": {"list": "/x/ads.txt", "line": 2, "text": "||ads.lab.test^"}, "rcode": "NXDOMAIN", "answers": [],
     "upstream": None, "cached": False, "duration_us": 4},
    {"time": "2026-11-26T10:00:05.000000Z", "log": "status", "written": 5, "dropped": 0},
]


def fixture(tmp_path):
    log = tmp_path / "queries.jsonl"
    (tmp_path / "queries.jsonl.1").write_text("".join(json.dumps(e) + "\n" for e in FIXTURE_OLD))
    log.write_text("".join(json.dumps(e) + "\n" for e in FIXTURE_NEW))
    return log


def tail(log, *args):
    out = subprocess.run([BINARY, "tail", "--file", str(log), "--json", *args], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    return [json.loads(line)["time"][17:19] for line in out.stdout.splitlines()]


def test_tail_filters_and_starts_across_rotated_files(tmp_path):
    log = fixture(tmp_path)
    assert tail(log, "-n", "3") == ["02", "03", "04"]
    assert tail(log, "-n", "10") == ["00", "01", "02", "03", "04"]  # the status line is not an entry
    assert tail(log, "-n", "10", "--action", "blocked") == ["01", "04"]
    assert tail(log, "-n", "10", "--client", "10.53.1.0/24") == ["00", "01", "02", "03"]
    assert tail(log, "-n", "10", "--client", "10.53.1.3") == ["01"]
    assert tail(log, "-n", "10", "--domain", "ads.lab.test") == ["01", "04"]
    assert tail(log, "-n", "10", "--type", "AAAA") == ["02"]
    assert tail(log, "-n", "10", "--proto", "tcp") == ["02"]
    assert tail(log, "-n", "10", "--rcode", "nxdomain") == ["01", "04"]
    assert tail(log, "-n", "10", "--grep", "10\\.53\\.3\\.53") == ["01", "04"]
    plain = subprocess.run([BINARY, "tail", "--file", str(log), "-n", "1"], capture_output=True, text=True, timeout=20).stdout
    assert "x.ads.lab.test" in plain and "blocked" in plain and "||ads.lab.test^ (ads.txt:2)" in plain and "\x1b[" not in plain, plain
    colored = subprocess.run(["script", "-qec", f"{BINARY} tail --file {log} -n 1", "/dev/null"],
                             capture_output=True, text=True, timeout=20).stdout
    assert "\x1b[31m" in colored, colored
    bad = subprocess.run([BINARY, "tail", "--file", str(log), "--action", "maybe"], capture_output=True, text=True, timeout=20)
    assert bad.returncode != 0 and "is not one of" in bad.stderr
    bad = subprocess.run([BINARY, "tail", "--file", str(log), "--grep", "(unclosed"], capture_output=True, text=True, timeout=20)
    assert bad.returncode != 0 and "not a valid regular expression" in bad.stderr
    bad = subprocess.run([BINARY, "tail", "--file", str(log), "-n", "-1"], capture_output=True, text=True, timeout=20)
    assert bad.returncode != 0


def test_tail_behaves_like_tail(tmp_path):
    """Issue 15: `tail` prints the last 10 and exits, `-n N` the last N; `-f` follows across a
    rotation; a missing log is a one-line error for `tail` and `stats`."""
    log = fixture(tmp_path)
    assert len(tail(log)) == 5  # fewer than 10 entries: all of them, then exit
    assert tail(log, "-n", "2") == ["03", "04"]
    # --no-follow from older scripts still prints and exits.
    old = subprocess.run([BINARY, "tail", "--file", str(log), "--no-follow", "--json", "-n", "1"], capture_output=True, text=True, timeout=20)
    assert old.returncode == 0 and len(old.stdout.splitlines()) == 1
    for flag in ("-f", "--follow", "-F"):
        out_path = tmp_path / f"follow{flag}.out"
        with open(out_path, "w") as out:
            follower = subprocess.Popen([BINARY, "tail", flag, "--file", str(log), "--json", "-n", "1", "--action", "blocked"], stdout=out)
            time.sleep(0.5)
            assert follower.poll() is None, "tail -f must keep running"
            blocked = next(e for e in FIXTURE_NEW if e.get("qname") == "x.ads.lab.test")
            entry = dict(blocked, time="2026-11-27T10:00:09.000000Z")
            os.replace(log, tmp_path / "queries.jsonl.1")  # a rotation: the old file moves away
            log.write_text(json.dumps(entry) + "\n")
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and len(out_path.read_text().splitlines()) < 2:
                time.sleep(0.1)
            follower.send_signal(signal.SIGTERM)
            follower.wait(timeout=10)
        times = [json.loads(line)["time"][17:19] for line in out_path.read_text().splitlines()]
        assert times == ["04", "09"], (flag, times)
        log = fixture(tmp_path)
    missing = tmp_path / "nothing-here.jsonl"
    for command in (["tail"], ["stats"]):
        out = subprocess.run([BINARY, *command, "--file", str(missing)], capture_output=True, text=True, timeout=20)
        assert out.returncode == 1 and out.stderr.strip() == f"error: {missing}: no such query log", out
    out = subprocess.run([BINARY, "tail", "--file", str(tmp_path)], capture_output=True, text=True, timeout=20)
    assert out.returncode == 1 and "is a directory" in out.stderr
    out = subprocess.run([BINARY, "tail", "-f", "--no-follow", "--file", str(log)], capture_output=True, text=True, timeout=20)
    assert out.returncode != 0 and "contradict" in out.stderr


def test_stats_on_a_fixture_log(tmp_path):
    log = fixture(tmp_path)
    out = subprocess.run([BINARY, "stats", "--file", str(log), "--json"], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    stats = json.loads(out.stdout)
    assert stats["total"] == 5
    assert stats["actions"] == {"allowed": 2, "blocked": 2, "cached": 1}
    assert stats["blocked_share"] == 0.4
    assert stats["cache_hit_share"] == round(1 / 3, 4)  # 1 cached of 3 upstream-bound
    assert stats["top_domains"][0] == {"name": "www.lab.test", "count": 3}
    assert stats["top_blocked"] == [{"name": "ads.lab.test", "count": 1}, {"name": "x.ads.lab.test", "count": 1}]
    assert stats["top_clients"][0] == {"client": "10.53.1.2", "count": 3}
    assert stats["servers"] == [{"server": "10.53.2.53", "clients": 1, "queries": 3}, {"server": "10.53.3.53", "clients": 2, "queries": 2}][::-1]
    assert stats["forwarded_latency_us"] == {"p50": 100, "p90": 300, "p99": 300}
    text = subprocess.run([BINARY, "stats", "--file", str(log)], capture_output=True, text=True, timeout=20).stdout
    assert "queries: 5" in text and "10.53.3.53: 2 clients, 2 queries" in text, text
    bad = subprocess.run([BINARY, "stats", "--file", str(log), "--since", "soon"], capture_output=True, text=True, timeout=20)
    assert bad.returncode != 0 and "expected a duration" in bad.stderr
    # a file that is not a query log gives an empty summary, not a crash
    junk = tmp_path / "junk.jsonl"
    junk.write_bytes(b"\x00\xff not json\n{\"half\": \n")
    out = subprocess.run([BINARY, "stats", "--file", str(junk), "--json"], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0 and json.loads(out.stdout)["total"] == 0, out.stdout + out.stderr
