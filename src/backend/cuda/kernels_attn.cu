/*
 * kernels_attn.cu — MLA attention on the device.
 *
 * Absorbed (decode, and prefill when asked): every head attends to the same latent rows
 * [lat | k_pe] (width W = R + rope), so a block takes up to 32 heads (all 20 of GLM's)
 * and a span of positions and streams each row of the span through shared memory once
 * for all its heads: the cache is read once per token and head block.  The context is
 * split into `nsplit` spans (flash-decoding) so a long context fills the GPU; each split
 * keeps an online softmax (running max m, sum l, unnormalised sum o) and k_attn_merge
 * combines the splits.  Tiles of AT_TP positions, the next tile's rows loaded into
 * registers while the current one is scored: warp w scores heads w, w + 8, ... (lane =
 * position), then every thread updates its latent columns of every head.
 *
 * Expanded (prefill): per-position keys/values from kv_b (kvb), one block per
 * (head, query), tiles of AX_TP positions with the same online softmax.  Simple and
 * correct; the absorbed kernel is the fast one.
 *
 * Fast mode on a bf16 cache runs the absorbed splits on the tensor cores instead
 * (kernels_attn_tc.cu), into the same merge.
 *
 * Both compute zattn_head_ref's function (softmax(scale * (q·k + q_pe·k_pe)) weighted sum)
 * in float32 on the CUDA cores; the order of the sums differs (tokens-class).
 */
#include "backend/cuda/attn.cuh"

#include <math.h>

template <bool BF16>
__device__ __forceinline__ float cache_at(const void *c, int64_t i) {
    if constexpr (BF16) return __bfloat162float(static_cast<const __nv_bfloat16 *>(c)[i]);
    else return static_cast<const float *>(c)[i];
}

/* Tiles of AT_TP positions; up to HB heads per block (a template constant: 8, 16, 24 or
   32), 8 warps: warp w scores heads w, w + 8, ... (lane = position), then every thread
   updates its latent columns (tid, tid + 256) of every head. */
enum { AT_TP = 32, AT_WARPS = 8, AT_THREADS = AT_WARPS * 32, AT_CPT = ZCU_ATTN_MAX_R / AT_THREADS };
enum { AT_MAX_ROPE = 128, AT_MAX_W = ZCU_ATTN_MAX_R + AT_MAX_ROPE };
static_assert(AT_THREADS == AS_WARPS * 32 && AT_MAX_W <= AS_CH * 128, "attn_short's block and row");

/* Dynamic shared memory of k_attn_absorbed for a row width W and HB heads. */
static size_t at_smem(int64_t W, int HB) {
    const int64_t WS = W + 4; /* rows 16-byte aligned, (W + 4) / 4 odd for W = 576: no conflicts */
    return (size_t)(AT_TP * WS + HB * W + AT_TP * HB + HB) * sizeof(float);
}

/* bf16 caches, 8 heads a block (short caches): two blocks an SM (128 registers, as before the short
   path, whose rows in flight would otherwise take more) */
