#!/usr/bin/env bash
# session 28 call: prep_token's loads before its barrier — tests + interleaved A/B against adbce3d's decode
set -u
D=.device/ab; B=$D/bin; O=$D/old; R=/tmp/r1; mkdir -p $B $O $R
tar xJf $D/new.tar.xz -C $B; xz -dc $D/old.xz > $O/zmlx-cuda_decode; chmod +x $O/zmlx-cuda_decode
export LD_LIBRARY_PATH="$PWD/$D/lib" ZMLX_SHARED="$PWD/$D" ZMLX_SRC="$PWD"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $R/machine.txt
for t in test_cuda_kernels test_cuda_attn test_cuda; do
  timeout 150 $B/$t > $R/$t.log 2>&1; echo "$t rc=$? $(grep -E '^[0-9]+ passed' $R/$t.log | tail -1)"; grep -m5 "CHECK failed" $R/$t.log
done
dec() { timeout 120 $1/zmlx-cuda_decode builtin:glm47-flash --precision fast --kv-dtype bf16 --patterns default --ctx 16,4096 --synthetic --tokens 16 --runs 3 2>/dev/null | grep -E '^\| default' | awk -F'|' '{printf "%s ", $4}'; }
for r in 1 2 3 4 5; do
  echo "round $r old: $(dec $O)  new: $(dec $B)" | tee -a $R/ab.txt
done
tar czf $OUT/r.tgz -C /tmp r1
