#!/usr/bin/env bash
# dist_device.sh — expert parallelism on a machine of two GPUs or more, from binaries built
# elsewhere (the device image has no -dev headers and no MPI).  Stage them with
#   mkdir -p .device/dist/{bin,lib}
#   cp build/{zmlx,zmlx-cuda_decode,zmlx-dist_allreduce} .device/dist/bin/
#   cp -L /lib/x86_64-linux-gnu/{libjansson.so.4,libpcre2-8.so.0} .device/dist/lib/
# and run it from the repository root with .device/dist carried.  NVLink multicast stays
# off (NCCL_NVLS_ENABLE=0).  Steps, each bounded, in priority order (a step is skipped
# once the time budget ZMLX_DIST_BUDGET, default 500 s, is spent):
#   1. the GPUs, their links, NCCL's library
#   2. fidelity: `generate` logits (every step, float32) with --gpus 0 and --gpus 0,1
#      compared byte for byte (cmp), on builtin:glm47-mini (exact, prefill chunk + decode
#      graph) and builtin:glm47-flash:layers=8,bits=16 (fast, bf16 cache); the same through
#      two processes (ZMLX_DIST_* and NCCL_COMM_ID, what zmlx-mpi sets up with MPI);
#      validate with --gpus 0,1
#   3. the all-reduce alone (zmlx-dist_allreduce): in-graph time per all-reduce
#   4. decode tok/s, 1 vs 2 GPUs (zmlx-cuda_decode): glm47-flash:layers=8 and all 47 layers
#      (bf16), kimi-k25:layers=3 (bf16, 384 experts: fits one GPU) with a logits cmp
#   5. kimi-k25:layers=4 (bf16, 100 GiB): refused on one GPU with the numbers, run on two
#   6. capsules + matrix entries (zmlx bench): glm47-flash:layers=8 on 1 and 2 GPUs,
#      kimi-k25:layers=4 on 2
# Output: $OUT/log.txt (everything), $OUT/summary.txt, $OUT/matrix.jsonl, $OUT/capsules.tar,
# $OUT/allreduce.txt, $OUT/mp{0,1}.err (the two-process run's stderr with NCCL_DEBUG=INFO).
set -u
D=${ZMLX_DIST_DIR:-.device/dist}
B=$D/bin
OUT=${OUT:-/tmp/zmlx-dist}
BUDGET=${ZMLX_DIST_BUDGET:-500}
mkdir -p "$OUT/caps"
T=$(mktemp -d)
HARD=$BUDGET
. bench/device_lib.sh # (gen, same and time_left are replaced below by this script's own)
exec > >(tee "$OUT/log.txt") 2>&1
t0=$(date +%s)
time_left() { [ $(($(date +%s) - t0)) -lt "$BUDGET" ]; } # this script's own budget rule

stamp "1. GPUs"
nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv
nvidia-smi topo -m
echo "libnccl: $(ldconfig -p | grep -o '/.*libnccl.so.2' | head -n 1) ${LD_LIBRARY_PATH}"
ldd "$B/zmlx" | grep "not found" && note "ldd: missing libraries"
NG=$(nvidia-smi -L | wc -l)
CARD=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)
note "machine: $NG x $CARD, $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB RAM"

# generate's logits for one GPU list; prints tokens and decode tok/s
gen() { # tag model gpus max_tokens extra...  (GEN_TIMEOUT seconds, default 200)
    local tag=$1 model=$2 gpus=$3 n=$4
    shift 4
    timeout -k 5 "${GEN_TIMEOUT:-200}" "$B/zmlx" generate "$model" --backend cuda --gpus "$gpus" --prompt-ids "$PROMPT" \
        --max-tokens "$n" --ignore-eos --json --logits-out "$T/$tag.logits" "$@" >"$T/$tag.json" 2>"$T/$tag.err"
    local rc=$?
    [ $rc -eq 0 ] || { echo "$tag: exit $rc: $(tail -n 3 "$T/$tag.err")"; return $rc; }
    python3 -c "import json,sys;j=json.load(open('$T/$tag.json'));print('$tag', 'decode', round(j['decode_tok_s'],1), 'tok/s, prefill', round(j['prefill_tok_s'],1), 'tok/s, tokens', j['tokens'][:12])"
}
same() { # what, tag_a, tag_b
    if cmp -s "$T/$2.logits" "$T/$3.logits" && [ -s "$T/$2.logits" ]; then
        note "$1: logits byte-identical ($(stat -c %s "$T/$2.logits") bytes, $2 vs $3)"
    else
        note "$1: DIFFERENT logits ($2 vs $3): $(cmp "$T/$2.logits" "$T/$3.logits" 2>&1 | head -c 200)"
    fi
}
PROMPT=$(seq -s, 11 3 80) # 24 ids: a prefill chunk, then the decode graph

stamp "2. fidelity"
export GEN_TIMEOUT=90
gen mini1 builtin:glm47-mini 0 48 --precision exact
if gen mini2 builtin:glm47-mini 0,1 48 --precision exact; then
    same "glm47-mini exact, 48 steps, 1 vs 2 GPUs" mini1 mini2
else
    note "glm47-mini on 2 GPUs failed: only the all-reduce benchmark follows"
    timeout -k 5 90 "$B/zmlx-dist_allreduce" --gpus 0,1 | tee "$OUT/allreduce.txt"
    printf '%s\n' "${summary[@]}" | tee "$OUT/summary.txt"
    exit 1
