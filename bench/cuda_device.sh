#!/usr/bin/env bash
# cuda_device.sh — one run on a GPU machine of the CUDA backend's checks and numbers, from
# binaries built elsewhere (the device image has no -dev headers): stage them with
#   mkdir -p .device/cuda/{bin,lib,fixtures/models}
#   cp build/{zmlx,test_cuda,test_cuda_kernels,test_cuda_attn,zmlx-cuda_bw,zmlx-cuda_decode} .device/cuda/bin/
#   cp -L /lib/x86_64-linux-gnu/{libjansson.so.4,libpcre2-8.so.0} .device/cuda/lib/
#   cp -r ../shared/fixtures/models/{glm47-tiny,glm47-tiny-v5,dsv3-tiny,dsv32-tiny} .device/cuda/fixtures/models/
# then run this from the repository root with .device/cuda carried.  Steps (each bounded):
#   1. the GPU (nvidia-smi)
#   2. test_cuda_kernels + test_cuda_attn (every kernel vs the CPU reference, fused vs unfused bit for bit)
#      and test_cuda (golden fixtures, cpu vs cuda, patterns vs baseline, validate)
#   3. read bandwidth and the production matvec kernels (zmlx-cuda_bw)
#   4. decode / prefill, baseline vs preset (zmlx-cuda_decode), and `zmlx validate`
#   5. compute-sanitizer memcheck of the quick test runs, racecheck of the kernels
#   6. ncu per-kernel durations of a few decode steps
# Logs go to $OUT (or /tmp/zmlx-device); a summary is printed last.
# Env: ZMLX_DEV_DIR (.device/cuda), ZMLX_DEV_STEPS ("1 2 3 4 5"), ZMLX_DEV_MODEL
#      (builtin:glm47-flash:layers=8,bits=16), ZMLX_DEV_CTX (16,4096), ZMLX_DEV_RUNS (3),
#      ZMLX_DEV_TOKENS (64), ZMLX_DEV_PREC (exact), ZMLX_DEV_PREFILL (512),
#      ZMLX_DEV_NCU_MODEL (builtin:glm47-flash:layers=4,bits=16).
set -u
D=${ZMLX_DEV_DIR:-.device/cuda}
OUT=${OUT:-/tmp/zmlx-device}
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$PWD/$D/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export ZMLX_SHARED="$PWD/$D"
STEPS=${ZMLX_DEV_STEPS:-1 2 3 4 5}
MODEL=${ZMLX_DEV_MODEL:-builtin:glm47-flash:layers=8,bits=16}
CTX=${ZMLX_DEV_CTX:-16,4096}
RUNS=${ZMLX_DEV_RUNS:-3}
TOKENS=${ZMLX_DEV_TOKENS:-64}
PREC=${ZMLX_DEV_PREC:-exact}
PREFILL=${ZMLX_DEV_PREFILL:-512}
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
    stamp "test_cuda_kernels"
    timeout 240 "$D/bin/test_cuda_kernels" >"$OUT/test_cuda_kernels.log" 2>&1
    rc=$?
    grep -E "^device|CHECK failed|passed" "$OUT/test_cuda_kernels.log" | head -40
    summary+=("test_cuda_kernels: rc=$rc, $(tail -n 1 "$OUT/test_cuda_kernels.log")")
    stamp "test_cuda_attn"
    timeout 180 "$D/bin/test_cuda_attn" >"$OUT/test_cuda_attn.log" 2>&1
    rc=$?
    grep -E "^device|CHECK failed|passed" "$OUT/test_cuda_attn.log" | head -20
    summary+=("test_cuda_attn: rc=$rc, $(tail -n 1 "$OUT/test_cuda_attn.log")")
    stamp "test_cuda"
    timeout 300 "$D/bin/test_cuda" >"$OUT/test_cuda.log" 2>&1
    rc=$?
    grep -E "^(device|golden|builtin|validate|/)|bit-identical|CHECK failed|passed" "$OUT/test_cuda.log" | head -60
    summary+=("test_cuda: rc=$rc, $(tail -n 1 "$OUT/test_cuda.log")")
