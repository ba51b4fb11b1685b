/*
 * route.cuh — zop_route for one token by one warp, shared by the router kernel
 * (kernels_route.cu) and the fused MoE kernel's prologue (kernels_matvec.cu, moe_mlp), so
 * both choose the same experts with the same weights, bit for bit.
 *
 * Ordering contract (SYSTEM.md section 1): the k chosen experts come out sorted by their
 * selection score (sigmoid + correction bias) descending, ties to the lower expert index;
 * the combine sums them in that order.  Each pick is a warp argmax under exactly that
 * order, so ties resolve as in the reference.  The weights are summed, normalised and
 * scaled by one lane in k order, as the reference does.
 */
#ifndef ZMLX_BACKEND_CUDA_ROUTE_CUH
#define ZMLX_BACKEND_CUDA_ROUTE_CUH

#include "backend/cuda/common.cuh"

#include <math.h>

/* Is (va, a) ranked before (vb, b)?  Higher value first, then lower index. */
__device__ __forceinline__ bool ranks_before(float va, int a, float vb, int b) {
    return va > vb || (va == vb && a < b);
}

/* The best of v[0..n) whose flag is 0 (flag NULL: all), in the ranks_before order; every
   lane returns it (-1 if none). */
__device__ __forceinline__ int warp_best(const float *v, const unsigned char *flag, int n) {
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

/* Bytes of shared memory warp_route needs for E experts in G groups (4-byte aligned). */
__host__ __device__ __forceinline__ size_t route_smem(int E, int G) {
    return ((size_t)(2 * E + G + 2 * ZCU_ROUTE_MAX_K) * sizeof(float) + (size_t)(E + G) + 3) & ~(size_t)3;
}

/*
 * Route one token (logits lg[E]) with one whole warp; sm = route_smem bytes.  On return
 * (after a __syncwarp) chosen[0..k) / wsel[0..k) hold the experts and weights, in route
 * order; both point into sm.
 */
__device__ __forceinline__ void warp_route(const cu_route_cfg &c, const float *lg, const float *bias,
                                           float *sm, const int **chosen_out, const float **w_out) {
    const int E = c.n_experts, G = c.n_group > 1 ? c.n_group : 1, lane = threadIdx.x & 31;
    float *p = sm, *sel = sm + E, *gs = sm + 2 * E;
    int *chosen = reinterpret_cast<int *>(gs + G);
    float *wsel = reinterpret_cast<float *>(chosen + ZCU_ROUTE_MAX_K);
    unsigned char *taken = reinterpret_cast<unsigned char *>(wsel + ZCU_ROUTE_MAX_K), *keep = taken + E;

    if (c.softmax_scoring) { /* zop_softmax: max, exp, sum in index order, times 1/sum */
        float mx = -INFINITY;
        for (int e = lane; e < E; e += 32) mx = fmaxf(mx, lg[e]);
        mx = warp_max(mx);
        for (int e = lane; e < E; e += 32) p[e] = expf(__fsub_rn(lg[e], mx));
        __syncwarp();
        if (lane == 0) {
            float sum = 0.0f;
            for (int e = 0; e < E; e++) sum = __fadd_rn(sum, p[e]);
            sel[0] = __fdiv_rn(1.0f, sum); /* parked until the scaling below */
        }
        __syncwarp();
        const float inv = sel[0];
        __syncwarp();
        for (int e = lane; e < E; e += 32) p[e] = __fmul_rn(p[e], inv);
    } else {
        for (int e = lane; e < E; e += 32) p[e] = __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-lg[e])));
    }
    for (int e = lane; e < E; e += 32) {
        sel[e] = bias ? __fadd_rn(p[e], bias[e]) : p[e];
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
            gs[g] = per > 1 ? __fadd_rn(b1, b2) : b1;
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
            sum = __fadd_rn(sum, wsel[n]);
        }
        if (c.norm_topk_prob)
            for (int n = 0; n < c.k; n++) wsel[n] = __fdiv_rn(wsel[n], __fadd_rn(sum, 1e-20f));
        for (int n = 0; n < c.k; n++) wsel[n] = __fmul_rn(wsel[n], c.scale);
    }
    __syncwarp();
    *chosen_out = chosen;
    *w_out = wsel;
}