fi
gen mini21 builtin:glm47-mini 1,0 48 --precision exact && same "glm47-mini, --gpus 1,0 vs 0" mini1 mini21
# two processes, one GPU each (ncclCommInitRank): what zmlx-mpi sets up, with NCCL_COMM_ID
# in place of the MPI-broadcast id (the device has no MPI)
# (its first try, 2026-11-25, never returned: a bare `wait` also waits for the `tee` of
# this script's output, bash >= 5.1, so the pids are named now; NCCL_DEBUG=INFO and the
# logs in $OUT in case.  ZMLX_DIST_MP=0 skips it, ZMLX_DIST_MP=only stops after it.)
if [ "${ZMLX_DIST_MP:-1}" != 0 ]; then
pids=()
for r in 0 1; do
    ZMLX_DIST_WORLD=2 ZMLX_DIST_RANK=$r ZMLX_DIST_GPU=$r NCCL_COMM_ID=127.0.0.1:29517 NCCL_DEBUG=INFO \
        timeout -k 5 60 "$B/zmlx" generate \
        builtin:glm47-mini --backend cuda --prompt-ids "$PROMPT" --max-tokens 48 --ignore-eos \
        --precision exact --json --logits-out "$T/mp$r.logits" >"$T/mp$r.json" 2>"$OUT/mp$r.err" &
    pids+=($!)
done
wait "${pids[@]}"
tail -n 5 "$OUT/mp0.err" "$OUT/mp1.err"
fi
same "glm47-mini, two processes (ZMLX_DIST_*, NCCL_COMM_ID) rank 0 vs one GPU" mini1 mp0
same "glm47-mini, two processes, rank 1 vs rank 0" mp0 mp1
if [ "${ZMLX_DIST_MP:-1}" = only ]; then
    printf '%s\n' "${summary[@]}" | tee "$OUT/summary.txt"
    exit 0
fi
timeout 120 "$B/zmlx" validate builtin:glm47-mini --backend cuda --gpus 0,1 --max-tokens 32 --runs 2 2>&1 | tail -n 4
note "validate glm47-mini --gpus 0,1: exit ${PIPESTATUS[0]}"
export GEN_TIMEOUT=200
F8=builtin:glm47-flash:layers=8,bits=16
gen f81 $F8 0 64 && gen f82 $F8 0,1 64 && same "glm47-flash:layers=8 bf16, fast, 64 steps, 1 vs 2 GPUs" f81 f82

stamp "3. all-reduce"
timeout -k 5 90 "$B/zmlx-dist_allreduce" --gpus 0,1 | tee "$OUT/allreduce.txt"

decode() { # tag model gpus runs ctx
    timeout -k 5 240 "$B/zmlx-cuda_decode" "$2" --gpus "$3" --kv-dtype bf16 --runs "$4" --ctx "$5" \
        --tokens 64 >"$T/$1.dec" 2>"$T/$1.decerr"
    local rc=$?
    cat "$T/$1.dec"
    tail -n 2 "$T/$1.decerr"
    note "decode $2 --gpus $3: rc=$rc $(grep -E '^\| *[0-9]' "$T/$1.dec" | tr -s ' ' | tr '\n' ' ')"
}
stamp "4. decode tok/s"
time_left && decode f8g1 $F8 0 5 16,1024
time_left && decode f8g2 $F8 0,1 5 16,1024
K3=builtin:kimi-k25:layers=3,bits=16
[ "${ZMLX_DIST_K3_FIDELITY:-1}" = 1 ] && time_left && gen k31 $K3 0 16 && gen k32 $K3 0,1 16 &&
    same "kimi-k25:layers=3 bf16 (384 experts), 16 steps, 1 vs 2 GPUs" k31 k32
time_left && decode k3g1 $K3 0 3 16
time_left && decode k3g2 $K3 0,1 3 16
F=builtin:glm47-flash:bits=16
time_left && decode fg1 $F 0 3 16
time_left && decode fg2 $F 0,1 3 16

stamp "5. kimi-k25:layers=4 (does not fit one GPU)"
K4=builtin:kimi-k25:layers=4,bits=16
if time_left; then
    timeout 200 "$B/zmlx" generate $K4 --backend cuda --gpus 0 --prompt-ids 1,2,3 --max-tokens 2 >/dev/null 2>"$T/k4fit.err"
    note "kimi-k25:layers=4 on one GPU: exit $? $(cat "$T/k4fit.err")"
fi
time_left && decode k4g2 $K4 0,1 3 16

stamp "6. capsules"
capsule() { # model gpus name
    time_left || return
    timeout 200 "$B/zmlx" bench "$1" --backend cuda --gpus "$2" --variants control_swiglu_moe --runs 3 \
        --max-tokens 64 --bw-seconds 0 --json-out "$OUT/caps/$3.json" --ledger "$OUT/matrix.jsonl" \
        --notes "expert parallel, --gpus $2 of $NG x $CARD; NCCL all-reduce of the [K, d] slot buffer per MoE layer (NVLS off)" \
        2>&1 | tail -n 6
}
capsule $F8 0 glm47-flash-l8-bf16-gpus0
capsule $F8 0,1 glm47-flash-l8-bf16-gpus0-1
capsule $K4 0,1 kimi-k25-l4-bf16-gpus0-1
(cd "$OUT" && tar cf capsules.tar caps && rm -rf caps)

stamp "done"
printf '%s\n' "${summary[@]}" | tee "$OUT/summary.txt"
rm -rf "$T"
