#!/usr/bin/env bash
# cli_dist.sh — the CLI of several GPUs where there is no GPU: `zmlx dist plan` (experts
# and memory per GPU from the config alone, the fit verdict with its numbers), `--gpus`
# errors, the launcher environment (ZMLX_DIST_*, NCCL_COMM_ID), and `--backend cuda
# --gpus` failing with "unavailable" and exit 2 on a machine (or build) without CUDA.
set -u
BIN=${ZMLX_BIN:-build/zmlx}
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

expect_error() { # name, pattern, args...: exit 2 and one stderr line matching pattern
    local name=$1 pat=$2
    shift 2
    "$BIN" "$@" >"$T/out" 2>"$T/err"
    local rc=$? lines
    lines=$(wc -l <"$T/err")
    if [ $rc -eq 2 ] && [ "$lines" -eq 1 ] && grep -qE -- "$pat" "$T/err"; then ok; else
        bad "$name: exit $rc, $lines stderr lines, want /$pat/: $(head -c 600 "$T/err")"
    fi
}

# plan: the full Kimi-K2.5 at 4 bits fits eight 79 GiB GPUs, 48 experts each
"$BIN" dist plan builtin:kimi-k25 --gpus 0-7 --bits 4 --gpu-mem 79 >"$T/out" 2>"$T/err" && ok ||
    bad "plan kimi 8 GPUs: $(cat "$T/err")"
[ "$(grep -c ' fits$' "$T/out")" -eq 8 ] && ok || bad "plan kimi 8 GPUs: $(cat "$T/out")"
grep -qE '^ +7 +7 +336-383 \(48\)' "$T/out" && ok || bad "plan kimi: rank 7 row: $(cat "$T/out")"
# ... but not four: the message has the account and the smallest count that fits
expect_error plan_4 'rank 0 of 4 \(GPU 0\) cannot hold its slice: it needs [0-9.]+ GiB = .* \(96 of 384 in each of 60 MoE layers.*needs at least 8 such GPUs' \
    dist plan builtin:kimi-k25 --gpus 0-3 --bits 4 --gpu-mem 79
grep -c 'DOES NOT FIT' "$T/out" | grep -qx 4 && ok || bad "plan kimi 4 GPUs table: $(cat "$T/out")"
# --json: per-rank bytes add up; round-robin slices; --ranks for GPUs of several nodes
"$BIN" dist plan builtin:glm47-flash --ranks 3 --scheme round-robin --json >"$T/j" 2>"$T/err" && ok ||
    bad "plan --json: $(cat "$T/err")"
python3 - "$T/j" <<'PY' && ok || bad "plan --json content: $(cat "$T/j")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["n_ranks"] == 3 and j["n_experts"] == 64 and j["scheme"] == "round-robin" and j["fits"]
assert [r["n_experts"] for r in j["ranks"]] == [22, 21, 21]
assert [r["first_expert"] for r in j["ranks"]] == [0, 1, 2]
for r in j["ranks"]:
    assert r["total_bytes"] == r["replicated_bytes"] + r["expert_bytes"] + r["cache_bytes"] + r["buffer_bytes"]
assert len({r["replicated_bytes"] for r in j["ranks"]}) == 1
PY
expect_error plan_none 'give --gpus LIST .* or --ranks N' dist plan builtin:glm47-flash
expect_error plan_both 'not both' dist plan builtin:glm47-flash --ranks 2 --gpus 0,1
expect_error plan_many 'use at most 8 GPUs' dist plan builtin:glm47-tiny --ranks 9
expect_error plan_scheme 'expected contiguous or round-robin' dist plan --ranks 2 --scheme striped
expect_error dist_action 'unknown action' dist id

# --gpus lists and where they may be used
expect_error gpus_twice 'GPU 1 is listed twice' generate builtin:glm47-tiny --gpus 0,1,1
expect_error gpus_bad '"x" is not a device ordinal' generate builtin:glm47-tiny --gpus 0,x
expect_error gpus_cpu 'GPUs are for --backend cuda \(this run uses cpu\)' generate builtin:glm47-tiny --gpus 0,1
expect_error gpus_validate 'GPUs are for --backend cuda' validate builtin:glm47-tiny --gpus 0,1 --max-tokens 2
expect_error gpus_bench 'GPUs are for --backend cuda \(this run uses cpu-ref\)' bench builtin:glm47-tiny --gpus 0 --backend cpu-ref --max-tokens 2 --runs 1 --ledger none --json-out "$T/c.json"
# no GPU here (or no CUDA in this build): a clear "unavailable", exit 2, no crash
expect_error gpus_cuda 'CUDA unavailable|cuda is unavailable' generate builtin:glm47-tiny --backend cuda --gpus 0,1

# the launcher environment (one process of several)
ID=$(printf '%0256d' 0)
ZMLX_DIST_WORLD=2 expect_error env_partial 'ZMLX_DIST_WORLD=2 is set but ZMLX_DIST_RANK is not' generate builtin:glm47-tiny --backend cuda
ZMLX_DIST_WORLD=2 ZMLX_DIST_RANK=1 ZMLX_DIST_GPU=0 \
    expect_error env_noid 'neither ZMLX_DIST_ID .* nor NCCL_COMM_ID' generate builtin:glm47-tiny --backend cuda
ZMLX_DIST_WORLD=2 ZMLX_DIST_RANK=1 ZMLX_DIST_GPU=0 NCCL_COMM_ID=127.0.0.1:29500 \
    expect_error env_root 'rank 1 of 2: CUDA unavailable' generate builtin:glm47-tiny --backend cuda
ZMLX_DIST_WORLD=2 ZMLX_DIST_RANK=2 ZMLX_DIST_GPU=0 ZMLX_DIST_ID=$ID \
    expect_error env_rank 'ZMLX_DIST_RANK 2: expected an integer in \[0, 1\]' generate builtin:glm47-tiny --backend cuda
ZMLX_DIST_WORLD=2 ZMLX_DIST_RANK=1 ZMLX_DIST_GPU=0 ZMLX_DIST_ID=abc \
    expect_error env_id 'ZMLX_DIST_ID: expected 256 hex digits' generate builtin:glm47-tiny --backend cuda
ZMLX_DIST_WORLD=2 ZMLX_DIST_RANK=1 ZMLX_DIST_GPU=0 ZMLX_DIST_ID=$ID \
    expect_error env_gpus 'drop --gpus' generate builtin:glm47-tiny --backend cuda --gpus 0
ZMLX_DIST_WORLD=2 ZMLX_DIST_RANK=1 ZMLX_DIST_GPU=0 ZMLX_DIST_ID=$ID \
    expect_error env_cpu 'GPUs are for --backend cuda' generate builtin:glm47-tiny
ZMLX_DIST_WORLD=2 ZMLX_DIST_RANK=1 ZMLX_DIST_GPU=0 ZMLX_DIST_ID=$ID \
    expect_error env_cuda 'CUDA unavailable|cuda is unavailable' generate builtin:glm47-tiny --backend cuda

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
