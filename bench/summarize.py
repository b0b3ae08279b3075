#!/usr/bin/env python3
"""Summarizes bench/run.sh's RESULT lines: medians per scenario and SUT, and CPU per query as
a ratio to the floor and to dnsdist measured in the same repetition (the machine is noisy, so
only same-run ratios mean anything)."""
import re
import statistics
import sys
from collections import defaultdict


def parse(path):
    runs = []
    for line in open(path):
        if "RESULT" not in line:
            continue
        fields = dict(re.findall(r"(\w+)=(\S+)", line))
        runs.append(fields)
    return runs


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def main():
    runs = parse(sys.argv[1])
    table = defaultdict(list)
    by_rep = defaultdict(dict)
    for r in runs:
        tag = f" (capped {r['capped']})" if "capped" in r else f" (latency at {r['latency']} qps)" if "latency" in r else ""
        key = (r.get("scenario"), r.get("sut") + tag)
        table[key].append(r)
        if "capped" not in r and "latency" not in r:
            by_rep[(r.get("rep"), r.get("scenario"))][r.get("sut")] = r
    print("| scenario | SUT | reps | qps (median) | lost (median) | p99 ms | SUT µs/query | of which user | CPU-1 µs/query |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (scen, sut), rs in sorted(table.items()):
        def med(k):
            vals = [num(r.get(k)) for r in rs if num(r.get(k)) is not None]
            return f"{statistics.median(vals):,.1f}" if vals else "-"
        print(f"| {scen} | {sut} | {len(rs)} | {med('qps')} | {med('lost')} | {med('p99_ms')} | {med('sut_us_q')} | {med('sut_user_us_q')} | {med('core_us_q')} |")
    print()
    # The relay, and the relay with its query log on, against the floors and dnsdist.
    for ours_name in ("tproxy-relay", "tproxy-relay-log"):
        ratios = defaultdict(lambda: defaultdict(list))
        for (rep, scen), suts in by_rep.items():
            ours = num(suts.get(ours_name, {}).get("sut_us_q"))
            if ours is None:
                continue
            for ref in ("floor", "floor-forward", "dnsdist"):
                theirs = num(suts.get(ref, {}).get("sut_us_q"))
                if theirs:
                    ratios[scen][ref].append(ours / theirs)
        if not ratios:
            continue
        print(f"CPU per answered query of {ours_name}, as a ratio, same repetition (median over reps):")
        for scen, refs in sorted(ratios.items()):
            parts = [f"vs {ref} {statistics.median(v):.2f}x (n={len(v)})" for ref, v in sorted(refs.items())]
            print(f"- {scen}: " + ", ".join(parts))
    # The query log's cost: the relay with the log on beside the relay without, same repetition.
    # This build against another (SUT baseline, BASELINE_BIN), same repetition.
    versus = defaultdict(lambda: {"ratio": [], "us": []})
    for (rep, scen), suts in by_rep.items():
        ours, base = num(suts.get("tproxy-relay", {}).get("sut_us_q")), num(suts.get("baseline", {}).get("sut_us_q"))
        if ours is None or not base:
            continue
        versus[scen]["us"].append(ours - base)
        versus[scen]["ratio"].append(ours / base)
    if versus:
        print()
        print("This build vs the baseline build, same repetition (median over reps):")
        for scen, v in sorted(versus.items()):
            ratio = f", CPU ratio {statistics.median(v['ratio']):.3f}" if v["ratio"] else ""
            print(f"- {scen}: {statistics.median(v['us']):+.2f} µs/query{ratio} (n={len(v['us'])})")
    # What a feature costs: the relay with it on beside the relay without, same repetition.
    for variant, title, base in (("tproxy-relay-log", "Query log", "tproxy-relay"), ("tproxy-relay-dnstap", "dnstap", "tproxy-relay"),
                                 ("tproxy-relay-metrics", "Metrics (scraped every second)", "tproxy-relay"),
                                 ("tproxy-relay-limited", "Rate limiting", "tproxy-relay"),
                                 ("tproxy-relay-web", "Dashboard watched (both with the query log)", "tproxy-relay-log")):
        cost = defaultdict(lambda: {"qps": [], "us": [], "ratio": []})
        for (rep, scen), suts in by_rep.items():
            on, off = suts.get(variant), suts.get(base)
            if not on or not off:
                continue
            if num(on.get("qps")) and num(off.get("qps")):
                cost[scen]["qps"].append(num(on["qps"]) / num(off["qps"]))
            if num(on.get("sut_us_q")) is not None and num(off.get("sut_us_q")) is not None:
                cost[scen]["us"].append(num(on["sut_us_q"]) - num(off["sut_us_q"]))
                if num(off["sut_us_q"]):
                    cost[scen]["ratio"].append(num(on["sut_us_q"]) / num(off["sut_us_q"]))
        if cost:
            print()
            print(f"{title} on vs off, same repetition (median over reps):")
            for scen, c in sorted(cost.items()):
                share = f" ({(statistics.median(c['ratio']) - 1) * 100:+.1f} %)" if c["ratio"] else ""
                print(f"- {scen}: throughput ratio {statistics.median(c['qps']):.3f}, added CPU {statistics.median(c['us']):+.2f} µs/query{share} (n={len(c['qps'])})")
    # Latency below saturation: every answer timed at the same offered rate, per SUT.
    timed = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for r in runs:
        if "latency" in r:
            for k in ("p50_ms", "p99_ms", "p999_ms", "res_p50_us", "res_p99_us", "res_p999_us"):
                if num(r.get(k)) is not None:
                    timed[(r.get("scenario"), r["latency"])][r.get("sut")][k].append(num(r[k]))
    if timed:
        print()
        print("Latency at a fixed offered rate, every answer timed (median over reps), ms p50 / p99 / p99.9:")
        for (scen, rate), suts in sorted(timed.items()):
            parts = []
            for sut, v in sorted(suts.items()):
                parts.append(f"{sut} {statistics.median(v['p50_ms']):.3f} / {statistics.median(v['p99_ms']):.3f} / "
                             f"{statistics.median(v['p999_ms']):.3f}")
            print(f"- {scen} at {rate} qps: " + "; ".join(parts))
        resident = [(key, suts) for key, suts in sorted(timed.items()) if any(v["res_p99_us"] for v in suts.values())]
        if resident:
            print()
            print("Time in rtr, query in on lan0 to answer out (kernel timestamps, median over reps), µs p50 / p99 / p99.9:")
            for (scen, rate), suts in resident:
                parts = [f"{sut} {statistics.median(v['res_p50_us']):.0f} / {statistics.median(v['res_p99_us']):.0f} / "
                         f"{statistics.median(v['res_p999_us']):.0f}" for sut, v in sorted(suts.items()) if v["res_p99_us"]]
                print(f"- {scen} at {rate} qps: " + "; ".join(parts))


if __name__ == "__main__":
    main()
