#!/usr/bin/env bash
# cuda_ab.sh — one device call on one GPU that checks a CUDA change and times it against
# another build: the tests, compute-sanitizer, then decode A/B run by run on the same card.
# Stage (from the repository root; binaries built here, the device image has no -dev headers):
#   S=.device/ab; rm -rf $S; mkdir -p $S/lib $S/fixtures/models
#   (cd build && tar cJf ../$S/bins.tar.xz zmlx zmlx-cuda_decode test_cuda test_cuda_kernels test_cuda_attn)
#   tar cJf $S/old.tar.xz -C OLD_BUILD zmlx-cuda_decode      # the build to compare with
#   cp -L /lib/x86_64-linux-gnu/{libjansson.so.4,libpcre2-8.so.0} $S/lib/
#   cp -r ../shared/fixtures/models/{glm47-tiny,glm47-tiny-v5,dsv3-tiny,dsv32-tiny} $S/fixtures/models/
# and run `bash bench/cuda_ab.sh` with .device/ab carried.  Steps, bounded to ZMLX_AB_HARD
# seconds (default 540):
#   1. test_cuda_kernels, test_cuda_attn and test_cuda (every kernel; goldens, patterns bit for bit)
#   2. compute-sanitizer memcheck and racecheck of the quick kernel test, memcheck of a
#      dsv32-tiny and a glm47-tiny generate (the decode graph, the indexer)
#   3. decode A/B, old then new, ZMLX_AB_ROUNDS rounds (default 2): $ZMLX_AB_MODEL
#      (builtin:glm47-flash) at contexts $ZMLX_AB_CTX (16,4096; synthetic), preset, fast,
#      bf16 cache — the ratio of medians per round is the claim, on this card only;
#      ZMLX_AB_VARIANTS="NAME=VALUE[,NAME=VALUE] ..." also runs the new build under each
#      setting;
#      ZMLX_AB_ARGS: more zmlx-cuda_decode arguments (e.g. "--prefill 512,4096")
# $OUT: log.txt, summary.txt, tests.log, sanitizer.log (san-TOOL-N.log: a failing run's
# whole report), ab.txt.
set -u
D=${ZMLX_AB_DIR:-.device/ab}
B=$D/bin
OUT=${OUT:-/tmp/zmlx-ab}
HARD=${ZMLX_AB_HARD:-540}
MODEL=${ZMLX_AB_MODEL:-builtin:glm47-flash}
CTX=${ZMLX_AB_CTX:-16,4096}
ROUNDS=${ZMLX_AB_ROUNDS:-2}
T=$(mktemp -d)
EP=$OUT/gen.txt
mkdir -p "$D/old"
[ -f "$D/old.tar.xz" ] && tar xJf "$D/old.tar.xz" -C "$D/old"
export ZMLX_SHARED="$PWD/$D" ZMLX_SRC="$PWD"
. bench/device_lib.sh
device_begin

stamp "0. machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
note "machine: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -n 1)"

if [ "${ZMLX_AB_CHECKS:-1}" = 1 ]; then # ZMLX_AB_CHECKS=0: the A/B alone
stamp "1. tests"
timeout -k 5 $(lim 150) "$B/test_cuda_kernels" >"$T/k.log" 2>&1
echo "test_cuda_kernels rc=$?" >>"$T/k.log"
timeout -k 5 $(lim 120) "$B/test_cuda_attn" >"$T/a.log" 2>&1
echo "test_cuda_attn rc=$?" >>"$T/a.log"
timeout -k 5 $(lim 150) "$B/test_cuda" >"$T/m.log" 2>&1
echo "test_cuda rc=$?" >>"$T/m.log"
cat "$T/k.log" "$T/a.log" "$T/m.log" >"$OUT/tests.log"
grep -hE "CHECK failed|rc=" "$OUT/tests.log" | head -20
note "test_cuda_kernels: $(grep -E '^[0-9]+ passed' "$T/k.log" | tail -n 1) $(grep 'rc=' "$T/k.log")"
note "test_cuda_attn: $(grep -E '^[0-9]+ passed' "$T/a.log" | tail -n 1) $(grep 'rc=' "$T/a.log")"
note "test_cuda: $(grep -E '^[0-9]+ passed' "$T/m.log" | tail -n 1) $(grep 'rc=' "$T/m.log")"

