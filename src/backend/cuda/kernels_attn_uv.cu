/*
 * kernels_attn_uv.cu — the absorbed attention of one token at a short context with its
 * W_UV product in one launch (cuk_attn_uv, glm47_rope's decode): per head h,
 *
 *   o_lat_h = attention of the query row over positions 0 .. pos   attn.cuh's short path
 *   y_h = W_UV[h] o_lat_h                                          cuk_matvec's per-head
 *                                                                  product
 *
 * where the unfused decode runs three launches (the split attention, its merge, W_UV),
 * each ending 0.6-5 us after the one before at short contexts whatever its bytes
 * (docs/cuda.md).  Here o_lat_h never leaves shared memory, and W_UV's rows are in
 * registers before the wait for the query (they are model constants).
 *
 * Grid (split, H): the `split` blocks of head h each compute the head's attention (the
 * same values: at a short context the work is small and reads the cache from L2 after
 * the first block) and 1/split of W_UV's rows.  The same device functions in the same
 * order as the three launches (attn_short_head; k_mv_lean's stage_rows32, warp_dots'
 * sums as dot.cuh's wd_load / wd_sum): the same bits, which tests/test_cuda_kernels.c
 * checks.
 *
 * Measured and dropped (docs/cuda.md, benchmarks/device-2026-11-27-h100-chain/): W_UK^T
 * and the MLA epilogue in the same launch, every block computing the head's query (0.77x
 * at context 16) or, on Hopper, a cluster of the head's blocks sharing its columns
 * through distributed shared memory (1.00-1.01x): the separate W_UK^T launch is cheaper
 * than the cluster's barrier and the blocks' longer paths.
 */
#include "backend/cuda/attn.cuh"
#include "backend/cuda/dot.cuh"

enum { AU_WARPS = AS_WARPS, AU_THREADS = AU_WARPS * 32, AU_OPW = 4 /* W_UV rows a warp's batch */ };

/* Shared memory of a block (floats): the attention's warp states (reused by W_UV's staged
   input), the query row, the attention's output. */
static size_t au_smem(int64_t R, int64_t rope, int64_t cols_uv) {
    int64_t red = (int64_t)AS_WARPS * R + 16;
    const int64_t st = stage_floats(cols_uv, true);
    if (red < st) red = st;
    return (size_t)(red + (R + rope + 3) / 4 * 4 + R) * sizeof(float);
}

/* A warp's batch of W_UV rows o .. o + AU_OPW (those below r_hi) into registers. */
template <int K>
__device__ __forceinline__ void au_rows(const cuw &w, int64_t row0, int o, int r_hi, int nj, bool (&valid)[AU_OPW],
                                        wd_raw<K, AU_OPW, 1> &wr) {
    rowp r[AU_OPW];
#pragma unroll
    for (int k = 0; k < AU_OPW; k++) {
        valid[k] = o + k < r_hi;
        r[k] = row_of(w, 0, row0 + (valid[k] ? o + k : 0));
    }
    wd_load<K, AU_OPW, 1, CU_SDT_BF16>(r, valid, nj, w.group, wr);
}

