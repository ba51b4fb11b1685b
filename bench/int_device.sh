#!/usr/bin/env bash
# int_device.sh — one device call on a machine of two GPUs (2 x H100) that checks the merge of
# the quantized CUDA backend (branch cuda) with expert parallelism (branch dist), from
# binaries built elsewhere (the device image has no -dev headers and no MPI).  Stage with
#   S=/work/main/.device/int; rm -rf $S; mkdir -p $S/lib $S/fixtures/models
#   (cd build && tar cJf $S/bins.tar.xz zmlx zmlx-cuda_decode test_cuda test_cuda_kernels test_cuda_attn \
#        test_kernels test_quant test_fp8)
#   cp -L /lib/x86_64-linux-gnu/{libjansson.so.4,libpcre2-8.so.0} $S/lib/
#   cp -r ../shared/fixtures/models/{glm47-tiny,glm47-tiny-v5,dsv3-tiny,dsv32-tiny} $S/fixtures/models/
#   cp bench/int_device.sh $S/
# and run `bash .device/int/int_device.sh` from the repository root with .device/int
# carried (kind nvidia-h100-x2).  Every step is bounded by `timeout`, cut to what is left
# of ZMLX_INT_HARD seconds (default 450; phase A: ZMLX_INT_HARD_A, 230) and skipped when
# under 15 s are left, so the call ends within 8 minutes.  NVLink multicast stays off (NCCL_NVLS_ENABLE=0).  In priority order:
#   A. in parallel: GPU 0 test_cuda (golden fixtures on CUDA, cpu vs cuda, patterns bit for
#      bit, validate) then `zmlx validate --backend cuda` on glm47-tiny and
#      builtin:glm47-flash (4-bit, 32 tokens); GPU 1 test_cuda_kernels + test_cuda_attn (every kernel, the
#      expert slices) then the 47-layer 4-bit glm47-flash benchmark (zmlx-cuda_decode:
#      decode at context 16 / 4k / 32k synthetic, prefill 512 / 4k, baseline vs preset);
#      the CPU kernel tests (test_kernels, test_quant, test_fp8) at every x86 level
#      ZMLX_CPU_ISA names (exit 77: the CPU lacks it)
#   B. expert parallelism: `generate` logits (every step) with --gpus 0 vs 0,1 compared
#      byte for byte: glm47-mini exact (preset and --patterns none, also --gpus 1,0),
#      glm47-flash:layers=8 (4-bit, fast), two processes (ZMLX_DIST_* + NCCL_COMM_ID);
#      validate --gpus 0,1
#   C. decode (zmlx-cuda_decode, context 16): glm47-flash (47 layers, 4-bit) on 2 and 1
#      GPUs, kimi-k25:layers=8 (4-bit, 384 experts) on 2 GPUs
#   D. compute-sanitizer memcheck: the quick kernel test (GPU 1) and a one-GPU generate
#      (GPU 0) side by side, then a 2-GPU generate
#   E. kimi-k25:layers=8 on one GPU (when it fits)
# $OUT (flat, 8 files): log.txt (everything), summary.txt, kernels.log, model.log,
# bench47.txt (tables + the JSON line), ep.txt, sanitizer.log, cpu.log.
set -u
D=${ZMLX_INT_DIR:-.device/int}
B=$D/bin
OUT=${OUT:-/tmp/zmlx-int}
HARD_ALL=${ZMLX_INT_HARD:-450} HARD_A=${ZMLX_INT_HARD_A:-230}
HARD=$HARD_ALL
T=$(mktemp -d)
export ZMLX_SHARED="$PWD/$D"
. bench/device_lib.sh
device_begin
last() { tail -n 1 "$1" 2>/dev/null | cut -c1-160; }

stamp "0. machine"
nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv
nvidia-smi topo -m 2>/dev/null | head -n 4
echo "libnccl: $(ldconfig -p | grep -o '/.*libnccl.so.2' | head -n 1) LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo), $(nproc) cores"
echo "flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx|fma|f16c|amx)' | tr '\n' ' ')"
ldd "$B/zmlx" | grep "not found" && note "ldd: missing libraries"
NG=$(nvidia-smi -L | wc -l)
note "machine: $NG x $(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)"

