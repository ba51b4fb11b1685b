#!/usr/bin/env bash
# cli_convert.sh — the CLI contract of `zmlx convert`: the summary line, options and
# their defaults as mlx-lm has them, one clear error line with exit 2 for bad
# arguments / SRC / an existing DST, exit 1 for a failure while writing, 128+signal
# when interrupted, --force, and never a DST or DST.tmp-* left behind by a failure.
# (Byte-for-byte equality with mlx-lm's own output is test_convert.c.)
set -u
BIN=${ZMLX_BIN:-build/zmlx}
SHARED=${ZMLX_SHARED:-../shared}
SRC=${ZMLX_SRC:-.}
FIX=$SHARED/fixtures/models
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
T=$(mktemp -d)
trap 'chmod -R u+w "$T"; rm -rf "$T"' EXIT

leftovers() { ls -d "$T"/*.tmp-* "$T"/*/*.tmp-* 2>/dev/null | head -1; }

# a conversion: summary line on stderr (not a terminal), nothing on stdout
"$BIN" convert "$FIX/glm47-tiny" "$T/q4" >"$T/out" 2>"$T/err" && ok || bad "convert: $(cat "$T/err")"
grep -qE "glm4_moe_lite, affine 4-bit g64\): 116 tensors \(32 modules quantized\), 1 shard" "$T/err" \
    && ok || bad "summary line: $(cat "$T/err")"
[ ! -s "$T/out" ] && ok || bad "stdout not empty"
for f in config.json model.safetensors model.safetensors.index.json; do
    [ -f "$T/q4/$f" ] && ok || bad "missing $f"
done
grep -q '"quantization_config": {' "$T/q4/config.json" && ok || bad "no quantization_config"

# --json; mxfp4 defaults to group 32 as in mlx-lm; --no-quant
"$BIN" convert "$FIX/dsv3-tiny" "$T/mx" --q-mode mxfp4 --json >"$T/out" 2>"$T/err" && ok || bad "mxfp4: $(cat "$T/err")"
python3 -c "import json,sys;j=json.load(open('$T/out'));assert j['mode']=='mxfp4' and j['group_size']==32 and j['bits']==4 and j['shards']==1, j" \
    && ok || bad "--json: $(cat "$T/out")"
"$BIN" convert "$FIX/glm47-tiny" "$T/dense" --no-quant --dtype float32 2>"$T/err" && ok || bad "no-quant: $(cat "$T/err")"
grep -q '"quantization"' "$T/dense/config.json" && bad "--no-quant wrote a quantization block" || ok

