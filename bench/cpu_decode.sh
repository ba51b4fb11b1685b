#!/usr/bin/env bash
# cpu_decode.sh — CPU decode benchmark (a benchmark, not a test): measured memory read
# bandwidth, then RUNS runs of `zmlx generate` on MODEL with a fixed prompt and a fixed
# number of decoded tokens; prints decode and prefill tok/s (median, min-max), bytes
# read per token, achieved GB/s and the fraction of the measured bandwidth.
#   MODEL=builtin:glm47-flash:layers=8 RUNS=5 TOKENS=32 THREADS=0 bench/cpu_decode.sh [extra zmlx args]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-builtin:glm47-flash:layers=8}
RUNS=${RUNS:-5}
TOKENS=${TOKENS:-32}
THREADS=${THREADS:-0}
BIN=${BIN:-build/zmlx}
OUT=${OUT:-}
[ -x "$BIN" ] || { echo "build first: make" >&2; exit 2; }

bw=$(build/zmlx-membw --threads "$THREADS" --seconds 3 --json)
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; $bw" >&2
prompt=$(seq -s, 10 10 320)  # 32 tokens
results=()
for i in $(seq 1 "$RUNS"); do
    r=$("$BIN" generate "$MODEL" --prompt-ids "$prompt" --max-tokens "$TOKENS" --ignore-eos \
        --threads "$THREADS" --json "$@")
    echo "run $i: $(echo "$r" | python3 -c 'import json,sys; j=json.load(sys.stdin); print("decode %.2f tok/s, prefill %.2f tok/s" % (j["decode_tok_s"], j["prefill_tok_s"]))')" >&2
    results+=("$r")
done
printf '%s\n' "${results[@]}" | python3 -c '
import json, statistics, sys
bw = json.loads(sys.argv[1]); model = sys.argv[2]; out = sys.argv[3]
runs = [json.loads(l) for l in sys.stdin if l.strip()]
dec = [r["decode_tok_s"] for r in runs]; pre = [r["prefill_tok_s"] for r in runs]
bpt = runs[0]["bytes_per_token"]; med = statistics.median(dec)
gbps = bpt * med * 1e-9
res = {"model": model, "backend": runs[0]["backend"], "threads": runs[0]["threads"],
       "kv_dtype": runs[0]["kv_dtype"], "precision": runs[0]["precision"], "runs": len(runs),
       "decode_tok_s": dec, "prefill_tok_s": pre, "median_decode_tok_s": med,
       "median_prefill_tok_s": statistics.median(pre), "bytes_per_token": bpt,
       "achieved_GBps": gbps, "measured_read_GBps": bw["read_GBps"],
       "roofline_fraction": gbps / bw["read_GBps"]}
print("| model | decode tok/s (median, min-max) | prefill tok/s | GB/token | achieved GB/s | measured GB/s | of roofline |")
print("|---|---|---|---|---|---|---|")
print("| %s | %.2f (%.2f-%.2f) | %.1f | %.3f | %.2f | %.2f | %.0f%% |" % (model, med, min(dec), max(dec),
      res["median_prefill_tok_s"], bpt * 1e-9, gbps, bw["read_GBps"], 100 * res["roofline_fraction"]))
if out:
    json.dump(res, open(out, "w"), indent=1)
' "$bw" "$MODEL" "$OUT"