# ---------------------------------------------------------------- A (parallel)
stamp "A. tests on GPU 0 | kernels, 47-layer benchmark on GPU 1 | CPU ISA levels"
gpu0() {
    CUDA_VISIBLE_DEVICES=0 timeout -k 5 $(lim 150) "$B/test_cuda" >"$OUT/model.log" 2>&1
    echo "test_cuda rc=$?" >>"$OUT/model.log"
    CUDA_VISIBLE_DEVICES=0 timeout -k 5 $(lim 40) "$B/zmlx" validate "$D/fixtures/models/glm47-tiny" \
        --backend cuda --max-tokens 100 --runs 2 >>"$OUT/model.log" 2>&1
    echo "validate glm47-tiny rc=$?" >>"$OUT/model.log"
    CUDA_VISIBLE_DEVICES=0 timeout -k 5 $(lim 90) "$B/zmlx" validate builtin:glm47-flash --backend cuda \
        --max-tokens 32 --runs 1 >>"$OUT/model.log" 2>&1
    echo "validate builtin:glm47-flash rc=$?" >>"$OUT/model.log"
}
gpu1() {
    CUDA_VISIBLE_DEVICES=1 timeout -k 5 $(lim 70) "$B/test_cuda_kernels" >"$OUT/kernels.log" 2>&1
    echo "test_cuda_kernels rc=$?" >>"$OUT/kernels.log"
    CUDA_VISIBLE_DEVICES=1 timeout -k 5 $(lim 50) "$B/test_cuda_attn" >>"$OUT/kernels.log" 2>&1
    echo "test_cuda_attn rc=$?" >>"$OUT/kernels.log"
    CUDA_VISIBLE_DEVICES=1 timeout -k 5 $(lim 150) "$B/zmlx-cuda_decode" builtin:glm47-flash --precision fast \
        --kv-dtype bf16 --patterns none --vs default --ctx 16,4096,32768 --synthetic --tokens 32 \
        --runs 2 --prefill 512,4096 >"$OUT/bench47.txt" 2>"$T/bench47.err"
    echo "cuda_decode rc=$? $(tail -n 2 "$T/bench47.err" | tr '\n' ' ')" >>"$OUT/bench47.txt"
}
cpu() {
    for isa in scalar avx2 avx512 avx512vnni; do
        for t in test_kernels test_quant test_fp8; do
            ZMLX_CPU_ISA=$isa CUDA_VISIBLE_DEVICES= timeout -k 5 $(lim 60) nice "$B/$t" >"$T/cpu.out" 2>&1
            rc=$?
            echo "$isa $t rc=$rc $(last "$T/cpu.out")"
            [ $rc -ne 0 ] && [ $rc -ne 77 ] && grep -E "CHECK failed|FAIL" "$T/cpu.out" | head -5
        done
    done >"$OUT/cpu.log" 2>&1
}
HARD=$HARD_A # phase A ends by then, whatever its steps do
gpu0 & p0=$!
gpu1 & p1=$!
cpu & p2=$!
wait $p0 $p1 $p2
HARD=$HARD_ALL
grep -E "^device|CHECK failed|bit-identical|^golden|rc=|PASS|FAIL" "$OUT/model.log" | head -40
note "test_cuda: $(grep -E '^[0-9]+ passed' "$OUT/model.log" | tail -n 1) $(grep 'test_cuda rc=' "$OUT/model.log")"
note "validate (cuda): $(grep 'validate .* rc=' "$OUT/model.log" | tr '\n' ' ')"
grep -E "^device|CHECK failed|passed|rc=" "$OUT/kernels.log" | head -30
note "test_cuda_kernels: $(grep -E '^[0-9]+ passed' "$OUT/kernels.log" | tail -n 1) $(grep 'rc=' "$OUT/kernels.log")"
grep -E "^\||^model|rc=" "$OUT/bench47.txt"
note "bench47 (1 GPU, 4-bit glm47-flash): $(grep 'rc=' "$OUT/bench47.txt" | cut -c1-120)"
cat "$OUT/cpu.log"
note "cpu ISA tests: $(grep -c 'rc=0 ' "$OUT/cpu.log") ok, $(grep -c 'rc=77 ' "$OUT/cpu.log") skipped (CPU lacks the level), $(grep -vcE 'rc=(0|77) ' "$OUT/cpu.log") other lines"

# ---------------------------------------------------------------- B (both GPUs)
EP=$OUT/ep.txt
: >"$EP"
if [ "$NG" -lt 2 ]; then
    note "only $NG GPU: expert parallelism not run"
