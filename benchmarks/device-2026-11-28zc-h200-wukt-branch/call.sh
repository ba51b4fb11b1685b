#!/usr/bin/env bash
# session 29 call 8: W_UK^T's rows kept before its wait (the l2 branch in k_matvec_t) — kernel tests, SASS, A/B against 22cd0b7
set -u
D=.device/ab; B=$D/bin; R=/tmp/r8; mkdir -p $B $R
tar xJf $D/new.tar.xz -C $B
export LD_LIBRARY_PATH="$PWD/$D/lib" ZMLX_SHARED="$PWD/$D"
timeout 120 $B/test_cuda_kernels > $R/test_cuda_kernels.log 2>&1; echo "test_cuda_kernels rc=$? $(grep -E '^[0-9]+ passed' $R/test_cuda_kernels.log | tail -1)"; grep -m5 "CHECK failed" $R/test_cuda_kernels.log
bash tools/cuda_sass_early.sh $B/B3 --all > $R/sass.txt 2>&1; echo "sass rc=$?"; grep -E 'k_mv_lean<5,1,1,0,0,8>|k_matvec_t' $R/sass.txt | head -4
dec() { timeout 120 $1 builtin:glm47-flash --precision fast --kv-dtype bf16 --patterns default --ctx 16,4096 --synthetic --tokens 16 --runs 3 2>/dev/null | grep -E '^\| default' | awk -F'|' '{printf "%s ", $4}'; }
for r in 1 2 3 4; do echo "round $r 22cd0b7: $(dec $B/P22)  new: $(dec $B/B3)" | tee -a $R/ab.txt; done
cp $R/ab.txt $R/sass.txt $OUT/
