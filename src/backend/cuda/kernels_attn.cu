/*
 * kernels_attn.cu — MLA attention on the device.
 *
 * Absorbed (decode, and prefill when asked): every head attends to the same latent rows
 * [lat | k_pe] (width W = R + rope), so a block takes AT_HB heads and a span of positions
 * and streams each row of the span through shared memory once for all its heads.  The
 * context is split into `nsplit` spans (flash-decoding) so a long context fills the GPU;
 * each split keeps an online softmax (running max m, sum l, unnormalised sum o) and
 * k_attn_merge combines the splits.  Tiles of AT_TP positions: one warp per head scores
 * the tile (lane = position), then every thread updates its latent columns for all heads.
 *
 * Expanded (prefill): per-position keys/values from kv_b (kvb), one block per
 * (head, query), tiles of AX_TP positions with the same online softmax.  Simple and
 * correct; the absorbed kernel is the fast one.
 *
 * Both compute zattn_head_ref's function (softmax(scale * (q·k + q_pe·k_pe)) weighted sum)
 * in float32; the order of the sums differs (tokens-class).
 */
#include "backend/cuda/common.cuh"

#include <math.h>

enum { AT_TP = 32, AT_HB = 4, AT_THREADS = AT_HB * 32, AT_CPT = ZCU_ATTN_MAX_R / AT_THREADS };
enum { AT_MAX_ROPE = 128 };

/* Dynamic shared memory of k_attn_absorbed for a row width W. */
static size_t at_smem(int64_t W) {
    const int64_t WS = W | 1; /* odd stride: lanes reading different rows hit different banks */
    return (size_t)(AT_TP * WS + AT_HB * W + AT_HB * AT_TP + AT_HB) * sizeof(float);
}

template <bool BF16>
__device__ __forceinline__ float cache_at(const void *c, int64_t i) {
    if constexpr (BF16) return __bfloat162float(static_cast<const __nv_bfloat16 *>(c)[i]);
    else return static_cast<const float *>(c)[i];
}

