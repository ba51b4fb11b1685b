#!/usr/bin/env bash
# cpu_quant_decode.sh — batch-1 CPU decode of a quantized model (a benchmark, not a test):
# zmlx's decode tok/s and achieved GB/s (bytes read per token x tok/s) against this
# machine's measured read bandwidth (zmlx-membw, before and after), and mlx-lm on the CPU
# on the same model as an MLX checkpoint, the two engines interleaved run by run
# (Z M Z M ...), each after one warm-up run; prints a table last and the ratio zmlx/mlx-lm.
#
#   MODEL=builtin:glm47-flash:layers=8 RUNS=5 TOKENS=32 THREADS=0 bench/cpu_quant_decode.sh
#
#   MODEL     zmlx model (default builtin:glm47-flash:layers=8: MLX affine 4-bit g64)
#   MLX_DIR   the same model as an MLX checkpoint for mlx-lm; unset: `zmlx convert MODEL`
#             writes it once into build/bench-models/ (when this zmlx has `convert`)
#   PYTHON    a Python with mlx and mlx-lm (default /tmp/mlxenv/bin/python); mlx-lm is
#             skipped, with a message, when it is missing
#   MLX_DTYPE float32 (default: mlx's fastest CPU path, see bench/mlx_lm_decode.py) or model
#   RUNS, TOKENS, THREADS (zmlx --threads; 0 = all cores), WARMUP (1), BIN, OUT (a JSON file)
#   extra arguments go to `zmlx generate` (e.g. --precision exact)
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-builtin:glm47-flash:layers=8}
RUNS=${RUNS:-5}
TOKENS=${TOKENS:-32}
THREADS=${THREADS:-0}
WARMUP=${WARMUP:-1}
BIN=${BIN:-build/zmlx}
PYTHON=${PYTHON:-/tmp/mlxenv/bin/python}
MLX_DTYPE=${MLX_DTYPE:-float32}
OUT=${OUT:-}
[ -x "$BIN" ] || { echo "build first: make" >&2; exit 2; }
prompt=$(seq -s, 10 10 320) # 32 tokens

# mlx-lm: a Python that has it, and the model as an MLX checkpoint
mlx=1
if ! "$PYTHON" -c "import mlx.core, mlx_lm" 2>/dev/null; then
    echo "mlx-lm: skipped ($PYTHON has no mlx / mlx_lm; set PYTHON=...)" >&2
    mlx=0
fi
if [ $mlx = 1 ] && [ -z "${MLX_DIR:-}" ]; then
    if "$BIN" convert --help >/dev/null 2>&1; then
        MLX_DIR="build/bench-models/$(echo "$MODEL" | tr ':,=/' '____')-q4g64"
        if [ ! -f "$MLX_DIR/config.json" ]; then
            echo "converting $MODEL -> $MLX_DIR" >&2
            mkdir -p "$(dirname "$MLX_DIR")"
            "$BIN" convert "$MODEL" "$MLX_DIR" --q-bits 4 --q-group-size 64 >&2
        fi
    else
        echo "mlx-lm: skipped (no MLX_DIR given and this zmlx has no convert command)" >&2
        mlx=0
    fi
fi

bw0=$(build/zmlx-membw --threads "$THREADS" --seconds 3 --json)
info=$("$BIN" info "$MODEL" --json --threads "$THREADS")
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; $bw0" >&2
echo "model: $MODEL, $(echo "$info" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["weights"], "%.3f GB/token," % (j["bytes_per_token"] * 1e-9), "cpu", j["cpu_isa"])')" >&2

zrun() {
    "$BIN" generate "$MODEL" --prompt-ids "$prompt" --max-tokens "$TOKENS" --ignore-eos \
        --threads "$THREADS" --json "$@"
}
mrun() {
    "$PYTHON" bench/mlx_lm_decode.py "$MLX_DIR" --prompt-ids "$prompt" --max-tokens "$TOKENS" \
        --dtype "$MLX_DTYPE"
}
for _ in $(seq 1 "$WARMUP"); do
    zrun "$@" >/dev/null
    [ $mlx = 1 ] && mrun >/dev/null
