/*
 * simd_neon.h — small NEON helpers shared by the *_neon.c and *_neondot.c kernel files
 * (aarch64 only: Advanced SIMD is architectural there).  Not for other architectures.
 */
#ifndef ZMLX_BACKEND_CPU_SIMD_NEON_H
#define ZMLX_BACKEND_CPU_SIMD_NEON_H

#include "model/weight.h"

#include <arm_neon.h>
#include <string.h>

#define ZK_AI static inline __attribute__((always_inline))

/*
 * The 8 codes of block k (elements 8k..8k+7) of a packed affine row (2..8 bits, or the
 * raw nibbles of mxfp4) in two vectors of 4 lanes.  The block's bytes are read as one
 * 64-bit word u where end (the end of the weight's packed data) allows; every code then
 * sits in u (lanes that start below bit 16) or in u >> 16, as in simd_avx2.h.
 */
ZK_AI void zk_codes8_neon(const uint8_t *row, int64_t k, int bits, const uint8_t *end,
                          uint32x4_t *a, uint32x4_t *b) {
    if (bits == 8) {
        const uint16x8_t h = vmovl_u8(vld1_u8(row + 8 * k));
        *a = vmovl_u16(vget_low_u16(h));
        *b = vmovl_u16(vget_high_u16(h));
        return;
    }
    const uint8_t *p = row + (int64_t)bits * k;
    uint64_t u = 0;
    if (end - p >= 8) memcpy(&u, p, sizeof u);
    else memcpy(&u, p, (size_t)bits);
    const uint32x4_t lo = vdupq_n_u32((uint32_t)u), hi = vdupq_n_u32((uint32_t)(u >> 16));
    /* element j at bit o = j bits: lanes with o >= 16 read u >> 16 (o - 16 + bits <= 32
     * for bits <= 6), the others u; right shifts as negative left shifts */
    static const int32_t sh[7][8] = {
        [2] = {0, -2, -4, -6, -8, -10, -12, -14},  [3] = {0, -3, -6, -9, -12, -15, -2, -5},
        [4] = {0, -4, -8, -12, 0, -4, -8, -12},    [5] = {0, -5, -10, -15, -4, -9, -14, -19},
        [6] = {0, -6, -12, -2, -8, -14, -20, -26},
    };
    static const uint32_t hs[7][8] = {
        [3] = {0, 0, 0, 0, 0, 0, ~0u, ~0u},        [4] = {0, 0, 0, 0, ~0u, ~0u, ~0u, ~0u},
        [5] = {0, 0, 0, 0, ~0u, ~0u, ~0u, ~0u},    [6] = {0, 0, 0, ~0u, ~0u, ~0u, ~0u, ~0u},
    };
    const uint32x4_t m = vdupq_n_u32((1u << bits) - 1u);
    *a = vandq_u32(vshlq_u32(vbslq_u32(vld1q_u32(hs[bits]), hi, lo), vld1q_s32(sh[bits])), m);
    *b = vandq_u32(vshlq_u32(vbslq_u32(vld1q_u32(hs[bits] + 4), hi, lo), vld1q_s32(sh[bits] + 4)), m);
}

/* The same block as floats (affine: q; mxfp4: the E2M1 value). */
ZK_AI void zk_block8_neon(const uint8_t *row, int64_t k, int bits, int fp4, const uint8_t *end,
                          float32x4_t *a, float32x4_t *b) {
    uint32x4_t ca, cb;
    zk_codes8_neon(row, k, bits, end, &ca, &cb);
    if (fp4) {
        float va[4], vb[4];
        uint32_t ia[4], ib[4];
        vst1q_u32(ia, ca);
        vst1q_u32(ib, cb);
        for (int j = 0; j < 4; j++) va[j] = zfp4_e2m1[ia[j]], vb[j] = zfp4_e2m1[ib[j]];
        *a = vld1q_f32(va);
        *b = vld1q_f32(vb);
        return;
    }
    *a = vcvtq_f32_u32(ca);
    *b = vcvtq_f32_u32(cb);
}

/* sum_g b[g] * xs[g], g < n, b of dtype dt (BF16, F16, F32): a row's scales or biases
 * against per-group sums of the activations */
static inline float zk_sdot_neon(const void *b, zdtype dt, const float *xs, int64_t n) {
    float32x4_t acc = vdupq_n_f32(0.0f);
    int64_t g = 0;
    for (; g + 4 <= n; g += 4) {
        float32x4_t bv;
        uint16_t h[4];
        if (dt == ZDT_F32) {
            float f[4];
            memcpy(f, (const float *)b + g, sizeof f);
            bv = vld1q_f32(f);
        } else {
            memcpy(h, (const uint16_t *)b + g, sizeof h);
            bv = dt == ZDT_F16 ? vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(h)))
                               : vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(h), 16));
        }
        acc = vfmaq_f32(acc, bv, vld1q_f32(xs + g));
    }
    float s = vaddvq_f32(acc);
    for (; g < n; g++) s += zweight_scale_at(dt, b, g) * xs[g];
    return s;
}

#endif
