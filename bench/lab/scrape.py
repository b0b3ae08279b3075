"""Scrapes a metrics endpoint every second, as Prometheus would, until process PID exits
(bench/run.sh's SUT tproxy-relay-metrics). Runs in its own session, so its CPU is not counted
as the relay's; the relay's own cost of answering the scrapes is. Prints the scrapes made."""
import os
import sys
import time
import urllib.request

pid, url = int(sys.argv[1]), sys.argv[2]
ok = failed = 0
while os.path.exists(f"/proc/{pid}"):
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            reply.read()
            ok += 1
    except OSError:
        failed += 1
    time.sleep(1)
print(f"scrape.py: {ok} scrapes, {failed} failed", file=sys.stderr)