template <int K, bool BF16>
__global__ void __launch_bounds__(AU_THREADS, 2) k_attn_uv(const __grid_constant__ cu_attn_uv a) {
    extern __shared__ __align__(16) float sm[];
    pdl_launch();
    const cu_attn &at = a.at;
    const cu_mv &uv = a.uv;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int h = (int)blockIdx.y, sp = (int)blockIdx.x, ns = (int)gridDim.x;
    const int R = (int)at.R, W = R + (int)at.rope;
    int64_t red_n = (int64_t)AS_WARPS * R + 16;
    if (red_n < stage_floats(uv.w.cols, true)) red_n = stage_floats(uv.w.cols, true);
    float *red = sm, *qrow = sm + red_n, *olat = qrow + (W + 3) / 4 * 4;

    /* this block's W_UV rows [r_lo, r_hi) of the head: a warp's first batch in registers
       before the wait (model constants), the rest to L2 */
    const int vd = (int)uv.rpg, per = (vd + ns - 1) / ns, r_lo = sp * per, r_hi = r_lo + per < vd ? r_lo + per : vd;
    const int64_t uvrow = uv.row0 + (int64_t)(h % (int)uv.gmod) * uv.grs;
    const int nu = (int)(uv.w.cols / 32), nj = lane_units(nu, lane), o0 = r_lo + warp * AU_OPW;
    wd_raw<K, AU_OPW, 1> wr;
    bool valid[AU_OPW];
    au_rows<K>(uv.w, uvrow, o0, r_hi, nj, valid, wr);
    const int rest = r_lo + AU_WARPS * AU_OPW; /* rows past every warp's first batch */
    if (r_hi > rest) prefetch_l2(row_of(uv.w, 0, uvrow + rest).d, (int64_t)(r_hi - rest) * uv.w.ld);
    pdl_wait();
    const int Ti = at.step->pos + 1;
    if (Ti > AS_MAX) __trap(); /* the host picks this launch for short contexts only */

    /* the attention (attn.cuh's short path) of the query row, its output here */
    for (int c = tid; c < W; c += blockDim.x) qrow[c] = at.q[(int64_t)h * W + c];
    __syncthreads();
    attn_short_head<BF16, BF16 ? 3 : 2>(at, Ti, nullptr, qrow, olat, red);
    __syncthreads();

    /* y_h = W_UV[h] o_lat_h: k_mv_lean's staging, warp_dots' sums (dot.cuh's wd_sum) */
    stage_rows32<K, true>(olat, 0, nu, 1, red, stage_floats(uv.w.cols, true), uv.w.group);
    __syncthreads();
    const xstage x1 = xstage_at(red, uv.w.cols);
    xstage xs[AU_OPW];
#pragma unroll
    for (int k = 0; k < AU_OPW; k++) xs[k] = x1;
    for (int o = o0; o < r_hi; o += AU_WARPS * AU_OPW) {
        if (o != o0) au_rows<K>(uv.w, uvrow, o, r_hi, nj, valid, wr); /* fewer than 8 blocks a head */
        float out[AU_OPW];
        wd_sum<K, AU_OPW, 1>(wr, valid, xs, nj, out);
#pragma unroll
        for (int k = 0; k < AU_OPW; k++)
            if (lane == k && valid[k]) uv.y[(int64_t)h * uv.ys + o + k] = out[k];
    }
}

extern "C" bool cuk_attn_uv_ok(const cu_attn_uv *p, cu_q q) {
    const cu_mv &uv = p->uv;
    const cu_attn &at = p->at;
    const int64_t R = at.R, W = R + at.rope;
    return q.fast && (uv.w.kind == ZW_AFFINE4 || uv.w.kind == ZW_AFFINE8) && uv.w.sdt == CU_SDT_BF16 &&
           uv.w.group >= 32 && uv.w.cols == R && uv.w.cols <= 32 * 32 /* wd_load: a unit a lane */ &&
           R >= 32 && R <= ZCU_ATTN_MAX_R && R % 32 == 0 && at.rope >= 0 && at.rope % 2 == 0 && W % 4 == 0 &&
           W <= AS_CH * 128 && uv.groups == at.H && uv.gmod >= 1 && uv.rpg >= 1 && !uv.idx && !uv.routed &&
           !uv.norm && uv.epi == CU_EPI_STORE && at.q && at.cache && at.step && !at.idx && at.n_q == 1 &&
           at.H >= 1 && at.H <= 65535 && p->split >= 1 && p->split <= 64;
}

extern "C" cudaError_t cuk_attn_uv(const cu_attn_uv *p, cu_q q) {
    if (!cuk_attn_uv_ok(p, q)) return cudaErrorInvalidValue;
    const size_t smem = au_smem(p->at.R, p->at.rope, p->uv.w.cols);
    const dim3 grid((unsigned)p->split, (unsigned)p->at.H), block(AU_THREADS);
    if (p->uv.w.kind == ZW_AFFINE4)
        return p->at.cache_bf16 ? launch(q, grid, block, smem, k_attn_uv<ZW_AFFINE4, true>, *p)
                                : launch(q, grid, block, smem, k_attn_uv<ZW_AFFINE4, false>, *p);
    return p->at.cache_bf16 ? launch(q, grid, block, smem, k_attn_uv<ZW_AFFINE8, true>, *p)
                            : launch(q, grid, block, smem, k_attn_uv<ZW_AFFINE8, false>, *p);
}

extern "C" cudaError_t cuk_attn_uv_init(int optin) {
    const size_t want = au_smem(ZCU_ATTN_MAX_R, AS_CH * 128 - ZCU_ATTN_MAX_R, 32 * 32);
    const int bytes = want < (size_t)optin ? (int)want : optin;
    const cudaFuncAttribute at = cudaFuncAttributeMaxDynamicSharedMemorySize;
    cudaError_t err = cudaFuncSetAttribute(k_attn_uv<ZW_AFFINE4, true>, at, bytes);
    if (err == cudaSuccess) err = cudaFuncSetAttribute(k_attn_uv<ZW_AFFINE4, false>, at, bytes);
    if (err == cudaSuccess) err = cudaFuncSetAttribute(k_attn_uv<ZW_AFFINE8, true>, at, bytes);
    if (err == cudaSuccess) err = cudaFuncSetAttribute(k_attn_uv<ZW_AFFINE8, false>, at, bytes);
    return err;
}
