/*
 * simd_avx2.h — small AVX2 helpers shared by the *_avx2.c kernel files.  Include it
 * only from files compiled with -mavx2 -mfma -mf16c (CMakeLists.txt gives those flags
 * to *_avx2.c alone); anything else must not see AVX2 code.
 */
#ifndef ZMLX_BACKEND_CPU_SIMD_AVX2_H
#define ZMLX_BACKEND_CPU_SIMD_AVX2_H

#include <immintrin.h>

/* The sum of the 8 lanes: ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7)). */
static inline float zk_hsum8(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

#endif
