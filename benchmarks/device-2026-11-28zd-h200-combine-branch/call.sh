#!/usr/bin/env bash
# session 29 call 9: the combine's shared-expert row kept before its wait (branch after its loads) — kernel tests, A/B against 22cd0b7
set -u
D=.device/ab; B=$D/bin; mkdir -p $B
tar xJf $D/new.tar.xz -C $B
export LD_LIBRARY_PATH="$PWD/$D/lib" ZMLX_SHARED="$PWD/$D"
timeout 70 $B/test_cuda_kernels > $OUT/test_cuda_kernels.log 2>&1; echo "test_cuda_kernels rc=$? $(grep -E '^[0-9]+ passed' $OUT/test_cuda_kernels.log | tail -1)"; grep -m5 "CHECK failed" $OUT/test_cuda_kernels.log
dec() { timeout 60 $1 builtin:glm47-flash --precision fast --kv-dtype bf16 --patterns default --ctx 16,4096 --synthetic --tokens 16 --runs 3 2>/dev/null | grep -E '^\| default' | awk -F'|' '{printf "%s ", $4}'; }
for r in 1 2 3; do echo "round $r 22cd0b7: $(dec $B/P22)  new: $(dec $B/B4)" | tee -a $OUT/ab.txt; done