template <bool BF16, int HB>
__global__ void __launch_bounds__(AT_THREADS, BF16 && HB == 8 ? 2 : 1) k_attn_absorbed(const __grid_constant__ cu_attn p) {
    extern __shared__ __align__(16) float sm[];
    constexpr int ES = BF16 ? 2 : 4, NV = (AT_TP * AT_MAX_W * ES / 16 + AT_THREADS - 1) / AT_THREADS;
    constexpr int HPW = (HB + AT_WARPS - 1) / AT_WARPS;
    pdl_launch();
    const int64_t W = p.R + p.rope, WS = W + 4;
    float *cs = sm;                 /* [AT_TP][WS] tile of cache rows */
    float *qs = cs + AT_TP * WS;    /* [HB][W] this block's query rows */
    float *ps = qs + HB * W;        /* [AT_TP][HB] probabilities of the tile */
    float *al = ps + AT_TP * HB;    /* [HB] rescale of the running sums */
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int64_t split = blockIdx.x, h0 = (int64_t)blockIdx.y * HB, qi = blockIdx.z;
    const int nh = (int)(p.H - h0 < HB ? p.H - h0 : HB);
    pdl_wait();
    if (attn_short_q(p, qi)) { /* the whole query here, no merge */
        attn_short<BF16, BF16 && HB == 8 ? 3 : 2>(p, qi, sm);
        return;
    }
    if (split >= p.nsplit) return; /* a block the short path asked for */
    const attn_span sp = attn_span_of(p, qi, split, AT_TP);
    const int32_t *ix = sp.ix;
    const int64_t t0 = sp.t0, t1 = sp.t1;

    { /* the block's query rows, eight loads in flight per thread */
        const float *src = p.q + (qi * p.H + h0) * W;
        const int64_t tot = (int64_t)HB * W, have = (int64_t)nh * W;
        for (int64_t c0 = tid; c0 < tot; c0 += 8 * AT_THREADS) {
            float v[8];
#pragma unroll
            for (int k = 0; k < 8; k++) {
                const int64_t c = c0 + k * AT_THREADS;
                v[k] = c < have ? src[c] : 0.0f;
            }
#pragma unroll
            for (int k = 0; k < 8; k++)
                if (c0 + k * AT_THREADS < tot) qs[c0 + k * AT_THREADS] = v[k];
        }
    }
    float m[HPW], l[HPW];
#pragma unroll
    for (int i = 0; i < HPW; i++) m[i] = -INFINITY, l[i] = 0.0f;
    float acc[HB][AT_CPT];
#pragma unroll
    for (int hh = 0; hh < HB; hh++)
#pragma unroll
        for (int j = 0; j < AT_CPT; j++) acc[hh][j] = 0.0f;

    /* the tile's cache rows as 16-byte vectors, loaded one tile ahead into registers */
    const int vpr = (int)(W * ES / 16);
    uint4 rv[NV];
    auto load_tile = [&](int64_t tt) {
        const int nt = (int)(t1 - tt < AT_TP ? t1 - tt : AT_TP);
        const uint8_t *cb = static_cast<const uint8_t *>(p.cache);
        if (ix) { /* the listed rows */
#pragma unroll
            for (int k = 0; k < NV; k++) {
                const int i = tid + k * AT_THREADS, r = i / vpr;
                if (i < nt * vpr)
                    rv[k] = __ldg(reinterpret_cast<const uint4 *>(cb + (size_t)((int64_t)ix[tt + r] * W) * ES) +
                                  (i - r * vpr));
            }
            return;
        }
        const uint4 *src = reinterpret_cast<const uint4 *>(cb + (size_t)(tt * W) * ES);
#pragma unroll
        for (int k = 0; k < NV; k++) {
            const int i = tid + k * AT_THREADS;
            if (i < nt * vpr) rv[k] = __ldg(src + i);
        }
    };
    if (t0 < t1) load_tile(t0);
    for (int64_t tt = t0; tt < t1; tt += AT_TP) {
        const int nt = (int)(t1 - tt < AT_TP ? t1 - tt : AT_TP);
        __syncthreads(); /* the previous tile is consumed (and qs is loaded) */
#pragma unroll
        for (int k = 0; k < NV; k++) {
            const int i = tid + k * AT_THREADS;
            if (i < nt * vpr) {
                constexpr int N = 16 / ES;
                float f[N];
                if constexpr (BF16) {
                    const uint32_t w4[4] = {rv[k].x, rv[k].y, rv[k].z, rv[k].w};
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        f[2 * e] = __uint_as_float(w4[e] << 16);
                        f[2 * e + 1] = __uint_as_float(w4[e] & 0xffff0000u);
                    }
                } else {
                    f[0] = __uint_as_float(rv[k].x), f[1] = __uint_as_float(rv[k].y);
                    f[2] = __uint_as_float(rv[k].z), f[3] = __uint_as_float(rv[k].w);
                }
                float *dst = cs + (i / vpr) * WS + (i % vpr) * N;
#pragma unroll
                for (int e = 0; e < N; e++) dst[e] = f[e];
            }
        }
        if (tt + AT_TP < t1) load_tile(tt + AT_TP); /* in flight during this tile's math */
        __syncthreads();
        { /* scores of the warp's heads at position tt + lane; online softmax update */
            float a[HPW][4];
#pragma unroll
            for (int i = 0; i < HPW; i++) a[i][0] = a[i][1] = a[i][2] = a[i][3] = 0.0f;
            if (lane < nt) {
                const float4 *kr = reinterpret_cast<const float4 *>(cs + lane * WS);
                for (int64_t c4 = 0; c4 < W / 4; c4++) {
                    const float4 kv = kr[c4];
#pragma unroll
                    for (int i = 0; i < HPW; i++) {
                        const int hh = warp + AT_WARPS * i;
                        if (hh >= HB) break;
                        const float4 qv = reinterpret_cast<const float4 *>(qs + hh * W)[c4];
                        a[i][0] = fmaf(qv.x, kv.x, a[i][0]);
                        a[i][1] = fmaf(qv.y, kv.y, a[i][1]);
                        a[i][2] = fmaf(qv.z, kv.z, a[i][2]);
                        a[i][3] = fmaf(qv.w, kv.w, a[i][3]);
                    }
                }
            }
#pragma unroll
            for (int i = 0; i < HPW; i++) {
                const int hh = warp + AT_WARPS * i;
                if (hh >= HB) break;
                const float s = lane < nt ? __fmul_rn(__fadd_rn(__fadd_rn(a[i][0], a[i][1]),
                                                                __fadd_rn(a[i][2], a[i][3])), p.scale)
                                          : -INFINITY;
                const float mn = fmaxf(m[i], warp_max(s));
                const float pr = lane < nt ? expf(__fsub_rn(s, mn)) : 0.0f;
                const float alpha = expf(__fsub_rn(m[i], mn)); /* 0 on the first tile (m = -inf) */
                l[i] = __fadd_rn(__fmul_rn(l[i], alpha), warp_sum(pr));
                m[i] = mn;
                ps[lane * HB + hh] = hh < nh ? pr : 0.0f;
                if (lane == 0) al[hh] = alpha;
            }
        }
        __syncthreads();
#pragma unroll
        for (int hh = 0; hh < HB; hh++) {
            const float a = al[hh];
#pragma unroll
            for (int j = 0; j < AT_CPT; j++) acc[hh][j] = __fmul_rn(acc[hh][j], a);
        }
        for (int j = 0; j < nt; j++) {
            const float *kr = cs + j * WS;
            float v[AT_CPT];
#pragma unroll
            for (int jj = 0; jj < AT_CPT; jj++) {
                const int64_t c = tid + jj * AT_THREADS;
                v[jj] = c < p.R ? kr[c] : 0.0f;
            }
            const float4 *pr4 = reinterpret_cast<const float4 *>(ps + j * HB);
#pragma unroll
            for (int h4 = 0; h4 < HB / 4; h4++) {
                const float4 pj = pr4[h4];
                const float pv[4] = {pj.x, pj.y, pj.z, pj.w};
#pragma unroll
                for (int e = 0; e < 4; e++)
#pragma unroll
                    for (int jj = 0; jj < AT_CPT; jj++)
                        acc[4 * h4 + e][jj] = fmaf(pv[e], v[jj], acc[4 * h4 + e][jj]);
            }
        }
    }
    const int64_t base = (qi * p.nsplit + split) * p.H + h0;
