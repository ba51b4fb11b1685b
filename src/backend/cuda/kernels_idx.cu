/*
 * kernels_idx.cu — the DeepSeek-V3.2 lightning indexer on the device (kernels.h cu_idx;
 * the CPU's model/indexer.c computes the same function):
 *   k_idx_prep   one block per token: the key's LayerNorm + rope-half into the
 *                indexer-key cache, every query head's rope-half, the head weights'
 *                scale nI^-0.5;
 *   k_idx_score  a block scores a tile of IS_TP cached keys for one query: the query's
 *                heads and the tile's keys in shared memory, thread (position, head
 *                group) sums its heads' w_h relu(q_h · k dI^-0.5), the IS_G groups added
 *                in order (one fixed order: deterministic);
 *   k_idx_topk   one block per query: radix select of the topk-th score over order-
 *                preserving keys (four passes of 8 bits), then the selected positions
 *                compacted in ascending order, ties at the threshold to the lower
 *                positions (zidx_topk's contract).
 * Queries that see no more than topk keys are dense (sel_n = -1): their blocks return
 * at once, so the decode graph runs the same launches at every context length.
 */
#include "backend/cuda/prep.cuh"

#include <math.h>

enum { IP_THREADS = 256 };
enum { IS_TP = 64, IS_G = 4, IS_THREADS = IS_TP * IS_G, IS_HPG = ZCU_IDX_MAX_HEADS / IS_G };
enum { IT_THREADS = 1024 };

static bool idx_shape_ok(const cu_idx *p) {
    return p->nI >= 1 && p->nI <= ZCU_IDX_MAX_HEADS && p->dI >= 8 && p->dI <= ZCU_IDX_MAX_DIM &&
           p->dI % 8 == 0 && p->rope >= 0 && p->rope % 2 == 0 && p->rope <= p->dI && p->topk >= 1;
}

__global__ void __launch_bounds__(IP_THREADS) k_idx_prep(const __grid_constant__ cu_idx p) {
    __shared__ float css[ZCU_IDX_MAX_DIM]; /* cos | sin, rope / 2 each */
    __shared__ float stat[2];              /* mean, 1 / sqrt(var + eps) */
    pdl_launch();
    pdl_wait();
    const int tid = threadIdx.x, lane = tid & 31;
    const int64_t t = blockIdx.x, pos = (int64_t)p.step->pos + t, half = p.rope / 2, dI = p.dI;
    for (int64_t i = tid; i < half; i += blockDim.x)
        pos_cs(p.table, pos, p.inv_freq, p.mscale, p.rope, i, &css[i], &css[half + i]);
    float *k = p.k + t * dI;
    if (tid < 32) { /* zop_layernorm: mean, biased variance */
        float s = 0.0f;
        for (int64_t c = lane; c < dI; c += 32) s = __fadd_rn(s, k[c]);
        const float mean = __fdiv_rn(warp_sum(s), (float)dI);
        float v = 0.0f;
        for (int64_t c = lane; c < dI; c += 32) {
            const float d = __fsub_rn(k[c], mean);
            v = __fadd_rn(v, __fmul_rn(d, d));
        }
        v = warp_sum(v);
        if (lane == 0) {
            stat[0] = mean;
            stat[1] = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(__fdiv_rn(v, (float)dI), 1e-6f)));
        }
    }
    __syncthreads();
    const float mean = stat[0], inv = stat[1];
    const int64_t row = pos * dI;
    auto ln = [&](int64_t c) {
        return __fadd_rn(__fmul_rn(__fmul_rn(__fsub_rn(k[c], mean), inv), p.knorm[c]), p.kbias[c]);
    };
    for (int64_t i = tid; i < half; i += blockDim.x) { /* zop_rope_half on dims [0, rope) */
        float ra, rb;
        rope_pair(ln(i), ln(half + i), css[i], css[half + i], &ra, &rb);
        k[i] = ra;
        k[half + i] = rb;
        store_elem(p.cache, p.cache_bf16, row + i, ra);
        store_elem(p.cache, p.cache_bf16, row + half + i, rb);
    }
    for (int64_t c = p.rope + tid; c < dI; c += blockDim.x) {
        const float v = ln(c);
        k[c] = v;
        store_elem(p.cache, p.cache_bf16, row + c, v);
    }
    float *q = p.q + t * p.nI * dI;
    for (int64_t j = tid; j < p.nI * half; j += blockDim.x) {
        const int64_t h = j / half, i = j - h * half;
        float *qh = q + h * dI, ra, rb;
        rope_pair(qh[i], qh[half + i], css[i], css[half + i], &ra, &rb);
        qh[i] = ra;
        qh[half + i] = rb;
    }
    const float ws = (float)(1.0 / sqrt((double)p.nI));
    for (int64_t h = tid; h < p.nI; h += blockDim.x) p.w[t * p.nI + h] = __fmul_rn(p.w[t * p.nI + h], ws);
}