template <bool BF16>
__global__ void __launch_bounds__(AT_THREADS) k_attn_absorbed(cu_attn p) {
    extern __shared__ float sm[];
    const int64_t W = p.R + p.rope, WS = W | 1;
    float *cs = sm;                 /* [AT_TP][WS] tile of cache rows */
    float *qs = cs + AT_TP * WS;    /* [AT_HB][W] this block's query rows */
    float *ps = qs + AT_HB * W;     /* [AT_HB][AT_TP] probabilities of the tile */
    float *al = ps + AT_HB * AT_TP; /* [AT_HB] rescale of the running sums */
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int64_t split = blockIdx.x, h0 = (int64_t)blockIdx.y * AT_HB, qi = blockIdx.z;
    const int64_t pos = p.step->pos, Ti = pos + qi + 1; /* positions query qi sees */
    int64_t span = (pos + p.n_q + p.nsplit - 1) / p.nsplit;
    span = (span + AT_TP - 1) / AT_TP * AT_TP;
    const int64_t t0 = split * span, t1 = t0 + span < Ti ? t0 + span : Ti;

#pragma unroll
    for (int hh = 0; hh < AT_HB; hh++) { /* the loads of all heads in flight together */
        const int64_t h = h0 + hh;
        const float *src = p.q + (qi * p.H + h) * W;
#pragma unroll 4
        for (int c = tid; c < (int)W; c += AT_THREADS) qs[hh * W + c] = h < p.H ? src[c] : 0.0f;
    }
    float m = -INFINITY, l = 0.0f; /* of head h0 + warp, the same in every lane */
    float acc[AT_HB][AT_CPT];
#pragma unroll
    for (int hh = 0; hh < AT_HB; hh++)
#pragma unroll
        for (int j = 0; j < AT_CPT; j++) acc[hh][j] = 0.0f;

    for (int64_t tt = t0; tt < t1; tt += AT_TP) {
        const int nt = (int)(t1 - tt < AT_TP ? t1 - tt : AT_TP);
        __syncthreads(); /* the previous tile is consumed (and qs is loaded) */
        if ((W * (BF16 ? 2 : 4)) % 16 == 0) { /* 16-byte loads, all in flight at once */
            constexpr int N = BF16 ? 8 : 4;
            const int vpr = (int)(W / N), nvec = nt * vpr;
            const uint4 *src = reinterpret_cast<const uint4 *>(
                static_cast<const uint8_t *>(p.cache) + (size_t)(tt * W) * (BF16 ? 2 : 4));
#pragma unroll 4
            for (int i = tid; i < nvec; i += AT_THREADS) {
                float f[N];
                if constexpr (BF16) vec16<__nv_bfloat16>::cvt(__ldg(src + i), f);
                else vec16<float>::cvt(__ldg(src + i), f);
                float *dst = cs + (i / vpr) * WS + (i % vpr) * N;
#pragma unroll
                for (int k = 0; k < N; k++) dst[k] = f[k];
            }
        } else {
            for (int j = 0; j < nt; j++) {
                const int64_t row = (tt + j) * W;
                for (int64_t c = tid; c < W; c += AT_THREADS) cs[j * WS + c] = cache_at<BF16>(p.cache, row + c);
            }
        }
        __syncthreads();
        { /* scores of head h0 + warp at position tt + lane; online softmax update */
            float s = -INFINITY;
            if (lane < nt) {
                const float *qr = qs + warp * W, *kr = cs + lane * WS;
                /* four partial sums: the FMA chain is a quarter as long */
                float a[4] = {0.0f, 0.0f, 0.0f, 0.0f}, b = 0.0f;
                const int R = (int)p.R, R4 = R & ~3;
                for (int c = 0; c < R4; c += 4) {
#pragma unroll
                    for (int u = 0; u < 4; u++) a[u] = fmaf(qr[c + u], kr[c + u], a[u]);
                }
                for (int c = R4; c < R; c++) a[0] = fmaf(qr[c], kr[c], a[0]);
                for (int c = R; c < (int)W; c++) b = fmaf(qr[c], kr[c], b);
                s = (((a[0] + a[1]) + (a[2] + a[3])) + b) * p.scale;
            }
            const float mn = fmaxf(m, warp_max(s));
            const float pr = lane < nt ? expf(s - mn) : 0.0f;
            const float alpha = expf(m - mn); /* 0 on the first tile (m = -inf) */
            l = l * alpha + warp_sum(pr);
            m = mn;
            ps[warp * AT_TP + lane] = pr;
            if (lane == 0) al[warp] = alpha;
        }
        __syncthreads();
#pragma unroll
        for (int hh = 0; hh < AT_HB; hh++) {
            const float a = al[hh];
#pragma unroll
            for (int j = 0; j < AT_CPT; j++) acc[hh][j] *= a;
        }
        for (int j = 0; j < nt; j++) {
            const float *kr = cs + j * WS;
            float v[AT_CPT];
#pragma unroll
            for (int jj = 0; jj < AT_CPT; jj++) {
                const int64_t c = tid + jj * AT_THREADS;
                v[jj] = c < p.R ? kr[c] : 0.0f;
            }
#pragma unroll
            for (int hh = 0; hh < AT_HB; hh++) {
                const float pj = ps[hh * AT_TP + j];
#pragma unroll
                for (int jj = 0; jj < AT_CPT; jj++) acc[hh][jj] = fmaf(pj, v[jj], acc[hh][jj]);
            }
        }
    }
    const int64_t base = (qi * p.nsplit + split) * p.H;
#pragma unroll
    for (int hh = 0; hh < AT_HB; hh++) {
        const int64_t h = h0 + hh;
        if (h >= p.H) break;
#pragma unroll
        for (int jj = 0; jj < AT_CPT; jj++) {
            const int64_t c = tid + jj * AT_THREADS;
            if (c < p.R) p.part_o[(base + h) * p.R + c] = acc[hh][jj];
        }
    }
    if (lane == 0 && h0 + warp < p.H) {
        p.part_ml[(base + h0 + warp) * 2] = m;
        p.part_ml[(base + h0 + warp) * 2 + 1] = l;
    }
}

/* out[qi, h] = sum_s exp(m_s - M) o_s / sum_s exp(m_s - M) l_s over the non-empty splits;
   the split statistics are read by all threads at once, then reduced from shared memory. */
__global__ void k_attn_merge(cu_attn p) {
    __shared__ float ms[ZCU_ATTN_MAX_SPLIT], wt[ZCU_ATTN_MAX_SPLIT];
    __shared__ float inv_l;
    const int64_t h = blockIdx.x, qi = blockIdx.y;
    const float *ml = p.part_ml + (qi * p.nsplit * p.H + h) * 2; /* split s at + s * H * 2 */
    for (int64_t s = threadIdx.x; s < p.nsplit; s += blockDim.x) {
        const float ls = ml[s * p.H * 2 + 1];
        ms[s] = ls > 0.0f ? ml[s * p.H * 2] : -INFINITY;
        wt[s] = ls;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        float M = -INFINITY, L = 0.0f;
        for (int64_t s = 0; s < p.nsplit; s++) M = fmaxf(M, ms[s]);
        for (int64_t s = 0; s < p.nsplit; s++) {
            const float w = wt[s] > 0.0f ? expf(ms[s] - M) : 0.0f;
            L += wt[s] * w;
            wt[s] = w;
        }
        inv_l = 1.0f / L;
    }
    __syncthreads();
    for (int64_t c = threadIdx.x; c < p.R; c += blockDim.x) {
        float o = 0.0f;
#pragma unroll 8
        for (int64_t s = 0; s < p.nsplit; s++)
            if (wt[s] != 0.0f) o = fmaf(wt[s], p.part_o[((qi * p.nsplit + s) * p.H + h) * p.R + c], o);
        p.out[(qi * p.H + h) * p.R + c] = o * inv_l;
    }
}

