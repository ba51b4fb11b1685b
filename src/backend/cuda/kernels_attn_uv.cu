/*
 * kernels_attn_uv.cu — the absorbed attention of one token at a short or middle context
 * with its W_UV product in one launch (cuk_attn_uv, glm47_rope's decode): per head h,
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
 * Grid (split, H): the `split` blocks of head h each compute 1/split of W_UV's rows from
 * o_lat_h.  With at.spread (the decode's spread mode: Hopper, the spread's band of
 * entries, split == ZCU_ATTN_SPREAD_N) they are a cluster and share the head's entries
 * (below), as cuk_attn_spread, the baseline's attention launch there, does; otherwise
 * (the short path) each computes the head's whole attention (the same values: at a short
 * context the work is small and reads the cache from L2 after the first block).  Either
 * way the same device functions in the same order as the launches it replaces
 * (attn_short_head or attn_spread_head; k_mv_lean's stage_rows32, warp_dots' sums as
 * dot.cuh's wd_load / wd_sum): the same bits, which tests/test_cuda_attn.c checks.
 *
 * Measured and dropped (docs/cuda.md, benchmarks/device-2026-11-27-h100-chain/): W_UK^T
 * and the MLA epilogue in the same launch, every block computing the head's query (0.77x
 * at context 16) or, on Hopper, a cluster of the head's blocks sharing its columns
 * through distributed shared memory (1.00-1.01x): the separate W_UK^T launch is cheaper
 * than the cluster's barrier and the blocks' longer paths.
 */
#include <cooperative_groups.h>

#include "backend/cuda/attn.cuh"
#include "backend/cuda/dot.cuh"

static_assert(ZCU_ATTN_SPREAD_N <= 8, "au_spread_merge: at most 8 blocks a cluster");

enum { AU_WARPS = AS_WARPS, AU_THREADS = AU_WARPS * 32, AU_OPW = 4 /* W_UV rows a warp's batch */ };

/* Shared memory of a block (floats): the attention's warp states (reused by W_UV's staged
   input), the query row, the attention's output, the block's state (the spread). */
static size_t au_smem(int64_t R, int64_t rope, int64_t cols_uv) {
    int64_t red = (int64_t)AS_WARPS * R + 16;
    const int64_t st = stage_floats(cols_uv, true);
    if (red < st) red = st;
    return (size_t)(red + (R + rope + 3) / 4 * 4 + R + (R + 2 + 3) / 4 * 4) * sizeof(float);
}

/*
 * The spread (Hopper): the `split` blocks of head h are a thread-block cluster and share
 * the head's entries instead of each walking all of them: block b's warp w walks entries
 * 8 b + w, 8 b + w + 8 split, ... (attn_short_walk), the block merges its warps' states
 * (attn_short_merge, unnormalised: its sums, max and sum in `st`), and after one cluster
 * barrier every block merges the split blocks' states in block order from their shared
 * memory into the same o_lat_h (the same bits in every block: each computes 1/split of
 * W_UV's rows from it).  Tokens-class as the short path and the splits (a third order
 * of the same sums; one block alone would give the short path's bits).  A block leaves only
 * after every block of its cluster has read its state (the second barrier's wait).
 */
__device__ __forceinline__ void au_cluster_arrive() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("barrier.cluster.arrive.release.aligned;" ::: "memory");
#endif
}
__device__ __forceinline__ void au_cluster_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("barrier.cluster.wait.acquire.aligned;" ::: "memory");
#endif
}
__device__ __forceinline__ void au_cluster_sync() {
    au_cluster_arrive();
    au_cluster_wait();
}

/* o_lat_h (normalised) into out from the ns blocks' states at `st` in each block's shared
   memory (block order, as attn_short_merge merges warps); after au_cluster_sync. */
__device__ __forceinline__ void au_spread_merge(int R, int ns, float *st, float *out) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    const cooperative_groups::cluster_group cl = cooperative_groups::this_cluster();
    float M = -INFINITY, L = 0.0f, wt[8];
    const float *ps[8];
#pragma unroll
    for (int s = 0; s < 8; s++) {
        ps[s] = s < ns ? cl.map_shared_rank(st, s) : st;
        wt[s] = s < ns ? ps[s][R] : -INFINITY; /* the block's max first */
        M = fmaxf(M, wt[s]);
    }
#pragma unroll
    for (int s = 0; s < 8; s++) {
        const float l = s < ns ? ps[s][R + 1] : 0.0f;
        wt[s] = l > 0.0f ? expf(__fsub_rn(wt[s], M)) : 0.0f;
        L = __fadd_rn(L, __fmul_rn(l, wt[s]));
    }
    const float inv = __fdiv_rn(1.0f, L);
    for (int c = threadIdx.x; c < R; c += blockDim.x) {
        float v[8], o = 0.0f;
#pragma unroll
        for (int s = 0; s < 8; s++) v[s] = s < ns ? ps[s][c] : 0.0f; /* every peer's load in flight */
#pragma unroll
        for (int s = 0; s < 8; s++)
            if (s < ns) o = fmaf(wt[s], v[s], o);
        out[c] = __fmul_rn(o, inv);
    }
