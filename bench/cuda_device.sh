#!/usr/bin/env bash
# cuda_device.sh — one run on a GPU machine of the CUDA backend's checks and numbers, from
# binaries built elsewhere (the device image has no -dev headers): stage them with
#   mkdir -p .device/{bin,lib,fixtures/models}
#   cp build/{zmlx,test_cuda,zmlx-cuda_bw,zmlx-cuda_decode} .device/bin/
#   cp -L /lib/x86_64-linux-gnu/{libjansson.so.4,libpcre2-8.so.0} .device/lib/
#   cp -r ../shared/fixtures/models/{glm47-tiny,glm47-tiny-v5,dsv3-tiny,dsv32-tiny} .device/fixtures/models/
# then run this from the repository root with .device carried.  Steps (each bounded):
#   1. the GPU (nvidia-smi)      2. test_cuda (conformance + golden + cpu vs cuda)
#   3. read bandwidth and the production matvec kernels (zmlx-cuda_bw)
#   4. decode/prefill benchmark (zmlx-cuda_decode) and the CLI's `generate --json`
#   5. compute-sanitizer memcheck of a short test_cuda run
#   6. (asked for) ncu per-kernel durations of a short decode
# Logs go to $OUT (or /tmp/zmlx-device); a summary table is printed last.
# Env: ZMLX_DEV_STEPS (default "1 2 3 4 5"), ZMLX_DEV_CTX (decode contexts, "16,1024"),
#      ZMLX_DEV_RUNS (3), ZMLX_DEV_MODEL (builtin:glm47-flash:layers=8,bits=16),
#      ZMLX_DEV_KV2 (a second decode benchmark with this KV dtype, e.g. f32).
set -u
D=${ZMLX_DEV_DIR:-.device}
OUT=${OUT:-/tmp/zmlx-device}
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$PWD/$D/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export ZMLX_SHARED="$PWD/$D"
STEPS=${ZMLX_DEV_STEPS:-1 2 3 4 5}
CTX=${ZMLX_DEV_CTX:-16,1024}
RUNS=${ZMLX_DEV_RUNS:-3}
MODEL=${ZMLX_DEV_MODEL:-builtin:glm47-flash:layers=8,bits=16}
summary=()
has() { case " $STEPS " in *" $1 "*) return 0 ;; esac; return 1; }
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 )) s] $*"; }

if has 1; then
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv |
        tee "$OUT/gpu.txt"
    ldd "$D/bin/zmlx" | grep "not found" && summary+=("ldd: missing libraries")
fi
if has 2; then
    stamp "test_cuda"
    timeout 120 "$D/bin/test_cuda" >"$OUT/test_cuda.log" 2>&1
    rc=$?
    grep -E "^(device|golden|builtin|kernel)|CHECK failed|passed" "$OUT/test_cuda.log" | head -60
    summary+=("test_cuda: rc=$rc, $(tail -n 1 "$OUT/test_cuda.log")")
fi
BW=0
if has 3; then
    stamp "zmlx-cuda_bw"
    timeout 40 "$D/bin/zmlx-cuda_bw" >"$OUT/bw.txt" 2>&1
    rc=$?
    grep -v '^{' "$OUT/bw.txt"
    BW=$(tail -n 1 "$OUT/bw.txt" | python3 -c "import json,sys;print(json.load(sys.stdin)['read_GBps'])" 2>/dev/null || echo 0)
    summary+=("cuda_bw: rc=$rc, read ${BW} GB/s")
fi
if has 4; then
    stamp "zmlx-cuda_decode $MODEL"
    timeout 150 "$D/bin/zmlx-cuda_decode" "$MODEL" --kv-dtype bf16 --runs "$RUNS" --ctx "$CTX" \
        --tokens 64 --bw "$BW" >"$OUT/decode.txt" 2>"$OUT/decode.err"
    rc=$?
    cat "$OUT/decode.txt" "$OUT/decode.err"
    summary+=("cuda_decode bf16 kv: rc=$rc")
    if [ -n "${ZMLX_DEV_KV2:-}" ]; then
        stamp "zmlx-cuda_decode --kv-dtype $ZMLX_DEV_KV2"
        timeout 150 "$D/bin/zmlx-cuda_decode" "$MODEL" --kv-dtype "$ZMLX_DEV_KV2" --runs "$RUNS" \
            --ctx "$CTX" --tokens 64 --bw "$BW" >"$OUT/decode_kv2.txt" 2>&1
        rc=$?
        grep -E "^\|" "$OUT/decode_kv2.txt"
        summary+=("cuda_decode $ZMLX_DEV_KV2 kv: rc=$rc")
    fi
    stamp "zmlx generate"
    timeout 50 "$D/bin/zmlx" generate "$MODEL" --backend cuda --precision exact --kv-dtype bf16 \
        --max-tokens 64 --ignore-eos --json >"$OUT/generate.json" 2>"$OUT/generate.err"
    rc=$?
    python3 - "$OUT/generate.json" <<'PY' || true
import json, sys
g = json.load(open(sys.argv[1]))
print({k: g.get(k) for k in ("backend", "precision", "kv_dtype", "n_prompt", "n_generated",
                             "prefill_tok_s", "decode_tok_s", "bytes_per_token", "peak_mem_mb")})
PY
    tail -n 3 "$OUT/generate.err"
    summary+=("generate: rc=$rc")
fi
if has 6; then
    stamp "ncu per-kernel times of a short decode (layers=2)"
    timeout 150 ncu --metrics gpu__time_duration.sum --print-summary per-kernel --clock-control none \
        "$D/bin/zmlx-cuda_decode" builtin:glm47-flash:layers=2,bits=16 --runs 1 --ctx 16 --tokens 3 \
        >"$OUT/ncu.txt" 2>&1
    rc=$?
    grep -E "^  [a-z_]|gpu__time_duration" "$OUT/ncu.txt" | sed -E 's/ +/ /g' | cut -c1-150 | head -70
    grep -m3 -iE "error|==PROF==.*(warn|disconnected)" "$OUT/ncu.txt"
    summary+=("ncu: rc=$rc")
fi
if has 5; then
    stamp "compute-sanitizer memcheck"
    ZMLX_TEST_CUDA_QUICK=1 timeout 100 compute-sanitizer --tool memcheck --error-exitcode 9 \
        "$D/bin/test_cuda" >"$OUT/memcheck.log" 2>&1
    rc=$?
    grep -E "ERROR SUMMARY|Invalid|CHECK failed|passed" "$OUT/memcheck.log" | head -20
    summary+=("memcheck: rc=$rc, $(grep -m1 'ERROR SUMMARY' "$OUT/memcheck.log")")
fi
stamp "done"
printf '%s\n' "${summary[@]}"