#pragma unroll
    for (int hh = 0; hh < HB; hh++) {
        if (hh >= nh) break;
#pragma unroll
        for (int jj = 0; jj < AT_CPT; jj++) {
            const int64_t c = tid + jj * AT_THREADS;
            if (c < p.R) p.part_o[(base + hh) * p.R + c] = acc[hh][jj];
        }
    }
#pragma unroll
    for (int i = 0; i < HPW; i++) {
        const int hh = warp + AT_WARPS * i;
        if (hh < nh && lane == 0) {
            p.part_ml[(base + hh) * 2] = m[i];
            p.part_ml[(base + hh) * 2 + 1] = l[i];
        }
    }
}

/* out[qi, h] = sum_s exp(m_s - M) o_s / sum_s exp(m_s - M) l_s over the non-empty splits.
   Block (h, qi, chunk of MG_COLS columns), lane = column, warp = slice.  Right after the
   wait every thread asks for its slice's splits (s = slice, slice + MG_SLICES, ...:
   MG_LD loads in flight, one trip for a split per SM of an H100 or H200) while warp 0
   reduces the split statistics (lane l takes splits l, l + 32, ..., all loaded at once,
   then the butterfly: one fixed order); each thread then sums its splits in order and the
   slices are added in order.  Every split kernel writes (m, l) of every split below
   nsplit (an empty one l = 0, weight 0), so a partial is only used where its weight is
   not 0.  Blocks of 256 threads: GLM's 20 heads x 16 chunks are one wave (4 blocks an SM). */
