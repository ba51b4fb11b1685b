#!/usr/bin/env bash
# cuda_profile.sh — where one decode token's time goes, launch by launch: ncu times every
# kernel node of the decode graph (serialised, without the overlap programmatic dependent
# launch gives, so the sum exceeds the graph's time) for a few tokens of MODEL at context
# CTX, and tools/ncu_steps.py prints the last token's launches in order (name, grid, us,
# DRAM bytes) and the totals per kernel.  Stage as bench/cuda_ab.sh says (.device/ab) and
# run `bash bench/cuda_profile.sh` with it carried.  $OUT: ncu.csv, steps.txt.
# Env: ZMLX_PROF_MODEL (builtin:glm47-flash:layers=4), ZMLX_PROF_CTX (16), ZMLX_PROF_ARGS;
# ZMLX_PROF_STALLS=1 also collects the warp-stall ratios (more replay passes per kernel);
# ZMLX_PROF_NCU: more ncu arguments (e.g. "--cache-control none": ncu flushes the caches
# before each kernel by default).
set -u
D=${ZMLX_AB_DIR:-.device/ab}
B=$D/bin
OUT=${OUT:-/tmp/zmlx-prof}
MODEL=${ZMLX_PROF_MODEL:-builtin:glm47-flash:layers=4}
CTX=${ZMLX_PROF_CTX:-16}
mkdir -p "$OUT" "$B"
[ -f "$D/bins.tar.xz" ] && tar xJf "$D/bins.tar.xz" -C "$B"
export LD_LIBRARY_PATH="$PWD/$D/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
M=gpu__time_duration.sum,dram__bytes_read.sum,launch__grid_size,launch__block_size
[ "${ZMLX_PROF_STALLS:-0}" = 1 ] &&
    M="$M,regex:^smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio\$,smsp__inst_executed.sum"
timeout 300 ncu --graph-profiling node --csv --page raw --print-units base ${ZMLX_PROF_NCU:-} --metrics "$M" \
    "$B/zmlx-cuda_decode" "$MODEL" --precision fast --kv-dtype bf16 --patterns default --ctx "$CTX" \
    --synthetic --tokens 3 --runs 1 ${ZMLX_PROF_ARGS:-} >"$OUT/ncu.csv" 2>"$OUT/ncu.err"
echo "ncu rc=$?"
tail -n 3 "$OUT/ncu.err"
python3 tools/ncu_steps.py "$OUT/ncu.csv" | tee "$OUT/steps.txt"
