#!/usr/bin/env bash
# cli_bench.sh — the experiment harness end to end: `zmlx bench` on builtin:glm47-tiny with
# the GLM variants (a capsule holding every variant, one ledger entry each, quiet when
# stderr is not a terminal), an ERROR variant that does not stop the others, SKIP(RAM) for
# builtin:glm47-flash decided without loading it, `zmlx report`, `zmlx matrix run /
# report / history / csv / html`, torn ledger lines skipped with a warning, and one-line
# usage errors with exit 2.  The HTML page is rendered with headless chromium when it is
# installed (required when ZMLX_REQUIRE_CHROMIUM=1).
set -u
BIN=${ZMLX_BIN:-build/zmlx}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { # name, command...: the command must succeed
    local name=$1
    shift
    if "$@"; then ok; else bad "$name"; fi
}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
L=$T/matrix.jsonl
VARIANTS=control_swiglu_moe,glm47_rope,shared_experts_overlap,downproj_combine,moe_combine,residual_norm,deepseek_router,preset

# 1. bench with the GLM variants + an ad-hoc set holding an unknown pattern (ERROR)
"$BIN" bench builtin:glm47-tiny --variants "$VARIANTS,moe_mlp+bogus_pattern" --runs 2 --max-tokens 16 \
    --bw-seconds 0.3 --json-out "$T/tiny.json" --ledger "$L" --notes "cli test" >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 0 ] && ok || bad "bench exit $rc: $(head -c 800 "$T/err")"
[ ! -s "$T/err" ] && ok || bad "bench is not quiet on a non-terminal stderr: $(head -c 300 "$T/err")"
grep -q "control_swiglu_moe" "$T/out" && grep -q "capsule   $T/tiny.json" "$T/out" && ok ||
    bad "bench summary table missing: $(head -c 600 "$T/out")"
python3 - "$T/tiny.json" "$L" "$VARIANTS" <<'PY' && ok || bad "tiny capsule/ledger content"
import json, sys
cap = json.load(open(sys.argv[1])); names = sys.argv[3].split(",")
meta = cap["meta"]
for k in ("date", "zmlx_version", "git_commit", "compiler", "compiler_flags", "backend", "device",
          "memory_bandwidth", "command_lines", "hardware"):
    assert k in meta, k
assert meta["memory_bandwidth"]["read_GBps"] > 0
assert set(cap) == {"meta", "moe_mlp+bogus_pattern", *names}, sorted(cap)
for n in names:
    v = cap[n]
    assert v["fidelity"]["verdict"] == "PASS", (n, v["fidelity"])
    assert v["fidelity"]["total"] == 3 * 16 and v["runs"] == 2 and v["gen_tokens"] == 16
    assert len(v["patched"]["decode_tok_s"]) == 2 and len(v["baseline"]["decode_tok_s"]) == 2
    s = v["summary"]
    assert abs(s["decode_speedup"] - v["patched"]["median_decode"] / v["baseline"]["median_decode"]) < 1e-9
    assert abs(s["achieved_GBps"] - s["bytes_per_token"] * v["patched"]["median_decode"] * 1e-9) < 1e-9
    assert "--variants %s " % n in meta["command_lines"][n]
    assert v["notes"] == "cli test"
e = cap["moe_mlp+bogus_pattern"]
assert e["fidelity"]["verdict"] == "ERROR" and "bogus_pattern" in e["error"], e
lines = [json.loads(l) for l in open(sys.argv[2])]
assert len(lines) == len(names) + 1, len(lines)
assert all(l["capsule"] == sys.argv[1] and l["model_id"] == "builtin:glm47-tiny" for l in lines)
assert [l["variant"] for l in lines] == names + ["moe_mlp+bogus_pattern"]
PY

