#!/usr/bin/env bash
# cuda_glm_flash.sh — the GPU benchmark of builtin:glm47-flash (all 47 layers, the builtin
# default weights: 4-bit affine g64, random) in ONE device call, with the tests in the same
# call so the numbers come with a passing test run:
#   1. the GPU, and its measured read bandwidth + the production kernels' GB/s (zmlx-cuda_bw);
#      whether the rows-early launches still load their rows before the wait (SASS)
#   2. test_cuda_kernels, test_cuda_attn and test_cuda (every kernel, the patterns bit for bit, the golden
#      fixtures, validate on the fixtures)
#   3. decode at context 16, 4096 and 32768 (the long ones synthetic: the latent cache
#      filled with random rows, no prefill), prefill of 512 and 4096 tokens, baseline
#      (--patterns none) vs the preset, run by run (zmlx-cuda_decode)
#   4. `zmlx bench` (baseline vs preset: the capsule and a matrix entry, the card's read
#      bandwidth given) and `zmlx validate` on the model (the GLM preset, 200 tokens)
#   5. ncu per-kernel durations and DRAM bytes of a few decode steps (layers=2)
#   6. compute-sanitizer memcheck + racecheck of the quick test runs
#   7. (only when asked: ZMLX_BENCH_STEPS="7") ncu's warp-state, throughput and occupancy
#      sections of the decode kernels (layers=2, context 4096) -> ncu_stall.txt
# Stage the binaries as bench/cuda_device.sh says (.device/cuda/bin, lib, fixtures), or as
# .device/cuda/bins.tar.xz (unpacked here).  Results go to $OUT: decode.json, capsule.json,
# matrix.jsonl (one line to append to benchmarks/matrix.jsonl), logs; a summary is printed
# last.  Precision: fast (the default of bench/validate; on CUDA the kernels are the exact
# ones), KV cache bf16.
# Env: ZMLX_DEV_DIR (.device/cuda), ZMLX_BENCH_MODEL (builtin:glm47-flash), ZMLX_BENCH_RUNS (5),
#      ZMLX_BENCH_TOKENS (128), ZMLX_BENCH_STEPS ("1 2 3 4 5 6"), ZMLX_BENCH_NOTES (appended
#      to the capsule's notes: say which commit the binaries were built from).
set -u
D=${ZMLX_DEV_DIR:-.device/cuda}
OUT=${OUT:-/tmp/zmlx-bench}
mkdir -p "$OUT"
[ -f "$D/bins.tar.xz" ] && mkdir -p "$D/bin" && tar xJf "$D/bins.tar.xz" -C "$D/bin"
export LD_LIBRARY_PATH="$PWD/$D/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export ZMLX_SHARED="$PWD/$D"
MODEL=${ZMLX_BENCH_MODEL:-builtin:glm47-flash}
RUNS=${ZMLX_BENCH_RUNS:-5}
TOKENS=${ZMLX_BENCH_TOKENS:-128}
STEPS=${ZMLX_BENCH_STEPS:-1 2 3 4 5 6}
has() { case " $STEPS " in *" $1 "*) return 0 ;; esac; return 1; }
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 )) s] $*"; }
summary=()
BW=0
if has 1; then
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv | tee "$OUT/gpu.txt"
    stamp "zmlx-cuda_bw"
    timeout 60 "$D/bin/zmlx-cuda_bw" --gib 2 >"$OUT/bw.txt" 2>&1
    grep -E "^\|" "$OUT/bw.txt"
    BW=$(tail -n 1 "$OUT/bw.txt" | python3 -c "import json,sys;print(json.load(sys.stdin)['read_GBps'])" 2>/dev/null || echo 0)
    summary+=("read bandwidth ${BW} GB/s")
    # the rows-early launches' loads still before their PDL wait in this build's SASS
    bash tools/cuda_sass_early.sh "$D/bin/zmlx-cuda_decode" >"$OUT/sass_early.txt" 2>&1
    r=$?
    cat "$OUT/sass_early.txt"
    summary+=("rows-early loads before the wait: rc=$r (tools/cuda_sass_early.sh; 0 = every instance)")
