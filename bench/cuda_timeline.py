#!/usr/bin/env python3
"""cuda_timeline.py — one decode token's launches as the GPU ran them in the graph.

Reads the CSV of `nsys stats --report cuda_gpu_trace` for a zmlx-cuda_decode run (the
decode graph traced node by node); a token is the launches from one embedding launch up
to the next (copies left out).  With programmatic dependent launch a kernel starts before
its predecessor ends and waits inside, so the column that adds up is how much later each
launch ends than the one before it: its share of the critical path.

Prints the last whole token launch by launch (start, that share, start to end), the
shares summed by kernel, and with --layers S,P the median share of each launch of a
layer over every whole token, taking launches S, S + P, ... as the first of a layer
(builtin:glm47-flash: S = 10 after the embedding and the dense layer's 9, P = 10).

With --layers, the spread of each launch of a layer too (min, median, 90th percentile,
max over tokens x layers), and with --matrix J (J: a launch of the layer, 0-based) that
launch's share token by token and layer by layer: whether a slow launch follows its layer
(its weights' placement) or the token (its route).

Usage: cuda_timeline.py TRACE.csv [--layers S,P [--matrix J]]
"""
import csv
import re
import statistics
import sys
from collections import OrderedDict


def short(name):
    m = re.match(r"(?:void )?([A-Za-z_0-9]+)(<.*?>)?\(", name)
    return (m.group(1) + (m.group(2) or "")) if m else name[:48]


def tokens_of(path):
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            name, start, dur = r.get("Name"), r.get("Start (ns)"), r.get("Duration (ns)")
            if not name or start is None or dur is None or name.startswith("[CUDA"):
                continue
            rows.append((int(float(start)), int(float(dur)), name, r.get("GrdX", "")))
    rows.sort()
    emb = [i for i, r in enumerate(rows) if "k_embed" in r[2]]
    return [rows[a:b] for a, b in zip(emb, emb[1:])]


def shares(tok):
    """us each launch ends after the one before it (the first: its duration)."""
    ends = [s + d for s, d, *_ in tok]
    return [(ends[i] - (ends[i - 1] if i else tok[0][0])) / 1000 for i in range(len(tok))]


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    layers, matrix = None, None
    if len(argv) >= 4 and argv[2] == "--layers":
        s, p = (int(v) for v in argv[3].split(","))
        layers = (s, p)
        if len(argv) >= 6 and argv[4] == "--matrix":
            matrix = int(argv[5])
    toks = tokens_of(argv[1])
    if not toks:
        print("fewer than two tokens in the trace")
        return 1
    tok = toks[-1]
    t0 = tok[0][0]
    sh = shares(tok)
    print(f"one token: {len(tok)} launches, {(tok[-1][0] + tok[-1][1] - t0) / 1000:.1f} us "
          "from the first launch's start to the last's end\n")
    print("| # | kernel | grid x | start us | end after the previous end, us | start to end, us |")
    print("|---:|---|---:|---:|---:|---:|")
    by = OrderedDict()
    for i, ((s, d, n, gx), x) in enumerate(zip(tok, sh)):
        k = short(n)
        a = by.setdefault(k, [0, 0.0])
        a[0] += 1
        a[1] += x
        print(f"| {i} | {k} | {gx} | {(s - t0) / 1000:.1f} | {x:.2f} | {d / 1000:.2f} |")
    print("\n| kernel | launches | end after the previous end, us (sum) |")
    print("|---|---:|---:|")
    for k, (c, x) in sorted(by.items(), key=lambda kv: -kv[1][1]):
        print(f"| {k} | {c} | {x:.1f} |")
    if layers:
        s0, p = layers
        whole = [t for t in toks if len(t) == len(tok)]
        n_layers = (len(tok) - 1 - s0) // p  # the last launch is the lm_head
        print(f"\nmedians over {len(whole)} tokens x {n_layers} layers (launches {s0} + {p} k ..)\n")
        print("| launch of the layer | kernel | grid x | end after the previous end, us | start to end, us "
              "| min / p90 / max of the first |")
        print("|---:|---|---:|---:|---:|---|")
        total = 0.0
        for j in range(p):
            xs, ds = [], []
            for t in whole:
                st = shares(t)
                for l in range(n_layers):
                    i = s0 + l * p + j
                    xs.append(st[i])
                    ds.append(t[i][1] / 1000)
            m = statistics.median(xs)
            total += m
            r = tok[s0 + j]
            q = sorted(xs)
            p90 = q[min(len(q) - 1, int(0.9 * len(q)))]
            print(f"| {j} | {short(r[2])} | {r[3]} | {m:.1f} | {statistics.median(ds):.1f} "
                  f"| {q[0]:.1f} / {p90:.1f} / {q[-1]:.1f} |")
        print(f"| one layer | | | {total:.1f} | | |")
        if matrix is not None and 0 <= matrix < p:
            print(f"\nlaunch {matrix} of the layer ({short(tok[s0 + matrix][2])}), end after the previous "
                  "end, us: a row a token, a column a layer\n")
            print("| token | " + " | ".join(str(l) for l in range(n_layers)) + " |")
            print("|---:|" + "---:|" * n_layers)
            for ti, t in enumerate(whole):
                st = shares(t)
                print(f"| {ti} | " + " | ".join(f"{st[s0 + l * p + matrix]:.1f}" for l in range(n_layers)) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
