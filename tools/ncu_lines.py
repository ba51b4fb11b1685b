#!/usr/bin/env python3
"""ncu_lines.py SRC.csv... — the heaviest CUDA source lines of kernel launches, from
`ncu -i REPORT --page source --csv --print-source cuda,sass` (bench/cuda_hotspots.sh):
per file, the warp-level instructions executed per line (summed over its SASS
instructions) and their share of the launch, the 25 heaviest lines, and each line's
share of the warp stall samples when the CSV has them.  Columns are found
by name, so the CSV's other columns may change between ncu versions."""
import csv
import sys
from collections import defaultdict


def col(header, *names):
    for n in names:
        for i, h in enumerate(header):
            if h.strip().lower() == n.lower():
                return i
    for n in names:
        for i, h in enumerate(header):
            if n.lower() in h.strip().lower():
                return i
    return None


def main(paths):
    for path in paths:
        with open(path, newline="", errors="replace") as f:
            rows = [r for r in csv.reader(f)]
        hi = next((i for i, r in enumerate(rows) if col(r, "Instructions Executed") is not None), None)
        if hi is None:
            print(f"== {path}: no 'Instructions Executed' column; first lines:")
            for r in rows[:6]:
                print("   ", ",".join(r)[:200])
            continue
        h = rows[hi]
        ie = col(h, "Instructions Executed")
        ws = col(h, "Warp Stall Sampling (All Samples)")
        src = col(h, "Source", "Address")
        loc = col(h, "Location", "File", "Line")
        per = defaultdict(float)
        stall = defaultdict(float)
        total = stotal = 0.0
        for r in rows[hi + 1:]:
            if len(r) <= ie:
                continue
            try:
                v = float(r[ie].replace(",", "") or 0)
            except ValueError:
                continue
            where = r[loc].strip() if loc is not None else ""
            text = r[src].strip()[:90] if src is not None else ""
            if not where and not text:
                continue  # a SASS row under its CUDA line: already in the line's count
            key = where + " | " + text
            per[key] += v
            total += v
            if ws is not None and len(r) > ws:
                try:
                    w = float(r[ws].replace(",", "") or 0)
                except ValueError:
                    w = 0.0
                stall[key] += w
                stotal += w
        print(f"== {path}: {total:.0f} warp instructions" + (f", {stotal:.0f} stall samples" if stotal else ""))
        for k, v in sorted(per.items(), key=lambda kv: -kv[1])[:25]:
            st = f" stalls {100 * stall[k] / stotal:5.1f}%" if stotal else ""
            print(f"  {v:10.0f} {100 * v / max(total, 1):5.1f}%{st}  {k}")


if __name__ == "__main__":
    main(sys.argv[1:])
