/*
 * kernels.h — the CPU matrix kernels behind the `cpu` backend, one function per ISA
 * and weight layout with the same contract: rows [r0, r1) of Y[n, w.rows] =
 * X[n, w.cols] @ W^T, or columns [c0, c1) of Y[n, w.cols] = X[n, w.rows] @ W.
 * Summation order differs from the reference (vector lanes, FMA, the factored
 * affine form scale * sum(q*x) + bias * sum(x)); tests bound the difference.
 * A row's value never depends on [r0, r1): the backend splits rows across threads.
 *
 * zk_table is this backend's fast-path table, parallel to model/weight.h's
 * zwfmt_table: one entry per weight layout (zwkind), NULL where none exists.
 */
#ifndef ZMLX_BACKEND_CPU_KERNELS_H
#define ZMLX_BACKEND_CPU_KERNELS_H

#include "model/weight.h"

#include <stdbool.h>

typedef void (*zk_rows_fn)(const zweight *w, const float *x, int64_t n, float *y, int64_t r0,
                           int64_t r1);
typedef void (*zk_cols_fn)(const zweight *w, const float *x, int64_t n, float *y, int64_t c0,
                           int64_t c1);

typedef struct zk_table {
    const char *isa;
    zk_rows_fn rows[ZW_COUNT]; /* matmul, per layout */
    zk_cols_fn cols[ZW_COUNT]; /* transposed matmul, per layout */
} zk_table;

/* The best kernels this CPU runs (checked once per backend context). */
zk_table zk_select(void);

/* The entries for w's layout; NULL when w has none (zweight_check fails). */
static inline zk_rows_fn zk_rows_for(const zk_table *k, const zweight *w) {
    zwkind kd = zweight_kind(w);
    return kd < ZW_COUNT ? k->rows[kd] : NULL;
}
static inline zk_cols_fn zk_cols_for(const zk_table *k, const zweight *w) {
    zwkind kd = zweight_kind(w);
    return kd < ZW_COUNT ? k->cols[kd] : NULL;
}

/* Portable, any layout (element access through zweight_get). zk_cols_generic is the
 * reference zop_matmul_t_ref itself. */
void zk_rows_generic(const zweight *w, const float *x, int64_t n, float *y, int64_t r0,
                     int64_t r1);
void zk_cols_generic(const zweight *w, const float *x, int64_t n, float *y, int64_t c0,
                     int64_t c1);
/* Portable, quantized layouts (affine, mxfp4): rows in the factored form; columns
 * dequantize a row slice and accumulate over rows in order (bit-identical to
 * zop_matmul_t_ref). */
void zk_qrows_generic(const zweight *w, const float *x, int64_t n, float *y, int64_t r0,
                      int64_t r1);
void zk_qcols_generic(const zweight *w, const float *x, int64_t n, float *y, int64_t c0,
                      int64_t c1);

/* fp8 e4m3 block weights (fp8.c, fp8_avx2.c): rows kernels, and zk_fp8_install, which
 * puts the fp8 entries (rows: the best of these for k->isa; columns: zk_qcols_generic)
 * into a table zk_select has filled. */
void zk_fp8_rows_generic(const zweight *w, const float *x, int64_t n, float *y, int64_t r0,
                         int64_t r1);
void zk_fp8_install(zk_table *k);

enum {
    ZK_QSUMS = 1024 /* group sums a quantized kernel keeps on its stack (tokens x groups) */
};

#if defined(ZMLX_HAVE_X86)
void zk_rows_avx2(const zweight *w, const float *x, int64_t n, float *y, int64_t r0, int64_t r1);
void zk_cols_avx2(const zweight *w, const float *x, int64_t n, float *y, int64_t c0, int64_t c1);
void zk_qrows_avx2(const zweight *w, const float *x, int64_t n, float *y, int64_t r0, int64_t r1);
void zk_fp8_rows_avx2(const zweight *w, const float *x, int64_t n, float *y, int64_t r0,
                      int64_t r1);
#endif

#endif
