#!/usr/bin/env bash
# cuda_hotspots.sh — where a decode kernel's instructions go, line by line: ncu's source
# counters (instructions executed and warp stalls per SASS instruction, with the CUDA
# line each came from; the build carries -lineinfo) for a few launches of the kernels
# matching ZMLX_HOT_KERNEL (regex, default k_matvec) in the decode graph of MODEL, then
# tools/ncu_lines.py sums them per CUDA source line and prints the heaviest lines of each
# launch.  Stage as bench/cuda_ab.sh says (.device/ab) and run `bash bench/cuda_hotspots.sh`
# with it carried.  $OUT: rep.ncu-rep, src-N.csv, lines.txt.
# Env: ZMLX_HOT_MODEL (builtin:glm47-flash:layers=4), ZMLX_HOT_SKIP (launches of the
# kernel to skip, default 12: into the second token), ZMLX_HOT_COUNT (launches, 8),
# ZMLX_HOT_CTX (the synthetic context, default 16).
set -u
D=${ZMLX_AB_DIR:-.device/ab}
B=$D/bin
OUT=${OUT:-/tmp/zmlx-hot}
MODEL=${ZMLX_HOT_MODEL:-builtin:glm47-flash:layers=4}
mkdir -p "$OUT" "$B"
[ -f "$D/bins.tar.xz" ] && tar xJf "$D/bins.tar.xz" -C "$B"
export LD_LIBRARY_PATH="$PWD/$D/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
timeout 240 ncu -f -o "$OUT/rep" --graph-profiling node --kernel-name "regex:${ZMLX_HOT_KERNEL:-k_matvec}" \
    --launch-skip "${ZMLX_HOT_SKIP:-12}" --launch-count "${ZMLX_HOT_COUNT:-8}" --section SourceCounters \
    --section LaunchStats "$B/zmlx-cuda_decode" "$MODEL" --precision fast --kv-dtype bf16 --patterns default \
    --ctx "${ZMLX_HOT_CTX:-16}" --synthetic --tokens 3 --runs 1 >"$OUT/ncu.log" 2>&1
echo "ncu rc=$?"
tail -n 3 "$OUT/ncu.log"
n=${ZMLX_HOT_COUNT:-8}
for i in $(seq 0 $((n - 1))); do
    ncu -i "$OUT/rep.ncu-rep" --page source --csv --print-source cuda,sass --launch-skip "$i" --launch-count 1 \
        >"$OUT/src-$i.csv" 2>&1 || echo "source page $i: rc=$?"
done
python3 tools/ncu_lines.py "$OUT"/src-*.csv | tee "$OUT/lines.txt"
