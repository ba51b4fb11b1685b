#!/usr/bin/env bash
# tokenizer_encode.sh — single-thread encode throughput, zmlx vs Hugging Face `tokenizers`,
# on the same tokenizer.json and the same multilingual text (a benchmark, not a test).
#   PY=python-with-tokenizers TOKENIZER=../shared/fixtures/tokenizers/glm-bpe bench/tokenizer_encode.sh
# The text (~4 MB, deterministic) mixes the fixture's 400 golden strings with generated
# sentences in Latin, Cyrillic, Greek, Arabic, Devanagari, CJK and Hangul scripts, digits,
# code and emoji.  Both sides encode it line by line with special tokens parsed; the id
# totals must agree.  HF runs with RAYON_NUM_THREADS=1 and plain encode() calls.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
TOK=${TOKENIZER:-../shared/fixtures/tokenizers/glm-bpe}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$PY" - "$TOK/golden.json" "$T/text.jsonl" <<'PY'
import json, random, sys
g = json.load(open(sys.argv[1]))["cases"]
rnd = random.Random(7)
scripts = [(0x41, 0x7a), (0x410, 0x44f), (0x391, 0x3c9), (0x627, 0x64a), (0x915, 0x939),
           (0x4e00, 0x9fa5), (0xac00, 0xd7a3), (0x3041, 0x3096), (0x1f600, 0x1f64f)]
def word():
    lo, hi = rnd.choice(scripts)
    return "".join(chr(rnd.randint(lo, hi)) for _ in range(rnd.randint(1, 8)))
lines, size = [], 0
while size < 4_000_000:
    if rnd.random() < 0.3:
        s = rnd.choice(g)["text"]
    else:
        s = " ".join(word() for _ in range(rnd.randint(3, 30)))
        if rnd.random() < 0.2: s += " x = f(%d) + 3.14;\n" % rnd.randint(0, 99999)
    lines.append(s); size += len(s.encode())
with open(sys.argv[2], "w") as f:
    for s in lines: f.write(json.dumps(s) + "\n")
PY
build/zmlx-tok_encode "$TOK" "$T/text.jsonl" --repeat 3 > "$T/zmlx.json"
RAYON_NUM_THREADS=1 "$PY" - "$TOK/tokenizer.json" "$T/text.jsonl" > "$T/hf.json" <<'PY'
import json, sys, time
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[1])
lines = [json.loads(l) for l in open(sys.argv[2])]
nbytes = sum(len(s.encode()) for s in lines)
best = 1e30
for _ in range(3):
    t0 = time.perf_counter(); total = 0
    for s in lines: total += len(tok.encode(s, add_special_tokens=False).ids)
    best = min(best, time.perf_counter() - t0)
print(json.dumps({"impl": "hf-tokenizers", "lines": len(lines), "bytes": nbytes, "ids": total,
                  "seconds": best, "MBps": nbytes / best * 1e-6}))
PY
python3 - "$T/zmlx.json" "$T/hf.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
print("| implementation | MB/s (1 thread) | ids | input MB |")
print("|---|---|---|---|")
for r in (a, b):
    print("| %s | %.2f | %d | %.2f |" % (r["impl"], r["MBps"], r["ids"], r["bytes"] * 1e-6))
print("ids agree" if a["ids"] == b["ids"] else "IDS DIFFER: %d vs %d" % (a["ids"], b["ids"]))
print("zmlx / HF speed: %.2fx" % (a["MBps"] / b["MBps"]))
PY
