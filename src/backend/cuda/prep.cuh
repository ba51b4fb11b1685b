/*
 * prep.cuh — the MLA projections' epilogue for one token (cuk_attn_prep): cos/sin of the
 * position, the q_a and latent RMSNorms, k_pe's rope, the latent-cache write.  One
 * device function for the standalone kernel (kernels_elem.cu) and for the extra block of
 * the fused absorbed-query launch (kernels_matvec.cu, glm47_rope), so both write the same
 * bits.  Works with any block of whole warps.
 */
#ifndef ZMLX_BACKEND_CUDA_PREP_CUH
#define ZMLX_BACKEND_CUDA_PREP_CUH

#include "backend/cuda/common.cuh"

__device__ __forceinline__ void store_elem(void *cache, bool bf16, int64_t i, float v) {
    if (bf16) static_cast<__nv_bfloat16 *>(cache)[i] = __float2bfloat16_rn(v);
    else static_cast<float *>(cache)[i] = v;
}

__device__ __forceinline__ float load_elem(const void *cache, bool bf16, int64_t i) {
    return bf16 ? __bfloat162float(static_cast<const __nv_bfloat16 *>(cache)[i])
                : static_cast<const float *>(cache)[i];
}

/* cos | sin of `pos` for frequency i: row pos of the table (glm47_rope) or computed. */
__device__ __forceinline__ void pos_cs(const float *table, int64_t pos, const float *inv_freq,
                                       float mscale, int64_t rope, int64_t i, float *c, float *s) {
    if (table) {
        *c = table[pos * rope + i];
        *s = table[pos * rope + rope / 2 + i];
    } else {
        rope_cs(pos, inv_freq, i, mscale, c, s);
    }
}

/* Latent values, their norm weights and rope pairs a thread loads before the barrier (the
   block's one trip to memory; a larger latent or a smaller block takes them after it). */
enum { PREP_NV = 4, PREP_NP = 1 };

/* `sm`: 2 * 32 floats of shared memory (sums of squares, then cos | sin up to 128).  Every
   load is asked for before the barrier — the latent's values, its norm weights and its rope
   pairs into registers beside the sum of squares' loads (warp 0 holds its 16 a lane, one
   trip: the same order of sums) — so the block's path is one trip to memory, not three. */
__device__ __forceinline__ void prep_token(const cu_prep &p, int64_t t, float *red, float *css) {
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, nw = blockDim.x >> 5, nt = blockDim.x;
    const int64_t pos = (int64_t)p.step->pos + t, half = p.rope / 2, W = p.R + p.rope;
    float *kv = p.kv + t * W;
    const bool pre = p.R <= (int64_t)PREP_NV * nt && half <= (int64_t)PREP_NP * nt;
    float xv[PREP_NV], wv[PREP_NV], pa[PREP_NP], pb[PREP_NP];
    if (pre) {
#pragma unroll
        for (int j = 0; j < PREP_NV; j++) {
            const int64_t c = tid + (int64_t)j * nt;
            xv[j] = c < p.R ? kv[c] : 0.0f;
            wv[j] = c < p.R ? p.kv_norm[c] : 0.0f;
        }
#pragma unroll
        for (int j = 0; j < PREP_NP; j++) {
            const int64_t i = tid + (int64_t)j * nt;
            pa[j] = i < half ? kv[p.R + 2 * i] : 0.0f;
            pb[j] = i < half ? kv[p.R + 2 * i + 1] : 0.0f;
        }
    }
    for (int64_t i = tid; i < half; i += blockDim.x) {
        float c, s;
        pos_cs(p.table, pos, p.inv_freq, p.mscale, p.rope, i, &c, &s);
        css[i] = c;
        css[half + i] = s;
        if (p.cs) {
            p.cs[t * p.rope + i] = c;
            p.cs[t * p.rope + half + i] = s;
        }
    }
    if (warp == 0) {
        const float ss = p.R <= 16 * 32 ? warp_sumsq_f<16>(kv, p.R) : warp_sumsq(kv, p.R);
        if (lane == 0) red[0] = ss;
    }
    if (p.qa && warp == (nw > 1 ? 1 : 0)) {
        const float ss = warp_sumsq(p.qa + t * p.ql, p.ql);
        if (lane == 0) red[1] = ss;
    }
    __syncthreads();
    const float inv = rms_inv(red[0], p.R, p.eps);
    const int64_t row = pos * W;
    if (pre) {
#pragma unroll
        for (int j = 0; j < PREP_NV; j++) {
            const int64_t c = tid + (int64_t)j * nt;
            if (c >= p.R) break;
            const float v = norm_el(wv[j], xv[j], inv);
            kv[c] = v;
            store_elem(p.cache, p.cache_bf16, row + c, v);
        }
    } else {
        for (int64_t c = tid; c < p.R; c += blockDim.x) {
            const float v = norm_el(p.kv_norm[c], kv[c], inv);
            kv[c] = v;
            store_elem(p.cache, p.cache_bf16, row + c, v);
        }
    }
    if (p.qa) {
        float *qa = p.qa + t * p.ql;
        const float iq = rms_inv(red[1], p.ql, p.eps);
        for (int64_t c = tid; c < p.ql; c += blockDim.x) qa[c] = norm_el(p.q_norm[c], qa[c], iq);
    }
    for (int64_t i = tid, j = 0; i < half; i += blockDim.x, j++) { /* zop_rope_interleaved */
        float *x = kv + p.R;
        float ra, rb;
        if (pre) /* j < PREP_NP: half <= PREP_NP * nt */
            rope_pair(pa[j < PREP_NP ? j : 0], pb[j < PREP_NP ? j : 0], css[i], css[half + i], &ra, &rb);
        else
            rope_pair(x[2 * i], x[2 * i + 1], css[i], css[half + i], &ra, &rb);
        x[2 * i] = ra;
        x[2 * i + 1] = rb;
        store_elem(p.cache, p.cache_bf16, row + p.R + 2 * i, ra);
        store_elem(p.cache, p.cache_bf16, row + p.R + 2 * i + 1, rb);
    }
}

#endif