# 2. unsafe variants: SKIP unless --allow-unsafe (only if the registry marks one unsafe)
unsafe=$("$BIN" patterns | awk '$3 == "unsafe" {print $1; exit}')
if [ -n "$unsafe" ]; then
    "$BIN" bench builtin:glm47-tiny --variants "moe_mlp+$unsafe" --runs 1 --max-tokens 4 --bw-seconds 0 \
        --json-out "$T/unsafe.json" --ledger none >/dev/null 2>&1
    python3 -c "import json,sys;v=json.load(open('$T/unsafe.json'))['moe_mlp+$unsafe'];assert v['fidelity']['verdict']=='SKIP',v" &&
        ok || bad "unsafe variant not SKIP"
else
    echo "unsafe: no registered pattern is unsafe; the SKIP decision is unit-tested (test_capsule)"
fi

# 3. SKIP(RAM): the full bf16 glm47-flash (56 GiB) does not fit; decided from the config,
#    never loaded
"$BIN" info builtin:glm47-flash:bits=16 --json | python3 -c "import json,sys; assert not json.load(sys.stdin)['fits']" &&
    ok || bad "premise: builtin:glm47-flash:bits=16 should not fit this machine"
start=$(date +%s)
"$BIN" bench builtin:glm47-flash:bits=16 --variants preset,glm47_rope --runs 5 --max-tokens 32 \
    --json-out "$T/flash.json" --ledger "$L" >"$T/out" 2>"$T/err"
rc=$? took=$(($(date +%s) - start))
[ $rc -eq 0 ] && [ "$took" -lt 30 ] && ok || bad "SKIP(RAM) bench: exit $rc after ${took}s: $(head -c 400 "$T/err")"
python3 - "$T/flash.json" <<'PY' && ok || bad "SKIP(RAM) capsule"
import json, sys
cap = json.load(open(sys.argv[1]))
assert not cap["meta"]["memory"]["fits"]
for n in ("preset", "glm47_rope"):
    v = cap[n]
    assert v["fidelity"]["verdict"] == "SKIP" and v["fidelity"]["detail"].startswith("SKIP(RAM)"), v["fidelity"]
    assert v["memory"]["needed_bytes"] > v["memory"]["available_bytes"] > 0
    assert v["patched"]["median_decode"] is None and v["runs"] == 0
PY
grep -q "SKIP(RAM)" "$T/out" && ok || bad "SKIP(RAM) not in the summary"

# 4. zmlx report: one capsule, then two side by side
"$BIN" report "$T/tiny.json" >"$T/rep" 2>"$T/err" && ok || bad "report exit: $(cat "$T/err")"
python3 - "$T/tiny.json" "$T/rep" <<'PY' && ok || bad "report lacks the capsule's numbers"
import json, sys
cap = json.load(open(sys.argv[1])); text = open(sys.argv[2]).read()
for n, v in cap.items():
    if n == "meta": continue
    assert n in text, n
    if v["patched"]["median_decode"] is not None:
        assert "%.2f" % v["patched"]["median_decode"] in text, (n, v["patched"]["median_decode"])
assert "%.2f" % cap["meta"]["baseline"]["median_decode"] in text
assert "%.1f GB/s" % cap["meta"]["memory_bandwidth"]["read_GBps"] in text
assert "PASS 48/48" in text and "ERROR" in text and "roofline" in text
PY
"$BIN" report "$T/tiny.json" "$T/flash.json" >"$T/rep2" 2>&1 && grep -q "side by side" "$T/rep2" &&
    grep -q "SKIP(RAM)" "$T/rep2" && ok || bad "report of two capsules: $(head -c 400 "$T/rep2")"

# 5. matrix run: explicit pattern sets appended to the same ledger
"$BIN" matrix run builtin:glm47-tiny --patterns moe_mlp,swiglu_mlp --patterns default --runs 1 \
    --max-tokens 8 --ledger "$L" --json-out "$T/run.json" --notes "matrix run" >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 0 ] && ok || bad "matrix run exit $rc: $(head -c 400 "$T/err")"
