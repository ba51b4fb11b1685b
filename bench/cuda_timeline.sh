#!/usr/bin/env bash
# cuda_timeline.sh — one device call: the decode graph's launches as the GPU runs them
# (Nsight Systems, --cuda-graph-trace=node), summarised by bench/cuda_timeline.py: how
# much later each launch of one token ends than the one before it (its share of the
# critical path; with PDL a launch starts before its predecessor ends), the sums by
# kernel, and the medians per launch of a layer (ZMLX_TL_LAYERS=S,P: the first layer
# launch S, P launches a layer; by default builtin:glm47-flash's, below).  The cold,
# serialised per-kernel times are bench/cuda_profile.sh's.  Stage .device/ab as
# bench/cuda_ab.sh says (ZMLX_AB_DIR to change), and where the machine's only nsys is the
# one bundled with Nsight Compute (its importer lacks libdw):
#   mkdir -p .device/ab/tl-lib; cp -L /usr/lib/x86_64-linux-gnu/libdw.so.1 /lib/x86_64-linux-gnu/libelf.so.1 .device/ab/tl-lib/
# ZMLX_TL_MODEL (default builtin:glm47-flash:layers=8), ZMLX_TL_CTX (default 16),
# ZMLX_TL_TOKENS (default 8), ZMLX_TL_MATRIX=J: launch J of the layer token by token and
# layer by layer (cuda_timeline.py --matrix).
# $OUT: trace.csv.gz, timeline.md.
set -u
D=${ZMLX_AB_DIR:-.device/ab}
OUT=${OUT:-/tmp/zmlx-timeline}
MODEL=${ZMLX_TL_MODEL:-builtin:glm47-flash:layers=8}
CTX=${ZMLX_TL_CTX:-16}
TOKENS=${ZMLX_TL_TOKENS:-8}
# builtin:glm47-flash's MoE layers with the preset on Hopper: 7 launches from launch 8 up
# to 768 entries (the attention with W_UV in one launch), 9 from launch 10 past them (the
# splits, the merge, W_UV)
if [ "$CTX" -le 768 ]; then LAYERS=${ZMLX_TL_LAYERS:-8,7}; else LAYERS=${ZMLX_TL_LAYERS:-10,9}; fi
mkdir -p "$OUT" "$D/bin"
[ -x "$D/bin/zmlx-cuda_decode" ] || tar xJf "$D/bins.tar.xz" -C "$D/bin"
export LD_LIBRARY_PATH="$PWD/$D/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
NSYS=$(command -v nsys || ls /usr/local/cuda*/bin/nsys /opt/nvidia/nsight-systems*/bin/nsys \
    /opt/nvidia/nsight-compute/*/host/target-linux-x64/nsys 2>/dev/null | head -n 1)
if [ -z "$NSYS" ]; then
    echo "nsys not found" | tee "$OUT/timeline.md"
    exit 1
fi
T=$(mktemp -d)
timeout 240 "$NSYS" profile --cuda-graph-trace=node --trace=cuda -o "$T/p" --force-overwrite true \
    "$D/bin/zmlx-cuda_decode" "$MODEL" --precision fast --kv-dtype bf16 --patterns default --ctx "$CTX" \
    --synthetic --tokens "$TOKENS" --runs 1 >"$T/run.log" 2>&1
echo "nsys rc=$?"
if [ ! -f "$T/p.nsys-rep" ] && [ -f "$T/p.qdstrm" ]; then # the nsys bundled with Nsight Compute
    QI=$(ls "$(dirname "$NSYS")"/../*/QdstrmImporter 2>/dev/null | head -n 1)
    export LD_LIBRARY_PATH="$PWD/$D/tl-lib:$(dirname "$QI"):$LD_LIBRARY_PATH"
    [ -n "$QI" ] && { timeout 120 "$QI" -i "$T/p.qdstrm" >"$T/import.log" 2>&1 ||
        timeout 120 "$QI" --input-file "$T/p.qdstrm" >>"$T/import.log" 2>&1; }
    echo "import rc=$? ($QI)"
fi
timeout 120 "$NSYS" stats --report cuda_gpu_trace --format csv --output "$T/trace" "$T/p.nsys-rep" >"$T/stats.log" 2>&1
echo "stats rc=$?"
CSV=$(ls "$T"/trace*.csv 2>/dev/null | head -n 1)
if [ -z "$CSV" ]; then
    tail -n 20 "$T/run.log" "$T/stats.log"
    exit 1
fi
gzip -c "$CSV" >"$OUT/trace.csv.gz"
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -n 1
  echo "$MODEL, context $CTX, preset, fast, bf16 cache"; echo
  python3 bench/cuda_timeline.py "$CSV" --layers "$LAYERS" ${ZMLX_TL_MATRIX:+--matrix "$ZMLX_TL_MATRIX"}; } >"$OUT/timeline.md"
tail -n 30 "$OUT/timeline.md"
rm -rf "$T"