enum { MG_COLS = 32, MG_SLICES = 8, MG_THREADS = MG_COLS * MG_SLICES, MG_LD = 17,
       MG_SPL = ZCU_ATTN_MAX_SPLIT / 32 };
static_assert(MG_SPL * 32 >= ZCU_ATTN_MAX_SPLIT, "warp 0 holds every split's statistics");

__global__ void __launch_bounds__(MG_THREADS) k_attn_merge(const __grid_constant__ cu_attn p) {
    __shared__ float wt[ZCU_ATTN_MAX_SPLIT];
    __shared__ float part[MG_SLICES][MG_COLS];
    __shared__ float inv_l;
    __shared__ int whole;
    pdl_launch();
    const int64_t h = blockIdx.x, qi = blockIdx.y;
    const int lane = threadIdx.x & 31, sl = threadIdx.x >> 5;
    const int64_t c = (int64_t)blockIdx.z * MG_COLS + lane, ss = p.H * p.R; /* split s at + s * ss */
    const float *po = p.part_o + (qi * p.nsplit * p.H + h) * p.R + c;
    /* a dense short query is known before the wait (the step is the token's upload, done
       before its first kernel); the wait still orders W_UV after the splits */
    const bool dense_short = !p.idx && (int64_t)p.step->pos + qi + 1 <= p.short_max;
    pdl_wait();
    if (dense_short) return;
    float v[MG_LD];
    auto load = [&](int64_t s0) { /* this thread's MG_LD splits from s0, in flight at once */
#pragma unroll
        for (int k = 0; k < MG_LD; k++) {
            const int64_t s = s0 + (int64_t)k * MG_SLICES;
            v[k] = s < p.nsplit && c < p.R ? po[s * ss] : 0.0f;
        }
    };
    load(sl);
    const float *ml = p.part_ml + (qi * p.nsplit * p.H + h) * 2; /* split s at + s * H * 2 */
    if (sl == 0) {
        float2 st[MG_SPL];
#pragma unroll
        for (int k = 0; k < MG_SPL; k++) {
            const int64_t s = lane + 32 * k;
            st[k] = s < p.nsplit ? *reinterpret_cast<const float2 *>(ml + s * p.H * 2) : make_float2(0.0f, 0.0f);
        }
        if (lane == 0) whole = st[0].y < 0.0f; /* attn_short's mark (sparse lists): written whole */
        float M = -INFINITY;
#pragma unroll
        for (int k = 0; k < MG_SPL; k++)
            if (st[k].y > 0.0f) M = fmaxf(M, st[k].x);
        M = warp_max(M);
        float L = 0.0f;
#pragma unroll
        for (int k = 0; k < MG_SPL; k++) {
            const int64_t s = lane + 32 * k;
            const float w = st[k].y > 0.0f ? expf(__fsub_rn(st[k].x, M)) : 0.0f;
            L = __fadd_rn(L, __fmul_rn(st[k].y > 0.0f ? st[k].y : 0.0f, w));
            if (s < p.nsplit) wt[s] = w;
        }
        L = warp_sum(L);
        if (lane == 0) inv_l = __fdiv_rn(1.0f, L);
    }
    __syncthreads();
    if (whole) return;
    float o = 0.0f;
    for (int64_t s0 = sl;; s0 += (int64_t)MG_LD * MG_SLICES) { /* this thread's splits, in order */
#pragma unroll
        for (int k = 0; k < MG_LD; k++) {
            const int64_t s = s0 + (int64_t)k * MG_SLICES;
            if (s < p.nsplit && wt[s] != 0.0f) o = fmaf(wt[s], v[k], o);
        }
        if (s0 + (int64_t)MG_LD * MG_SLICES >= p.nsplit) break;
        load(s0 + (int64_t)MG_LD * MG_SLICES); /* more splits than a trip holds */
    }
    part[sl][lane] = o;
    __syncthreads();
    if (sl == 0 && c < p.R) {
        float t = part[0][lane];
#pragma unroll
        for (int k = 1; k < MG_SLICES; k++) t = __fadd_rn(t, part[k][lane]);
        p.out[(qi * p.H + h) * p.R + c] = __fmul_rn(t, inv_l);
    }
}

/* Heads per block: the fewest template sizes that hold H, within the opt-in shared
   memory of this device (smaller on sm_89). */