python3 -c "import json;c=json.load(open('$T/run.json'));assert set(c)=={'meta','moe_mlp+swiglu_mlp','preset'},list(c)" &&
    ok || bad "matrix run variants"
[ "$(wc -l <"$L")" -eq 13 ] && ok || bad "ledger has $(wc -l <"$L") lines, want 9 + 2 + 2"

# 6. matrix views
"$BIN" matrix report --ledger "$L" >"$T/mrep" 2>"$T/err" && ok || bad "matrix report: $(cat "$T/err")"
grep -q "builtin:glm47-flash.*SKIP(RAM)" "$T/mrep" && grep -c "builtin:glm47-tiny" "$T/mrep" | grep -qx 9 &&
    ok || bad "matrix report rows: $(cat "$T/mrep")"
"$BIN" matrix history GLM47-TINY --ledger "$L" >"$T/hist" 2>&1 && ok || bad "matrix history exit"
[ "$(grep -c "builtin:glm47-tiny" "$T/hist")" -eq 11 ] && ! grep -q "glm47-flash" "$T/hist" && ok ||
    bad "matrix history GLM47-TINY: $(cat "$T/hist")"
"$BIN" matrix csv --ledger "$L" >"$T/csv" 2>&1 && ok || bad "matrix csv exit"
python3 - "$T/csv" <<'PY' && ok || bad "matrix csv content"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 13, len(rows)
assert {"model_id", "variant", "fidelity", "decode_speedup", "timestamp"} <= set(rows[0])
assert sum(r["fidelity"] == "SKIP" for r in rows) == 2 and sum(r["fidelity"] == "ERROR" for r in rows) == 1
PY
"$BIN" matrix html --ledger "$L" --out "$T/m.html" >"$T/out" 2>"$T/err" && [ -s "$T/m.html" ] && ok ||
    bad "matrix html: $(cat "$T/err")"
python3 - "$T/m.html" <<'PY' && ok || bad "html is not self-contained"
import re, sys
h = open(sys.argv[1]).read()
assert h.startswith("<!DOCTYPE html>") and h.rstrip().endswith("</html>")
assert h.count("<svg") >= 2, h.count("<svg")  # heatmap + the tiny model's chart
assert "No measured runs" in h  # glm47-flash: SKIP(RAM) only
assert "<script" not in h and "@import" not in h and "url(" not in h
assert not re.search(r'(src|href)\s*=', h), "external reference"
assert "builtin:glm47-tiny" in h and "SKIP(RAM)" in h
PY

# 7. a torn/malformed ledger line: skipped with a warning naming file:line; file untouched
cp "$L" "$T/damaged.jsonl"
printf '{"model_id": broken\n{"model_id":"x","torn":' >>"$T/damaged.jsonl"
sum1=$(md5sum <"$T/damaged.jsonl")
"$BIN" matrix report --ledger "$T/damaged.jsonl" >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 0 ] && grep -q "damaged.jsonl:14: skipping a malformed line" "$T/err" &&
    grep -q "damaged.jsonl:15: skipping a torn last line" "$T/err" && ok ||
    bad "damaged ledger: exit $rc, $(cat "$T/err")"
[ "$sum1" = "$(md5sum <"$T/damaged.jsonl")" ] && ok || bad "reading rewrote the ledger"

# 8. defaults: capsule under benchmarks/capsules/, ledger benchmarks/matrix.jsonl; --json = one line
mkdir -p "$T/cwd"
(cd "$T/cwd" && "$BIN" bench builtin:glm47-tiny --variants control_swiglu_moe --runs 1 --max-tokens 4 \
    --bw-seconds 0 --json >"$T/json" 2>"$T/err")
ls "$T"/cwd/benchmarks/capsules/builtin-glm47-tiny-*Z.json >/dev/null 2>&1 && [ -s "$T/cwd/benchmarks/matrix.jsonl" ] &&
    ok || bad "default capsule/ledger paths: $(ls -R "$T/cwd") $(cat "$T/err")"
