#!/usr/bin/env bash
# cli_generate.sh — the CLI contract of `zmlx generate` and `zmlx info`, end to end:
# golden tokens and logits through --json / --logits-out, sharded and MTP checkpoints,
# and one clear error line + exit 2 for every kind of broken input (run under
# ASan/UBSan too by `make test`).
set -u
BIN=${ZMLX_BIN:-build/zmlx}
SHARED=${ZMLX_SHARED:-../shared}
SRC=${ZMLX_SRC:-.}
FIX=$SHARED/fixtures/models
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

PROMPT=$(python3 -c "import json;print(','.join(map(str,json.load(open('$FIX/glm47-tiny/golden.json'))['prompt_ids'])))")

# golden: greedy tokens and logits rows of the CLI against the transformers reference
for m in glm47-tiny glm47-tiny-v5; do
    out=$("$BIN" generate "$FIX/$m" --prompt-ids "$PROMPT" --max-tokens 40 --patterns none \
          --precision exact --json --logits-out "$T/$m.logits" 2>"$T/err")
    rc=$?
    [ $rc -eq 0 ] && ok || bad "$m: generate exit $rc: $(cat "$T/err")"
    [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] && ok || bad "$m: --json stdout is not one line"
    python3 - "$FIX/$m/golden.json" "$T/$m.logits" "$out" <<'PY' && ok || bad "$m: golden mismatch"
import json, struct, sys
g = json.load(open(sys.argv[1])); got = json.loads(sys.argv[3])
assert got["tokens"] == g["greedy_tokens"], (got["tokens"], g["greedy_tokens"])
assert got["prompt_ids"] == g["prompt_ids"]
for k in ("model", "backend", "patterns", "text", "prefill_tok_s", "decode_tok_s", "peak_mem_mb"):
    assert k in got, k
V = len(g["logits_step0"]); raw = open(sys.argv[2], "rb").read()
assert len(raw) == 40 * V * 4, len(raw)
rows = [struct.unpack_from("<%df" % V, raw, i * V * 4) for i in (0, 39)]
for row, ref in zip(rows, (g["logits_step0"], g["logits_last"])):
    mx = max(abs(x) for x in ref); d = max(abs(a - b) for a, b in zip(row, ref))
    assert d <= 1e-4 * mx, (d, mx)
PY
done

# sharded checkpoint and an MTP layer on disk load and give the same tokens
python3 "$SRC/tests/st_variants.py" "$FIX/glm47-tiny" "$T/v" || bad "st_variants.py failed"
want=$(python3 -c "import json;print(json.load(open('$FIX/glm47-tiny/golden.json'))['greedy_tokens'][:8])" | tr -d ' ')
for v in sharded mtp; do
    got=$("$BIN" generate "$T/v/$v" --prompt-ids "$PROMPT" --max-tokens 8 --precision exact --json 2>"$T/err" |
          python3 -c "import json,sys;print(json.load(sys.stdin)['tokens'])" | tr -d ' ')
    [ "$got" = "$want" ] && ok || bad "$v: tokens $got, want $want ($(cat "$T/err"))"
done

