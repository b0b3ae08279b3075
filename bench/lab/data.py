#!/usr/bin/env python3
"""bench/lab/data.py DIR — the query sets and the block list of bench/run.sh, deterministic.

  blocklist-100k.txt  100,000 names (one per line) that every filtering SUT blocks (NXDOMAIN)
  blocked.q           1,000,000 queries for names on that list (answered by the SUT itself)
  hot.q               1,000 names under bench.test, repeated to 1,000,000 queries (cache hits)
  miss.q              2,000,000 distinct names under bench.test (each forwarded: knotd's
                      wildcard answers them), more than a 10 s run at 150k qps asks
Written once; a second call with the files present does nothing."""
import os
import random
import sys

directory = sys.argv[1] if len(sys.argv) > 1 else "data"
os.makedirs(directory, exist_ok=True)
done = os.path.join(directory, ".complete")
if os.path.exists(done):
    sys.exit(0)

rng = random.Random(53)
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
TLDS = ["com", "net", "org", "io", "info", "biz", "site", "online"]


def word(low, high):
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(low, high)))


blocked = set()
while len(blocked) < 100_000:
    parts = [word(4, 12)] + ([word(2, 8)] if rng.random() < 0.4 else []) + [rng.choice(TLDS)]
    blocked.add(".".join(parts))
blocked = sorted(blocked)
with open(os.path.join(directory, "blocklist-100k.txt"), "w") as f:
    f.write("\n".join(blocked) + "\n")
with open(os.path.join(directory, "blocked.q"), "w") as f:
    f.writelines(f"{rng.choice(blocked)} A\n" for _ in range(1_000_000))
hot = [f"h{i}-{word(6, 10)}.bench.test" for i in range(1000)]
with open(os.path.join(directory, "hot.q"), "w") as f:
    f.writelines(f"{hot[i % 1000]} A\n" for i in range(1_000_000))
with open(os.path.join(directory, "miss.q"), "w") as f:
    f.writelines(f"m{i}-{word(4, 8)}.bench.test A\n" for i in range(2_000_000))
open(done, "w").close()
