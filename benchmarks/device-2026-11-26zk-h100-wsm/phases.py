#!/usr/bin/env python3
"""Phases of the probed k_matvec launches (wsm-probe.patch: ZMLX_CUDA_PROBE=FILE).
Each line: slot block t_start t_wait_returned t_staged t_end smid [cycles]; slot 0 o_proj,
1 W_UV, 2 q_b (the last layer of the last token).  Prints the medians per slot, in us."""
import statistics as st, sys
for fn in sys.argv[1:]:
    rows = [list(map(int, l.split())) for l in open(fn)]
    by = {}
    for r in rows:
        by.setdefault(r[0], []).append(r)
    for s, b in sorted(by.items()):
        ph = [st.median((x[j] - x[i]) / 1000 for x in b) for i, j in ((2, 3), (3, 4), (4, 5))]
        print("%s %-5s blocks %3d  before the wait %.2f  staging %.2f  products %.2f" %
              (fn, ["o", "W_UV", "q_b"][s], len(b), *ph))