fi
BW=0
if has 3; then
    stamp "zmlx-cuda_bw"
    timeout 60 "$D/bin/zmlx-cuda_bw" >"$OUT/bw.txt" 2>&1
    rc=$?
    grep -v '^{' "$OUT/bw.txt"
    BW=$(tail -n 1 "$OUT/bw.txt" | python3 -c "import json,sys;print(json.load(sys.stdin)['read_GBps'])" 2>/dev/null || echo 0)
    summary+=("cuda_bw: rc=$rc, read ${BW} GB/s")
fi
if has 4; then
    stamp "zmlx-cuda_decode $MODEL ($PREC): none vs default"
    timeout 300 "$D/bin/zmlx-cuda_decode" "$MODEL" --precision "$PREC" --kv-dtype bf16 --runs "$RUNS" \
        --ctx "$CTX" --synthetic --tokens "$TOKENS" --patterns none --vs default --prefill "$PREFILL" \
        --bw "$BW" >"$OUT/decode.txt" 2>"$OUT/decode.err"
    rc=$?
    cat "$OUT/decode.txt"
    tail -n 3 "$OUT/decode.err"
    summary+=("cuda_decode: rc=$rc")
    stamp "zmlx validate --backend cuda"
    timeout 120 "$D/bin/zmlx" validate "$D/fixtures/models/glm47-tiny" --backend cuda --max-tokens 100 \
        --runs 2 >"$OUT/validate_tiny.txt" 2>&1
    rc1=$?
    timeout 200 "$D/bin/zmlx" validate "$MODEL" --backend cuda --max-tokens 64 --runs 2 \
        >"$OUT/validate_model.txt" 2>&1
    rc2=$?
    tail -n 6 "$OUT/validate_tiny.txt" "$OUT/validate_model.txt"
    summary+=("validate: glm47-tiny rc=$rc1, $MODEL rc=$rc2")
fi
if has 5; then
    stamp "compute-sanitizer memcheck + racecheck"
    ZMLX_TEST_CUDA_QUICK=1 timeout 200 compute-sanitizer --tool memcheck --error-exitcode 9 \
        "$D/bin/test_cuda_kernels" >"$OUT/memcheck_kernels.log" 2>&1
    rc1=$?
    ZMLX_TEST_CUDA_QUICK=1 timeout 200 compute-sanitizer --tool memcheck --error-exitcode 9 \
        "$D/bin/test_cuda" >"$OUT/memcheck_model.log" 2>&1
    rc2=$?
    ZMLX_TEST_CUDA_QUICK=1 timeout 200 compute-sanitizer --tool memcheck --error-exitcode 9 \
        "$D/bin/test_cuda_attn" >"$OUT/memcheck_attn.log" 2>&1
    rc4=$?
    ZMLX_TEST_CUDA_QUICK=1 timeout 240 compute-sanitizer --tool racecheck --error-exitcode 9 \
        "$D/bin/test_cuda_kernels" >"$OUT/racecheck.log" 2>&1
    rc3=$?
    ZMLX_TEST_CUDA_QUICK=1 timeout 240 compute-sanitizer --tool racecheck --error-exitcode 9 \
        "$D/bin/test_cuda_attn" >"$OUT/racecheck_attn.log" 2>&1
    rc5=$?
    grep -hE "ERROR SUMMARY|RACECHECK SUMMARY|Invalid|CHECK failed|passed" "$OUT"/memcheck_*.log "$OUT"/racecheck*.log | head -20
    summary+=("memcheck: kernels rc=$rc1, attention rc=$rc4, model rc=$rc2; racecheck rc=$rc3, attention rc=$rc5")
fi
if has 6; then
    NM=${ZMLX_DEV_NCU_MODEL:-builtin:glm47-flash:layers=4,bits=16}
    stamp "ncu per-kernel times of a short decode ($NM)"
    timeout 240 ncu --metrics gpu__time_duration.sum,dram__bytes_read.sum --print-summary per-kernel \
        --clock-control none "$D/bin/zmlx-cuda_decode" "$NM" --precision "$PREC" --patterns default \
        --runs 1 --ctx 16 --tokens 3 >"$OUT/ncu.txt" 2>&1
    rc=$?
    grep -E "^  [a-z_]|gpu__time_duration|dram__bytes_read" "$OUT/ncu.txt" | sed -E 's/ +/ /g' | cut -c1-160 | head -90
    summary+=("ncu: rc=$rc")
fi
stamp "done"
printf '%s\n' "${summary[@]}"
