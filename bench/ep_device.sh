#!/usr/bin/env bash
# ep_device.sh — issue 8's measurements in one device call on a machine of two GPUs
# (nvidia-h100-x2 or nvidia-h200-x2), from binaries built elsewhere (the device image has
# no -dev headers and no MPI).  Stage with
#   S=.device/ep; rm -rf $S; mkdir -p $S/lib $S/fixtures/models
#   (cd build && tar cJf ../$S/bins.tar.xz zmlx zmlx-cuda_decode zmlx-dist_allreduce test_cuda test_cuda_kernels test_cuda_attn)
#   cp -L /lib/x86_64-linux-gnu/{libjansson.so.4,libpcre2-8.so.0} $S/lib/
#   cp -r ../shared/fixtures/models/{glm47-tiny,glm47-tiny-v5,dsv3-tiny,dsv32-tiny} $S/fixtures/models/
# and run `bash bench/ep_device.sh` from the repository root with .device/ep carried.
# Every step is bounded by `timeout`, cut to what is left of ZMLX_EP_HARD seconds (default
# 540) and skipped when under 15 s are left.  NVLink multicast stays off (NCCL_NVLS_ENABLE=0).
#   A. in parallel: GPU 0 test_cuda (golden fixtures on CUDA, DeepSeek-V3.2 included),
#      GPU 1 test_cuda_kernels, then test_cuda_attn (every kernel, the indexer, sparse attention)
#   B. fidelity, `generate` logits of every step with --gpus 0 vs 0,1 compared byte for
#      byte: dsv32-tiny (exact, the indexer selecting from the 9th key), builtin
#      dsv32:layers=8 with index_topk 16 (4-bit, fast: sparse from position 16),
#      glm47-mini; two processes (ZMLX_DIST_* + NCCL_COMM_ID, what zmlx-mpi sets up)
#   C. the all-reduce alone (zmlx-dist_allreduce --gpus 0,1)
#   D. decode (zmlx-cuda_decode, preset, fast, bf16 cache): dsv32:layers=8 at context 16
#      and 4096 (sparse: 2048 of 4096) on 1 and 2 GPUs (with ZMLX_EP_OLD=DIR, A/B rounds at
#      4096 against DIR/zmlx-cuda_decode on GPU 0); kimi-k25:layers=8 (384 experts)
#      on 2 and 1 GPUs; glm47-flash (47 layers) on 1 and 2 GPUs
#   E. capsules + matrix entries (zmlx bench --gpus 0,1): dsv32:layers=8, kimi-k25:layers=8,
#      glm47-flash
# $OUT: log.txt, summary.txt, tests.log, ep.txt, decode.txt, matrix.jsonl, capsules.tar.
set -u
D=${ZMLX_EP_DIR:-.device/ep}
B=$D/bin
OUT=${OUT:-/tmp/zmlx-ep}
HARD=${ZMLX_EP_HARD:-540}
mkdir -p "$OUT/caps"
T=$(mktemp -d)
export ZMLX_SHARED="$PWD/$D" ZMLX_SRC="$PWD"
. bench/device_lib.sh
device_begin

stamp "0. machine"
nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv
nvidia-smi topo -m 2>/dev/null | head -n 4
ldd "$B/zmlx" | grep "not found" && note "ldd: missing libraries"
NG=$(nvidia-smi -L | wc -l)
CARD=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)
note "machine: $NG x $CARD, driver $(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -n 1)"

stamp "A. test_cuda on GPU 0 | test_cuda_kernels on GPU 1"
{ CUDA_VISIBLE_DEVICES=0 timeout -k 5 $(lim 170) "$B/test_cuda" >"$T/model.log" 2>&1; echo "test_cuda rc=$?" >>"$T/model.log"; } &
pa=$!
CUDA_VISIBLE_DEVICES=1 timeout -k 5 $(lim 110) "$B/test_cuda_kernels" >"$T/kernels.log" 2>&1
echo "test_cuda_kernels rc=$?" >>"$T/kernels.log"
CUDA_VISIBLE_DEVICES=1 timeout -k 5 $(lim 80) "$B/test_cuda_attn" >>"$T/kernels.log" 2>&1
echo "test_cuda_attn rc=$?" >>"$T/kernels.log"
wait $pa
cat "$T/model.log" "$T/kernels.log" >"$OUT/tests.log"
grep -E "^device|CHECK failed|dsv32|^golden|rc=" "$T/model.log" | head -40
grep -E "CHECK failed|idx_|sparse|rc=|passed" "$T/kernels.log" | head -30
note "test_cuda: $(grep -E '^[0-9]+ passed' "$T/model.log" | tail -n 1) $(grep 'rc=' "$T/model.log")"
note "test_cuda_kernels + test_cuda_attn: $(grep -E '^[0-9]+ passed' "$T/kernels.log" | tr '\n' ' ') $(grep 'rc=' "$T/kernels.log" | tr '\n' ' ')"