static size_t is_smem(int64_t nI, int64_t dI) {
    return (size_t)(nI * dI + IS_TP * (dI + 4) + IS_G * IS_TP) * sizeof(float);
}

template <bool BF16>
__global__ void __launch_bounds__(IS_THREADS) k_idx_score(const __grid_constant__ cu_idx p, int64_t t0) {
    extern __shared__ __align__(16) float sm[];
    pdl_launch();
    const int64_t dI = p.dI, nI = p.nI, KS = dI + 4; /* key rows 16-byte aligned, no bank conflicts */
    float *qs = sm, *ks = qs + nI * dI, *part = ks + IS_TP * KS;
    const int tid = threadIdx.x;
    const int64_t t = t0 + blockIdx.y, u0 = (int64_t)blockIdx.x * IS_TP;
    pdl_wait();
    const int64_t T = (int64_t)p.step->pos + t + 1;
    if (T <= p.topk || u0 >= T) return;
    const int64_t nt = T - u0 < IS_TP ? T - u0 : IS_TP;
    for (int64_t c = tid; c < nI * dI; c += IS_THREADS) qs[c] = p.q[t * nI * dI + c];
    for (int64_t c = tid; c < nt * dI; c += IS_THREADS) {
        const int64_t r = c / dI;
        ks[r * KS + (c - r * dI)] = load_elem(p.cache, BF16, u0 * dI + c);
    }
    __syncthreads();
    const int pi = tid % IS_TP, g = tid / IS_TP; /* a warp: one head group, 32 positions */
    float term = 0.0f;
    if (pi < nt) {
        float acc[IS_HPG];
#pragma unroll
        for (int i = 0; i < IS_HPG; i++) acc[i] = 0.0f;
        const float4 *kr = reinterpret_cast<const float4 *>(ks + pi * KS);
        for (int64_t c4 = 0; c4 < dI / 4; c4++) {
            const float4 kv = kr[c4];
#pragma unroll
            for (int i = 0; i < IS_HPG; i++) {
                const int64_t h = g + IS_G * i;
                if (h >= nI) break;
                const float4 qv = reinterpret_cast<const float4 *>(qs + h * dI)[c4];
                acc[i] = fmaf(qv.x, kv.x, acc[i]);
                acc[i] = fmaf(qv.y, kv.y, acc[i]);
                acc[i] = fmaf(qv.z, kv.z, acc[i]);
                acc[i] = fmaf(qv.w, kv.w, acc[i]);
            }
        }
        const float sc = (float)(1.0 / sqrt((double)dI));
        const float *w = p.w + t * nI;
#pragma unroll
        for (int i = 0; i < IS_HPG; i++) {
            const int64_t h = g + IS_G * i;
            if (h >= nI) break;
            const float a = __fmul_rn(acc[i], sc);
            term = __fadd_rn(term, __fmul_rn(w[h], a > 0.0f ? a : 0.0f));
        }
    }
    part[g * IS_TP + pi] = term;
    __syncthreads();
    if (g == 0 && pi < nt) {
        float s = part[pi];
#pragma unroll
        for (int gg = 1; gg < IS_G; gg++) s = __fadd_rn(s, part[gg * IS_TP + pi]);
        p.score[(t - t0) * p.score_ld + u0 + pi] = s;
    }
}

/* An unsigned key in the order of the float (-0 as +0: they tie, as in zidx_topk). */
__device__ __forceinline__ uint32_t okey(float f) {
    const uint32_t b = __float_as_uint(f == 0.0f ? 0.0f : f);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

/* Exclusive prefix count of `f` over the block in thread order; *all = the block's count. */
__device__ __forceinline__ uint32_t block_count(bool f, uint32_t *wtot, uint32_t *all) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    const uint32_t b = __ballot_sync(0xffffffffu, f);
    if (lane == 0) wtot[warp] = __popc(b);
    __syncthreads();
    uint32_t before = 0, tot = 0;
    for (int w = 0; w < nw; w++) {
        const uint32_t c = wtot[w];
        before += w < warp ? c : 0;
        tot += c;
    }
    __syncthreads(); /* wtot is rewritten by the next call */
    *all = tot;
    return before + __popc(b & ((1u << lane) - 1u));
}