/*
 * warp_route for the common case in registers: at most 64 experts, no groups, sigmoid
 * scores (GLM-4.7-Flash, DeepSeek-V3's ungrouped configs).  Lane l holds experts l and
 * l + 32 (their probabilities and selection scores), each pick is warp_best's scan and
 * butterfly on those registers (the same order, so the same expert), and lane n < k
 * ends with pick n and its weight, from zop_route's operations in warp_route's order
 * (the sum over the picks in k order, then the division and the scale): the same bits,
 * without warp_route's shared-memory round trips.  b0, b1: bias[l], bias[l + 32] (0 where
 * there is no bias or no such expert), which the caller may load before the PDL wait.
 */
__host__ __device__ __forceinline__ bool route_reg_ok(const cu_route_cfg &c) {
    return c.n_experts <= 64 && c.n_group <= 1 && !c.softmax_scoring && c.k <= 32;
}

/* A selection score as an unsigned key in ranks_before's value order (a larger key ranks
   first; -0 and +0 the same key, as they tie there), for scores that are not NaN; 0 is
   below every score's key. */
__device__ __forceinline__ uint32_t score_key(float v) {
    const uint32_t b = v == 0.0f ? 0u : __float_as_uint(v);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

__device__ __forceinline__ void warp_route_reg(const cu_route_cfg &c, const float *lg, float b0, float b1,
                                               bool has_bias, bool poll, bool use_keys, int *e_out, float *w_out) {
    const int E = c.n_experts, lane = threadIdx.x & 31, e1 = lane + 32;
    const bool on0 = lane < E, on1 = e1 < E;
    float l0, l1;
    if (poll) { /* written by other blocks of this launch: read from L2 until none is unset */
        do {
            l0 = on0 ? ld_relaxed_gpu(lg + lane) : 0.0f;
            l1 = on1 ? ld_relaxed_gpu(lg + e1) : 0.0f;
        } while (!__all_sync(0xffffffffu, __float_as_uint(l0) != ZCU_LOGIT_UNSET &&
                                              __float_as_uint(l1) != ZCU_LOGIT_UNSET));
    } else {
        l0 = on0 ? lg[lane] : 0.0f, l1 = on1 ? lg[e1] : 0.0f;
    }
    const float p0 = __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-l0))), p1 = __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-l1)));
    const float s0 = has_bias ? __fadd_rn(p0, b0) : p0, s1 = has_bias ? __fadd_rn(p1, b1) : p1;
    bool t0 = !on0, t1 = !on1; /* taken (or absent) */
    int mine = -1;
    float mw = 0.0f, sum = 0.0f;
    /* without a NaN among the scores ranks_before is a total order, so a pick is the
       largest key (redux.sync) and, among the lanes holding it, the lowest expert: the
       butterfly's pick in two instructions (sm_80 on) */
    const bool keys = use_keys && __all_sync(0xffffffffu, !(on0 && isnan(s0)) && !(on1 && isnan(s1)));
    const uint32_t k0 = score_key(s0), k1 = score_key(s1);
    for (int n = 0; n < c.k; n++) {
        int bi = -1;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
        if (keys) {
            uint32_t kb = 0u, ib = 0xffffffffu;
            if (!t0) kb = k0, ib = (uint32_t)lane;
            if (!t1 && k1 > kb) kb = k1, ib = (uint32_t)e1; /* ties: expert lane before lane + 32 */
            const uint32_t m = __reduce_max_sync(0xffffffffu, kb);
            const uint32_t mi = __reduce_min_sync(0xffffffffu, kb == m ? ib : 0xffffffffu);
            bi = m == 0u ? -1 : (int)mi;
        } else
#endif
        {
            float bv = -INFINITY;
            if (!t0) bv = s0, bi = lane;
            if (!t1 && (bi < 0 || ranks_before(s1, e1, bv, bi))) bv = s1, bi = e1;
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) {
                const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
                const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
                if (oi >= 0 && (bi < 0 || ranks_before(ov, oi, bv, bi))) bv = ov, bi = oi;
            }
        }
        t0 = t0 || bi == lane;
        t1 = t1 || bi == e1;
        const float pw = __shfl_sync(0xffffffffu, bi >= 32 ? p1 : p0, bi & 31); /* p[bi] */
        sum = __fadd_rn(sum, pw);
        if (lane == n) mine = bi, mw = pw;
    }
    if (c.norm_topk_prob) mw = __fdiv_rn(mw, __fadd_rn(sum, 1e-20f));
    *e_out = mine;
    *w_out = __fmul_rn(mw, c.scale);
}

