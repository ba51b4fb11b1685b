/*
 * kernels.h — the CPU matrix kernels behind the `cpu` backend, one function per ISA
 * with the same contract: rows [r0, r1) of Y[n, w.rows] = X[n, w.cols] @ W^T, or
 * columns [c0, c1) of Y[n, w.cols] = X[n, w.rows] @ W.  Summation order differs from
 * the reference (vector lanes, FMA); tests bound the difference.
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
    zk_rows_fn rows; /* matmul */
    zk_cols_fn cols; /* transposed matmul */
} zk_table;

/* The best kernels this CPU runs (checked once per backend context). */
zk_table zk_select(void);

void zk_rows_generic(const zweight *w, const float *x, int64_t n, float *y, int64_t r0,
                     int64_t r1);
void zk_cols_generic(const zweight *w, const float *x, int64_t n, float *y, int64_t c0,
                     int64_t c1);
#if defined(ZMLX_HAVE_X86)
void zk_rows_avx2(const zweight *w, const float *x, int64_t n, float *y, int64_t r0, int64_t r1);
void zk_cols_avx2(const zweight *w, const float *x, int64_t n, float *y, int64_t c0, int64_t c1);
#endif

#endif