stamp "2. compute-sanitizer"
SAN=$OUT/sanitizer.log
: >"$SAN"
san() { # tool what command...
    local tool=$1 what=$2
    shift 2
    time_left || return
    timeout -k 5 $(lim "${SAN_LIM:-120}") compute-sanitizer --tool "$tool" --error-exitcode 9 "$@" >"$T/san.log" 2>&1
    local rc=$?
    [ "$rc" = 0 ] || cp "$T/san.log" "$OUT/san-$tool-$SECONDS.log" # the hazards themselves, when any
    { echo "== $tool $what: rc=$rc"; grep -E "ERROR SUMMARY|RACECHECK SUMMARY|Invalid|Race|CHECK failed" "$T/san.log" | head -8; } >>"$SAN"
    note "$tool $what: rc=$rc $(grep -hE 'ERROR SUMMARY|RACECHECK SUMMARY' "$T/san.log" | head -n 1)"
}
export ZMLX_TEST_CUDA_QUICK=1
san memcheck "test_cuda_kernels (quick)" "$B/test_cuda_kernels"
san memcheck "test_cuda_attn (quick)" "$B/test_cuda_attn"
# racecheck of the quick kernel tests: 180-200 s on an H100 together (2026-11-27; 200 s ran
# out twice), most of it the attention's
SAN_LIM=150 san racecheck "test_cuda_kernels (quick)" "$B/test_cuda_kernels"
SAN_LIM=300 san racecheck "test_cuda_attn (quick)" "$B/test_cuda_attn"
unset ZMLX_TEST_CUDA_QUICK
san memcheck "generate dsv32-tiny (indexer, decode graph)" "$B/zmlx" generate "$D/fixtures/models/dsv32-tiny" \
    --backend cuda --prompt-ids "$PROMPT" --max-tokens 16 --ignore-eos --precision exact
san memcheck "generate glm47-tiny (preset)" "$B/zmlx" generate "$D/fixtures/models/glm47-tiny" \
    --backend cuda --prompt-ids "$PROMPT" --max-tokens 16 --ignore-eos
fi

stamp "3. decode A/B: $MODEL"
AB=$OUT/ab.txt
: >"$AB"
dec() { # tag bindir
    time_left || return
    timeout -k 5 $(lim 150) "$2/zmlx-cuda_decode" "$MODEL" --precision fast --kv-dtype bf16 --patterns default \
        --ctx "$CTX" --synthetic --tokens 64 --runs 3 ${ZMLX_AB_ARGS:-} >"$T/$1.dec" 2>"$T/$1.err"
    local rc=$?
    { echo "== $1 ($2): rc=$rc"; grep -E '^\| default' "$T/$1.dec"; tail -n 1 "$T/$1.err"; } >>"$AB"
    note "$1 ($2): rc=$rc $(grep -E '^\| default' "$T/$1.dec" | tr -s ' ' | tr '\n' ' ' | cut -c1-200)"
}
for r in $(seq 1 "$ROUNDS"); do
    [ -x "$D/old/zmlx-cuda_decode" ] && dec "old$r" "$D/old"
    dec "new$r" "$B"
    for v in ${ZMLX_AB_VARIANTS:-}; do # the new build under other settings: NAME=VALUE[,NAME=VALUE]
        IFS=, read -r -a kv <<<"$v"
        for a in "${kv[@]}"; do export "${a?}"; done
        dec "new$r:$v" "$B"
        for a in "${kv[@]}"; do unset "${a%%=*}"; done
    done
done

stamp "done"
printf '%s\n' "${summary[@]}" | tee "$OUT/summary.txt"
rm -rf "$T"
