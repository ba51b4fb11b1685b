/*
 * kernels.c — portable CPU kernels (any architecture) and the run-time selection of
 * the best ISA.  The portable kernels convert a weight row once and reuse it for
 * every token.
 */
#include "backend/cpu/kernels.h"

#include "ops/ops.h"

enum { CHUNK = 256 };

void zk_rows_generic(const zweight *w, const float *x, int64_t n, float *y, int64_t r0,
                     int64_t r1) {
    float buf[CHUNK];
    for (int64_t r = r0; r < r1; r++) {
        for (int64_t t = 0; t < n; t++) y[t * w->rows + r] = 0.0f;
        for (int64_t c0 = 0; c0 < w->cols; c0 += CHUNK) {
            int64_t m = w->cols - c0 < CHUNK ? w->cols - c0 : CHUNK;
            /* convert columns c0..c0+m of row r */
            for (int64_t c = 0; c < m; c++) buf[c] = zweight_get(w, r, c0 + c);
            for (int64_t t = 0; t < n; t++) {
                const float *xt = x + t * w->cols + c0;
                float acc = 0.0f;
                for (int64_t c = 0; c < m; c++) acc += buf[c] * xt[c];
                y[t * w->rows + r] += acc;
            }
        }
    }
}

void zk_cols_generic(const zweight *w, const float *x, int64_t n, float *y, int64_t c0,
                     int64_t c1) {
    zop_matmul_t_ref(w, x, n, y, c0, c1);
}

zk_table zk_select(void) {
#if defined(ZMLX_HAVE_X86)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("f16c"))
        return (zk_table){"avx2", zk_rows_avx2, zk_cols_avx2};
#endif
    return (zk_table){"generic", zk_rows_generic, zk_cols_generic};
}