done
zres=() mres=()
for i in $(seq 1 "$RUNS"); do
    z=$(zrun "$@")
    zres+=("$z")
    line="run $i: zmlx $(echo "$z" | python3 -c 'import json,sys; print("%.2f" % json.load(sys.stdin)["decode_tok_s"])') tok/s"
    if [ $mlx = 1 ]; then
        m=$(mrun | tail -n 1)
        mres+=("$m")
        line="$line, mlx-lm $(echo "$m" | python3 -c 'import json,sys; print("%.2f" % json.load(sys.stdin)["decode_tok_s"])') tok/s"
    fi
    echo "$line" >&2
done
bw1=$(build/zmlx-membw --threads "$THREADS" --seconds 3 --json)

{
    printf '%s\n' "${zres[@]}"
    echo "--"
    [ ${#mres[@]} -gt 0 ] && printf '%s\n' "${mres[@]}"
    true
} | python3 -c '
import json, statistics, sys
bw0, bw1, info, model, out = (json.loads(sys.argv[1]), json.loads(sys.argv[2]),
                              json.loads(sys.argv[3]), sys.argv[4], sys.argv[5])
text = sys.stdin.read().split("--\n")
z = [json.loads(l) for l in text[0].splitlines() if l.strip()]
m = [json.loads(l) for l in text[1].splitlines() if l.strip()] if len(text) > 1 else []
bpt = info["bytes_per_token"]
bw = max(bw0["read_GBps"], bw1["read_GBps"])
def row(name, runs, note):
    d = [r["decode_tok_s"] for r in runs]
    med = statistics.median(d)
    gbps = bpt * med * 1e-9
    print("| %s | %.2f (%.2f-%.2f) | %.3f | %.2f | %.2f | %.0f%% | %s |" % (
        name, med, min(d), max(d), bpt * 1e-9, gbps, bw, 100 * gbps / bw, note))
    return med, gbps
res = {"model": model, "weights": info["weights"], "bytes_per_token": bpt,
       "measured_read_GBps": [bw0["read_GBps"], bw1["read_GBps"]], "runs": len(z)}
print("| engine | decode tok/s (median, min-max) | GB/token | achieved GB/s | measured read GB/s | of measured | settings |")
print("|---|---|---|---|---|---|---|")
zm, zg = row("zmlx", z, "%s, %s precision, kv %s, %d threads, %s" % (
    z[0]["backend"], z[0]["precision"], z[0]["kv_dtype"], z[0]["threads"], z[0].get("cpu_isa", "?")))
res.update(zmlx_decode_tok_s=[r["decode_tok_s"] for r in z], zmlx_median=zm, zmlx_GBps=zg,
           zmlx_fraction=zg / bw, zmlx_settings=z[0])
if m:
    mm, mg = row("mlx-lm", m, "mlx %s, mlx-lm %s, CPU, %s" % (m[0]["mlx"], m[0]["mlx_lm"], m[0]["dtype"]))
    pairs = [a["decode_tok_s"] / b["decode_tok_s"] for a, b in zip(z, m)]
    print()
    print("zmlx / mlx-lm decode: %.2fx (ratio of medians; per interleaved pair: median %.2fx, %.2f-%.2f)" % (
        zm / mm, statistics.median(pairs), min(pairs), max(pairs)))
    res.update(mlx_decode_tok_s=[r["decode_tok_s"] for r in m], mlx_median=mm, mlx_GBps=mg,
               ratio=zm / mm, pair_ratios=pairs)
if out:
    json.dump(res, open(out, "w"), indent=1)
' "$bw0" "$bw1" "$info" "$MODEL" "$OUT"
