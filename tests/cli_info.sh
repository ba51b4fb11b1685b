#!/usr/bin/env bash
# cli_info.sh — `zmlx info` on the released DeepSeek-V3.2 and Kimi-K2.5 configs
# (fixtures/configs/*.config.json, each wrapped as a model directory with no weights):
# model type, parameter counts (total and active per token, exact: the hand counts of
# tests/test_builtin_families.c, published 671B / 37B and ~1T / 32B), KV cache bytes per
# position, bytes per token and memory consistent with the counts, and the SKIP(RAM)
# verdict on a machine without terabytes of memory — in text and in --json.
# Bytes per parameter are only bounded (0.5 .. 2): the fp8 / int4 byte counts of these
# checkpoints depend on their quantization_config.
set -u
BIN=${ZMLX_BIN:-build/zmlx}
SHARED=${ZMLX_SHARED:-../shared}
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# name config-file model_type params_total params_active kv_row(latent+rope+indexer)
check() {
    local name=$1 cfg=$2 type=$3 total=$4 active=$5 row=$6
    mkdir -p "$T/$name" && cp "$SHARED/fixtures/configs/$cfg" "$T/$name/config.json" && ok ||
        bad "$name: cannot copy $cfg"
    "$BIN" info "$T/$name" >"$T/$name.txt" 2>"$T/err" && ok || bad "$name: info: $(cat "$T/err")"
    grep -q "model_type       $type" "$T/$name.txt" && ok || bad "$name: model_type: $(head -3 "$T/$name.txt")"
    local want
    want=$(python3 -c "print('params           %.3f B total, %.3f B active per token' % ($total*1e-9, $active*1e-9))")
    grep -qF "$want" "$T/$name.txt" && ok || bad "$name: want '$want', got '$(grep params "$T/$name.txt")'"
    grep -qE "^fits +SKIP\(RAM\): needs [0-9.]+ GiB, [0-9.]+ GiB available" "$T/$name.txt" && ok ||
        bad "$name: no SKIP(RAM) line: $(grep fits "$T/$name.txt")"
    "$BIN" info "$T/$name" --json >"$T/$name.json" 2>"$T/err" && ok || bad "$name: info --json: $(cat "$T/err")"
    python3 - "$T/$name.json" "$type" "$total" "$active" "$row" <<'PY' && ok || bad "$name: --json figures"
import json, sys
j = json.load(open(sys.argv[1]))
typ, total, active, row = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
assert j["model_type"] == typ, j["model_type"]
assert j["params_total"] == total and j["params_active"] == active, (j["params_total"], j["params_active"])
assert j["layers"] == 61 and j["experts_per_tok"] == 8, j
# bf16 KV cache (--precision fast, the default): 61 layers x the cached row x 2 bytes
assert j["kv_dtype"] == "bf16" and j["kv_bytes_per_position"] == 61 * row * 2, j["kv_bytes_per_position"]
for key, n in (("bytes_per_token", active), ("weight_bytes", total)):
    assert 0.5 * n <= j[key] <= 2.0 * n, (key, j[key], n)
# memory: the weights plus the cache of a 4096-position context, at least
assert j["mem_needed_bytes"] >= j["weight_bytes"] + 4096 * j["kv_bytes_per_position"], j
assert j["fits"] is False and j["verdict"] == "SKIP(RAM)", (j["fits"], j["verdict"])
assert j["mem_available_bytes"] < j["mem_needed_bytes"]
PY
}

# DeepSeek-V3.2: 671,877,929,216 total (published 671B without the 14B MTP layer),
# 37,477,135,616 active (~37B + the DSA indexer); cache row 512 + 64 + 128 (indexer key)
check dsv32 deepseek-v3.2.config.json deepseek_v32 671877929216 37477135616 704
# Kimi-K2.5: 1,026,408,209,408 total (~1T), 31,687,079,936 active (32B); row 512 + 64
check kimi kimi-k2.5.config.json kimi_k25 1026408209408 31687079936 576

# the same verdict through the builtins of the two families
for b in dsv32 kimi-k25; do
    "$BIN" info "builtin:$b" | grep -q "SKIP(RAM)" && ok || bad "info builtin:$b: no SKIP(RAM)"
done

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
