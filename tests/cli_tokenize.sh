#!/usr/bin/env bash
# cli_tokenize.sh — the CLI contract of `zmlx tokenize` / `zmlx detokenize` and of chat in
# `zmlx generate`: golden ids through the CLI (glm-bpe fixture: HF tokenizers; kimi-tiny
# fixture: tiktoken), --jsonl, round trips, one clear error line + exit 2 for broken input,
# generate --chat on a builtin model, and the interactive chat driven through a
# pseudo-terminal for two turns (the KV cache kept: turn 2 adds only its own tokens).
set -u
BIN=${ZMLX_BIN:-build/zmlx}
SHARED=${ZMLX_SHARED:-../shared}
SRC=${ZMLX_SRC:-.}
GLM=$SHARED/fixtures/tokenizers/glm-bpe
KIMI=$SRC/tests/fixtures/kimi-tiny
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# golden ids through the CLI, and back: the first 40 cases of each fixture, one per --text
for fx in "$GLM" "$KIMI"; do
    python3 - "$fx/golden.json" "$BIN" "$fx" <<'PY' && ok || bad "golden ids through the CLI ($fx)"
import json, subprocess, sys
golden, binary, fx = sys.argv[1:]
cases = [c for c in json.load(open(golden))["cases"] if "text" in c and "\0" not in c["text"]]
for c in cases[:40]:
    out = subprocess.run([binary, "tokenize", fx, "--text", c["text"]], capture_output=True,
                         text=True, check=True).stdout
    got = json.loads(out)
    assert out.count("\n") == 1 and got["ids"] == c["ids"] and got["n"] == len(c["ids"]), c["text"]
    if c["ids"]:
        ids = ",".join(map(str, c["ids"]))
        back = json.loads(subprocess.run([binary, "detokenize", fx, "--ids", ids],
                                         capture_output=True, text=True, check=True).stdout)
        assert back["text"] == c.get("decoded", c["text"]), (back, c["text"])
PY
done

# --jsonl: every golden case in one run, one array per line, in order (stdin too)
python3 - "$GLM/golden.json" "$BIN" "$GLM" "$T" <<'PY' && ok || bad "--jsonl on the glm-bpe goldens"
import json, subprocess, sys
golden, binary, fx, tmp = sys.argv[1:]
cases = json.load(open(golden))["cases"]
with open(tmp + "/in.jsonl", "w") as f:
    for c in cases:
        f.write(json.dumps(c["text"]) + "\n")
