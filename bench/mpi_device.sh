#!/usr/bin/env bash
# mpi_device.sh — zmlx-mpi on a machine of two GPUs that has no MPI (the lent machines):
# Debian's Open MPI carried as a relocatable tree.  Stage with
#   S=.device/mpi; rm -rf $S; mkdir -p $S/lib $S/fixtures/models
#   (cd build && tar cJf ../$S/bins.tar.xz zmlx zmlx-mpi)
#   bash bench/stage_mpi.sh $S
#   cp -L /lib/x86_64-linux-gnu/{libjansson.so.4,libpcre2-8.so.0} $S/lib/
#   cp -r ../shared/fixtures/models/dsv32-tiny $S/fixtures/models/
# and run `bash bench/mpi_device.sh` with .device/mpi carried.  `mpirun -n 2 zmlx-mpi
# generate MODEL --backend cuda --gpus 0,1` (rank 0 makes the NCCL id, MPI broadcasts it,
# one process per GPU) against `zmlx generate MODEL --backend cuda --gpus 0` (one GPU) and
# `--gpus 0,1` (one process, two GPUs): logits of every step byte for byte, for dsv32-tiny
# (exact, the indexer selecting), glm47-mini (exact) and glm47-flash:layers=8 (4-bit, fast),
# and the decode tok/s of the last under both launches.  $OUT: log.txt, summary.txt, gen.txt.
set -u
D=${ZMLX_MPI_DIR:-.device/mpi}
B=$D/bin
OUT=${OUT:-/tmp/zmlx-mpi}
HARD=${ZMLX_MPI_HARD:-300}
mkdir -p "$OUT"
T=$(mktemp -d)
EP=$OUT/gen.txt
: >"$EP"
tar xJf "$D/ompi.tar.xz" -C "$T" && R=$T/ompi && . "$R/env.sh"
. bench/device_lib.sh
device_begin

stamp "0. machine"
nvidia-smi --query-gpu=index,name,driver_version --format=csv
NG=$(nvidia-smi -L | wc -l)
note "machine: $NG x $(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1); $(mpirun --version | head -n 1)"

mpigen() { # tag model max_tokens extra...
    local tag=$1 model=$2 n=$3
    shift 3
    timeout -k 5 "$(lim 120)" mpirun -n 2 --oversubscribe "$B/zmlx-mpi" generate "$model" --backend cuda --gpus 0,1 \
        --prompt-ids "$PROMPT" --max-tokens "$n" --ignore-eos --json --logits-out "$T/$tag.logits" "$@" \
        >"$T/$tag.json" 2>"$T/$tag.err"
    local rc=$?
    { echo "mpirun -n 2 zmlx-mpi $tag $model $*: rc=$rc"; tail -n 4 "$T/$tag.err"; } >>"$EP"
    [ $rc -eq 0 ] || { note "$tag (mpirun, $model): exit $rc: $(grep -v '^ *$' "$T/$tag.err" | tail -n 2 | cut -c1-200 | tr '\n' ' ')"; return $rc; }
}
tps() { python3 -c "import json;print(round(json.load(open('$T/$1.json'))['decode_tok_s'],1))" 2>/dev/null; }

stamp "1. one GPU, one process two GPUs, mpirun two processes"
V=$D/fixtures/models/dsv32-tiny
gen t1 "$V" 0 40 --precision exact && mpigen tm "$V" 40 --precision exact && same "zmlx-mpi dsv32-tiny (2 ranks) vs one GPU" t1 tm
gen m1 builtin:glm47-mini 0 48 --precision exact && mpigen mm builtin:glm47-mini 48 --precision exact &&
    same "zmlx-mpi glm47-mini exact (2 ranks) vs one GPU" m1 mm
F8=builtin:glm47-flash:layers=8
GEN_TIMEOUT=120 gen f1 $F8 0 64 && GEN_TIMEOUT=120 gen f2 $F8 0,1 64 && mpigen fm $F8 64 &&
    same "zmlx-mpi $F8 4-bit fast (2 ranks) vs one GPU" f1 fm &&
    note "$F8 decode tok/s: one GPU $(tps f1), one process --gpus 0,1 $(tps f2), mpirun 2 processes $(tps fm)"

stamp "done"
printf '%s\n' "${summary[@]}" | tee "$OUT/summary.txt"
rm -rf "$T"
