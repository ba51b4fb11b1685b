#!/usr/bin/env bash
# cross_aarch64.sh — the CPU kernels on aarch64 without an ARM machine: cross-compiles
# the kernel library (src/backend/cpu, the reference ops, weights, dtypes; no jansson or
# PCRE2) and tests/test_kernels.c with Debian's aarch64-linux-gnu-gcc into one static
# binary, then runs it under qemu-aarch64 once per ISA level (neon, neondot forced with
# ZMLX_CPU_ISA), and checks the dispatcher on a CPU model without the dot product
# (cortex-a53: auto picks neon, a forced neondot is refused with exit 77).
#   tests/cross_aarch64.sh [BUILD_DIR]      (ctest: cross_aarch64)
# Exit 77 (skipped) when the tools are absent, except under CI=true, which installs them
# (scripts/setup.sh: gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user).
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$SRC/build/cross-aarch64}
CC=${ZMLX_CROSS_CC:-aarch64-linux-gnu-gcc}
QEMU=${ZMLX_QEMU:-qemu-aarch64}
if ! command -v "$CC" >/dev/null || ! command -v "$QEMU" >/dev/null; then
    msg="$CC or $QEMU not found (apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)"
    if [ "${CI:-}" = true ]; then
        echo "FAIL: $msg; scripts/setup.sh installs them in CI"
        exit 1
    fi
    echo "SKIP: $msg"
    exit 77
fi
mkdir -p "$OUT" || exit 1

# the warnings of CMakeLists.txt
flags=(-std=c11 -O2 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla
       -Wformat=2 -Wno-unused-parameter -ffp-contract=off -fno-math-errno -D_GNU_SOURCE
       -DZMLX_HAVE_NEON=1 -I"$SRC/include" -I"$SRC/src" -I"$SRC/tests")
srcs=("$SRC"/src/backend/cpu/*.c "$SRC"/src/backend/pool.c "$SRC"/src/backend/backend.c
      "$SRC"/src/model/weight.c "$SRC"/src/ops/ops_ref.c "$SRC"/src/ops/quant.c
      "$SRC"/src/core/dtype.c "$SRC"/src/core/err.c "$SRC"/tests/test_kernels.c)
objs=()
fail=0
for s in "${srcs[@]}"; do
    case "$s" in *_avx2.c | *_avx512*.c) continue ;; esac
    o="$OUT/$(basename "${s%.c}").o"
    extra=()
    case "$s" in *_neondot.c) extra=(-march=armv8.2-a+dotprod) ;; esac
    "$CC" "${flags[@]}" "${extra[@]}" -c "$s" -o "$o" || fail=1
    objs+=("$o")
done
[ $fail = 0 ] && "$CC" -static -o "$OUT/test_kernels" "${objs[@]}" -lm -lpthread || {
    echo "FAIL: cross build"
    exit 1
}
echo "built $OUT/test_kernels with $("$CC" --version | head -1)"

rc=0
for isa in neon neondot; do
    start=$(date +%s)
    ZMLX_CPU_ISA=$isa "$QEMU" -cpu max "$OUT/test_kernels" >"$OUT/$isa.log" 2>&1
    r=$?
    echo "aarch64 $isa (qemu -cpu max): exit $r after $(($(date +%s) - start)) s: $(tail -n 1 "$OUT/$isa.log")"
    if [ $r != 0 ]; then
        grep -m 20 "CHECK failed\|SKIP" "$OUT/$isa.log"
        rc=1
    fi
done
# dispatch on a CPU without the dot product: auto is neon, a forced neondot is refused
"$QEMU" -cpu cortex-a53 "$OUT/test_kernels" --which >"$OUT/a53.log" 2>&1
grep -q "^kernels: neon (auto" "$OUT/a53.log" || { echo "FAIL: cortex-a53 auto: $(head -n 1 "$OUT/a53.log")"; rc=1; }
ZMLX_CPU_ISA=neondot "$QEMU" -cpu cortex-a53 "$OUT/test_kernels" --which >"$OUT/a53dot.log" 2>&1
r=$?
if [ $r != 77 ] || ! grep -q "lacks asimddp" "$OUT/a53dot.log"; then
    echo "FAIL: forced neondot on cortex-a53: exit $r: $(head -n 1 "$OUT/a53dot.log")"
    rc=1
fi
[ $rc = 0 ] && echo "PASS: aarch64 kernels (neon, neondot) and dispatch"
exit $rc
