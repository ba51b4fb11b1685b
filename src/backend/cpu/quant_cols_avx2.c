/*
 * quant_cols_avx2.c — Y = X W (the transposed product) for quantized layouts on AVX2, in
 * the factored form of SYSTEM.md section 1 (both precision modes: float32 throughout):
 *     y[c] = sum_r (x_r a_{r,g}) q_{r,c}  +  sum_r x_r b_{r,g}          (g = c / group)
 * Absorbed MLA attention runs W_UK^T q through it every decoded token.  Compiled with
 * -mavx2 -mfma -mf16c; called only after zk_isa_supported(ZK_AVX2).  The avx512 levels
 * use it too.
 *
 * Per chunk of 512 columns, 2 tokens and 256 rows: first the products x_r a_{r,g} and the
 * bias sums (scalar, once per row and group), then register tiles of 32 columns x 2
 * tokens accumulate q * (x a) by FMA over the rows in order, 8 codes unpacked per vector
 * (zk_block8) and used for both tokens; row chunks carry their sums through y.  Every
 * column takes the same steps whatever the column range, so results do not depend on how
 * the backend splits columns (ranges start at multiples of 8; an unaligned head or tail
 * goes through the reference).
 */
#include "backend/cpu/kernels.h"

#include "backend/cpu/simd_avx2.h"
#include "ops/ops.h"

#include <immintrin.h>

enum {
    CW = 512,          /* columns per chunk */
    RB = 256,          /* rows per chunk */
    GMAX = CW / 32 + 2 /* groups a chunk can touch */
};

static inline __attribute__((always_inline)) void
cols_fmt(const zweight *w, const float *x, int64_t n, float *y, int64_t c0, int64_t c1, int bits,
         int fp4) {
    const int64_t rb = zweight_row_data_bytes(w), ng = w->cols / w->group, G = w->group;
    const uint8_t *end = (const uint8_t *)w->data + w->rows * rb;
    float xa[2][RB * GMAX], bs[2][GMAX];
    for (int64_t cc = c0; cc < c1; cc += CW) {
        const int64_t ce = c1 - cc < CW ? c1 : cc + CW, ga = cc / G, ngc = (ce - 1) / G + 1 - ga;
        for (int64_t t0 = 0; t0 < n; t0 += 2) {
            const int N = n - t0 >= 2 ? 2 : 1;
            for (int t = 0; t < N; t++)
                for (int64_t g = 0; g < ngc; g++) bs[t][g] = 0.0f;
            for (int64_t rc = 0; rc < w->rows; rc += RB) {
                const int64_t re = w->rows - rc < RB ? w->rows : rc + RB;
                for (int64_t r = rc; r < re; r++) /* x_r a_{r,g}, and the bias sums */
                    for (int64_t g = 0; g < ngc; g++) {
                        const int64_t si = r * ng + ga + g;
                        const float a = fp4 ? ze8m0_to_f32(((const uint8_t *)w->scales)[si])
                                            : zweight_scale_at(w->sdtype, w->scales, si);
                        const float b = fp4 ? 0.0f : zweight_scale_at(w->sdtype, w->biases, si);
                        for (int t = 0; t < N; t++) {
                            const float xr = x[(t0 + t) * w->rows + r];
                            xa[t][(r - rc) * ngc + g] = xr * a;
                            bs[t][g] += xr * b;
                        }
                    }
                for (int64_t c = cc; c < ce; c += 32) {
                    const int nb = ce - c >= 32 ? 4 : (int)((ce - c) / 8);
                    __m256 acc[4][2];
                    int64_t gb[4];
                    for (int k = 0; k < nb; k++) {
                        gb[k] = (c + 8 * k) / G - ga;
                        for (int t = 0; t < N; t++)
                            acc[k][t] = rc == 0 ? _mm256_setzero_ps()
                                                : _mm256_loadu_ps(y + (t0 + t) * w->cols + c + 8 * k);
                    }
                    for (int64_t r = rc; r < re; r++) {
                        const uint8_t *row = (const uint8_t *)w->data + r * rb;
                        const float *xr0 = xa[0] + (r - rc) * ngc, *xr1 = xa[1] + (r - rc) * ngc;
                        for (int k = 0; k < nb; k++) {
                            const __m256 q = zk_block8(row, (c + 8 * k) / 8, bits, fp4, end);
                            acc[k][0] = _mm256_fmadd_ps(q, _mm256_broadcast_ss(xr0 + gb[k]), acc[k][0]);
                            if (N > 1)
                                acc[k][1] = _mm256_fmadd_ps(q, _mm256_broadcast_ss(xr1 + gb[k]), acc[k][1]);
                        }
                    }
                    const bool last = re == w->rows;
                    for (int k = 0; k < nb; k++)
                        for (int t = 0; t < N; t++) {
                            const __m256 v = last ? _mm256_add_ps(acc[k][t], _mm256_set1_ps(bs[t][gb[k]]))
                                                  : acc[k][t];
                            _mm256_storeu_ps(y + (t0 + t) * w->cols + c + 8 * k, v);
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