/*
 * The certified route (cu_mv_route.part): a pick taken on estimated logits that no logits
 * within the bound of them could change.  l0, l1: lane l's estimates for experts l and
 * l + 32; B0, B1: bounds on their distance from the exact logits (warp_route_reg's
 * input); b0, b1: the correction bias as warp_route_reg takes it.  The selection scores
 * are computed as warp_route_reg computes them, so the exact score of expert e lies within
 * D_e = B_e / 4 (the sigmoid's slope is at most 1/4) + 2e-6 (1 + |b_e|) of the estimate
 * (the two evaluations' roundings: expf within 2 ulp, the add, the division, the bias's
 * add, about 14 units of 2^-24 of (1 + |b_e|), and the comparisons').  The k picks on the
 * estimates, in order, are then the exact route's picks in its order when each pick's
 * lower end (score - D) is above the next pick's upper end (score + D) and the last's
 * above every other expert's upper end: no exact ordering can differ, and no ties.
 * Returns whether that holds (false on any non-finite estimate, bound or score); lane
 * n < k then has pick n in *e_out.  Call with a whole warp; route_reg_ok(c).
 */
__device__ __forceinline__ bool warp_route_cert(const cu_route_cfg &c, float l0, float l1, float B0, float B1,
                                                float b0, float b1, bool has_bias, int *e_out) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ < 800
    *e_out = -1; /* redux.sync: sm_80 on (the decode's targets) */
    return false;
#else
    const int E = c.n_experts, lane = threadIdx.x & 31, e1 = lane + 32;
    const bool on0 = lane < E, on1 = e1 < E;
    const float p0 = __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-l0))), p1 = __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-l1)));
    const float s0 = has_bias ? __fadd_rn(p0, b0) : p0, s1 = has_bias ? __fadd_rn(p1, b1) : p1;
    const float d0 = __fadd_rn(__fmul_rn(0.25f, B0), __fmul_rn(2e-6f, __fadd_rn(1.0f, fabsf(has_bias ? b0 : 0.0f))));
    const float d1 = __fadd_rn(__fmul_rn(0.25f, B1), __fmul_rn(2e-6f, __fadd_rn(1.0f, fabsf(has_bias ? b1 : 0.0f))));
    const bool fin = (!on0 || (isfinite(l0) && isfinite(s0) && isfinite(d0))) &&
                     (!on1 || (isfinite(l1) && isfinite(s1) && isfinite(d1)));
    *e_out = -1;
    if (!__all_sync(0xffffffffu, fin)) return false;
    bool t0 = !on0, t1 = !on1, ok = true;
    float lo_prev = 0.0f;
    int mine = -1;
    const uint32_t k0 = score_key(s0), k1 = score_key(s1);
    for (int n = 0; n < c.k; n++) { /* warp_route_reg's pick on keys: the largest, then the lowest expert */
        uint32_t kb = 0u, ib = 0xffffffffu;
        if (!t0) kb = k0, ib = (uint32_t)lane;
        if (!t1 && k1 > kb) kb = k1, ib = (uint32_t)e1;
        const uint32_t m = __reduce_max_sync(0xffffffffu, kb);
        const uint32_t mi = __reduce_min_sync(0xffffffffu, kb == m ? ib : 0xffffffffu);
        if (m == 0u) return false; /* fewer experts than picks */
        const int bi = (int)mi;
        t0 = t0 || bi == lane;
        t1 = t1 || bi == e1;
        const float sb = __shfl_sync(0xffffffffu, bi >= 32 ? s1 : s0, bi & 31);
        const float db = __shfl_sync(0xffffffffu, bi >= 32 ? d1 : d0, bi & 31);
        if (n > 0) ok = ok && lo_prev > __fadd_rn(sb, db);
        lo_prev = __fsub_rn(sb, db);
        if (lane == n) mine = bi;
    }
    /* the best upper end among the experts not picked */
    float hi = -INFINITY;
    if (!t0) hi = __fadd_rn(s0, d0);
    if (!t1) hi = fmaxf(hi, __fadd_rn(s1, d1));
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) hi = fmaxf(hi, __shfl_xor_sync(0xffffffffu, hi, o));
    ok = ok && lo_prev > hi;
    *e_out = mine;
    return ok;
#endif
}

#endif