EP=$OUT/ep.txt
: >"$EP"
V32T=$D/fixtures/models/dsv32-tiny
V8=builtin:dsv32:layers=8
if [ "$NG" -ge 2 ] && time_left; then
    stamp "B. fidelity, --gpus 0 vs 0,1"
    gen t1 "$V32T" 0 40 --precision exact
    gen t2 "$V32T" 0,1 40 --precision exact && same "EP dsv32-tiny exact preset, 40 steps (topk 8), --gpus 0 vs 0,1" t1 t2
    GEN_TIMEOUT=150 gen v1 "$V8,index_topk=16" 0 48 && GEN_TIMEOUT=150 gen v2 "$V8,index_topk=16" 0,1 48 &&
        same "EP $V8,index_topk=16 (4-bit, fast), 48 steps, --gpus 0 vs 0,1" v1 v2
    gen m1 builtin:glm47-mini 0 48 --precision exact
    gen m2 builtin:glm47-mini 0,1 48 --precision exact && same "EP glm47-mini exact, --gpus 0 vs 0,1" m1 m2
    if time_left; then # two processes, one GPU each (ncclCommInitRank)
        for model in "$V32T" builtin:glm47-mini; do
            tag=$([ "$model" = "$V32T" ] && echo t || echo m)
            port=$([ $tag = t ] && echo 29517 || echo 29518) # one rendezvous per run, both ranks
            pids=()
            for r in 0 1; do
                ZMLX_DIST_WORLD=2 ZMLX_DIST_RANK=$r ZMLX_DIST_GPU=$r NCCL_COMM_ID=127.0.0.1:$port \
                    timeout -k 5 $(lim 60) "$B/zmlx" generate "$model" --backend cuda --prompt-ids "$PROMPT" \
                    --max-tokens $([ $tag = t ] && echo 40 || echo 48) --ignore-eos --precision exact --json \
                    --logits-out "$T/mp$tag$r.logits" >"$T/mp$tag$r.json" 2>"$T/mp$tag$r.err" &
                pids+=($!)
            done
            rcs=""
            for p in "${pids[@]}"; do wait "$p"; rcs="$rcs $?"; done
            { echo "two processes $model: exit codes$rcs"; tail -n 3 "$T/mp${tag}0.err" "$T/mp${tag}1.err"; } >>"$EP"
            same "EP $model two processes (ZMLX_DIST_*, NCCL_COMM_ID), rank 0 vs one GPU" ${tag}1 mp${tag}0
            same "EP $model two processes, rank 1 vs rank 0" mp${tag}0 mp${tag}1
        done
    fi
fi

stamp "C. all-reduce"
[ "$NG" -ge 2 ] && time_left && timeout -k 5 $(lim 60) "$B/zmlx-dist_allreduce" --gpus 0,1 | tee "$OUT/allreduce.txt"

DEC=$OUT/decode.txt
: >"$DEC"
decode() { # tag model gpus runs ctx
    timeout -k 5 "$(lim "${DEC_TIMEOUT:-150}")" "$B/zmlx-cuda_decode" "$2" --gpus "$3" --precision fast \
        --kv-dtype bf16 --patterns default --runs "$4" --ctx "$5" --tokens 64 >"$T/$1.dec" 2>"$T/$1.decerr"
    local rc=$?
    { echo "decode $2 --gpus $3: rc=$rc"; cat "$T/$1.dec"; tail -n 2 "$T/$1.decerr"; } >>"$DEC"
    note "decode $2 --gpus $3 ($B): rc=$rc $(grep -E '^\| default' "$T/$1.dec" | tr -s ' ' | tr '\n' ' ' | cut -c1-300)"
}
stamp "D. decode"
time_left && decode v8g1 $V8 0 3 16,4096
if [ -n "${ZMLX_EP_OLD:-}" ] && [ -x "$ZMLX_EP_OLD/zmlx-cuda_decode" ]; then # A/B: another build's binary, same GPU
    for round in 1 2; do
        time_left && B=$ZMLX_EP_OLD decode v8old$round $V8 0 3 4096
        time_left && decode v8new$round $V8 0 3 4096
    done
fi
[ "$NG" -ge 2 ] && time_left && decode v8g2 $V8 0,1 3 16,4096
K8=builtin:kimi-k25:layers=8
[ "$NG" -ge 2 ] && time_left && DEC_TIMEOUT=200 decode k8g2 $K8 0,1 3 16
time_left && DEC_TIMEOUT=200 decode k8g1 $K8 0 3 16
time_left && decode fg1 builtin:glm47-flash 0 3 16
[ "$NG" -ge 2 ] && time_left && decode fg2 builtin:glm47-flash 0,1 3 16
grep -E "^decode|^\||^model|loaded" "$DEC" | head -60

stamp "E. capsules"
capsule() { # model gpus name
    time_left || return
    timeout -k 5 $(lim 200) "$B/zmlx" bench "$1" --backend cuda --gpus "$2" --precision fast --kv-dtype bf16 \
        --variants control_swiglu_moe --runs 3 --max-tokens 64 --bw-seconds 0 --json-out "$OUT/caps/$3.json" \
        --ledger "$OUT/matrix.jsonl" \
        --notes "expert parallel, --gpus $2 of $NG x $CARD; NCCL all-reduce of the [K, d] slot buffer per MoE layer (NVLS off)" \
        2>&1 | tail -n 6
}
if [ "$NG" -ge 2 ]; then
    capsule $V8 0,1 dsv32-l8-q4-gpus0-1
    capsule $K8 0,1 kimi-k25-l8-q4-gpus0-1
    capsule builtin:glm47-flash 0,1 glm47-flash-q4-gpus0-1
fi
(cd "$OUT" && tar cf capsules.tar caps && rm -rf caps)

stamp "done"
printf '%s\n' "${summary[@]}" | tee "$OUT/summary.txt"
rm -rf "$T"