extern "C" cudaError_t cuk_attn_absorbed(const cu_attn *p, cudaStream_t st) {
    if (p->n_q <= 0) return cudaSuccess;
    if (p->R < 1 || p->R > ZCU_ATTN_MAX_R || p->rope < 0 || p->rope > AT_MAX_ROPE ||
        p->nsplit < 1 || p->nsplit > ZCU_ATTN_MAX_SPLIT || p->n_q > 65535 ||
        (p->H + AT_HB - 1) / AT_HB > 65535)
        return cudaErrorInvalidValue;
    const size_t smem = at_smem(p->R + p->rope);
    dim3 grid((unsigned)p->nsplit, (unsigned)((p->H + AT_HB - 1) / AT_HB), (unsigned)p->n_q);
    if (p->cache_bf16) k_attn_absorbed<true><<<grid, AT_THREADS, smem, st>>>(*p);
    else k_attn_absorbed<false><<<grid, AT_THREADS, smem, st>>>(*p);
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) return err;
    k_attn_merge<<<dim3((unsigned)p->H, (unsigned)p->n_q), 128, 0, st>>>(*p);
    return cudaGetLastError();
}

enum { AX_THREADS = 128, AX_TP = AX_THREADS, AX_CPT = 4 /* vd <= 512 */ };

template <bool BF16>
__global__ void __launch_bounds__(AX_THREADS) k_attn_expanded(cu_attn_x p) {
    extern __shared__ float sm[];
    __shared__ float red[32];
    const int64_t qk = p.nope + p.rope, hs = p.nope + p.vd, W = p.R + p.rope;
    float *qs = sm, *ps = sm + qk;
    const int tid = threadIdx.x;
    const int64_t h = blockIdx.x, qi = blockIdx.y, Ti = (int64_t)p.step->pos + qi + 1;
    for (int64_t c = tid; c < qk; c += AX_THREADS) qs[c] = p.q[(qi * p.H + h) * qk + c];
    __syncthreads();
    float m = -INFINITY, l = 0.0f, acc[AX_CPT] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int64_t tt = 0; tt < Ti; tt += AX_TP) {
        const int64_t t = tt + tid;
        float s = -INFINITY;
        if (t < Ti) {
            const float *k = p.kvb + (t * p.H + h) * hs;
            float a = 0.0f, b = 0.0f;
            for (int64_t c = 0; c < p.nope; c++) a = fmaf(qs[c], k[c], a);
            for (int64_t c = 0; c < p.rope; c++)
                b = fmaf(qs[p.nope + c], cache_at<BF16>(p.cache, t * W + p.R + c), b);
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
            const float *v = p.kvb + ((tt + j) * p.H + h) * hs + p.nope;
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

extern "C" cudaError_t cuk_attn_expanded(const cu_attn_x *p, cudaStream_t st) {
    if (p->n <= 0) return cudaSuccess;
    if (p->vd < 1 || p->vd > AX_CPT * AX_THREADS || p->H > 0x7fffffff || p->n > 65535)
        return cudaErrorInvalidValue;
    const size_t smem = (size_t)(p->nope + p->rope + AX_TP) * sizeof(float);
    dim3 grid((unsigned)p->H, (unsigned)p->n);
    if (p->cache_bf16) k_attn_expanded<true><<<grid, AX_THREADS, smem, st>>>(*p);
    else k_attn_expanded<false><<<grid, AX_THREADS, smem, st>>>(*p);
    return cudaGetLastError();
}

extern "C" cudaError_t cuk_init(void) {
    const int max_smem = (int)at_smem(ZCU_ATTN_MAX_R + AT_MAX_ROPE);
    cudaError_t err = cudaFuncSetAttribute(k_attn_absorbed<true>,
                                           cudaFuncAttributeMaxDynamicSharedMemorySize, max_smem);
    if (err == cudaSuccess)
        err = cudaFuncSetAttribute(k_attn_absorbed<false>,
                                   cudaFuncAttributeMaxDynamicSharedMemorySize, max_smem);
    return err;
}