fi
if has 2; then
    stamp "tests"
    timeout 240 "$D/bin/test_cuda_kernels" >"$OUT/test_cuda_kernels.log" 2>&1
    r1=$?
    timeout 180 "$D/bin/test_cuda_attn" >"$OUT/test_cuda_attn.log" 2>&1
    r3=$?
    timeout 300 "$D/bin/test_cuda" >"$OUT/test_cuda.log" 2>&1
    r2=$?
    grep -hE "CHECK failed|bit-identical|^validate|^golden" "$OUT"/test_cuda*.log | head -30
    summary+=("test_cuda_kernels rc=$r1 ($(tail -n 1 "$OUT/test_cuda_kernels.log")), test_cuda_attn rc=$r3 ($(tail -n 1 "$OUT/test_cuda_attn.log")), test_cuda rc=$r2 ($(tail -n 1 "$OUT/test_cuda.log"))")
fi
if has 3; then
    stamp "zmlx-cuda_decode $MODEL"
    timeout 900 "$D/bin/zmlx-cuda_decode" "$MODEL" --precision fast --kv-dtype bf16 --patterns none \
        --vs default --ctx 16,4096,32768 --synthetic --tokens "$TOKENS" --runs "$RUNS" \
        --prefill 512,4096 --bw "$BW" >"$OUT/decode.txt" 2>"$OUT/decode.err"
    r=$?
    grep -E "^\||^model" "$OUT/decode.txt"
    tail -n 1 "$OUT/decode.txt" >"$OUT/decode.json"
    tail -n 3 "$OUT/decode.err"
    summary+=("cuda_decode rc=$r")
fi
if has 4; then
    stamp "zmlx bench + validate"
    GPU=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -n 1)
    timeout 600 "$D/bin/zmlx" bench "$MODEL" --backend cuda --variants preset --runs "$RUNS" \
        --max-tokens "$TOKENS" --read-gbps "$BW" --json-out "$OUT/capsule.json" \
        --ledger "$OUT/matrix.jsonl" \
        --notes "GPU $GPU, read bandwidth ${BW} GB/s (zmlx-cuda_bw); decode graph with PDL; contexts 4k/32k and prefill in decode.json${ZMLX_BENCH_NOTES:+; $ZMLX_BENCH_NOTES}" \
        >"$OUT/bench.txt" 2>&1
    r1=$?
    tail -n 12 "$OUT/bench.txt"
    timeout 600 "$D/bin/zmlx" validate "$MODEL" --backend cuda --max-tokens 200 --runs 3 >"$OUT/validate.txt" 2>&1
    r2=$?
    tail -n 8 "$OUT/validate.txt"
    summary+=("bench rc=$r1, validate rc=$r2")
fi
if has 5; then
    stamp "ncu"
    timeout 300 ncu --metrics gpu__time_duration.sum,dram__bytes_read.sum --print-summary per-kernel \
        --clock-control none "$D/bin/zmlx-cuda_decode" "${MODEL}:layers=2" --precision fast --patterns default \
        --runs 1 --ctx 16 --tokens 3 >"$OUT/ncu.txt" 2>&1
    r=$?
    grep -E "^  [a-zA-Z_v]|gpu__time_duration|dram__bytes_read" "$OUT/ncu.txt" | sed -E 's/ +/ /g' | cut -c1-150 | head -120
    summary+=("ncu rc=$r")
fi
if has 7; then # why the decode kernels take the time they do (not in the default steps)
    stamp "ncu stall sections"
    timeout 300 ncu --section WarpStateStats --section SpeedOfLight --section Occupancy --section LaunchStats \
        -k regex:"k_matvec|k_combine|k_attn_absorbed|k_attn_merge|k_rmsnorm" --launch-skip 16 --launch-count 14 \
        --clock-control none "$D/bin/zmlx-cuda_decode" "${MODEL}:layers=2" --precision fast --patterns default \
        --runs 1 --ctx 4096 --synthetic --tokens 3 >"$OUT/ncu_stall.txt" 2>&1
    r=$?
    grep -E "^  [a-zA-Z_v].*\(|Duration|DRAM Throughput|Compute \(SM\)|Achieved Occupancy|Warp Cycles Per Issued" \
        "$OUT/ncu_stall.txt" | sed -E 's/ +/ /g' | cut -c1-120 | head -80
    summary+=("ncu stall sections rc=$r")
fi
if has 6; then # the same sanitizer runs as cuda_device.sh
    ZMLX_DEV_DIR="$D" ZMLX_DEV_STEPS=5 OUT="$OUT" bash "$(dirname "$0")/cuda_device.sh" | tail -n 3
    summary+=("sanitizers: see above (memcheck_*.log, racecheck.log)")
fi
stamp "done"
printf '%s\n' "${summary[@]}"