# broken inputs: exit 2, exactly one line on stderr naming the cause
expect_error() { # name, pattern, args...  (exit 2: usage or load error)
    expect_exit 2 "$@"
}
expect_exit() { # code, name, pattern, args...
    local code=$1 name=$2 pat=$3
    shift 3
    "$BIN" "$@" >"$T/out" 2>"$T/err"
    local rc=$? lines
    lines=$(wc -l <"$T/err")
    if [ $rc -eq "$code" ] && [ "$lines" -eq 1 ] && grep -qiE -- "$pat" "$T/err"; then ok; else
        bad "$name: exit $rc, $lines stderr lines, want /$pat/: $(head -c 600 "$T/err")"
    fi
}
gen() { echo generate "$1" --prompt-ids 1,2,3 --max-tokens 2; }
expect_error truncated 'model.safetensors.*(data|offset|beyond|past|end)' $(gen "$T/v/truncated")
expect_error hdr_too_long 'model.safetensors.*header' $(gen "$T/v/hdr_too_long")
expect_error bad_offsets 'o_proj.*(offset|data|beyond|past|end)' $(gen "$T/v/bad_offsets")
expect_error overlap 'overlap' $(gen "$T/v/overlap")
expect_error bytecount 'o_proj.*(bytes|shape)' $(gen "$T/v/bytecount")
expect_error missing 'self_attn.o_proj.weight.*missing' $(gen "$T/v/missing")
expect_error bad_json 'model.safetensors.*json' $(gen "$T/v/bad_json")
expect_error non_utf8 'model.safetensors.*(utf-8|utf8|unicode|decode byte)' $(gen "$T/v/non_utf8")
expect_error bad_config 'config.json' $(gen "$T/v/bad_config")
expect_error other_type 'qwen3_moe' $(gen "$T/v/other_type")
expect_error no_dir 'nonexistent' generate "$T/nonexistent" --prompt-ids 1
expect_error bad_ids 'prompt-ids' generate builtin:glm47-tiny --prompt-ids 1,x
expect_error id_range 'prompt-ids' generate builtin:glm47-tiny --prompt-ids 5000
expect_error no_tokenizer 'tokenizer' generate "$FIX/glm47-tiny" --prompt hello
expect_error patterns 'patterns' generate builtin:glm47-tiny --patterns bogus_pattern
expect_error cuda 'cuda.*(unavailable|not built|without)' generate builtin:glm47-tiny --backend cuda
expect_error builtin 'unknown builtin' generate builtin:nope
expect_error override 'layers' generate builtin:glm47-tiny:layers=0
expect_exit 1 ctx 'limit|max_position' generate builtin:glm47-tiny:ctx=16 --prompt-ids 1,2,3 --max-tokens 40 --ignore-eos
expect_error option 'unknown option' generate builtin:glm47-tiny --frobnicate
expect_error temp 'temp' generate builtin:glm47-tiny --temp -1
expect_error command 'unknown command' frobnicate
[ ! -e "$T/partial.logits" ] || bad "a failed run left a logits file"
"$BIN" generate builtin:glm47-tiny:ctx=16 --prompt-ids 1,2,3 --max-tokens 40 --ignore-eos \
    --logits-out "$T/partial.logits" >/dev/null 2>&1
[ ! -e "$T/partial.logits" ] && ok || bad "a failed run left a logits file behind"
ls "$T"/partial.logits.tmp.* >/dev/null 2>&1 && bad "a temp logits file was left" || ok

# sampling: same seed, same output; greedy default; eos stops unless --ignore-eos
a=$("$BIN" generate builtin:glm47-tiny --prompt-ids 1,2,3 --max-tokens 12 --temp 0.8 --top-p 0.9 --seed 7 --json --ignore-eos | python3 -c "import json,sys;print(json.load(sys.stdin)['tokens'])")
b=$("$BIN" generate builtin:glm47-tiny --prompt-ids 1,2,3 --max-tokens 12 --temp 0.8 --top-p 0.9 --seed 7 --json --ignore-eos | python3 -c "import json,sys;print(json.load(sys.stdin)['tokens'])")
[ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "same seed gave $a and $b"

# the default model and a text prompt through the byte-level fallback tokenizer
"$BIN" generate --max-tokens 4 --prompt "Hi" >"$T/out" 2>"$T/err" && ok || bad "default model: $(cat "$T/err")"
grep -q "decode:" "$T/err" && ok || bad "no timing line on stderr"

# info: builtin flash reports SKIP(RAM) for all 47 bf16 layers on a 24 GiB machine (the
# default 4-bit model, 16 GiB, fits)
"$BIN" info builtin:glm47-flash:bits=16 >"$T/out" 2>"$T/err" && ok || bad "info: $(cat "$T/err")"
grep -qE "3.5(79|80) B active" "$T/out" && ok || bad "info active params: $(grep params "$T/out")"
grep -q "SKIP(RAM)" "$T/out" && ok || bad "info did not say SKIP(RAM): $(grep fits "$T/out")"
"$BIN" info builtin:glm47-flash:layers=2 --json | python3 -c "import json,sys;j=json.load(sys.stdin);assert j['fits'] and j['layers']==2" && ok || bad "info --json"
mkdir -p "$T/cfg" && cp "$SHARED/fixtures/configs/glm-4.7-flash.config.json" "$T/cfg/config.json"
"$BIN" info "$T/cfg" | grep -q "glm4_moe_lite" && ok || bad "info on the released GLM config"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
