#!/usr/bin/env python3
"""ncu_steps.py NCU_CSV — the last decode token of an `ncu --csv --page raw` run of
zmlx-cuda_decode (bench/cuda_profile.sh): its launches in order, from the last k_embed to
the end (name, grid, block, microseconds, DRAM bytes read), then the time per kernel name
and the token's sum.  ncu serialises the launches, so the sum is an upper bound of the
graph's time per token.  When the run also collected the warp-stall ratios
(smsp__average_warps_issue_stalled_REASON_per_issue_active.ratio: warps stalled for REASON
per issued instruction, ZMLX_PROF_STALLS=1), each launch also gets its cycles per issued
instruction and its four largest stall reasons."""
import csv
import sys
from collections import OrderedDict


STALL = "smsp__average_warps_issue_stalled_"
RATIO = "_per_issue_active.ratio"


def main(path):
    with open(path, newline="") as f:
        lines = [l for l in f if l.startswith('"')]  # ncu's own messages are not CSV rows
    rows = list(csv.DictReader(lines))
    if not rows:
        sys.exit(f"{path}: no kernel rows")
    units = rows[0]
    rows = [r for r in rows[1:] if r.get("Kernel Name")]

    def num(r, k):  # ncu writes "11,008"
        try:
            return float((r.get(k, "") or "0").replace(",", ""))
        except ValueError:
            return 0.0

    starts = [i for i, r in enumerate(rows) if r["Kernel Name"].startswith("void k_embed") or r["Kernel Name"].startswith("k_embed")]
    if not starts:
        sys.exit("no k_embed launch: not a decode run?")
    step = rows[starts[-1]:]
    tu = units.get("gpu__time_duration.sum", "")
    scale = {"ns": 1e-3, "nsecond": 1e-3, "us": 1.0, "usecond": 1.0, "ms": 1e3, "msecond": 1e3}.get(tu, 1.0)
    print(f"{'#':>3}  {'kernel':60} {'grid':>8} {'block':>6} {'us':>8} {'DRAM KB':>9}")
    stalls = [k for k in units if k.startswith(STALL) and k.endswith(RATIO) and not k.endswith("_not_issued" + RATIO)]
    per = OrderedDict()
    total = 0.0
    for i, r in enumerate(step):
        name = r["Kernel Name"].split("(")[0].replace("void ", "")[:60]
        us = num(r, "gpu__time_duration.sum") * scale
        kb = num(r, "dram__bytes_read.sum") / 1024
        total += us
        per.setdefault(name, [0, 0.0])
        per[name][0] += 1
        per[name][1] += us
        line = f"{i:>3}  {name:60} {r.get('launch__grid_size', ''):>8} {r.get('launch__block_size', ''):>6} {us:8.2f} {kb:9.1f}"
        if stalls:
            top = sorted(((num(r, k), k[len(STALL):-len(RATIO)]) for k in stalls), reverse=True)
            line += f"  cpi {sum(v for v, _ in top):5.1f}: " + " ".join(f"{n} {v:.1f}" for v, n in top[:4])
        print(line)
    print(f"\none token: {len(step)} launches, {total:.1f} us serialised")
    for name, (n, us) in sorted(per.items(), key=lambda kv: -kv[1][1]):
        print(f"  {name:60} x{n:<4} {us:9.1f} us  {100 * us / max(total, 1e-9):5.1f}%")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "ncu.csv")
