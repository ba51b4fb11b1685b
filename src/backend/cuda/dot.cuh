/*
 * dot.cuh — the weight formats on the device: how a row of each zwkind is read and
 * multiplied with an activation vector, in ONE fixed order shared by every kernel that
 * computes a projection (plain, SwiGLU, per-head, routed, combined), so a fused kernel
 * repeats the unfused chain's dot products bit for bit.
 *
 * Units.  A row of `cols` elements (cols % 32 == 0) is read in units of 32 elements:
 * 128 bytes of f32, 64 of f16/bf16, `bits` words of an affine code stream, 16 bytes of
 * mxfp4.  Lane l of a warp takes units l, l + 32, ...; inside a unit the 32 products go
 * into four FMA chains (elements 8k .. 8k+7) summed as (p0 + p1) + (p2 + p3); a quantized
 * unit then becomes  s * dot + b * sum(x over the unit)  (affine) or  s * dot  (mxfp4,
 * the codes read as twice their value and s halved: exact), the lane adds its units in
 * order, and the warp's butterfly adds the lanes.  The factored affine form is the one
 * SYSTEM.md section 1 allows; the conformance test bounds it like the CPU's.
 *
 * Activations.  The vector is staged in shared memory in a permuted layout (piece i of
 * unit u at float4 index ((u / 32) * 8 + i) * 32 + u % 32) so the 32 lanes of a warp
 * read 32 consecutive float4s: no bank conflicts.  Affine rows also need the unit sums
 * of x, computed once at staging (sequentially over the unit's 32 elements).
 *
 * Pieces.  The GEMM, the transposed product and the embedding dequantize 8 elements at a
 * time with the reference's roundings (s * q + b, two roundings; mxfp4 value * s).
 */
#ifndef ZMLX_BACKEND_CUDA_DOT_CUH
#define ZMLX_BACKEND_CUDA_DOT_CUH

#include "backend/cuda/common.cuh"
#include "backend/cuda/q8.cuh"

/* 32-bit words of one unit of 32 elements. */
template <int K> struct fmt {
    static constexpr bool affine = K >= ZW_AFFINE2 && K <= ZW_AFFINE8;
    static constexpr bool mx = K == ZW_MXFP4;
    static constexpr bool quant = affine || mx;
    static constexpr int bits = K == ZW_F32 ? 32 : K == ZW_F16 || K == ZW_BF16 ? 16
                              : K == ZW_AFFINE2 ? 2 : K == ZW_AFFINE3 ? 3 : K == ZW_AFFINE5 ? 5
                              : K == ZW_AFFINE6 ? 6 : K == ZW_AFFINE8 ? 8 : 4;
    static constexpr int NW = bits; /* 32 elements x bits / 32 */
};

/* The words of unit u of a row starting at `row`. */
template <int K>
__device__ __forceinline__ void load_unit(const uint8_t *row, int64_t u, uint32_t (&w)[fmt<K>::NW]) {
    constexpr int NW = fmt<K>::NW;
    const uint8_t *p = row + u * (NW * 4);
    if constexpr (NW % 4 == 0) {
#pragma unroll
        for (int i = 0; i < NW / 4; i++) {
            const uint4 v = ldw4(p + 16 * i);
            w[4 * i] = v.x, w[4 * i + 1] = v.y, w[4 * i + 2] = v.z, w[4 * i + 3] = v.w;
        }
    } else if constexpr (NW % 2 == 0) {
#pragma unroll
        for (int i = 0; i < NW / 2; i++) {
            const uint2 v = ldw2(p + 8 * i);
            w[2 * i] = v.x, w[2 * i + 1] = v.y;
        }
    } else {
#pragma unroll
        for (int i = 0; i < NW; i++) w[i] = ldw1(p + 4 * i);
    }
}

/* Code e (compile-time after unrolling) of a packed unit of B-bit codes. */
template <int B>
__device__ __forceinline__ uint32_t unit_code(const uint32_t *w, int e) {
    const int o = e * B, wi = o >> 5, sh = o & 31;
    uint32_t v = w[wi] >> sh;
    if (sh + B > 32) v |= w[wi + 1] << (32 - sh);
    return v & ((1u << B) - 1u);
}

