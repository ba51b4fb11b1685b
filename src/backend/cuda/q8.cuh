/*
 * q8.cuh — the fast mode's int8 activations on the device (SYSTEM.md section 1, the CPU's
 * backend/cpu/xq.h): how a staged activation row is quantized and how one unit of 32
 * elements of an affine 4- or 8-bit row meets it with integer dot products (dp4a).
 *
 * Quantization, as xq.h defines it for every ISA: the row is cut in groups of G (the
 * weight's group size, so a weight group meets exactly one activation scale) and each
 * group becomes  d = amax / 127,  xq_i = round_half_even(x_i * (127 / amax))  (all zero
 * when amax is 0), the same float32 operations, so the same d and xq as the CPU.
 *
 * A unit u of 32 codes q (scale a, bias b of its group, m = 2^(bits-1)) then gives
 *     a * d * (I_u - m * qs_u) + (a * m + b) * s_u,    I_u = sum q_i xq_i   (exact integers)
 * with s_u = sum x_i over the unit (the exact path's unit sum, float) and qs_u = sum xq_i:
 * xq.h's group formula  a * (d * J + m * s) + b * s  split over the group's units (the
 * centred codes q - m meet the rounding error of xq; the bias term stays float).
 *
 * Layout after a staged row's floats (stage_floats(cols, true)): per unit 8 words of xq
 * in the order the codes unpack (4-bit: for code word k, the even elements 8k, 8k+2, ..
 * then the odd ones; 8-bit: natural), as two int4 pieces at int4 index
 * ((u / 32) * 2 + piece) * 32 + u % 32 (a warp reads 32 consecutive int4s: no bank
 * conflicts); then d[nup] (the unit's group scale) and qs[nup].
 */
#ifndef ZMLX_BACKEND_CUDA_Q8_CUH
#define ZMLX_BACKEND_CUDA_Q8_CUH

#include "backend/cuda/common.cuh"

/* Layouts with an int8 path; the others run the exact dot in fast mode too. */
template <int K> struct q8k {
    static constexpr bool ok = K == ZW_AFFINE4 || K == ZW_AFFINE8;
    static constexpr int m = K == ZW_AFFINE4 ? 8 : 128;
};

/* unsigned x signed bytes (8-bit codes 0..255 with int8 activations) */
__device__ __forceinline__ int dp4a_us(uint32_t a, int b, int c) {
    int r;
    asm("dp4a.u32.s32 %0, %1, %2, %3;" : "=r"(r) : "r"(a), "r"(b), "r"(c));
    return r;
}

/* I_u of one unit: its code words w and its xq (pieces x0 = words 0..3, x1 = 4..7). */
template <int K>
__device__ __forceinline__ int unit_dot_q8(const uint32_t *w, const int4 x0, const int4 x1) {
    const int xs[8] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w};
    int acc = 0;
    if constexpr (K == ZW_AFFINE4) {
#pragma unroll
        for (int k = 0; k < 4; k++) {
            acc = __dp4a((int)(w[k] & 0x0F0F0F0Fu), xs[2 * k], acc);
            acc = __dp4a((int)((w[k] >> 4) & 0x0F0F0F0Fu), xs[2 * k + 1], acc);
        }
    } else {
#pragma unroll
        for (int k = 0; k < 8; k++) acc = dp4a_us(w[k], xs[k], acc);
    }
    return acc;
}

/* Bytes v0..v3 (each in [-127, 127]) as one word, v0 lowest. */
__device__ __forceinline__ int pack4(int v0, int v1, int v2, int v3) {
    return (int)((uint32_t)(v0 & 0xff) | ((uint32_t)(v1 & 0xff) << 8) | ((uint32_t)(v2 & 0xff) << 16) |
                 ((uint32_t)(v3 & 0xff) << 24));
}

/*
 * Quantize a staged row (after stage_finish) into its q8 part, with the whole block; ends
 * with a barrier.  Task t = 4 u + p converts elements 8p .. 8p + 7 of unit u; a group's
 * tasks are G / 8 <= 16 consecutive lanes of one warp (blockDim.x a multiple of 32).
 */
template <int K>
__device__ __forceinline__ void stage_q8(int64_t cols, int group, float *sm) {
    const int64_t nu = cols / 32, nup = ZCU_STG_NUP(nu);
    const float4 *x4 = reinterpret_cast<const float4 *>(sm);
    uint2 *xq = reinterpret_cast<uint2 *>(sm + nup * ZCU_STG_Q);
    float *dd = sm + nup * ZCU_STG_D;
    int *qs = reinterpret_cast<int *>(sm + nup * ZCU_STG_QS);
    const int gl = group >> 3; /* lanes of a group: 4, 8 or 16 */
    for (int64_t t0 = 0; t0 < nu * 4; t0 += blockDim.x) {
        const int64_t t = t0 + threadIdx.x;
        const bool on = t < nu * 4;
        const int64_t u = on ? t >> 2 : 0;
        const int p = (int)(t & 3);
        float v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        if (on) {
            const float4 a = x4[((u >> 5) * 8 + 2 * p) * 32 + (u & 31)];
            const float4 b = x4[((u >> 5) * 8 + 2 * p + 1) * 32 + (u & 31)];
            v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
        }
        float amax = 0.0f;
#pragma unroll
        for (int i = 0; i < 8; i++) amax = fmaxf(amax, fabsf(v[i]));
        for (int o = 1; o < gl; o <<= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
        const float id = amax > 0.0f ? __fdiv_rn(127.0f, amax) : 0.0f;
        int q[8], s = 0;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            q[i] = __float2int_rn(__fmul_rn(v[i], id));
            s += q[i];
        }
        s += __shfl_xor_sync(0xffffffffu, s, 1);
        s += __shfl_xor_sync(0xffffffffu, s, 2);
        if (!on) continue;
        uint2 wv;
        if constexpr (K == ZW_AFFINE4) /* code word p: even elements, then odd */
            wv = make_uint2((uint32_t)pack4(q[0], q[2], q[4], q[6]), (uint32_t)pack4(q[1], q[3], q[5], q[7]));
        else
            wv = make_uint2((uint32_t)pack4(q[0], q[1], q[2], q[3]), (uint32_t)pack4(q[4], q[5], q[6], q[7]));
        xq[(((u >> 5) * 2 + (p >> 1)) * 32 + (u & 31)) * 2 + (p & 1)] = wv;
        if (p == 0) {
            dd[u] = __fdiv_rn(amax, 127.0f);
            qs[u] = s;
        }
    }
    __syncthreads();
}

#endif
