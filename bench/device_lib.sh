# device_lib.sh — sourced by the device scripts (bench/ep_device.sh, int_device.sh,
# dist_device.sh) before anything else runs: NVLink multicast off, the staged libraries
# ($D/lib) and the image's NCCL on the library path, and the helpers of a bounded call.
# The caller sets D (staging folder), and before using the helpers B (binaries), T (temp
# folder), HARD (seconds the call may take), t0 (its start) and EP (the log gen writes to);
# device_begin sets up the usual start of a call.
export NCCL_NVLS_ENABLE=0
export LD_LIBRARY_PATH="$PWD/$D/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if ! ldconfig -p | grep -q libnccl.so.2; then # NCCL of the image's PyTorch, if not on the path
    nccl=$(find / -name 'libnccl.so.2' -not -path '/proc/*' 2>/dev/null | head -n 1)
    [ -n "$nccl" ] && export LD_LIBRARY_PATH="$(dirname "$nccl"):$LD_LIBRARY_PATH"
fi
summary=()
# The start of a call: $OUT and $B made, $D/bins.tar.xz (binaries built elsewhere)
# unpacked into $B, everything from here on also in $OUT/log.txt, t0 = now.
device_begin() {
    mkdir -p "$OUT" "$B"
    [ -f "$D/bins.tar.xz" ] && tar xJf "$D/bins.tar.xz" -C "$B"
    exec > >(tee "$OUT/log.txt") 2>&1
    t0=$(date +%s)
}
stamp() { echo; echo "=== [$(($(date +%s) - t0)) s] $*"; }
# seconds a step may take: min(want, what is left); time_left: at least 15 s are left
lim() { local l=$((HARD - $(date +%s) + t0)); echo $(($1 < l ? $1 : (l > 1 ? l : 1))); }
time_left() { [ $((HARD - $(date +%s) + t0)) -ge 15 ]; }
note() { summary+=("$*"); echo "RESULT: $*"; }
PROMPT=$(seq -s, 11 3 80) # 24 ids: a prefill chunk, then the decode graph
# generate's logits of every step into $T/TAG.logits
gen() { # tag model gpus max_tokens extra...   (GEN_TIMEOUT seconds, default 90)
    local tag=$1 model=$2 gpus=$3 n=$4
    shift 4
    timeout -k 5 "$(lim "${GEN_TIMEOUT:-90}")" "$B/zmlx" generate "$model" --backend cuda --gpus "$gpus" \
        --prompt-ids "$PROMPT" --max-tokens "$n" --ignore-eos --json --logits-out "$T/$tag.logits" "$@" \
        >"$T/$tag.json" 2>"$T/$tag.err"
    local rc=$?
    { echo "gen $tag $model --gpus $gpus $*: rc=$rc"; tail -n 2 "$T/$tag.err"; } >>"$EP"
    [ $rc -eq 0 ] || { note "$tag ($model --gpus $gpus $*): exit $rc: $(tail -n 1 "$T/$tag.err" | cut -c1-200)"; return $rc; }
}
same() { # what, tag_a, tag_b
    if [ -s "$T/$2.logits" ] && cmp -s "$T/$2.logits" "$T/$3.logits"; then
        note "$1: logits byte-identical ($(stat -c %s "$T/$2.logits") bytes)"
    else
        note "$1: DIFFERENT logits: $(cmp "$T/$2.logits" "$T/$3.logits" 2>&1 | head -c 160)"
    fi
}