#else
    (void)R, (void)ns, (void)st, (void)out;
    __trap();
#endif
}

/* The spread of head h's entries over the ns blocks of its cluster (this one: rank sp)
   into olat (every block the same bits); after it every block calls au_cluster_wait
   before it leaves.  The query row at qrow (a barrier after it was written); red: the
   warps' states, st: the block's (R + 2 floats). */
template <bool BF16>
__device__ __forceinline__ void attn_spread_head(const cu_attn &at, int Ti, const float *qrow, float *red, float *st,
                                                 float *olat, int sp, int ns) {
    attn_short_walk<BF16, BF16 ? 3 : 2>(at, Ti, nullptr, qrow, red, sp * AS_WARPS, ns * AS_WARPS);
    __syncthreads();
    attn_short_merge<false>((int)at.R, red, st);
    au_cluster_sync(); /* every block's state written */
    au_spread_merge((int)at.R, ns, st, olat);
    au_cluster_arrive(); /* the peers' states read (the wait before the block leaves) */
}

/* The step's entry count (pos + 1) read before the PDL wait when at.early (the decode
   step: its step was written before its chain began), else 0: read it after the wait.
   (Asking L2 for the walk's cache rows here as well lost 1.7-2.5% at 256-512 entries:
   benchmarks/device-2026-11-27zzc-h100-short-early/.) */
__device__ __forceinline__ int au_entries_early(const cu_attn &at) {
    return at.early ? at.step->pos + 1 : 0;
}

/* The attention alone on the spread (cuk_attn_spread): grid (ZCU_ATTN_SPREAD_N, H) in
   clusters along x; block 0 of each head writes its o_lat. */
