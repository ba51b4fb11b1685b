#!/usr/bin/env bash
# cuda_sass_early.sh BINARY [--all] — on a machine with cuobjdump (a lent GPU's toolkit): do the
# rows-early decode launches (k_mv_lean with NJ > 0: q_a + kv_a, q_b, o_proj, the router)
# still issue their rows' loads before griddepcontrol.wait?  ptxas may sink them below it
# (SASS: the wait is ACQBULK), which silently turns "rows before the wait" into rows after
# it: o_proj's instance had all 33 of its loads after the wait until a branch after them
# kept them in place (kernels_matvec.cu, cuda-log.md).  Prints, for each such instance of
# each architecture, its global loads before / after the wait; exits 1 when an instance
# has none before it, 2 when the binary holds none (or is missing), 77 when this machine
# has no cuobjdump + nvdisasm (ctest's skip).  --all: also every other kernel that waits
# (its loads before / after the wait, for reading; not checked).
# Without a GPU toolkit's: `pip download --no-deps nvidia-cuda-cuobjdump
# nvidia-cuda-nvdisasm`, unzip the wheels, put their nvidia/cu13/bin on PATH.
set -u
BIN=${1:?usage: cuda_sass_early.sh BINARY [--all]}
export ZCU_SASS_ALL=$([ "${2:-}" = "--all" ] && echo 1 || echo 0)
CO=$(command -v cuobjdump || ls /usr/local/cuda*/bin/cuobjdump 2>/dev/null | head -n 1)
DIS=$(command -v nvdisasm || ls "${NVDISASM_PATH:-/nonexistent}"/nvdisasm "$(dirname "${CO:-/x}")"/nvdisasm 2>/dev/null | head -n 1)
if [ -z "$CO" ] || [ -z "$DIS" ]; then
    echo "cuda_sass_early: SKIP: no cuobjdump and nvdisasm here (see this script's header)"
    exit 77
fi
export PATH="$(dirname "$DIS"):$PATH"
if [ ! -f "$BIN" ]; then
    echo "cuda_sass_early: no $BIN" >&2
    exit 2
fi
"$CO" -sass "$BIN" 2>/dev/null | python3 -c '
import os, re, sys
arch, fn, rows, cur = "?", None, [], None
others = []
for line in sys.stdin:
    m = re.search(r"arch = (sm_\w+)", line)
    if m:
        arch = m.group(1)
    m = re.search(r"Function : (\S+)", line)
    if m:
        # k_mv_lean<K, FAST, OPW, NORM, HEADS, NJ, ...>: the rows-early instances have NJ > 0
        t = re.match(r"_Z9k_mv_leanILi(\d+)ELb(\d)ELi(\d+)ELb(\d)ELb(\d)ELi(\d+)E", m.group(1))
        cur = None
        # [arch, name, most loads before a wait, loads after the last, a wait seen, loads
        # since the last wait]: a kernel with several paths has a wait on each (the MLA
        # epilogue block of k_matvec_t waits at its top), so the loads of each wait are
        # those since the one before it in the code
        if t and int(t.group(6)) > 0:
            cur = [arch, "k_mv_lean<%s>" % ",".join(t.groups()), 0, 0, False, 0]
            rows.append(cur)
        elif os.environ.get("ZCU_SASS_ALL") == "1":
            cur = [arch, m.group(1)[:90], 0, 0, False, 0]
            others.append(cur)
        continue
    if cur is None:
        continue
    m = re.search(r"/\*[0-9a-f]{4}\*/\s+(.*?);", line)
    if not m:
        continue
    ins = m.group(1)
    if "ACQBULK" in ins:
        cur[2] = max(cur[2], cur[5])
        cur[4], cur[5] = True, 0
    elif re.search(r"\bLDG\b|\bLDGSTS\b|\bUBLKCP\b|\bUTMALDG\b", ins):  # to registers, cp.async, TMA
        cur[5] += 1
for r in rows + others:  # the loads after the last wait (all of them where none)
    r[3] = r[5] if r[4] else 0
    r[2] = r[2] if r[4] else r[5]
rows = [r[:5] for r in rows]
others = [o[:5] for o in others]
bad = 0
print("| arch | instance <K,FAST,OPW,NORM,HEADS,NJ> | loads before the wait | after |")
print("|---|---|---:|---:|")
for a, name, pre, post, seen in rows:
    ok = not seen or pre > 0  # no ACQBULK: code for GPUs before Hopper, no PDL wait
    bad += not ok
    print("| %s | %s | %d | %d |%s" % (a, name, pre, post, " (no wait)" if not seen else "" if ok else " SUNK"))
waited = [o for o in others if o[4]]
if waited:
    print()
    print("| arch | other kernel that waits (mangled) | most loads before a wait | after the last |")
    print("|---|---|---:|---:|")
    for a, name, pre, post, seen in waited:
        print("| %s | %s | %d | %d |" % (a, name, pre, post))
if not rows:
    print("no rows-early instance found")
    sys.exit(2)
sys.exit(1 if bad else 0)
'