__global__ void __launch_bounds__(IT_THREADS) k_idx_topk(const __grid_constant__ cu_idx p, int64_t t0) {
    __shared__ uint32_t hist[256], wtot[IT_THREADS / 32];
    __shared__ uint32_t sh_prefix, sh_krem;
    pdl_launch();
    pdl_wait();
    const int tid = threadIdx.x;
    const int64_t t = t0 + blockIdx.x, T = (int64_t)p.step->pos + t + 1;
    if (T <= p.topk) {
        if (tid == 0) p.sel_n[t] = -1;
        return;
    }
    const float *sc = p.score + (t - t0) * p.score_ld;
    uint32_t prefix = 0, krem = (uint32_t)p.topk; /* the threshold's bits so far; ranks left */
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (int i = tid; i < 256; i += IT_THREADS) hist[i] = 0;
        __syncthreads();
        const uint32_t hm = shift == 24 ? 0u : 0xffffffffu << (shift + 8);
        for (int64_t u = tid; u < T; u += IT_THREADS) {
            const uint32_t k = okey(sc[u]);
            if ((k & hm) == (prefix & hm)) atomicAdd(&hist[(k >> shift) & 255u], 1u);
        }
        __syncthreads();
        if (tid == 0) { /* the bucket of the krem-th largest among the matching keys */
            uint32_t above = 0;
            int b = 255;
            for (; b > 0; b--) {
                if (above + hist[b] >= krem) break;
                above += hist[b];
            }
            sh_prefix = prefix | ((uint32_t)b << shift);
            sh_krem = krem - above;
        }
        __syncthreads();
        prefix = sh_prefix;
        krem = sh_krem;
    }
    /* keys above the threshold, and the first krem equal to it, in position order */
    int32_t *out = p.sel + t * p.topk;
    uint32_t nsel = 0, nties = 0;
    for (int64_t u0 = 0; u0 < T; u0 += IT_THREADS) {
        const int64_t u = u0 + tid;
        const uint32_t k = u < T ? okey(sc[u]) : 0u;
        const bool gt = u < T && k > prefix, eq = u < T && k == prefix;
        uint32_t eq_all, sel_all;
        const uint32_t eq_before = block_count(eq, wtot, &eq_all);
        const bool s = gt || (eq && nties + eq_before < krem);
        const uint32_t at = block_count(s, wtot, &sel_all);
        if (s) out[nsel + at] = (int32_t)u;
        nsel += sel_all;
        nties += eq_all;
    }
    if (tid == 0) p.sel_n[t] = (int32_t)nsel;
}

extern "C" cudaError_t cuk_idx_prep(const cu_idx *p, cu_q q) {
    if (p->n <= 0) return cudaSuccess;
    if (!idx_shape_ok(p) || p->n > 0x7fffffff) return cudaErrorInvalidValue;
    return launch(q, dim3((unsigned)p->n), dim3(IP_THREADS), 0, k_idx_prep, *p);
}

extern "C" cudaError_t cuk_idx_select(const cu_idx *p, int64_t t0, int64_t nt, int64_t Tmax, cu_q q) {
    if (nt <= 0) return cudaSuccess;
    if (!idx_shape_ok(p) || t0 < 0 || t0 + nt > p->n || nt > 65535 || Tmax < 1 || Tmax > p->score_ld ||
        (Tmax + IS_TP - 1) / IS_TP > 0x7fffffff)
        return cudaErrorInvalidValue;
    const dim3 grid((unsigned)((Tmax + IS_TP - 1) / IS_TP), (unsigned)nt);
    const size_t smem = is_smem(p->nI, p->dI);
    cudaError_t err = p->cache_bf16 ? launch(q, grid, dim3(IS_THREADS), smem, k_idx_score<true>, *p, t0)
                                    : launch(q, grid, dim3(IS_THREADS), smem, k_idx_score<false>, *p, t0);
    if (err != cudaSuccess) return err;
    return launch(q, dim3((unsigned)nt), dim3(IT_THREADS), 0, k_idx_topk, *p, t0);
}

/* The score kernels' dynamic shared memory for the largest indexer (cuk_init). */
extern "C" cudaError_t cuk_idx_init(void) {
    const int bytes = (int)is_smem(ZCU_IDX_MAX_HEADS, ZCU_IDX_MAX_DIM);
    cudaError_t err = cudaFuncSetAttribute(k_idx_score<true>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
    if (err == cudaSuccess)
        err = cudaFuncSetAttribute(k_idx_score<false>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
    return err;
}