static int at_heads(int64_t H, int64_t W) {
    int dev = 0, optin = 48 * 1024;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess)
        (void)cudaGetLastError();
    int hb = H <= 8 ? 8 : H <= 16 ? 16 : H <= 24 ? 24 : 32;
    while (hb > 8 && at_smem(W, hb) > (size_t)optin) hb = hb == 32 ? 24 : hb - 8;
    return hb;
}

/* Entries up to which a query takes the short path: ZCU_ATTN_SHORT, or
   ZMLX_CUDA_ATTN_SHORT (0 .. AS_MAX; 0 = never; for measuring). */
extern "C" int32_t cuk_attn_short_max(void) {
    const int64_t n = cu_knob("ZMLX_CUDA_ATTN_SHORT", ZCU_ATTN_SHORT);
    return n > AS_MAX ? AS_MAX : n < 0 ? 0 : (int32_t)n;
}

/* The splits on the CUDA cores (float32). */
static cudaError_t absorbed_splits(const cu_attn *p, int64_t W, cu_q q) {
    int HB = at_heads(p->H, W);
    if (p->hb == 8) HB = 8;
    const size_t smem = at_smem(W, HB);
    const unsigned gy = (unsigned)((p->H + HB - 1) / HB);
    const dim3 grid((unsigned)attn_grid_x(p, gy), gy, (unsigned)p->n_q);
#define AT_GO(hb)                                                                                  \
    return p->cache_bf16 ? launch(q, grid, dim3(AT_THREADS), smem, k_attn_absorbed<true, hb>, *p)  \
                         : launch(q, grid, dim3(AT_THREADS), smem, k_attn_absorbed<false, hb>, *p)
    switch (HB) {
    case 8: AT_GO(8);
    case 16: AT_GO(16);
    case 24: AT_GO(24);
    default: AT_GO(32);
    }
#undef AT_GO
}

extern "C" cudaError_t cuk_attn_absorbed(const cu_attn *p_in, cu_q q) {
    if (p_in->n_q <= 0) return cudaSuccess;
    if (p_in->spread) return cuk_attn_spread(p_in, q);
    cu_attn pa = *p_in;
    pa.short_max = p_in->R % 4 ? 0 : cuk_attn_short_max(); /* attn_short: latent pieces of 4 */
    const cu_attn *p = &pa;
    const int64_t W = p->R + p->rope;
    if (p->R < 1 || p->R > ZCU_ATTN_MAX_R || p->rope < 0 || p->rope > AT_MAX_ROPE || W % 8 ||
        p->nsplit < 1 || p->nsplit > ZCU_ATTN_MAX_SPLIT || p->n_q > 65535 || p->H < 1 ||
        (p->H + 31) / 32 > 65535)
        return cudaErrorInvalidValue;
    /* fast mode on a bf16 cache: the tensor-core splits (kernels_attn_tc.cu), unless hb
       == 8 asks for three 8-head blocks of the float32 kernel (decode.c: only under
       ZMLX_CUDA_ATTN_HB8=1; once ahead at context 16 on an H200, they were 13% slower at
       contexts 256-1,536 on an H100 once the short path took the short contexts) */
    const bool tc = q.fast && p->hb != 8 && cuk_attn_dec_tc_ok(p);
    const cudaError_t err = tc ? cuk_attn_dec_tc(p, q) : absorbed_splits(p, W, q);
    if (err != cudaSuccess) return err;
    return launch(q, dim3((unsigned)p->H, (unsigned)p->n_q, (unsigned)((p->R + MG_COLS - 1) / MG_COLS)),
                  dim3(MG_THREADS), 0, k_attn_merge, *p);
}

enum { AX_THREADS = 128, AX_TP = AX_THREADS, AX_CPT = 4 /* vd <= 512 */ };