template <bool BF16>
__global__ void __launch_bounds__(AU_THREADS, 2) k_attn_spread(const __grid_constant__ cu_attn at) {
    extern __shared__ __align__(16) float sm[];
    pdl_launch();
    const int tid = threadIdx.x, h = (int)blockIdx.y, sp = (int)blockIdx.x, ns = (int)gridDim.x;
    const int R = (int)at.R, W = R + (int)at.rope;
    float *red = sm, *qrow = sm + (int64_t)AS_WARPS * R + 16, *olat = qrow + (W + 3) / 4 * 4, *st = olat + R;
    const int Te = au_entries_early(at);
    pdl_wait();
    const int Ti = Te ? Te : at.step->pos + 1;
    for (int c = tid; c < W; c += blockDim.x) qrow[c] = at.q[(int64_t)h * W + c];
    __syncthreads();
    attn_spread_head<BF16>(at, Ti, qrow, red, st, olat, sp, ns);
    __syncthreads();
    if (sp == 0)
        for (int c = tid; c < R; c += blockDim.x) at.out[(int64_t)h * R + c] = olat[c];
    au_cluster_wait();
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

template <int K, bool BF16, bool SPREAD>
__global__ void __launch_bounds__(AU_THREADS, 2) k_attn_uv(const __grid_constant__ cu_attn_uv a) {
    extern __shared__ __align__(16) float sm[];
    pdl_launch();
    const cu_attn &at = a.at;
    const cu_mv &uv = a.uv;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int h = (int)blockIdx.y, sp = (int)blockIdx.x, ns = (int)gridDim.x; /* SPREAD: sp is the cluster rank */
    const int R = (int)at.R, W = R + (int)at.rope;
    int64_t red_n = (int64_t)AS_WARPS * R + 16;
    if (red_n < stage_floats(uv.w.cols, true)) red_n = stage_floats(uv.w.cols, true);
    float *red = sm, *qrow = sm + red_n, *olat = qrow + (W + 3) / 4 * 4, *st = olat + R;

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
    const int Te = au_entries_early(at);
    pdl_wait();
    const int Ti = Te ? Te : at.step->pos + 1;
    if (!SPREAD && Ti > AS_MAX) __trap(); /* the host picks the short path for short contexts only */

    /* the attention (attn.cuh's short path) of the query row, its output here */
    for (int c = tid; c < W; c += blockDim.x) qrow[c] = at.q[(int64_t)h * W + c];
    __syncthreads();
    if constexpr (SPREAD) {
        attn_spread_head<BF16>(at, Ti, qrow, red, st, olat, sp, ns);
    } else {
        attn_short_head<BF16, BF16 ? 3 : 2>(at, Ti, nullptr, qrow, olat, red);
    }
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
    if constexpr (SPREAD) au_cluster_wait(); /* no block leaves while a peer may read its state */
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
           at.H >= 1 && at.H <= 65535 && p->split >= 1 && p->split <= 64 &&
           (!at.spread || (p->split == ZCU_ATTN_SPREAD_N && /* the spread's bits: its walkers' */
                           cuk_hopper_code()));
}

extern "C" int32_t cuk_attn_spread_min(void) {
    const int64_t n = cu_knob("ZMLX_CUDA_ATTN_SPREAD_MIN", ZCU_ATTN_SPREAD_MIN);
    return n > INT32_MAX ? INT32_MAX : (int32_t)n;
}

extern "C" int32_t cuk_attn_spread_max(void) {
    const int64_t n = cu_knob("ZMLX_CUDA_ATTN_SPREAD_MAX", ZCU_ATTN_SPREAD_MAX);
    return n > INT32_MAX ? INT32_MAX : (int32_t)n;
}

/* The spread's shapes are attn_short_walk's: latent pieces of 4, rows of at most
   AS_CH * 128 columns. */
extern "C" bool cuk_attn_spread_fits(int64_t R, int64_t rope) {
    const int64_t W = R + rope;
    return R >= 4 && R <= ZCU_ATTN_MAX_R && R % 4 == 0 && rope >= 0 && W % 4 == 0 && W <= AS_CH * 128;
}

/* One dense query of a shape the spread takes. */
static bool spread_ok(const cu_attn &at) {
    return cuk_hopper_code() && at.q && at.cache && at.step && at.out && !at.idx && at.n_q == 1 && at.H >= 1 &&
           at.H <= 65535 && cuk_attn_spread_fits(at.R, at.rope);
}

extern "C" cudaError_t cuk_attn_spread(const cu_attn *p, cu_q q) {
    if (!spread_ok(*p)) return cudaErrorInvalidValue;
    const size_t smem = au_smem(p->R, p->rope, 32);
    const dim3 grid(ZCU_ATTN_SPREAD_N, (unsigned)p->H), block(AU_THREADS);
    return p->cache_bf16 ? launch_as(q, ZCU_ATTN_SPREAD_N, grid, block, smem, k_attn_spread<true>, *p)
                         : launch_as(q, ZCU_ATTN_SPREAD_N, grid, block, smem, k_attn_spread<false>, *p);
}

extern "C" cudaError_t cuk_attn_uv(const cu_attn_uv *p, cu_q q) {
    if (!cuk_attn_uv_ok(p, q)) return cudaErrorInvalidValue;
    const size_t smem = au_smem(p->at.R, p->at.rope, p->uv.w.cols);
    const dim3 grid((unsigned)p->split, (unsigned)p->at.H), block(AU_THREADS);
    const unsigned cl = p->at.spread ? (unsigned)p->split : 0;
#define AU_GO(k, bf)                                                                                     \
    return cl ? launch_as(q, cl, grid, block, smem, k_attn_uv<k, bf, true>, *p)                          \
              : launch_as(q, 0, grid, block, smem, k_attn_uv<k, bf, false>, *p)
    if (p->uv.w.kind == ZW_AFFINE4) {
        if (p->at.cache_bf16) AU_GO(ZW_AFFINE4, true);
        AU_GO(ZW_AFFINE4, false);
    }
    if (p->at.cache_bf16) AU_GO(ZW_AFFINE8, true);
    AU_GO(ZW_AFFINE8, false);
#undef AU_GO
}

extern "C" cudaError_t cuk_attn_uv_init(int optin) {
    const size_t want = au_smem(ZCU_ATTN_MAX_R, AS_CH * 128 - ZCU_ATTN_MAX_R, 32 * 32);
    const int bytes = want < (size_t)optin ? (int)want : optin;
    const cudaFuncAttribute at = cudaFuncAttributeMaxDynamicSharedMemorySize;
    cudaError_t err = cudaSuccess;
#define AU_SET(k, bf)                                                                          \
    if (err == cudaSuccess) err = cudaFuncSetAttribute(k_attn_uv<k, bf, false>, at, bytes); \
    if (err == cudaSuccess) err = cudaFuncSetAttribute(k_attn_uv<k, bf, true>, at, bytes)
    AU_SET(ZW_AFFINE4, true);
    AU_SET(ZW_AFFINE4, false);
    AU_SET(ZW_AFFINE8, true);
    AU_SET(ZW_AFFINE8, false);
#undef AU_SET
    if (err == cudaSuccess) err = cudaFuncSetAttribute(k_attn_spread<true>, at, bytes);
    if (err == cudaSuccess) err = cudaFuncSetAttribute(k_attn_spread<false>, at, bytes);
    return err;
}
