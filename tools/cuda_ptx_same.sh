#!/usr/bin/env bash
# cuda_ptx_same.sh — is a CUDA refactor code-neutral?  Compiles every kernel file
# (src/backend/cuda/*.cu) of a git revision and of the working tree to PTX, with the
# build's code-affecting flags (-O3 -DNDEBUG --fmad=false, no -lineinfo: moved lines do not
# count), and says per file whether the PTX is byte-identical.  Identical PTX means
# identical machine code (ptxas is deterministic), so a change that passes here needs no
# GPU run to keep its tests and timings; one that differs does.
#
# Usage: tools/cuda_ptx_same.sh [REV] [ARCH...]
#   REV   the revision to compare with (default HEAD)
#   ARCH  virtual architectures (default: compute_90 compute_80)
# Exit: 0 all identical, 1 some file differs, 2 usage or build error.  Needs nvcc (here: the
# CUDA toolkit on PATH or in /usr/local/cuda/bin); about 40 s a file and architecture.
set -euo pipefail
cd "$(dirname "$0")/.."
REV=${1:-HEAD}
shift || true
ARCHS=("$@")
[ ${#ARCHS[@]} -gt 0 ] || ARCHS=(compute_90 compute_80)
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
[ -x "$NVCC" ] || { echo "cuda_ptx_same: nvcc not found" >&2; exit 2; }
git rev-parse --verify --quiet "$REV^{commit}" >/dev/null || { echo "cuda_ptx_same: no revision '$REV'" >&2; exit 2; }
T=$(mktemp -d)
trap 'git worktree remove --force "$T/old" >/dev/null 2>&1 || true; rm -rf "$T"' EXIT
trap 'exit 130' INT TERM # interrupted: the EXIT trap still removes the checkout
git worktree add --detach --quiet "$T/old" "$REV"
ptx() { # tree file arch out
    "$NVCC" -DZMLX_HAVE_CUDA=1 -DZMLX_HAVE_X86=1 -D_GNU_SOURCE -I"$1/include" -I"$1/src" -O3 -DNDEBUG \
        -std=c++17 --fmad=false -arch="$3" -x cu -ptx "$1/$2" -o "$4"
}
rc=0
for f in src/backend/cuda/*.cu; do
    for a in "${ARCHS[@]}"; do
        if [ ! -f "$T/old/$f" ]; then
            echo "new        $f"
            continue
        fi
        ptx "$PWD" "$f" "$a" "$T/new.ptx" || exit 2
        ptx "$T/old" "$f" "$a" "$T/old.ptx" || exit 2
        if cmp -s "$T/new.ptx" "$T/old.ptx"; then
            echo "identical  $f ($a)"
        else
            echo "DIFFERS    $f ($a)"
            rc=1
        fi
    done
done
exit $rc