/* Element e of a unit as a float (for the dot: mxfp4 as twice its value). */
template <int K>
__device__ __forceinline__ float unit_el(const uint32_t *w, int e) {
    if constexpr (K == ZW_F32) {
        return __uint_as_float(w[e]);
    } else if constexpr (K == ZW_BF16) {
        return __uint_as_float((e & 1) ? (w[e >> 1] & 0xffff0000u) : (w[e >> 1] << 16));
    } else if constexpr (K == ZW_F16) {
        return __half2float(__ushort_as_half((unsigned short)((e & 1) ? (w[e >> 1] >> 16) : (w[e >> 1] & 0xffffu))));
    } else if constexpr (K == ZW_AFFINE4) {
        /* nibble e of word e / 8: the low nibbles of the bytes are the even elements */
        const uint32_t word = w[e >> 3], j = (uint32_t)(e & 7);
        const uint32_t src = (j & 1) ? ((word >> 4) & 0x0F0F0F0Fu) : (word & 0x0F0F0F0Fu);
        return __fsub_rn(__uint_as_float(__byte_perm(src, 0x4B000000u, 0x7650u + (j >> 1))), 8388608.0f);
    } else if constexpr (K == ZW_AFFINE8) {
        return __fsub_rn(__uint_as_float(__byte_perm(w[e >> 2], 0x4B000000u, 0x7650u + (uint32_t)(e & 3))),
                         8388608.0f);
    } else if constexpr (K == ZW_MXFP4) {
        const uint32_t c = (w[e >> 3] >> (4 * (e & 7))) & 15u;
        /* 2 * |value| of E2M1 magnitudes 0..7: {0, 1, 2, 3, 4, 6, 8, 12} */
        const float m = code_f(__byte_perm(0x03020100u, 0x0C080604u, c & 7u));
        return __uint_as_float(__float_as_uint(m) | ((c & 8u) << 28));
    } else {
        return code_f(unit_code<fmt<K>::bits>(w, e));
    }
}

