/*
 * attn.cuh — what the two absorbed-attention split kernels share (kernels_attn.cu's float32
 * one, kernels_attn_tc.cu's tensor-core one): which positions a split reads, so both
 * feed the same merge, and the short-context path both host.
 */
#ifndef ZMLX_BACKEND_CUDA_ATTN_CUH
#define ZMLX_BACKEND_CUDA_ATTN_CUH

#include "backend/cuda/common.cuh"

/* Query qi's entries (dense: positions 0 .. pos + qi; sparse: its list, *ix set).  Reads
   the step and the lists: call after pdl_wait(). */
__device__ __forceinline__ int64_t attn_entries(const cu_attn &p, int64_t qi, const int32_t **ix) {
    *ix = nullptr;
    if (p.idx && p.idx_n[qi] >= 0) {
        *ix = p.idx + qi * p.idx_stride;
        return p.idx_n[qi];
    }
    return (int64_t)p.step->pos + qi + 1;
}

/* Query qi's entries [t0, t1) in split `split`: its context is positions 0 .. pos + qi
   (dense) or the idx_n[qi] listed positions ix (sparse, DeepSeek-V3.2); the context of
   the whole step (pos + n_q, or the list) is cut into nsplit spans of a multiple of
   `tile` entries.  Reads the step and the lists: call after pdl_wait(). */
struct attn_span {
    const int32_t *ix; /* sparse: the positions (ascending); NULL dense */
    int64_t t0, t1;
};
__device__ __forceinline__ attn_span attn_span_of(const cu_attn &p, int64_t qi, int64_t split, int tile) {
    attn_span a = {nullptr, 0, 0};
    const int64_t Ti = attn_entries(p, qi, &a.ix), tot = a.ix ? Ti : (int64_t)p.step->pos + p.n_q;
    int64_t span = (tot + p.nsplit - 1) / p.nsplit;
    span = (span + tile - 1) / tile * tile;
    a.t0 = split * span;
    a.t1 = a.t0 + span < Ti ? a.t0 + span : Ti;
    return a;
}

/* Four consecutive cache elements as stored (bf16: uint2, f32: float4), and as floats. */
template <bool BF16> struct cache_raw4 { typedef float4 t; };
template <> struct cache_raw4<true> { typedef uint2 t; };
template <bool BF16>
__device__ __forceinline__ typename cache_raw4<BF16>::t cache4_raw(const void *c, int64_t i) {
    if constexpr (BF16) return __ldg(reinterpret_cast<const uint2 *>(static_cast<const __nv_bfloat16 *>(c) + i));
    else return __ldg(reinterpret_cast<const float4 *>(static_cast<const float *>(c) + i));
}
__device__ __forceinline__ float4 raw4_f(uint2 v) {
    return make_float4(__uint_as_float(v.x << 16), __uint_as_float(v.x & 0xffff0000u),
                       __uint_as_float(v.y << 16), __uint_as_float(v.y & 0xffff0000u));
}
__device__ __forceinline__ float4 raw4_f(float4 v) {
    return v;
}
template <bool BF16>
__device__ __forceinline__ float4 cache4(const void *c, int64_t i) {
    return raw4_f(cache4_raw<BF16>(c, i));
}

/*
 * Short contexts: a query whose entries number at most p.short_max (ZCU_ATTN_SHORT by
 * default; ZMLX_CUDA_ATTN_SHORT lowers it, 0 = never) is attended by the split launch's
 * blocks a head at a time and written to p.out whole; the merge leaves it alone.  At a
 * context of 16 the splits' one busy block scored each position with one lane over the
 * 576 columns and the merge then added one split to nothing.  Here warp w takes entries
 * w, w + 8, ... in batches of JB rows whose loads are in flight together (as many as the
 * host kernel's registers hold): a lane holds the 16-byte pieces lane + 32 k of the
 * query and of each row, the warp's butterfly gives each score, and the warp keeps its
 * own online softmax a row at a time (running max, sum, and the sum of p v over its
 * lane's latent pieces, from the rows already in its registers: the same bits whatever
 * JB, so in either split kernel); the eight warps' states then meet in shared memory as
 * the merge combines splits.  Float32 throughout (queries, scores, probabilities; the
 * cache as stored): softmax(scale q.k) v / l in one more order of the sums
 * (tokens-class, as the splits).  Blocks of 8 warps or more; in a split launch block b of
 * the nb (x, y) blocks for this query takes heads b, b + nb, ...; sm holds 8 R + 16 floats
 * (both split kernels have more: a tile of 32 rows of W >= R).  The split kernel marks the short query for the merge with
 * l = -1 in split 0's statistics of each head (the value the merge reads first anyway:
 * no extra trip for the other queries).
 */
