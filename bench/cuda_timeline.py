#!/usr/bin/env python3
"""cuda_timeline.py — one decode token's launches as the GPU ran them in the graph.

Reads the CSV of `nsys stats --report cuda_gpu_trace` for a zmlx-cuda_decode run (the
decode graph traced node by node), takes the last whole token (from the last embedding
launch up to the launch before the next one) and prints, launch by launch, the start
relative to the token's first launch, the start-to-start interval (what the launch costs
the pipeline: with programmatic dependent launch a kernel starts before its predecessor
ends and waits inside), and the duration nsys saw; then the intervals summed by kernel.

Usage: cuda_timeline.py TRACE.csv [--layers N]
"""
import csv
import re
import sys
from collections import OrderedDict


def short(name):
    m = re.match(r"(?:void )?([A-Za-z_0-9]+)(<[^(]*>)?", name)
    base = m.group(1) if m else name[:40]
    tmpl = m.group(2) if m and m.group(2) else ""
    return (base + tmpl)[:48]


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    rows = []
    with open(sys.argv[1], newline="") as f:
        for r in csv.DictReader(f):
            name = r.get("Name") or r.get("name")
            start = r.get("Start (ns)") or r.get("Start")
            dur = r.get("Duration (ns)") or r.get("Duration")
            if not name or start is None or dur is None or "[CUDA" in name:
                continue
            rows.append((int(float(start)), int(float(dur)), name))
    rows.sort()
    emb = [i for i, r in enumerate(rows) if "k_embed" in r[2]]
    if len(emb) < 2:
        print("fewer than two tokens in the trace")
        return 1
    tok = rows[emb[-2]:emb[-1]]
    t0 = tok[0][0]
    total = tok[-1][0] + tok[-1][1] - t0
    print(f"one token: {len(tok)} launches, {total / 1000:.1f} us first start to last end\n")
    print(f"| # | kernel | start us | interval us | duration us |")
    print(f"|---:|---|---:|---:|---:|")
    by = OrderedDict()
    for i, (s, d, n) in enumerate(tok):
        nxt = tok[i + 1][0] if i + 1 < len(tok) else s + d
        iv = (nxt - s) / 1000
        k = short(n)
        a = by.setdefault(k, [0, 0.0, 0.0])
        a[0] += 1
        a[1] += iv
        a[2] += d / 1000
        print(f"| {i} | {k} | {(s - t0) / 1000:.1f} | {iv:.2f} | {d / 1000:.2f} |")
    print("\n| kernel | launches | intervals us | durations us |")
    print("|---|---:|---:|---:|")
    for k, (c, iv, du) in sorted(by.items(), key=lambda x: -x[1][1]):
        print(f"| {k} | {c} | {iv:.1f} | {du:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
