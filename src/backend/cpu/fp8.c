/*
 * fp8.c — CPU kernels for fp8 e4m3 weights with BxB block scales (DeepSeek-V3/V3.2
 * `weight_scale_inv` checkpoints, model/weight.h): Y = X W^T with the weight kept at one
 * byte per element and decoded on the fly.  Portable C; fp8_avx2.c has the AVX2 rows
 * kernel.  The transposed product uses zk_qcols_generic (the reference dequantizer
 * summed in row order, bit-identical to zop_matmul_t_ref).
 *
 * Per row and column block b (B columns, the last one possibly shorter):
 *     y[t, r] = sum_b  scale[(r + brow0) / B][b] * sum_{c in b} e4m3(q[r, c]) * x[t, c]
 * The order of operations of one (row, token) depends on neither [r0, r1) nor n, so
 * row views (zweight_rows) and thread splits give identical values.
 */
#include "backend/cpu/kernels.h"

#include <string.h>

enum { FP8_CHUNK = 128 }; /* decoded columns kept on the stack */

/* The 256 e4m3 values (one table per call: 256 conversions, nothing next to a matrix). */
static void e4m3_table(float *lut) {
    for (int i = 0; i < 256; i++) lut[i] = zfp8_e4m3_to_f32((uint8_t)i);
}

void zk_fp8_rows_generic(const zweight *w, const float *x, int64_t n, float *y, int64_t r0,
                         int64_t r1) {
    const int64_t K = w->cols, B = w->group, nbc = (K + B - 1) / B;
    float lut[256], q[FP8_CHUNK];
    e4m3_table(lut);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)w->data + r * K;
        const int64_t srow = (r + w->brow0) / B * nbc;
        for (int64_t t = 0; t < n; t++) y[t * w->rows + r] = 0.0f;
        for (int64_t b = 0; b < nbc; b++) {
            const int64_t c0 = b * B, c1 = c0 + B < K ? c0 + B : K;
            const float s = zweight_scale_at(w->sdtype, w->scales, srow + b);
            for (int64_t t = 0; t < n; t++) {
                const float *xt = x + t * K;
                float dot = 0.0f;
                for (int64_t cc = c0; cc < c1; cc += FP8_CHUNK) {
                    const int64_t m = c1 - cc < FP8_CHUNK ? c1 - cc : FP8_CHUNK;
                    if (t == 0 || B > FP8_CHUNK) /* decode once per row chunk when it fits */
                        for (int64_t i = 0; i < m; i++) q[i] = lut[row[cc + i]];
                    for (int64_t i = 0; i < m; i++) dot += q[i] * xt[cc + i];
                }
                y[t * w->rows + r] += s * dot;
            }
        }
    }
}

void zk_fp8_install(zk_table *k) {
    k->rows[ZW_FP8_E4M3] = zk_fp8_rows_generic;
    k->cols[ZW_FP8_E4M3] = zk_qcols_generic;
#if defined(ZMLX_HAVE_X86)
    /* every x86 level above scalar includes AVX2 + FMA + F16C (isa.c) */
    if (strcmp(k->isa, "scalar")) k->rows[ZW_FP8_E4M3] = zk_fp8_rows_avx2;
#endif
}
