/*
 * matmul_avx2.c — AVX2 + FMA + F16C kernels for F32, F16 and BF16 weights.
 * Compiled with -mavx2 -mfma -mf16c (CMakeLists.txt) and only called after
 * zk_select() has checked the CPU.
 *
 * rows: 4 weight rows x 2 tokens per tile (8 accumulators), 8 columns per step;
 * each weight vector is loaded and widened once and used for both tokens.
 * cols: y[c..c+8) += x[r] * W[r, c..c+8) over r in order.
 */
#include "backend/cpu/kernels.h"

#include "backend/cpu/simd_avx2.h"

#include <immintrin.h>

/* dt is a compile-time constant at every call site (the callers are instantiated per dtype) */
static inline __attribute__((always_inline)) __m256 load8(const zweight *w, zdtype dt, int64_t r,
                                                         int64_t c) {
    size_t i = (size_t)r * (size_t)w->cols + (size_t)c;
    switch (dt) {
    case ZDT_BF16: {
        __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w->data + i));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    case ZDT_F16:
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w->data + i)));
    default: return _mm256_loadu_ps((const float *)w->data + i);
    }
}

/* rows [r0, r0+R) x tokens [t0, t0+N), R <= 4, N <= 2 */
static inline __attribute__((always_inline)) void
tile(const zweight *w, zdtype dt, const float *x, int64_t t0, int N, float *y, int64_t r0, int R) {
    const int64_t K = w->cols, K8 = K & ~(int64_t)7;
    __m256 acc[4][2];
    for (int i = 0; i < 4; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    const float *x0 = x + t0 * K, *x1 = x + (t0 + (N > 1)) * K;
    for (int64_t c = 0; c < K8; c += 8) {
        __m256 a = _mm256_loadu_ps(x0 + c), b = _mm256_loadu_ps(x1 + c);
        for (int i = 0; i < R; i++) {
            __m256 wv = load8(w, dt, r0 + i, c);
            acc[i][0] = _mm256_fmadd_ps(wv, a, acc[i][0]);
            if (N > 1) acc[i][1] = _mm256_fmadd_ps(wv, b, acc[i][1]);
        }
    }
    for (int i = 0; i < R; i++) {
        for (int t = 0; t < N; t++) {
            const float *xt = t ? x1 : x0;
            float s = zk_hsum8(acc[i][t]);
            for (int64_t c = K8; c < K; c++) s += zweight_get(w, r0 + i, c) * xt[c];
            y[(t0 + t) * w->rows + r0 + i] = s;
        }
    }
}

#define TILE(t, N, r, R) tile(w, dt, x, t, N, y, r, R)
static inline __attribute__((always_inline)) void
rows_impl(const zweight *w, zdtype dt, const float *x, int64_t n, float *y, int64_t r0, int64_t r1) {
    ZK_DENSE_TILES(n, r0, r1, TILE);
}
#undef TILE

void zk_rows_avx2(const zweight *w, const float *x, int64_t n, float *y, int64_t r0, int64_t r1) {
#define ROWS(dt) rows_impl(w, dt, x, n, y, r0, r1)
    ZK_DENSE_DTYPE(w->dtype, ROWS)
#undef ROWS
}

static inline __attribute__((always_inline)) void
cols_impl(const zweight *w, zdtype dt, const float *x, int64_t n, float *y, int64_t c0, int64_t c1) {
    const int64_t c8 = c0 + ((c1 - c0) & ~(int64_t)7);
    for (int64_t t = 0; t < n; t++) {
        const float *xt = x + t * w->rows;
        float *yt = y + t * w->cols;
        for (int64_t c = c0; c < c8; c += 8) {
            __m256 acc = _mm256_setzero_ps();
            for (int64_t r = 0; r < w->rows; r++)
                acc = _mm256_fmadd_ps(_mm256_set1_ps(xt[r]), load8(w, dt, r, c), acc);
            _mm256_storeu_ps(yt + c, acc);
        }
        for (int64_t c = c8; c < c1; c++) {
            float acc = 0.0f;
            for (int64_t r = 0; r < w->rows; r++) acc += zweight_get(w, r, c) * xt[r];
            yt[c] = acc;
        }
    }
}

void zk_cols_avx2(const zweight *w, const float *x, int64_t n, float *y, int64_t c0, int64_t c1) {
#define COLS(dt) cols_impl(w, dt, x, n, y, c0, c1)
    ZK_DENSE_DTYPE(w->dtype, COLS)
#undef COLS
}
