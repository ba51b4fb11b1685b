/*
 * quant_cols_avx2.c — Y = X W (the transposed product) for quantized layouts on AVX2,
 * bit-identical to zop_matmul_t_ref in both precision modes: every element is
 * dequantized as the reference does (a * q + b, or E2M1 * scale), multiplied by x[r]
 * and added to its column's sum in row order, each step rounded to float32 (no FMA).
 * Absorbed MLA attention runs W_UK^T q through it every decoded token.
 * Compiled with -mavx2 -mfma -mf16c; called only after zk_isa_supported(ZK_AVX2).
 *
 * Rows are read in order, 8 columns per vector; a chunk of columns of every token of a
 * tile stays in y (L1) while the rows stream by.
 */
#include "backend/cpu/kernels.h"

#include "backend/cpu/simd_avx2.h"
#include "ops/ops.h"

#include <immintrin.h>

enum { CW = 256, TT = 4 }; /* columns per chunk, tokens per tile */


static inline __attribute__((always_inline)) void
cols_fmt(const zweight *w, const float *x, int64_t n, float *y, int64_t c0, int64_t c1, int bits,
         int fp4) {
    const int64_t rb = zweight_row_data_bytes(w), ng = w->cols / w->group, G = w->group;
    const uint8_t *end = (const uint8_t *)w->data + w->rows * rb;
    for (int64_t cc = c0; cc < c1; cc += CW) {
        const int64_t ce = c1 - cc < CW ? c1 : cc + CW;
        for (int64_t t0 = 0; t0 < n; t0 += TT) {
            const int nt = n - t0 < TT ? (int)(n - t0) : TT;
            for (int t = 0; t < nt; t++)
                for (int64_t c = cc; c < ce; c++) y[(t0 + t) * w->cols + c] = 0.0f;
            for (int64_t r = 0; r < w->rows; r++) {
                const uint8_t *row = (const uint8_t *)w->data + r * rb;
                __m256 xr[TT];
                for (int t = 0; t < nt; t++) xr[t] = _mm256_set1_ps(x[(t0 + t) * w->rows + r]);
                for (int64_t c = cc; c < ce; c += 8) {
                    const int64_t g = r * ng + c / G;
                    const __m256 s = _mm256_set1_ps(fp4 ? ze8m0_to_f32(((const uint8_t *)w->scales)[g])
                                                        : zweight_scale_at(w->sdtype, w->scales, g));
                    const __m256 q = zk_block8(row, c / 8, bits, fp4, end);
                    const __m256 v = fp4 ? _mm256_mul_ps(q, s)
                                         : _mm256_add_ps(_mm256_mul_ps(s, q),
                                                         _mm256_set1_ps(zweight_scale_at(w->sdtype, w->biases, g)));
                    for (int t = 0; t < nt; t++) {
                        float *yt = y + (t0 + t) * w->cols + c;
                        _mm256_storeu_ps(yt, _mm256_add_ps(_mm256_loadu_ps(yt), _mm256_mul_ps(v, xr[t])));
                    }
                }
            }
        }
    }
}

/* whole blocks of 8 columns [a0, a1) */
static void cols_blocks(const zweight *w, const float *x, int64_t n, float *y, int64_t a0,
                        int64_t a1) {
#define FMT(b) cols_fmt(w, x, n, y, a0, a1, b, 0)
    if (w->q == ZQ_MXFP4) cols_fmt(w, x, n, y, a0, a1, 4, 1);
    else ZK_AFFINE_BITS(w->bits, FMT)
#undef FMT
}

void zk_qcols_avx2(const zweight *w, const float *x, int64_t n, float *y, int64_t c0, int64_t c1) {
#define BODY(a0, a1) cols_blocks(w, x, n, y, a0, a1)
    ZK_QCOLS_BLOCKS8(w, x, n, y, c0, c1, BODY);
#undef BODY
}