/* The dot of one unit with its 32 staged activations (piece i at x4[i * 32]). */
template <int K>
__device__ __forceinline__ float unit_dot(const uint32_t *w, const float4 *x4) {
    float p[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
    for (int i = 0; i < 8; i++) {
        const float4 x = x4[i * 32];
        const int e = 4 * i;
        p[i >> 1] = fmaf(unit_el<K>(w, e), x.x, p[i >> 1]);
        p[i >> 1] = fmaf(unit_el<K>(w, e + 1), x.y, p[i >> 1]);
        p[i >> 1] = fmaf(unit_el<K>(w, e + 2), x.z, p[i >> 1]);
        p[i >> 1] = fmaf(unit_el<K>(w, e + 3), x.w, p[i >> 1]);
    }
    return __fadd_rn(__fadd_rn(p[0], p[1]), __fadd_rn(p[2], p[3]));
}

/* log2 of a power of two (group sizes): no integer division in the hot paths. */
__device__ __forceinline__ int lg2(int v) {
    return __ffs(v) - 1;
}

/* Units of a row of nu units lane `lane` takes (units lane, lane + 32, ...). */
__device__ __forceinline__ int lane_units(int nu, int lane) {
    return lane < nu ? (nu - lane + 31) / 32 : 0;
}

/* One row of a matrix as the warp reads it. */
struct rowp {
    const uint8_t *d;   /* packed data of the row */
    const void *s, *b;  /* its scales / biases (quantized) */
};

/* The row `row` of matrix `e` of a (possibly stacked) weight. */
__device__ __forceinline__ rowp row_of(const cuw &w, int64_t e, int64_t row) {
    rowp r;
    r.d = static_cast<const uint8_t *>(w.data) + e * w.stride + row * w.ld;
    r.s = r.b = nullptr;
    if (w.scales) {
        const int ss = sdt_size(w.sdt);
        const int64_t si = (e * w.sstride + row * (w.cols >> lg2(w.group))) * ss;
        r.s = static_cast<const uint8_t *>(w.scales) + si;
        if (w.biases) r.b = static_cast<const uint8_t *>(w.biases) + si;
    }
    return r;
}

/* The rows of X / Y a GEMM block's grid slice covers: all n, or (grouped: goff, slice
   blockIdx.z = matrix e of the stack) goff[e] .. goff[e + 1]. */
struct gemm_group {
    int64_t base, cnt, e;
};
__device__ __forceinline__ gemm_group gemm_group_of(const int32_t *goff, int64_t n) {
    if (!goff) return {0, n, 0};
    const int64_t e = blockIdx.z, base = goff[e];
    return {base, goff[e + 1] - base, e};
}

/* A staged activation vector: permuted float4s and (affine) unit sums; in fast mode
   also its int8 form (q8.cuh). */
struct xstage {
    const float4 *x4;
    const float *xsum;
    const int4 *xq;
    const float *d;
    const int *qs;
};

/* The staged row at `sm` of a row of `cols` (stage_floats(cols, fast) floats). */
__device__ __forceinline__ xstage xstage_at(const float *sm, int64_t cols) {
    const int64_t nup = ZCU_STG_NUP(cols / 32);
    xstage r;
    r.x4 = reinterpret_cast<const float4 *>(sm);
    r.xsum = sm + nup * ZCU_STG_SUM;
    r.xq = reinterpret_cast<const int4 *>(sm + nup * ZCU_STG_Q);
    r.d = sm + nup * ZCU_STG_D;
    r.qs = reinterpret_cast<const int *>(sm + nup * ZCU_STG_QS);
    return r;
}

/* ld_scale with the scale type a template constant (SDT >= 0: a plain load the compiler
   can issue with the row's other loads) or read at run time (SDT = -1: a switch). */
template <int SDT>
__device__ __forceinline__ float ld_scale_t(int sdt, const void *p, int64_t i) {
    if constexpr (SDT == CU_SDT_BF16)
        return __uint_as_float((uint32_t)__ldg(static_cast<const unsigned short *>(p) + i) << 16);
    else if constexpr (SDT == CU_SDT_F16)
        return __half2float(__ldg(static_cast<const __half *>(p) + i));
    else
        return ld_scale(sdt, p, i);
}

/*
 * NR dot products (rows of one shape and kind, each with its own staged x) by one warp;
 * every lane returns all NR sums.  Invalid rows (warp-uniform flag) load nothing.
 * FAST (affine 4/8-bit only, q8.cuh): the units meet the int8 activations; the lanes'
 * order of units and the butterfly stay those of the exact dot.  SDT: ld_scale_t's.
 */
template <int K, int NR, bool FAST = false, int SDT = -1>
__device__ __forceinline__ void warp_dots(const rowp (&r)[NR], const bool (&valid)[NR],
                                          const xstage (&xs)[NR], int64_t cols, int group, int sdt,
                                          float (&out)[NR]) {
    constexpr int NW = fmt<K>::NW;
    constexpr int UB0 = 32 / (NR * NW), UB = UB0 < 1 ? 1 : UB0 > 4 ? 4 : UB0;
    const int lane = threadIdx.x & 31;
    const int nu = (int)(cols / 32), nj = lane_units(nu, lane);
    const int gsh = fmt<K>::quant ? lg2(group) - 5 : 0; /* unit u lies in group u >> gsh */
    float acc[NR];
#pragma unroll
    for (int k = 0; k < NR; k++) acc[k] = 0.0f;
    for (int j0 = 0; j0 < nj; j0 += UB) {
        uint32_t w[NR][UB][NW];
        float sc[NR][UB], bi[NR][UB];
#pragma unroll
        for (int k = 0; k < NR; k++)
#pragma unroll
            for (int b = 0; b < UB; b++) {
                const int u = (j0 + b) * 32 + lane;
                if (valid[k] && j0 + b < nj) {
                    load_unit<K>(r[k].d, u, w[k][b]);
                    if constexpr (fmt<K>::quant) {
                        const int g = u >> gsh;
                        sc[k][b] = ld_scale_t<SDT>(sdt, r[k].s, g);
                        if constexpr (fmt<K>::affine) bi[k][b] = ld_scale_t<SDT>(sdt, r[k].b, g);
                    }
                }
            }
#pragma unroll
        for (int k = 0; k < NR; k++)
#pragma unroll
            for (int b = 0; b < UB; b++) {
                const int j = j0 + b, u = j * 32 + lane;
                if (!valid[k] || j >= nj) continue;
                float v;
                if constexpr (FAST && q8k<K>::ok) {
                    const int4 *xq = xs[k].xq + (j * 2) * 32 + lane;
                    const int I = unit_dot_q8<K>(w[k][b], xq[0], xq[32]);
                    const float a = sc[k][b];
                    const float t = fmaf(a, (float)q8k<K>::m, bi[k][b]);
                    v = fmaf(__fmul_rn(a, xs[k].d[u]), (float)(I - q8k<K>::m * xs[k].qs[u]),
                             __fmul_rn(t, xs[k].xsum[u]));
                    acc[k] = __fadd_rn(acc[k], v);
                    continue;
                }
                const float d = unit_dot<K>(w[k][b], xs[k].x4 + (j * 8) * 32 + lane);
                if constexpr (fmt<K>::affine)
                    v = __fadd_rn(__fmul_rn(sc[k][b], d), __fmul_rn(bi[k][b], xs[k].xsum[u]));
                else if constexpr (fmt<K>::mx)
                    v = __fmul_rn(__fmul_rn(sc[k][b], 0.5f), d);
                else
                    v = d;
                acc[k] = __fadd_rn(acc[k], v);
            }
    }
#pragma unroll
    for (int k = 0; k < NR; k++) out[k] = warp_sum(acc[k]);
}

/* warp_dots, in fast mode on the int8 layouts with bf16 or f16 scales made a template
   constant (the scale loads then issue with the codes' loads instead of one switch each;
   same arithmetic, same bits). */
template <int K, int NR, bool FAST>
__device__ __forceinline__ void warp_dots_s(const rowp (&r)[NR], const bool (&valid)[NR],
                                            const xstage (&xs)[NR], int64_t cols, int group, int sdt,
                                            float (&out)[NR]) {
    if constexpr (FAST && q8k<K>::ok) {
        if (sdt == CU_SDT_BF16) return warp_dots<K, NR, FAST, CU_SDT_BF16>(r, valid, xs, cols, group, sdt, out);
        if (sdt == CU_SDT_F16) return warp_dots<K, NR, FAST, CU_SDT_F16>(r, valid, xs, cols, group, sdt, out);
    }
    warp_dots<K, NR, FAST>(r, valid, xs, cols, group, sdt, out);
}

/*
 * warp_dots in two halves, for fast mode on the int8 layouts with the scale type SDT a
 * constant (or for unquantized rows, exact: bf16 / f16 / f32) and at most NJ units of a
 * row per lane: wd_load issues the rows' loads into a wd_raw, wd_sum does warp_dots'
 * arithmetic on it (the same order, the same bits), so a warp can have its next rows in
 * flight while it sums the current ones, or its rows loaded before the PDL wait.
 */
enum { WD_NJ = 2 }; /* units a lane holds where the callers keep rows in registers: cols <= 2,048 */
template <int K, int NR, int NJ> struct wd_raw {
    uint32_t w[NR][NJ][fmt<K>::NW];
    float sc[NR][NJ], bi[NR][NJ];
};

template <int K, int NR, int NJ, int SDT>
__device__ __forceinline__ void wd_load(const rowp (&r)[NR], const bool (&valid)[NR], int nj, int group,
                                        wd_raw<K, NR, NJ> &raw) {
    const int lane = threadIdx.x & 31, gsh = lg2(group) - 5;
#pragma unroll
    for (int k = 0; k < NR; k++)
#pragma unroll
        for (int b = 0; b < NJ; b++) {
            const int u = b * 32 + lane;
            if (valid[k] && b < nj) {
                load_unit<K>(r[k].d, u, raw.w[k][b]);
                if constexpr (fmt<K>::quant) raw.sc[k][b] = ld_scale_t<SDT>(SDT, r[k].s, u >> gsh);
                if constexpr (fmt<K>::affine) raw.bi[k][b] = ld_scale_t<SDT>(SDT, r[k].b, u >> gsh);
            }
        }
}

template <int K, int NR, int NJ>
__device__ __forceinline__ void wd_sum(const wd_raw<K, NR, NJ> &raw, const bool (&valid)[NR],
                                       const xstage (&xs)[NR], int nj, float (&out)[NR]) {
    static_assert(q8k<K>::ok || !fmt<K>::quant, "wd_sum: the int8 layouts, or unquantized rows (exact)");
    const int lane = threadIdx.x & 31;
    float acc[NR];
#pragma unroll
    for (int k = 0; k < NR; k++) {
        acc[k] = 0.0f;
#pragma unroll
        for (int b = 0; b < NJ; b++) {
            const int u = b * 32 + lane;
            if (!valid[k] || b >= nj) continue;
            if constexpr (!fmt<K>::quant) { /* warp_dots' exact unit dot (bf16, f16, f32 rows) */
                acc[k] = __fadd_rn(acc[k], unit_dot<K>(raw.w[k][b], xs[k].x4 + (b * 8) * 32 + lane));
            } else {
                const int4 *xq = xs[k].xq + (b * 2) * 32 + lane;
                const int I = unit_dot_q8<K>(raw.w[k][b], xq[0], xq[32]);
                const float a = raw.sc[k][b];
                const float t = fmaf(a, (float)q8k<K>::m, raw.bi[k][b]);
                const float v = fmaf(__fmul_rn(a, xs[k].d[u]), (float)(I - q8k<K>::m * xs[k].qs[u]),
                                     __fmul_rn(t, xs[k].xsum[u]));
                acc[k] = __fadd_rn(acc[k], v);
            }
        }
    }
#pragma unroll
    for (int k = 0; k < NR; k++) out[k] = warp_sum(acc[k]);
}

/* Floats of shared memory one staged row of `cols` takes (x padded to whole warps of
   units, then the unit sums; fast: then xq, d, qs as q8.cuh lays them out). */
__host__ __device__ __forceinline__ int64_t stage_floats(int64_t cols, bool fast = false) {
    const int64_t nup = ZCU_STG_NUP(cols / 32);
    return nup * (fast ? ZCU_STG_FAST : ZCU_STG_EXACT);
}

/* Stage n rows of `cols` (row k from x + k * xs into sm + k * sf) with the whole block,
   raw, four loads of a thread in flight before its stores; no barrier (stage_finish
   follows). */
__device__ __forceinline__ void stage_raw_n(const float *x, int64_t xs, int n, int64_t cols, float *sm,
                                            int64_t sf) {
    const int64_t n4 = cols / 4, bd = blockDim.x, tot = (int64_t)n * n4;
    for (int64_t f0 = threadIdx.x; f0 < tot; f0 += 4 * bd) {
        float4 v[4];
#pragma unroll
        for (int k = 0; k < 4; k++) {
            const int64_t f = f0 + k * bd, r = f / n4;
            if (f < tot) v[k] = reinterpret_cast<const float4 *>(x + r * xs)[f - r * n4];
        }
#pragma unroll
        for (int k = 0; k < 4; k++) {
            const int64_t f = f0 + k * bd, r = f / n4, g = f - r * n4, u = g >> 3, i = g & 7;
            if (f < tot) reinterpret_cast<float4 *>(sm + r * sf)[((u >> 5) * 8 + i) * 32 + (u & 31)] = v[k];
        }
    }
}

/*
 * After stage_raw_n and a barrier: when `norm` is set, each staged value becomes
 * norm_el(norm[c], x[c], inv) (every thread rewrites the float4s it staged); then (SUMS)
 * the unit sums.  Ends with a barrier.
 */
template <bool SUMS>
__device__ __forceinline__ xstage stage_finish(int64_t cols, const float *norm, float inv, float *sm) {
    float4 *x4 = reinterpret_cast<float4 *>(sm);
    const int64_t nu = cols / 32, nup = ZCU_STG_NUP(nu);
    float *xsum = sm + nup * ZCU_STG_SUM;
    if (norm) {
        for (int64_t f = threadIdx.x; f < cols / 4; f += blockDim.x) {
            const int64_t u = f >> 3, i = f & 7, c = 4 * f;
            float4 &v = x4[((u >> 5) * 8 + i) * 32 + (u & 31)];
            float4 w = v;
            w.x = norm_el(norm[c], w.x, inv);
            w.y = norm_el(norm[c + 1], w.y, inv);
            w.z = norm_el(norm[c + 2], w.z, inv);
            w.w = norm_el(norm[c + 3], w.w, inv);
            v = w;
        }
        if (SUMS) __syncthreads();
    }
    if constexpr (SUMS) {
        for (int64_t u = threadIdx.x; u < nu; u += blockDim.x) {
            float s = 0.0f;
#pragma unroll
            for (int i = 0; i < 8; i++) {
                const float4 v = x4[((u >> 5) * 8 + i) * 32 + (u & 31)];
                s = __fadd_rn(__fadd_rn(__fadd_rn(__fadd_rn(s, v.x), v.y), v.z), v.w);
            }
            xsum[u] = s;
        }
    }
    __syncthreads();
    return xstage_at(sm, cols);
}

/*
 * The prologue in one pass: what stage_raw_n + stage_finish (+ stage_q8) write, with the
 * same arithmetic, in two barriers fewer.  Task t = k * nu + u (nu = cols / 32) stages
 * unit u of row k.  Norm on load (one row): stage_norm puts the unit's 32 norm weights
 * in the unit's float4 slots (model constants: before the kernel waits for its
 * predecessor).  stage_load reads the unit's 32 activations into registers, all in
 * flight at once; after the caller's barrier (the sum of squares), stage_store
 * normalises them, sums the unit (affine) and writes the float4s (exact) or the unit's
 * int8 form (fast: q8.cuh's layout and roundings; a group's G / 32 units are consecutive
 * lanes, so its amax is a shuffle).  Call stage_store with whole warps (the shuffles);
 * tasks past `tot` store nothing (ROW0: every task is of row 0, no division).  A thread
 * reads back only the slots it wrote.
 */
__device__ __forceinline__ void stage_norm(const float *norm, int64_t nu, int64_t t, float *sm) {
    if (t >= nu) return;
    const float4 *wn = reinterpret_cast<const float4 *>(norm) + t * 8;
    float4 w[8];
#pragma unroll
    for (int i = 0; i < 8; i++) w[i] = __ldg(wn + i);
    float4 *x4 = reinterpret_cast<float4 *>(sm);
#pragma unroll
    for (int i = 0; i < 8; i++) x4[((t >> 5) * 8 + i) * 32 + (t & 31)] = w[i];
}

__device__ __forceinline__ void stage_load(const float *x, int64_t xs, int64_t nu, int64_t t, int64_t tot,
                                           float4 (&v)[8]) {
#pragma unroll
    for (int i = 0; i < 8; i++) v[i] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (t >= tot) return;
    const int64_t k = (int64_t)((uint64_t)t / (uint64_t)nu), u = t - k * nu;
    const float4 *src = reinterpret_cast<const float4 *>(x + k * xs) + u * 8;
#pragma unroll
    for (int i = 0; i < 8; i++) v[i] = src[i];
}

template <int K, bool FAST, bool ROW0 = false>
__device__ __forceinline__ void stage_store(float4 (&v)[8], int64_t t, int64_t tot, int64_t nu, float *sm,
                                            int64_t sf, bool norm, float inv, int group) {
    const bool on = t < tot;
    const int64_t k = on && !ROW0 ? (int64_t)((uint64_t)t / (uint64_t)nu) : 0, u = on ? t - k * nu : 0;
    const int64_t nup = ZCU_STG_NUP(nu);
    float *row = sm + k * sf;
    float4 *x4 = reinterpret_cast<float4 *>(row);
    if (on && norm) {
#pragma unroll
        for (int i = 0; i < 8; i++) {
            const float4 w = x4[((u >> 5) * 8 + i) * 32 + (u & 31)];
            v[i].x = norm_el(w.x, v[i].x, inv);
            v[i].y = norm_el(w.y, v[i].y, inv);
            v[i].z = norm_el(w.z, v[i].z, inv);
            v[i].w = norm_el(w.w, v[i].w, inv);
        }
    }
    float sum = 0.0f; /* stage_finish's unit sum: the 32 elements in order */
    if constexpr (fmt<K>::affine) {
#pragma unroll
        for (int i = 0; i < 8; i++)
            sum = __fadd_rn(__fadd_rn(__fadd_rn(__fadd_rn(sum, v[i].x), v[i].y), v[i].z), v[i].w);
    }
    if constexpr (!(FAST && q8k<K>::ok)) {
        if (!on) return;
#pragma unroll
        for (int i = 0; i < 8; i++) x4[((u >> 5) * 8 + i) * 32 + (u & 31)] = v[i];
        if constexpr (fmt<K>::affine) row[nup * ZCU_STG_SUM + u] = sum;
    } else {
        float amax = 0.0f;
#pragma unroll
        for (int i = 0; i < 8; i++)
            amax = fmaxf(fmaxf(fmaxf(fmaxf(amax, fabsf(v[i].x)), fabsf(v[i].y)), fabsf(v[i].z)), fabsf(v[i].w));
        for (int o = 1; o < (group >> 5); o <<= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
        if (!on) return;
        const float id = amax > 0.0f ? __fdiv_rn(127.0f, amax) : 0.0f;
        int qsum = 0;
        uint32_t wd[8];
#pragma unroll
        for (int p = 0; p < 4; p++) { /* elements 8p .. 8p + 7: code word p */
            const float4 a = v[2 * p], b = v[2 * p + 1];
            const float e[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
            int q[8];
#pragma unroll
            for (int i = 0; i < 8; i++) {
                q[i] = __float2int_rn(__fmul_rn(e[i], id));
                qsum += q[i];
            }
            if constexpr (K == ZW_AFFINE4) { /* even elements, then odd */
                wd[2 * p] = (uint32_t)pack4(q[0], q[2], q[4], q[6]);
                wd[2 * p + 1] = (uint32_t)pack4(q[1], q[3], q[5], q[7]);
            } else {
                wd[2 * p] = (uint32_t)pack4(q[0], q[1], q[2], q[3]);
                wd[2 * p + 1] = (uint32_t)pack4(q[4], q[5], q[6], q[7]);
            }
        }
        int4 *xq = reinterpret_cast<int4 *>(row + nup * ZCU_STG_Q);
        xq[((u >> 5) * 2) * 32 + (u & 31)] = make_int4((int)wd[0], (int)wd[1], (int)wd[2], (int)wd[3]);
        xq[((u >> 5) * 2 + 1) * 32 + (u & 31)] = make_int4((int)wd[4], (int)wd[5], (int)wd[6], (int)wd[7]);
        row[nup * ZCU_STG_SUM + u] = sum;
        row[nup * ZCU_STG_D + u] = __fdiv_rn(amax, 127.0f);
        reinterpret_cast<int *>(row + nup * ZCU_STG_QS)[u] = qsum;
    }
}

/* Tasks first, first + blockDim.x, ... below tot of rows at stride xs (no norm), each by
   stage_load + stage_store, with the whole block; no barrier. */
template <int K, bool FAST>
__device__ __forceinline__ void stage_rows(const float *x, int64_t xs, int64_t nu, int64_t tot, int64_t first,
                                           float *sm, int64_t sf, int group) {
    float4 v[8];
    for (int64_t t0 = 0; t0 < tot; t0 += blockDim.x) {
        stage_load(x, xs, nu, t0 + first, tot, v);
        stage_store<K, FAST>(v, t0 + first, tot, nu, sm, sf, false, 0.0f, group);
    }
}

/* stage_rows with 32-bit tasks and no division for one row: rows [0, rows) of nu units
   (row k from x + k * xs, global or shared memory, into sm + k * sf) by the whole block;
   no barrier. */
template <int K, bool FAST>
__device__ __forceinline__ void stage_rows32(const float *x, int64_t xs, int nu, int rows, float *sm, int64_t sf,
                                             int group) {
    const int tot = rows * nu, lane = threadIdx.x & 31;
    for (int t = threadIdx.x; t - lane < tot; t += blockDim.x) {
        const int k = rows > 1 ? (int)((uint32_t)t / (uint32_t)nu) : 0, u = t - k * nu;
        float4 v[8];
        const float4 *src = reinterpret_cast<const float4 *>(x + (int64_t)k * xs) + (int64_t)u * 8;
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = t < tot ? src[i] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        stage_store<K, FAST, true>(v, t < tot ? u : nu, nu, nu, sm + k * sf, sf, false, 0.0f, group);
    }
}

/* Rows [0, rows) of nu units staged elsewhere in fast mode (stage_store into global
   memory: k_combine's hq) into sm: each row's part after its floats (the unit sums, xq, d,
   qs: stage_floats(32 nu, true) floats a row, the first nup * ZCU_STG_SUM of them the floats),
   row k from src + k * sf to sm + k * sf, by `nt` threads (the block); no barrier.  The
   floats are not copied: the int8 dot (wd_sum, warp_dots FAST) reads none of them. */
__device__ __forceinline__ void stage_copy_q8(const float *src, int rows, int nu, float *sm, int64_t sf, int nt) {
    const int nup = ZCU_STG_NUP(nu), n4 = nup * (ZCU_STG_FAST - ZCU_STG_SUM) / 4;
    for (int t = threadIdx.x; t < rows * n4; t += nt) {
        const int k = t / n4, i = t - k * n4;
        reinterpret_cast<float4 *>(sm + k * sf + nup * ZCU_STG_SUM)[i] =
            __ldcg(reinterpret_cast<const float4 *>(src + k * sf + nup * ZCU_STG_SUM) + i);
    }
}

/*
 * Elements c0 .. c0 + 7 (c0 % 8 == 0) of a row as the reference dequantizes them
 * (weight.c: s * q + b in float32, two roundings; mxfp4 value * s).
 */
template <int K>
__device__ __forceinline__ void deq8(const cuw &w, const rowp &r, int64_t c0, float (&o)[8]) {
    if constexpr (K == ZW_F32) {
        const float4 a = __ldg(reinterpret_cast<const float4 *>(r.d) + c0 / 4);
        const float4 b = __ldg(reinterpret_cast<const float4 *>(r.d) + c0 / 4 + 1);
        o[0] = a.x, o[1] = a.y, o[2] = a.z, o[3] = a.w, o[4] = b.x, o[5] = b.y, o[6] = b.z, o[7] = b.w;
    } else if constexpr (K == ZW_F16 || K == ZW_BF16) {
        const uint4 v = __ldg(reinterpret_cast<const uint4 *>(r.d) + c0 / 8);
        const uint32_t ws[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int e = 0; e < 8; e++) o[e] = unit_el<K>(ws, e);
    } else {
        constexpr int B = fmt<K>::bits;
        /* 8 codes of B bits: B bytes starting at byte c0 * B / 8 (whole bytes) */
        const uint8_t *p = r.d + c0 * B / 8;
        uint32_t ws[3] = {0u, 0u, 0u};
        if constexpr (B == 4) {
            ws[0] = __ldg(reinterpret_cast<const uint32_t *>(p));
        } else if constexpr (B == 8) {
            const uint2 v = __ldg(reinterpret_cast<const uint2 *>(p));
            ws[0] = v.x, ws[1] = v.y;
        } else if constexpr (B == 2) {
            ws[0] = __ldg(reinterpret_cast<const unsigned short *>(p));
        } else {
#pragma unroll
            for (int i = 0; i < B; i++) ws[i >> 2] |= (uint32_t)__ldg(p + i) << (8 * (i & 3));
        }
        const int64_t g = c0 >> lg2(w.group);
        const float s = ld_scale(w.sdt, r.s, g);
        if constexpr (K == ZW_MXFP4) {
#pragma unroll
            for (int e = 0; e < 8; e++) o[e] = __fmul_rn(__fmul_rn(unit_el<K>(ws, e), 0.5f), s);
        } else {
            const float b = ld_scale(w.sdt, r.b, g);
#pragma unroll
            for (int e = 0; e < 8; e++) o[e] = __fadd_rn(__fmul_rn(s, code_f(unit_code<B>(ws, e))), b);
        }
    }
}

#endif
