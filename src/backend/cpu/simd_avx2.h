/*
 * simd_avx2.h — small AVX2 helpers shared by the *_avx2.c kernel files (and the
 * 256-bit parts of the AVX-512 ones).  Include it
 * only from files compiled with -mavx2 -mfma -mf16c (CMakeLists.txt gives those flags
 * to *_avx2.c alone); anything else must not see AVX2 code.
 */
#ifndef ZMLX_BACKEND_CPU_SIMD_AVX2_H
#define ZMLX_BACKEND_CPU_SIMD_AVX2_H

#include "model/weight.h"

#include <immintrin.h>
#include <string.h>

/* The sum of the 8 lanes: ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7)). */
static inline float zk_hsum8(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

/* The largest of the 8 lanes. */
static inline float zk_hmax8(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* The sum of 8 int32 lanes. */
static inline int32_t zk_hsum8_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* The 8 codes of block k (elements 8k..8k+7) of a packed affine row (2..8 bits, or the
 * raw 4-bit nibbles of mxfp4) as int32 lanes.  bits is a constant at every call site.
 * end = the end of the weight's packed data: 3/5/6-bit blocks load 8 bytes at once
 * where it allows (a copy of `bits` bytes would stall store forwarding). */
static inline __attribute__((always_inline)) __m256i zk_codes8(const uint8_t *row, int64_t k,
                                                             int bits, const uint8_t *end) {
    __m256i v, sh;
    switch (bits) {
    case 8: return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(row + 8 * k)));
    case 4:
        v = _mm256_set1_epi32((int)zq_word(row, k));
        sh = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
        break;
    case 2: {
        uint16_t h;
        memcpy(&h, row + 2 * k, sizeof h);
        v = _mm256_set1_epi32(h);
        sh = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
        break;
    }
    default: { /* 3, 5, 6: 8 codes in `bits` bytes */
        uint64_t u = 0;
        const uint8_t *p = row + (int64_t)bits * k;
        if (end - p >= 8) memcpy(&u, p, sizeof u); /* the codes are the low 8 x bits */
        else memcpy(&u, p, (size_t)bits);
        __m256i lo = _mm256_set1_epi32((int)(uint32_t)u), hi = _mm256_set1_epi32((int)(uint32_t)(u >> 16));
        if (bits == 3) {
            v = _mm256_blend_epi32(lo, hi, 0xc0);
            sh = _mm256_setr_epi32(0, 3, 6, 9, 12, 15, 2, 5);
        } else if (bits == 5) {
            v = _mm256_blend_epi32(lo, hi, 0xf0);
            sh = _mm256_setr_epi32(0, 5, 10, 15, 4, 9, 14, 19);
        } else {
            v = _mm256_blend_epi32(lo, hi, 0xf8);
            sh = _mm256_setr_epi32(0, 6, 12, 2, 8, 14, 20, 26);
        }
    }
    }
    return _mm256_and_si256(_mm256_srlv_epi32(v, sh), _mm256_set1_epi32((1 << bits) - 1));
}

/* The same block as floats (affine: q; mxfp4: the E2M1 value). */
static inline __attribute__((always_inline)) __m256 zk_block8(const uint8_t *row, int64_t k,
                                                          int bits, int fp4, const uint8_t *end) {
    const __m256i v = zk_codes8(row, k, bits, end);
    if (fp4) {
        const __m256 lut = _mm256_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f);
        __m256 mag = _mm256_permutevar8x32_ps(lut, v); /* uses index bits 0-2 only */
        __m256i sign = _mm256_slli_epi32(_mm256_srli_epi32(v, 3), 31);
        return _mm256_xor_ps(mag, _mm256_castsi256_ps(sign));
    }
    return _mm256_cvtepi32_ps(v);
}

/* sum_g b[g] * xs[g], g < n, b of dtype dt (BF16, F16, F32): a row's scales or biases
 * against per-group sums of the activations */
static inline float zk_sdot8(const void *b, zdtype dt, const float *xs, int64_t n) {
    __m256 acc = _mm256_setzero_ps();
    int64_t g = 0;
    for (; g + 8 <= n; g += 8) {
        __m256 bv;
        if (dt == ZDT_F32) {
            bv = _mm256_loadu_ps((const float *)b + g);
        } else {
            __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)b + g));
            bv = dt == ZDT_F16 ? _mm256_cvtph_ps(h)
                               : _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
        }
        acc = _mm256_fmadd_ps(bv, _mm256_loadu_ps(xs + g), acc);
    }
    float s = zk_hsum8(acc);
    for (; g < n; g++) s += zweight_scale_at(dt, b, g) * xs[g];
    return s;
}

#endif