template <bool BF16>
__global__ void __launch_bounds__(AX_THREADS) k_attn_expanded(const __grid_constant__ cu_attn_x p) {
    extern __shared__ float sm[];
    __shared__ float red[32];
    pdl_launch();
    pdl_wait();
    const int64_t qk = p.nope + p.rope, hs = p.nope + p.vd, W = p.R + p.rope;
    float *qs = sm, *ps = sm + qk;
    const int tid = threadIdx.x;
    const int64_t h = blockIdx.x, qi = blockIdx.y;
    int64_t Ti = (int64_t)p.step->pos + qi + 1; /* entries the query reads */
    const int32_t *ix = NULL;                   /* sparse: its positions */
    if (p.idx && p.idx_n[qi] >= 0) {
        ix = p.idx + qi * p.idx_stride;
        Ti = p.idx_n[qi];
    }
    for (int64_t c = tid; c < qk; c += AX_THREADS) qs[c] = p.q[(qi * p.H + h) * qk + c];
    __syncthreads();
    float m = -INFINITY, l = 0.0f, acc[AX_CPT] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int64_t tt = 0; tt < Ti; tt += AX_TP) {
        const int64_t t = tt + tid;
        float s = -INFINITY;
        if (t < Ti) {
            const int64_t u = ix ? ix[t] : t;
            const float *k = p.kvb + (u * p.H + h) * hs;
            float a = 0.0f, b = 0.0f;
            for (int64_t c = 0; c < p.nope; c++) a = fmaf(qs[c], k[c], a);
            for (int64_t c = 0; c < p.rope; c++)
                b = fmaf(qs[p.nope + c], cache_at<BF16>(p.cache, u * W + p.R + c), b);
            s = (a + b) * p.scale;
        }
        const float mn = fmaxf(m, block_max(s, red));
        const float pr = t < Ti ? expf(s - mn) : 0.0f;
        const float alpha = expf(m - mn);
        l = l * alpha + block_sum(pr, red);
        m = mn;
        ps[tid] = pr;
        __syncthreads();
        const int64_t nt = Ti - tt < AX_TP ? Ti - tt : AX_TP;
#pragma unroll
        for (int j = 0; j < AX_CPT; j++) acc[j] *= alpha;
        for (int64_t j = 0; j < nt; j++) {
            const float *v = p.kvb + ((ix ? ix[tt + j] : tt + j) * p.H + h) * hs + p.nope;
            const float pj = ps[j];
#pragma unroll
            for (int jj = 0; jj < AX_CPT; jj++) {
                const int64_t c = tid + jj * AX_THREADS;
                if (c < p.vd) acc[jj] = fmaf(pj, v[c], acc[jj]);
            }
        }
        __syncthreads(); /* ps is rewritten by the next tile */
    }
#pragma unroll
    for (int jj = 0; jj < AX_CPT; jj++) {
        const int64_t c = tid + jj * AX_THREADS;
        if (c < p.vd) p.out[(qi * p.H + h) * p.vd + c] = acc[jj] / l;
    }
}

extern "C" cudaError_t cuk_attn_expanded(const cu_attn_x *p, cu_q q) {
    if (p->n <= 0) return cudaSuccess;
    if (q.fast && cuk_attn_tc_ok(p)) return cuk_attn_tc(p, q); /* kernels_attn_tc.cu */
    if (p->vd < 1 || p->vd > AX_CPT * AX_THREADS || p->H > 0x7fffffff || p->n > 65535)
        return cudaErrorInvalidValue;
    const size_t smem = (size_t)(p->nope + p->rope + AX_TP) * sizeof(float);
    const dim3 grid((unsigned)p->H, (unsigned)p->n);
    return p->cache_bf16 ? launch(q, grid, dim3(AX_THREADS), smem, k_attn_expanded<true>, *p)
                         : launch(q, grid, dim3(AX_THREADS), smem, k_attn_expanded<false>, *p);
}

/* Raise the dynamic shared memory limit of the absorbed kernels (at most the opt-in). */
template <bool BF16, int HB> static cudaError_t at_init(int optin) {
    const size_t want = at_smem(AT_MAX_W, HB);
    const int bytes = want < (size_t)optin ? (int)want : optin;
    return cudaFuncSetAttribute(k_attn_absorbed<BF16, HB>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
}

extern "C" cudaError_t cuk_attn_init(void) {
    int dev = 0, optin = 48 * 1024;
    cudaError_t err = cudaGetDevice(&dev);
    if (err == cudaSuccess) err = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
    if (err == cudaSuccess) err = at_init<true, 8>(optin);
    if (err == cudaSuccess) err = at_init<false, 8>(optin);
    if (err == cudaSuccess) err = at_init<true, 16>(optin);
    if (err == cudaSuccess) err = at_init<false, 16>(optin);
    if (err == cudaSuccess) err = at_init<true, 24>(optin);
    if (err == cudaSuccess) err = at_init<false, 24>(optin);
    if (err == cudaSuccess) err = at_init<true, 32>(optin);
    if (err == cudaSuccess) err = at_init<false, 32>(optin);
    return err;
}