enum { AS_MAX = ZCU_ATTN_SHORT, AS_WARPS = 8, AS_CH = 5 /* 16-byte pieces of a row per lane: W <= 640 */,
       AS_LCH = ZCU_ATTN_MAX_R / 128 /* ... of its latent columns */ };

__device__ __forceinline__ bool attn_short_q(const cu_attn &p, int64_t qi) {
    const int32_t *ix;
    return attn_entries(p, qi, &ix) <= p.short_max;
}

/* Blocks along x of a split launch with gy along y: the splits, and for the short path at
   least a block per head of each query. */
static inline int64_t attn_grid_x(const cu_attn *p, unsigned gy) {
    const int64_t per = p->short_max > 0 ? (p->H + gy - 1) / gy : 1;
    return p->nsplit > per ? p->nsplit : per;
}

/*
 * The warps' walk of a short query's head: Ti entries (positions ix[t], or t when ix is
 * NULL), the query row q (W floats, global or shared memory); warp w of the block is
 * walker vw = v0 + w of nv and takes entries vw, vw + nv, ... (attn_short_head: v0 = 0,
 * nv = AS_WARPS; kernels_attn_uv.cu's spread: a head's blocks share the entries).  Each
 * warp's state (sums, max, sum) goes to sm as attn_short_merge reads it; no barrier.
 */
template <bool BF16, int JB>
__device__ __forceinline__ void attn_short_walk(const cu_attn &p, int Ti, const int32_t *ix, const float *q,
                                                float *sm, int v0, int nv) {
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, vw = v0 + warp;
    const int W = (int)(p.R + p.rope), W4 = W / 4, R = (int)p.R, R4 = R / 4;
    float *po = sm, *pm = sm + AS_WARPS * R, *pl = pm + AS_WARPS; /* [8][R] sums, [8] max, [8] sum */
    typedef typename cache_raw4<BF16>::t raw;
    if (warp < AS_WARPS) {
        const float4 *qr = reinterpret_cast<const float4 *>(q);
        float4 qv[AS_CH], acc[AS_LCH];
#pragma unroll
        for (int k = 0; k < AS_CH; k++) {
            const int c4 = lane + 32 * k;
            qv[k] = c4 < W4 ? qr[c4] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        }
#pragma unroll
        for (int k = 0; k < AS_LCH; k++) acc[k] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        float m = -INFINITY, l = 0.0f;
        for (int j0 = 0; vw + nv * j0 < Ti; j0 += JB) { /* the batch has a row: m below is finite */
            raw kv[JB][AS_CH];
#pragma unroll
            for (int j = 0; j < JB; j++) {
                const int t = vw + nv * (j0 + j);
                const int64_t u = t < Ti ? (ix ? (int64_t)ix[t] : t) : 0;
#pragma unroll
                for (int k = 0; k < AS_CH; k++) {
                    const int c4 = lane + 32 * k;
                    if (t < Ti && c4 < W4) kv[j][k] = cache4_raw<BF16>(p.cache, u * W + 4 * c4);
                    else kv[j][k] = raw();
                }
            }
            float sc[JB];
#pragma unroll
            for (int j = 0; j < JB; j++) {
                float a = 0.0f;
#pragma unroll
                for (int k = 0; k < AS_CH; k++) {
                    const float4 kf = raw4_f(kv[j][k]);
                    a = fmaf(qv[k].x, kf.x, a);
                    a = fmaf(qv[k].y, kf.y, a);
                    a = fmaf(qv[k].z, kf.z, a);
                    a = fmaf(qv[k].w, kf.w, a);
                }
                sc[j] = __fmul_rn(warp_sum(a), p.scale);
            }
            /* the online softmax a row at a time: the same bits whatever JB */
#pragma unroll
            for (int j = 0; j < JB; j++) {
                if (vw + nv * (j0 + j) >= Ti) break;
                const float mn = fmaxf(m, sc[j]), alpha = expf(__fsub_rn(m, mn)); /* 0 on the first row */
                const float pj = expf(__fsub_rn(sc[j], mn));
                l = __fadd_rn(__fmul_rn(l, alpha), pj);
                m = mn;
#pragma unroll
                for (int k = 0; k < AS_LCH; k++) {
                    const float4 kf = raw4_f(kv[j][k]);
                    float4 a = acc[k];
                    a.x = fmaf(pj, kf.x, __fmul_rn(a.x, alpha)), a.y = fmaf(pj, kf.y, __fmul_rn(a.y, alpha));
                    a.z = fmaf(pj, kf.z, __fmul_rn(a.z, alpha)), a.w = fmaf(pj, kf.w, __fmul_rn(a.w, alpha));
                    acc[k] = a;
                }
            }
        }
        /* the warps' states (a warp without entries: m = -inf, l = 0, sums 0) */
#pragma unroll
        for (int k = 0; k < AS_LCH; k++) {
            const int c4 = lane + 32 * k;
            if (c4 < R4) reinterpret_cast<float4 *>(po + warp * R)[c4] = acc[k];
        }
        if (lane == 0) pm[warp] = m, pl[warp] = l;
    }
}