elif time_left; then
    stamp "B. expert parallelism: fidelity"
    gen m1 builtin:glm47-mini 0 48 --precision exact
    gen m2 builtin:glm47-mini 0,1 48 --precision exact && same "EP glm47-mini exact preset, 48 steps, --gpus 0 vs 0,1" m1 m2
    gen m3 builtin:glm47-mini 1,0 48 --precision exact && same "EP glm47-mini --gpus 1,0 vs 0" m1 m3
    gen n1 builtin:glm47-mini 0 48 --precision exact --patterns none
    gen n2 builtin:glm47-mini 0,1 48 --precision exact --patterns none &&
        same "EP glm47-mini exact --patterns none, --gpus 0 vs 0,1" n1 n2
    same "glm47-mini preset vs --patterns none (1 GPU)" m1 n1
    F8=builtin:glm47-flash:layers=8
    GEN_TIMEOUT=150 gen f1 $F8 0 64 && GEN_TIMEOUT=150 gen f2 $F8 0,1 64 &&
        same "EP $F8 (4-bit) fast, 64 steps, --gpus 0 vs 0,1" f1 f2
    if time_left; then # two processes, one GPU each (ncclCommInitRank): what zmlx-mpi sets up
        pids=()
        for r in 0 1; do
            ZMLX_DIST_WORLD=2 ZMLX_DIST_RANK=$r ZMLX_DIST_GPU=$r NCCL_COMM_ID=127.0.0.1:29517 \
                timeout -k 5 $(lim 60) "$B/zmlx" generate builtin:glm47-mini --backend cuda --prompt-ids "$PROMPT" \
                --max-tokens 48 --ignore-eos --precision exact --json --logits-out "$T/mp$r.logits" \
                >"$T/mp$r.json" 2>"$T/mp$r.err" &
            pids+=($!)
        done
        wait "${pids[@]}"
        { echo "two processes:"; tail -n 3 "$T/mp0.err" "$T/mp1.err"; } >>"$EP"
        same "EP glm47-mini two processes (ZMLX_DIST_*), rank 0 vs one GPU" m1 mp0
        same "EP glm47-mini two processes, rank 1 vs rank 0" mp0 mp1
    fi
    time_left && { timeout -k 5 $(lim 90) "$B/zmlx" validate builtin:glm47-mini --backend cuda --gpus 0,1 \
        --max-tokens 32 --runs 2 >>"$EP" 2>&1; note "validate glm47-mini --gpus 0,1: exit $?"; }
fi

# ---------------------------------------------------------------- C (decode on 2 GPUs)
decode() { # tag model gpus runs
    timeout -k 5 "$(lim "${DEC_TIMEOUT:-150}")" "$B/zmlx-cuda_decode" "$2" --gpus "$3" --precision fast \
        --kv-dtype bf16 --runs "$4" --ctx 16 --tokens 64 >"$T/$1.dec" 2>"$T/$1.decerr"
    local rc=$?
    { echo "decode $2 --gpus $3: rc=$rc"; cat "$T/$1.dec"; tail -n 2 "$T/$1.decerr"; } >>"$EP"
    note "decode $2 --gpus $3: rc=$rc $(grep -E '^\| *[0-9]' "$T/$1.dec" | tr -s ' ' | head -n 1)"
}
if [ "$NG" -ge 2 ]; then
    stamp "C. decode on 1 and 2 GPUs"
    time_left && decode fl2 builtin:glm47-flash 0,1 3
    time_left && decode fl1 builtin:glm47-flash 0 3
    K8=builtin:kimi-k25:layers=8
    time_left && DEC_TIMEOUT=200 decode k82 $K8 0,1 3
    grep -E "^decode|^\|" "$EP" | tail -n 30
fi

stamp "D. compute-sanitizer memcheck"
SAN=$OUT/sanitizer.log
: >"$SAN"
if time_left; then
    { CUDA_VISIBLE_DEVICES=1 ZMLX_TEST_CUDA_QUICK=1 timeout -k 5 $(lim 120) compute-sanitizer --tool memcheck \
          --error-exitcode 9 "$B/test_cuda_kernels" >"$T/san_k.log" 2>&1
      echo "memcheck test_cuda_kernels (quick) rc=$?" >>"$T/san_k.log"; } &
    pk=$!
    CUDA_VISIBLE_DEVICES=0 timeout -k 5 $(lim 120) compute-sanitizer --tool memcheck --error-exitcode 9 \
        "$B/zmlx" generate builtin:glm47-mini --backend cuda --prompt-ids 1,2,3,4,5,6,7,8,9 \
        --max-tokens 8 --ignore-eos >"$T/san_g.log" 2>&1
    echo "memcheck generate glm47-mini (1 GPU, preset) rc=$?" >>"$T/san_g.log"
    wait $pk
    grep -hE "ERROR SUMMARY|Invalid|CHECK failed|passed|rc=" "$T/san_k.log" "$T/san_g.log" | head -30 >>"$SAN"
fi
if [ "$NG" -ge 2 ] && time_left; then
    timeout -k 5 $(lim 120) compute-sanitizer --tool memcheck --error-exitcode 9 "$B/zmlx" generate \
        builtin:glm47-mini --backend cuda --gpus 0,1 --prompt-ids 1,2,3,4,5,6,7,8,9 --max-tokens 8 \
        --ignore-eos >"$T/san_2.log" 2>&1
    echo "memcheck generate glm47-mini --gpus 0,1 rc=$?" >>"$T/san_2.log"
    grep -hE "ERROR SUMMARY|Invalid|rc=" "$T/san_2.log" | head -10 >>"$SAN"
fi
cat "$SAN"
note "sanitizer: $(grep 'rc=' "$SAN" | tr '\n' ' ')"

if [ "$NG" -ge 2 ] && time_left; then
    stamp "E. kimi-k25:layers=8 on one GPU"
    DEC_TIMEOUT=150 decode k81 builtin:kimi-k25:layers=8 0 2
fi

stamp "done"
printf '%s\n' "${summary[@]}" | tee "$OUT/summary.txt"
rm -rf "$T"