# builtin models export, and the export runs in zmlx like the builtin itself
"$BIN" convert builtin:glm47-tiny "$T/bt" --no-quant 2>"$T/err" && ok || bad "builtin: $(cat "$T/err")"
toks() { "$BIN" generate "$1" --prompt-ids 1,2,3 --max-tokens 16 --ignore-eos --precision exact --json 2>"$T/err" | python3 -c "import json,sys;print(json.load(sys.stdin)['tokens'])"; }
a=$(toks builtin:glm47-tiny)
b=$(toks "$T/bt")
[ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "builtin export decodes $b, the builtin $a ($(cat "$T/err"))"
[ -f "$T/bt/tokenizer.json" ] && ok || bad "builtin export has no tokenizer.json"
"$BIN" tokenize "$T/bt" --text "Hi!" | grep -q '"ids":\[72,105,33\]' && ok || bad "the export's tokenizer is not byte-level"

# usage and input errors: exit 2, one line naming the cause, nothing left behind
expect_exit() { # code, name, pattern, args...
    local code=$1 name=$2 pat=$3
    shift 3
    "$BIN" "$@" >"$T/out" 2>"$T/err"
    local rc=$? lines
    lines=$(grep -c . "$T/err")
    if [ $rc -eq "$code" ] && [ "$lines" -eq 1 ] && grep -qiE -- "$pat" "$T/err"; then ok; else
        bad "$name: exit $rc, $lines stderr lines, want /$pat/: $(head -c 600 "$T/err")"
    fi
}
expect_exit 2 no_args 'needs SRC and DST' convert
expect_exit 2 one_arg 'needs SRC and DST' convert "$FIX/glm47-tiny"
expect_exit 2 bits 'q-bits 7' convert "$FIX/glm47-tiny" "$T/x" --q-bits 7
expect_exit 2 group 'group-size 16' convert "$FIX/glm47-tiny" "$T/x" --q-group-size 16
expect_exit 2 mxfp4_group 'mxfp4 needs' convert "$FIX/glm47-tiny" "$T/x" --q-mode mxfp4 --q-group-size 64
expect_exit 2 mode 'q-mode nvfp4' convert "$FIX/glm47-tiny" "$T/x" --q-mode nvfp4
expect_exit 2 dtype 'dtype float16' convert "$FIX/glm47-tiny" "$T/x" --dtype float16
expect_exit 2 noquant_bits 'no-quant' convert "$FIX/glm47-tiny" "$T/x" --no-quant --q-bits 4
expect_exit 2 option 'unknown option' convert "$FIX/glm47-tiny" "$T/x" --frobnicate
expect_exit 2 extra 'unexpected argument' convert "$FIX/glm47-tiny" "$T/x" "$T/y"
expect_exit 2 no_src 'nonexistent' convert "$T/nonexistent" "$T/x"
expect_exit 2 exists 'already exists.*--force' convert "$FIX/glm47-tiny" "$T/q4"
expect_exit 2 builtin 'unknown builtin' convert builtin:nope "$T/x"
mkdir -p "$T/notckpt" && touch "$T/notckpt/precious"
expect_exit 2 force_other 'not a checkpoint' convert "$FIX/glm47-tiny" "$T/notckpt" --force
[ -f "$T/notckpt/precious" ] && ok || bad "--force removed a directory that is not a checkpoint"
# a source with a tensor missing (config says 4 layers, the file has 3)
mkdir -p "$T/broken" && cp "$FIX/glm47-tiny/model.safetensors" "$T/broken/"
sed 's/"num_hidden_layers": 3/"num_hidden_layers": 4/' "$FIX/glm47-tiny/config.json" >"$T/broken/config.json"
expect_exit 2 missing 'model.layers.3.*missing' convert "$T/broken" "$T/x"
# an MTP layer is dropped (mlx-lm's sanitize); a tensor of no module is refused (as
# mlx-lm's strict load_weights refuses it)
python3 "$SRC/tests/st_variants.py" "$FIX/glm47-tiny" "$T/v" >/dev/null || bad "st_variants.py failed"
"$BIN" convert "$T/v/mtp" "$T/mtp" 2>"$T/err" && ok || bad "mtp: $(cat "$T/err")"
cmp -s "$T/mtp/model.safetensors" "$T/q4/model.safetensors" && ok || bad "the MTP layer changed the output"
python3 - "$FIX/glm47-tiny" "$T/extra" <<'PY' || bad "making the extra-tensor source failed"
import json, os, shutil, struct, sys
src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst)
shutil.copy(os.path.join(src, "config.json"), dst)
raw = open(os.path.join(src, "model.safetensors"), "rb").read()
(n,) = struct.unpack("<Q", raw[:8]); h = json.loads(raw[8:8 + n]); data = raw[8 + n:]
h["model.extra.weight"] = {"dtype": "F32", "shape": [2], "data_offsets": [len(data), len(data) + 8]}
hb = json.dumps(h).encode()
open(os.path.join(dst, "model.safetensors"), "wb").write(struct.pack("<Q", len(hb)) + hb + data + bytes(8))
PY
expect_exit 2 extra_tensor 'model.extra.weight.*not part of' convert "$T/extra" "$T/x"
[ ! -e "$T/x" ] && ok || bad "a failed conversion left DST behind"
[ -z "$(leftovers)" ] && ok || bad "a failed conversion left $(leftovers)"

# --force replaces an earlier conversion
"$BIN" convert "$FIX/glm47-tiny" "$T/q4" --force --q-bits 8 2>"$T/err" && ok || bad "--force: $(cat "$T/err")"
grep -q '"bits": 8' "$T/q4/config.json" && ok || bad "--force did not replace the checkpoint"
ls -d "$T"/q4.old-* >/dev/null 2>&1 && bad "--force left the old checkpoint" || ok

# a failure while writing: exit 1 (DST's directory is read-only)
mkdir -p "$T/ro" && chmod a-w "$T/ro"
if [ "$(id -u)" -ne 0 ]; then
    expect_exit 1 readonly 'temporary directory' convert "$FIX/glm47-tiny" "$T/ro/x"
else
    ok # root writes anywhere; nothing to test
fi
chmod u+w "$T/ro"

# interrupted: 128 + signal, nothing left behind
"$BIN" convert builtin:glm47-mini:layers=40 "$T/int" --threads 1 >/dev/null 2>"$T/err" &
pid=$!
sleep 0.3
kill -TERM $pid
wait $pid
rc=$?
[ $rc -eq 143 ] && ok || bad "interrupted: exit $rc ($(cat "$T/err"))"
grep -q "interrupted" "$T/err" && ok || bad "no interrupted message: $(cat "$T/err")"
[ ! -e "$T/int" ] && [ -z "$(leftovers)" ] && ok || bad "interrupted run left $(ls -d "$T"/int* 2>/dev/null)"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
