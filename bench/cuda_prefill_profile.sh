#!/usr/bin/env bash
# cuda_prefill_profile.sh — one device call: where a prefill's time goes, kernel by kernel
# (Nsight Systems' cuda_gpu_kern_sum of one prompt per length, summed over the template
# instances of each kernel; the GEMMs by grid from its cuda_gpu_trace).  Stage .device/ab as bench/cuda_ab.sh says (ZMLX_AB_DIR to
# change; the tl-lib of bench/cuda_timeline.sh where the only nsys is Nsight Compute's).
# ZMLX_PP_MODEL (default builtin:glm47-flash:layers=8: the first layer dense, seven MoE
# layers, whose kernels a 47-layer prefill repeats), ZMLX_PP_PROMPTS (default 512 4096).
# $OUT: prefill-N.md (the tables: kernels, then the GEMMs by grid), kern-N.csv and
# trace-N.csv.gz (nsys's rows) per prompt length.
set -u
D=${ZMLX_AB_DIR:-.device/ab}
OUT=${OUT:-/tmp/zmlx-prefill-profile}
MODEL=${ZMLX_PP_MODEL:-builtin:glm47-flash:layers=8}
PROMPTS=${ZMLX_PP_PROMPTS:-512 4096}
mkdir -p "$OUT" "$D/bin"
[ -x "$D/bin/zmlx-cuda_decode" ] || tar xJf "$D/bins.tar.xz" -C "$D/bin"
export LD_LIBRARY_PATH="$PWD/$D/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
NSYS=$(command -v nsys || ls /usr/local/cuda*/bin/nsys /opt/nvidia/nsight-systems*/bin/nsys \
    /opt/nvidia/nsight-compute/*/host/target-linux-x64/nsys 2>/dev/null | head -n 1)
[ -n "$NSYS" ] || { echo "nsys not found"; exit 1; }
T=$(mktemp -d)
for n in $PROMPTS; do
    timeout 240 "$NSYS" profile --trace=cuda -o "$T/p$n" --force-overwrite true \
        "$D/bin/zmlx-cuda_decode" "$MODEL" --precision fast --kv-dtype bf16 --patterns default \
        --ctx 16 --synthetic --tokens 4 --runs 1 --prefill "$n" >"$T/run$n.log" 2>&1
    echo "nsys $n rc=$?"
    if [ ! -f "$T/p$n.nsys-rep" ] && [ -f "$T/p$n.qdstrm" ]; then # the nsys bundled with Nsight Compute
        QI=$(ls "$(dirname "$NSYS")"/../*/QdstrmImporter 2>/dev/null | head -n 1)
        [ -n "$QI" ] && LD_LIBRARY_PATH="$PWD/$D/tl-lib:$(dirname "$QI"):$LD_LIBRARY_PATH" \
            timeout 120 "$QI" -i "$T/p$n.qdstrm" >"$T/import$n.log" 2>&1
    fi
    timeout 120 "$NSYS" stats --report cuda_gpu_kern_sum,cuda_gpu_trace --format csv --output "$T/k$n" \
        "$T/p$n.nsys-rep" >"$T/stats$n.log" 2>&1
    CSV=$(ls "$T"/k$n*kern_sum*.csv 2>/dev/null | head -n 1)
    TRACE=$(ls "$T"/k$n*gpu_trace*.csv 2>/dev/null | head -n 1)
    if [ -z "$CSV" ]; then
        tail -n 20 "$T/run$n.log" "$T/stats$n.log"
        continue
    fi
    cp "$CSV" "$OUT/kern-$n.csv"
    [ -n "$TRACE" ] && gzip -c "$TRACE" >"$OUT/trace-$n.csv.gz"
    { nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -n 1
      echo "$MODEL, prompt $n (plus a 16-position synthetic decode of 4 tokens), preset, fast, bf16 cache"
      grep -E '^\| default' "$T/run$n.log"; echo
      python3 - "$CSV" <<'PY'
import csv, re, sys
rows = list(csv.DictReader(open(sys.argv[1])))
tot = {}
for r in rows:
    name = re.split(r"[<(]", r["Name"].strip())[0].replace("void ", "").strip()
    t, c = tot.get(name, (0.0, 0))
    tot[name] = (t + float(r["Total Time (ns)"]), c + int(r["Instances"]))
s = sum(t for t, _ in tot.values())
print("| kernel | launches | ms | share |")
print("|---|---:|---:|---:|")
for name, (t, c) in sorted(tot.items(), key=lambda kv: -kv[1][0])[:15]:
    print(f"| {name} | {c} | {t / 1e6:.2f} | {100 * t / s:.1f}% |")
print(f"| all kernels | {sum(c for _, c in tot.values())} | {s / 1e6:.2f} | |")
PY
      [ -n "$TRACE" ] && { echo; python3 - "$TRACE" <<'PY'
import csv, re, sys
# the GEMMs by grid: grouped (gridDim.z = the experts) or dense, and their weight rows (64 a block in x)
tot = {}
for r in csv.DictReader(open(sys.argv[1])):
    name = r.get("Name", "")
    if "k_gemm_tc" not in name:
        continue
    gx, gy, gz = (int(r.get(k, "0") or 0) for k in ("GrdX", "GrdY", "GrdZ"))
    key = (gz > 1, gx, gy, gz)
    t, c = tot.get(key, (0.0, 0))
    tot[key] = (t + float(r["Duration (ns)"]), c + 1)
s = sum(t for t, _ in tot.values())
print("| k_gemm_tc grid (x, y, z) | launches | ms | share of the GEMMs |")
print("|---|---:|---:|---:|")
for (gr, gx, gy, gz), (t, c) in sorted(tot.items(), key=lambda kv: -kv[1][0])[:12]:
    print(f"| {'grouped ' if gr else ''}{gx} x {gy} x {gz} | {c} | {t / 1e6:.2f} | {100 * t / s:.1f}% |")
PY
      }
    } >"$OUT/prefill-$n.md"
    cat "$OUT/prefill-$n.md"
done
rm -rf "$T"