[ "$(wc -l <"$T/json")" -eq 1 ] && python3 -c "import json;json.load(open('$T/json'))['meta']" && ok ||
    bad "--json is not one JSON line"

# 9. usage errors: exit 2, one line on stderr
expect_error() { # name, pattern, args...
    local name=$1 pat=$2
    shift 2
    "$BIN" "$@" >"$T/out" 2>"$T/err"
    local rc=$? lines
    lines=$(wc -l <"$T/err")
    if [ $rc -eq 2 ] && [ "$lines" -eq 1 ] && grep -qiE -- "$pat" "$T/err"; then ok; else
        bad "$name: exit $rc, $lines stderr lines, want /$pat/: $(head -c 400 "$T/err")"
    fi
}
expect_error runs0 'runs' bench builtin:glm47-tiny --runs 0
expect_error empty_item 'empty' bench builtin:glm47-tiny --variants preset,,glm47_rope --ledger none
expect_error twice 'twice' bench builtin:glm47-tiny --variants preset,preset --ledger none
expect_error patterns_opt 'variants' bench builtin:glm47-tiny --patterns moe_mlp
expect_error no_model 'nonexistent' bench "$T/nonexistent" --ledger none
expect_error report_missing 'nope.json' report "$T/nope.json"
echo '{"meta": {}}' >"$T/notcap.json"
expect_error report_notcap 'lacks the field' report "$T/notcap.json"
expect_error report_none 'capsule' report
expect_error hist_nosub 'SUBSTR' matrix history --ledger "$L"
expect_error matrix_sub 'unknown subcommand' matrix frobnicate
expect_error no_ledger 'does not exist|No such file' matrix report --ledger "$T/none.jsonl"
expect_error run_nomodel 'MODEL' matrix run --runs 1

# 10. render the HTML page headless (chromium), if installed
CHROME=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -n "$CHROME" ]; then
    "$CHROME" --headless --no-sandbox --disable-gpu --hide-scrollbars --screenshot="$T/m.png" \
        --window-size=1200,900 "file://$T/m.html" >"$T/chrome.log" 2>&1
    rc=$?
    [ $rc -eq 0 ] && [ -s "$T/m.png" ] && ! grep -qE "net::ERR_|Failed to load|ERR_FILE|Uncaught" "$T/chrome.log" && ok ||
        bad "chromium: exit $rc: $(tail -n 5 "$T/chrome.log")"
    python3 - "$T/m.png" <<'PY' && ok || bad "the rendered page looks blank"
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n"
pos, idat, w, h = 8, b"", 0, 0
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    if kind == b"IHDR": w, h, depth, ctype = struct.unpack(">IIBB", data[pos + 8:pos + 18])
    if kind == b"IDAT": idat += data[pos + 8:pos + 8 + n]
    pos += 12 + n
raw = zlib.decompress(idat)
assert w >= 800 and h >= 600, (w, h)
hist = {}
for i in range(0, len(raw), 97):
    hist[raw[i]] = hist.get(raw[i], 0) + 1
top = max(hist.values()) / sum(hist.values())
assert len(hist) > 20 and top < 0.97, (len(hist), top)  # not one flat colour
print("chromium render: %dx%d, %d distinct sampled bytes" % (w, h, len(hist)))
PY
    [ -n "${ZMLX_KEEP_PNG:-}" ] && cp "$T/m.png" "$T/m.html" "$ZMLX_KEEP_PNG"/ 2>/dev/null
    echo "html render check: RAN ($CHROME)"
elif [ "${ZMLX_REQUIRE_CHROMIUM:-0}" = 1 ]; then
    bad "chromium is not installed but ZMLX_REQUIRE_CHROMIUM=1: apt-get install chromium"
else
    echo "html render check: SKIPPED (chromium not installed; ZMLX_REQUIRE_CHROMIUM=1 makes it required)"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