/*
 * After attn_short_walk and a barrier: the block's warp states in sm merged (warp order)
 * into out[0 .. R): normalised (NORM), or the unnormalised sums with the block's max and
 * sum in out[R], out[R + 1] (M = -inf, L = 0 where no warp had entries).
 */
template <bool NORM>
__device__ __forceinline__ void attn_short_merge(int R, const float *sm, float *out) {
    const float *po = sm, *pm = sm + AS_WARPS * R, *pl = pm + AS_WARPS;
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < AS_WARPS; w++) M = fmaxf(M, pm[w]);
    float wt[AS_WARPS], L = 0.0f;
#pragma unroll
    for (int w = 0; w < AS_WARPS; w++) {
        wt[w] = pl[w] > 0.0f ? expf(__fsub_rn(pm[w], M)) : 0.0f;
        L = __fadd_rn(L, __fmul_rn(pl[w], wt[w]));
    }
    const float inv = NORM ? __fdiv_rn(1.0f, L) : 1.0f;
    for (int c = threadIdx.x; c < R; c += blockDim.x) {
        float o = 0.0f;
#pragma unroll
        for (int w = 0; w < AS_WARPS; w++) o = fmaf(wt[w], po[w * R + c], o);
        out[c] = NORM ? __fmul_rn(o, inv) : o;
    }
    if (!NORM && threadIdx.x == 0) out[R] = M, out[R + 1] = L;
}

/*
 * One head of a short query (attn_short_walk's entries, v0 = 0, nv = AS_WARPS), out[0 ..
 * R) the normalised output.  Every warp of the block calls it (warps past AS_WARPS only
 * meet the barrier); sm: AS_WARPS * R + 16 floats.
 */
template <bool BF16, int JB>
__device__ __forceinline__ void attn_short_head(const cu_attn &p, int Ti, const int32_t *ix, const float *q,
                                                float *out, float *sm) {
    attn_short_walk<BF16, JB>(p, Ti, ix, q, sm, 0, AS_WARPS);
    __syncthreads();
    attn_short_merge<true>((int)p.R, sm, out);
}

/* The short path of a split launch: query qi's heads b, b + nb, ... (block b of nb), each
   into p.out, marked for the merge. */
template <bool BF16, int JB>
__device__ __forceinline__ void attn_short(const cu_attn &p, int64_t qi, float *sm) {
    const int b = (int)(blockIdx.x + gridDim.x * blockIdx.y), nb = (int)(gridDim.x * gridDim.y);
    const int32_t *ix;
    const int Ti = (int)attn_entries(p, qi, &ix), W = (int)(p.R + p.rope);
    for (int64_t h = b; h < p.H; h += nb) {
        attn_short_head<BF16, JB>(p, Ti, ix, p.q + (qi * p.H + h) * W, p.out + (qi * p.H + h) * p.R, sm);
        if (threadIdx.x == 0) p.part_ml[(qi * p.nsplit * p.H + h) * 2 + 1] = -1.0f; /* for the merge */
        __syncthreads(); /* sm is rewritten for the next head */
    }
}

#endif
