/*
 * kernels_route.cu — the MoE router after its logits (zop_route), one warp per token, and
 * the grouping of a chunk's choices by expert for the prefill GEMMs.
 *
 * Ordering contract (SYSTEM.md section 1): the k chosen experts come out sorted by their
 * selection score (sigmoid + correction bias) descending, ties to the lower expert index;
 * the combine sums them in that order.  Each pick is a warp argmax under exactly that
 * order, so ties resolve as in the reference.  The weights are summed, normalised and
 * scaled by one lane in k order, as the reference does.  Built with --fmad=false.
 */
#include "backend/cuda/common.cuh"

#include <math.h>

/* Is (va, a) ranked before (vb, b)?  Higher value first, then lower index. */
__device__ __forceinline__ bool ranks_before(float va, int a, float vb, int b) {
    return va > vb || (va == vb && a < b);
}

/* The best of v[0..n) whose flag is 0 (flag NULL: all), in the ranks_before order; every
   lane returns it (-1 if none). */
__device__ int warp_best(const float *v, const unsigned char *flag, int n) {
    const int lane = threadIdx.x & 31;
    float bv = -INFINITY;
    int bi = -1;
    for (int i = lane; i < n; i += 32)
        if ((!flag || !flag[i]) && (bi < 0 || ranks_before(v[i], i, bv, bi))) {
            bv = v[i];
            bi = i;
        }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
        const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
        if (oi >= 0 && (bi < 0 || ranks_before(ov, oi, bv, bi))) {
            bv = ov;
            bi = oi;
        }
    }
    return bi;
}

/* Shared memory of one warp: p[E], sel[E], gscore[G], taken[E], keep[G]. */
static size_t route_smem(int E, int G) {
    return (size_t)(2 * E + G) * sizeof(float) + (size_t)(E + G);
}

__global__ void k_route(cu_route_cfg c, const float *logits, const float *bias, int32_t *idx,
                        float *w) {
    extern __shared__ float sm[];
    const int E = c.n_experts, G = c.n_group > 1 ? c.n_group : 1, lane = threadIdx.x;
    const int64_t t = blockIdx.x;
    float *p = sm, *sel = sm + E, *gs = sm + 2 * E;
    unsigned char *taken = reinterpret_cast<unsigned char *>(gs + G), *keep = taken + E;
    const float *lg = logits + t * E;

    if (c.softmax_scoring) { /* zop_softmax: max, exp, sum in index order, times 1/sum */
        float mx = -INFINITY;
        for (int e = lane; e < E; e += 32) mx = fmaxf(mx, lg[e]);
        mx = warp_max(mx);
        for (int e = lane; e < E; e += 32) p[e] = expf(lg[e] - mx);
        __syncwarp();
        if (lane == 0) {
            float sum = 0.0f;
            for (int e = 0; e < E; e++) sum += p[e];
            sel[0] = 1.0f / sum; /* parked until the scaling below */
        }
        __syncwarp();
        const float inv = sel[0];
        __syncwarp();
        for (int e = lane; e < E; e += 32) p[e] *= inv;
    } else {
        for (int e = lane; e < E; e += 32) p[e] = 1.0f / (1.0f + expf(-lg[e]));
    }
    for (int e = lane; e < E; e += 32) {
        sel[e] = p[e] + (bias ? bias[e] : 0.0f);
        taken[e] = 0;
    }
    __syncwarp();

    if (c.n_group > 1 && c.topk_group < c.n_group) {
        /* group score = sum of the two best `sel` of the group; keep the topk_group best */
        const int per = E / G;
        for (int g = lane; g < G; g += 32) {
            float b1 = -INFINITY, b2 = -INFINITY;
            for (int j = 0; j < per; j++) {
                const float v = sel[g * per + j];
                if (v > b1) {
                    b2 = b1;
                    b1 = v;
                } else if (v > b2) {
                    b2 = v;
                }
            }
            gs[g] = per > 1 ? b1 + b2 : b1;
            keep[g] = 0;
        }
        __syncwarp();
        for (int n = 0; n < c.topk_group; n++) {
            const int best = warp_best(gs, keep, G);
            if (lane == 0) keep[best] = 1;
            __syncwarp();
        }
        for (int e = lane; e < E; e += 32)
            if (!keep[e / per]) sel[e] = -INFINITY;
        __syncwarp();
    }

    __shared__ int chosen[ZCU_ROUTE_MAX_K];
    __shared__ float wsel[ZCU_ROUTE_MAX_K];
    for (int n = 0; n < c.k; n++) {
        const int best = warp_best(sel, taken, E);
        if (lane == 0) {
            chosen[n] = best;
            taken[best] = 1;
        }
        __syncwarp();
    }
    if (lane == 0) { /* zop_route's order of operations */
        float sum = 0.0f;
        for (int n = 0; n < c.k; n++) {
            wsel[n] = p[chosen[n]];
            sum += wsel[n];
        }
        if (c.norm_topk_prob)
            for (int n = 0; n < c.k; n++) wsel[n] /= (sum + 1e-20f);
        for (int n = 0; n < c.k; n++) wsel[n] *= c.scale;
    }
    __syncwarp();
    if (lane < c.k) {
        idx[t * c.k + lane] = chosen[lane];
        w[t * c.k + lane] = wsel[lane];
    }
}

extern "C" cudaError_t cuk_route(cu_route_cfg cfg, const float *logits, const float *bias,
                                 int64_t n, int32_t *idx, float *w, cudaStream_t st) {
    if (n <= 0) return cudaSuccess;
    const int G = cfg.n_group > 1 ? cfg.n_group : 1;
    if (cfg.n_experts < 1 || cfg.n_experts > ZCU_ROUTE_MAX_E || cfg.k < 1 ||
        cfg.k > cfg.n_experts || cfg.k > ZCU_ROUTE_MAX_K || cfg.n_experts % G || n > 0x7fffffff)
        return cudaErrorInvalidValue;
    k_route<<<(unsigned)n, 32, route_smem(cfg.n_experts, G), st>>>(cfg, logits, bias, idx, w);
    return cudaGetLastError();
}

/* One thread: the chunk is at most ZCU_CHUNK tokens x K choices. */
__global__ void k_moe_group(const int32_t *idx, int64_t n, int64_t K, int64_t E, int32_t *goff,
                            int32_t *list, int32_t *slot) {
    extern __shared__ int32_t cnt[];
    if (threadIdx.x != 0) return;
    for (int64_t e = 0; e < E; e++) cnt[e] = 0;
    for (int64_t i = 0; i < n * K; i++) cnt[idx[i]]++;
    goff[0] = 0;
    for (int64_t e = 0; e < E; e++) {
        goff[e + 1] = goff[e] + cnt[e];
        cnt[e] = 0; /* reused as fill cursor */
    }
    for (int64_t t = 0; t < n; t++)
        for (int64_t k = 0; k < K; k++) {
            const int32_t e = idx[t * K + k], s = goff[e] + cnt[e]++;
            slot[t * K + k] = s;
            list[s] = (int32_t)t;
        }
}

extern "C" cudaError_t cuk_moe_group(const int32_t *idx, int64_t n, int64_t K, int64_t E,
                                     int32_t *goff, int32_t *list, int32_t *slot,
                                     cudaStream_t st) {
    if (n <= 0) return cudaSuccess;
    if (E < 1 || E > ZCU_ROUTE_MAX_E) return cudaErrorInvalidValue;
    k_moe_group<<<1, 32, (size_t)E * sizeof(int32_t), st>>>(idx, n, K, E, goff, list, slot);
    return cudaGetLastError();
}
