#!/usr/bin/env bash
# mpi_launch.sh — zmlx-mpi under a real `mpirun -n 2` (Open MPI), where there is no GPU
# (CI) or no CUDA in the build: every rank fails with its own "CUDA unavailable" line and
# the job exits 2; a process count that differs from the --gpus list, a missing --gpus
# and a bad list are refused by every rank together (exit 2, no rank left waiting);
# --dry-run shows each rank's GPU (local-rank order), world/rank environment and the
# zmlx command it runs (without --gpus); `zmlx-mpi dist plan` runs the CLI in-process
# (the output once: rank 1's stdout goes to /dev/null).  Registered by CMake only when
# zmlx-mpi is built.
set -u
MPI=${ZMLX_MPI:-build/zmlx-mpi}
MPIEXEC=${MPIEXEC:-mpirun}
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# root in CI containers; local launches only, never more slots than asked
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
run() { # n, args...  -> $T/out, $T/err, $rc
    local n=$1
    shift
    timeout 120 "$MPIEXEC" -n "$n" --oversubscribe --allow-run-as-root "$MPI" "$@" >"$T/out" 2>"$T/err"
    rc=$?
}

run 2 generate builtin:glm47-tiny --backend cuda --gpus 0,1 --max-tokens 2
[ $rc -eq 2 ] && ok || bad "no CUDA: exit $rc (want 2): $(cat "$T/err")"
for r in 0 1; do
    grep -qE "^zmlx-mpi: error: rank $r of 2 \(host [^)]*\): GPU $r: CUDA unavailable" "$T/err" && ok ||
        bad "no CUDA: no line for rank $r: $(cat "$T/err")"
done

run 3 generate builtin:glm47-tiny --backend cuda --gpus 0,1
[ $rc -eq 2 ] && ok || bad "3 processes for 2 GPUs: exit $rc"
grep -q "this node runs 3 processes but --gpus 0,1 names 2 GPUs" "$T/err" && ok ||
    bad "3 processes for 2 GPUs: $(cat "$T/err")"
[ "$(grep -c 'zmlx-mpi: error' "$T/err")" -eq 1 ] && ok || bad "3 for 2: one line per node wanted: $(cat "$T/err")"

run 2 generate builtin:glm47-tiny --backend cuda
[ $rc -eq 2 ] && grep -q "^usage: mpirun" "$T/err" && ok || bad "no --gpus: exit $rc: $(cat "$T/err")"
run 2 generate builtin:glm47-tiny --gpus 1,1
[ $rc -eq 2 ] && grep -q "GPU 1 is listed twice" "$T/err" && ok || bad "--gpus 1,1: exit $rc: $(cat "$T/err")"

run 2 generate builtin:glm47-tiny --backend cuda --gpus 3,2 --json --dry-run
[ $rc -eq 0 ] && ok || bad "dry run: exit $rc: $(cat "$T/err")"
for r in 0 1; do
    g=$((3 - r))
    grep -qE "^rank $r of 2 \(host [^,]*, local $r of 2\): GPU $g ZMLX_DIST_WORLD=2 ZMLX_DIST_RANK=$r run zmlx generate builtin:glm47-tiny --backend cuda --json$" "$T/out" && ok ||
        bad "dry run rank $r: $(cat "$T/out")"
done

# the command line runs in each process: output once (rank 0's), each rank's errors
run 2 dist plan builtin:glm47-tiny --ranks 2 --gpus 0,1
[ $rc -eq 0 ] && ok || bad "dist plan under mpirun: exit $rc: $(cat "$T/err")"
[ "$(grep -c '^builtin:glm47-tiny over 2 GPUs' "$T/out")" -eq 1 ] && ok || bad "dist plan output not once: $(cat "$T/out")"
run 2 generate builtin:glm47-tiny --gpus 0,1 --max-tokens 2
[ $rc -eq 2 ] && grep -q 'GPUs are for --backend cuda' "$T/err" && ok ||
    bad "generate without --backend cuda: exit $rc: $(cat "$T/err")"
# each rank says it (mpirun must not kill the slower rank when the first exits 2, which
# happens on a loaded machine; its exit status is then 0)
OMPI_MCA_orte_abort_on_non_zero_status=0 run 2 generate builtin:glm47-tiny --gpus 0,1 --max-tokens 2
[ "$(grep -c 'GPUs are for --backend cuda' "$T/err")" -eq 2 ] && ok ||
    bad "generate without --backend cuda: one line per rank wanted: $(cat "$T/err")"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