for src, stdin in ((tmp + "/in.jsonl", None), ("-", open(tmp + "/in.jsonl"))):
    out = subprocess.run([binary, "tokenize", fx, "--jsonl", src], stdin=stdin,
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert [json.loads(l) for l in out] == [c["ids"] for c in cases]
PY

# --no-special: special tokens written in the text stay text
sp=$("$BIN" tokenize "$GLM" --text "[gMASK]<sop>" | python3 -c "import json,sys;print(json.load(sys.stdin)['n'])")
ns=$("$BIN" tokenize "$GLM" --text "[gMASK]<sop>" --no-special | python3 -c "import json,sys;print(json.load(sys.stdin)['n'])")
[ "$sp" = 2 ] && [ "${ns:-0}" -gt 2 ] && ok || bad "--no-special: $sp vs $ns ids"
"$BIN" tokenize "$KIMI" --text "<|im_end|>" | grep -q '"n":1' && ok || bad "kimi special token"

# a tokenizer.json file works as PATH; builtin: is the byte-level fallback
"$BIN" tokenize "$GLM/tokenizer.json" --text "Hello" | grep -q '"ids":\[' && ok || bad "tokenizer.json PATH"
[ "$("$BIN" tokenize builtin:glm47-tiny --text "hé")" = '{"ids":[104,195,169],"n":3}' ] && ok ||
    bad "builtin byte tokenizer"
[ "$("$BIN" detokenize builtin:glm47-tiny --ids 104,195,169,300)" = '{"text":"h\u00E9<300>"}' ] &&
    ok || bad "builtin detokenize"
# invalid UTF-8 comes back as U+FFFD in JSON
[ "$("$BIN" detokenize builtin:glm47-tiny --ids 104,255)" = '{"text":"h\uFFFD"}' ] && ok ||
    bad "invalid UTF-8 in detokenize"

# broken input: exit 2, exactly one line on stderr naming the cause
expect_error() { # name, pattern, args...
    local name=$1 pat=$2
    shift 2
    "$BIN" "$@" >"$T/out" 2>"$T/err"
    local rc=$? lines
    lines=$(wc -l <"$T/err")
    if [ $rc -eq 2 ] && [ "$lines" -eq 1 ] && grep -qiE -- "$pat" "$T/err" && [ ! -s "$T/out" ]; then ok; else
        bad "$name: exit $rc, $lines stderr lines, want /$pat/: $(head -c 400 "$T/err")"
    fi
}
expect_error missing_dir 'nonexistent.*(cannot open|no such)' tokenize "$T/nonexistent" --text x
expect_error missing_jsonl 'nope.jsonl.*cannot open' tokenize "$GLM" --jsonl "$T/nope.jsonl"
printf '"ok"\n[1]\n' >"$T/badline.jsonl"
"$BIN" tokenize "$GLM" --jsonl "$T/badline.jsonl" >"$T/out" 2>"$T/err"
[ $? -eq 2 ] && grep -q "line 2: expected one JSON string" "$T/err" && [ "$(wc -l <"$T/out")" -eq 1 ] &&
    ok || bad "bad --jsonl line: $(cat "$T/err")"
expect_error bad_ids 'item 2 is not a token id' detokenize "$GLM" --ids 1,x
expect_error id_range 'item 1 is not a token id in \[0, 6000\)' detokenize "$GLM" --ids 6000
expect_error negative 'not a token id' detokenize "$GLM" --ids -1
expect_error no_text 'exactly one of --text' tokenize "$GLM"
expect_error both 'exactly one of --text' tokenize "$GLM" --text a --jsonl b
expect_error no_ids 'give --ids' detokenize "$GLM"
expect_error option 'unknown option' tokenize "$GLM" --frobnicate
mkdir -p "$T/badtk" && printf 'not base64 at all\n' >"$T/badtk/tiktoken.model" && echo '{}' >"$T/badtk/tokenizer_config.json"
expect_error bad_tiktoken 'tiktoken.model: line 1' tokenize "$T/badtk" --text x
mkdir -p "$T/nocfg" && cp "$KIMI/tiktoken.model" "$T/nocfg/"
expect_error no_config 'tokenizer_config.json.*special tokens' tokenize "$T/nocfg" --text x
expect_error chat_ids 'does not take --prompt-ids' generate builtin:glm47-tiny --chat --prompt-ids 1
expect_error no_think 'use it with --chat' generate builtin:glm47-tiny --no-think

# generate --chat on a builtin model: the template as bytes, then generation
out=$("$BIN" generate builtin:glm47-tiny --chat --prompt "hi" --max-tokens 4 --json </dev/null 2>"$T/err")
echo "$out" | python3 -c "
import json, sys
j = json.load(sys.stdin)
assert bytes(j['prompt_ids']) == b'[gMASK]<sop><|user|>hi<|assistant|><think>', j['prompt_ids']
assert len(j['tokens']) == 4
" && ok || bad "generate --chat: $out $(cat "$T/err")"
out=$("$BIN" generate builtin:glm47-tiny --chat --no-think --prompt "hi" --max-tokens 2 --json </dev/null 2>&1)
echo "$out" | python3 -c "import json,sys;assert bytes(json.load(sys.stdin)['prompt_ids']).endswith(b'<|assistant|></think>')" &&
    ok || bad "generate --chat --no-think: $out"
"$BIN" generate builtin:glm47-tiny --chat --max-tokens 2 </dev/null >"$T/out" 2>"$T/err" && ok ||
    bad "--chat with no prompt and no terminal: $(cat "$T/err")"

# the interactive chat through a pseudo-terminal: two turns, then /exit
python3 - "$BIN" <<'PY' && ok || bad "interactive chat over a pty"
import os, pty, re, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "generate", "builtin:glm47-tiny", "--chat", "--max-tokens", "5"])
buf = b""
def until(pat, timeout=60):
    global buf
    end = time.time() + timeout
    while time.time() < end:
        if select.select([fd], [], [], 0.2)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                return False
            buf += chunk
            if re.search(pat, buf):
                return True
    return False
assert until(rb"> $"), buf
os.write(fd, b"hello there\n")
assert until(rb"\[turn 1:[^\]]*\]\r?\n> $"), buf
os.write(fd, b"and again\n")
assert until(rb"\[turn 2:[^\]]*\]\r?\n> $"), buf
os.write(fd, b"/exit\n")
_, status = os.waitpid(pid, 0)
assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
turns = [tuple(map(int, t)) for t in re.findall(
    rb"\[turn \d: \+(\d+) prompt tokens, (\d+) generated, context (\d+)", buf)]
(p1, g1, c1), (p2, g2, c2) = turns
# turn 1: [gMASK]<sop><|user|>hello there<|assistant|><think> (51 bytes); turn 2 appends only
# <|user|>and again<|assistant|><think> (37 bytes) to the cached context
assert (p1, p2) == (51, 37) and c1 == p1 + g1 and c2 == c1 + p2 + g2, turns
PY

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
