/*
 * matmul_avx512.c — AVX-512 kernels for F32, F16 and BF16 weights (the exact mode of
 * the avx512 levels; matmul_avx2.c's algorithm 16 lanes wide).  Compiled with the
 * AVX-512 F/BW/DQ/VL flags (CMakeLists.txt), called only after zk_isa_supported.
 *
 * rows: 4 weight rows x 2 tokens per tile (8 accumulators), 16 columns per step, the
 * last K % 16 columns through masked loads (zeros beyond the row); each weight vector
 * is loaded and widened once and used for both tokens.
 * cols: y[c..c+16) += x[r] * W[r, c..c+16) over r in order (masked tail).
 */
#include "backend/cpu/kernels.h"

#include <immintrin.h>

#define AI static inline __attribute__((always_inline))

/* 16 weights of row r from column c (m masks the tail); dt is a constant at every call. */
AI __m512 load16(const zweight *w, zdtype dt, int64_t r, int64_t c, __mmask16 m) {
    const size_t i = (size_t)r * (size_t)w->cols + (size_t)c;
    switch (dt) {
    case ZDT_BF16: {
        __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)w->data + i);
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    case ZDT_F16: return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)w->data + i));
    default: return _mm512_maskz_loadu_ps(m, (const float *)w->data + i);
    }
}

AI __mmask16 tail_mask(int64_t left) {
    return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
}

/* rows [r0, r0+R) x tokens [t0, t0+N), R <= 4, N <= 2 */
AI void tile(const zweight *w, zdtype dt, const float *x, int64_t t0, int N, float *y, int64_t r0,
             int R) {
    const int64_t K = w->cols;
    __m512 acc[4][2];
    for (int i = 0; i < 4; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    const float *x0 = x + t0 * K, *x1 = x + (t0 + (N > 1)) * K;
    for (int64_t c = 0; c < K; c += 16) {
        const __mmask16 m = tail_mask(K - c);
        const __m512 a = _mm512_maskz_loadu_ps(m, x0 + c), b = _mm512_maskz_loadu_ps(m, x1 + c);
        for (int i = 0; i < R; i++) {
            const __m512 wv = load16(w, dt, r0 + i, c, m);
            acc[i][0] = _mm512_fmadd_ps(wv, a, acc[i][0]);
            if (N > 1) acc[i][1] = _mm512_fmadd_ps(wv, b, acc[i][1]);
        }
    }
    for (int i = 0; i < R; i++)
        for (int t = 0; t < N; t++) y[(t0 + t) * w->rows + r0 + i] = _mm512_reduce_add_ps(acc[i][t]);
}

#define TILE(t, N, r, R) tile(w, dt, x, t, N, y, r, R)
static inline __attribute__((always_inline)) void
rows_impl(const zweight *w, zdtype dt, const float *x, int64_t n, float *y, int64_t r0, int64_t r1) {
    ZK_DENSE_TILES(n, r0, r1, TILE);
}
#undef TILE

void zk_rows_avx512(const zweight *w, const float *x, int64_t n, float *y, int64_t r0, int64_t r1) {
#define ROWS(dt) rows_impl(w, dt, x, n, y, r0, r1)
    ZK_DENSE_DTYPE(w->dtype, ROWS)
#undef ROWS
}

AI void cols_impl(const zweight *w, zdtype dt, const float *x, int64_t n, float *y, int64_t c0,
                  int64_t c1) {
    for (int64_t t = 0; t < n; t++) {
        const float *xt = x + t * w->rows;
        float *yt = y + t * w->cols;
        for (int64_t c = c0; c < c1; c += 16) {
            const __mmask16 m = tail_mask(c1 - c);
            __m512 acc = _mm512_setzero_ps();
            for (int64_t r = 0; r < w->rows; r++)
                acc = _mm512_fmadd_ps(_mm512_set1_ps(xt[r]), load16(w, dt, r, c, m), acc);
            _mm512_mask_storeu_ps(yt + c, m, acc);
        }
    }
}

void zk_cols_avx512(const zweight *w, const float *x, int64_t n, float *y, int64_t c0, int64_t c1) {
#define COLS(dt) cols_impl(w, dt, x, n, y, c0, c1)
    ZK_DENSE_DTYPE(w->dtype, COLS)
#undef COLS
}
