/*
 * tkern.h — helpers shared by the kernel tests (test_quant.c, test_kernels.c): a
 * seeded generator (trand.h, with nmse), guarded output buffers (canaries around, NaN inside),
 * normalized MSE, quantized test weights (through the quantizers, or random codes
 * with F16/F32 scales), and the exact product with its error scale for rigorous bounds.
 * Static inline, so a test includes only what it uses without warnings.
 */
#ifndef ZMLX_TKERN_H
#define ZMLX_TKERN_H

#include "ops/quant.h"
#include "model/weight.h"
#include "tcheck.h"
#include "trand.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ helpers */

/* The kernel tests' one generator (trand.h), seeded as before. */
static trng tk_rng = {0x9a4e7u};

static inline uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) abort();
    return p;
}

#define U_F32 (1.0 / 16777216.0)

static inline double gamma_n(int64_t n) {
    return (double)n * U_F32 / (1.0 - (double)n * U_F32);
}

/* guarded output: [GUARD canaries | n floats (NaN canary) | GUARD canaries] */
#define GUARD 16
#define CANARY_GUARD 0x7fa5a5a5u
#define CANARY_FILL 0x7fc0ffeeu

typedef struct gbuf {
    float *base, *p;
    int64_t n;
} gbuf;

static inline void gbuf_refill(gbuf *b) {
    for (int64_t i = 0; i < b->n; i++) b->p[i] = u2f(CANARY_FILL);
}

static inline gbuf gbuf_new(int64_t n) {
    gbuf b = {.base = xmalloc((size_t)(n + 2 * GUARD) * sizeof(float)), .n = n};
    b.p = b.base + GUARD;
    for (int64_t i = 0; i < n + 2 * GUARD; i++) b.base[i] = u2f(CANARY_GUARD);
    gbuf_refill(&b);
    return b;
}

static inline void gbuf_free(gbuf *b) {
    free(b->base);
}

static inline bool gbuf_guards_ok(const gbuf *b) {
    for (int64_t i = 0; i < GUARD; i++)
        if (f2u(b->base[i]) != CANARY_GUARD || f2u(b->p[b->n + i]) != CANARY_GUARD) return false;
    return true;
}

static inline bool bits_equal(const float *a, const float *b, int64_t n) {
    return memcmp(a, b, (size_t)n * sizeof(float)) == 0;
}

/* ------------------------------------------------------------------ weights */

/* A quantized weight owning its buffers (sized exactly: ASan sees over-reads). */
typedef struct qw {
    zweight w;
    void *data, *scales, *biases;
} qw;

static inline qw qw_alloc(zqfmt q, int bits, int group, zdtype sdt, int64_t rows, int64_t cols) {
    qw o = {.w = {.dtype = ZDT_U32, .rows = rows, .cols = cols, .q = q, .bits = bits,
                  .group = group, .sdtype = sdt}};
    size_t ns = (size_t)(rows * (cols / group)) * zdtype_table[sdt].size;
    o.data = xmalloc((size_t)(rows * cols * bits / 8));
    o.scales = xmalloc(ns);
    o.biases = q == ZQ_AFFINE ? xmalloc(ns) : NULL;
    o.w.data = o.data;
    o.w.scales = o.scales;
    o.w.biases = o.biases;
    return o;
}

static inline void qw_free(qw *o) {
    free(o->data);
    free(o->scales);
    free(o->biases);
}

/* Random floats through the quantizers (bf16 scales / E8M0). */
static inline qw qw_quantized(zqfmt q, int bits, int group, int64_t rows, int64_t cols) {
    qw o = qw_alloc(q, bits, group, q == ZQ_AFFINE ? ZDT_BF16 : ZDT_U8, rows, cols);
    float *row = xmalloc((size_t)cols * sizeof(float));
    const int64_t words = cols * bits / 32, ng = cols / group;
    for (int64_t r = 0; r < rows; r++) {
        float off = 0.5f * rng_unif(&tk_rng); /* groups not centred on 0: biases matter */
        for (int64_t c = 0; c < cols; c++) row[c] = rng_unif(&tk_rng) + off;
        if (q == ZQ_AFFINE)
            CHECK(zquant_affine_row(row, cols, bits, group, (uint32_t *)o.data + r * words,
                                    (uint16_t *)o.scales + r * ng, (uint16_t *)o.biases + r * ng));
        else
            CHECK(zquant_mxfp4_row(row, cols, (uint32_t *)o.data + r * words,
                                   (uint8_t *)o.scales + r * ng));
    }
    free(row);
    return o;
}

/* Random codes with random F16 or F32 scales (|s| in 2^-7..2^-2) and biases (2^-5..1). */
static inline qw qw_random(int bits, int group, zdtype sdt, int64_t rows, int64_t cols) {
    qw o = qw_alloc(ZQ_AFFINE, bits, group, sdt, rows, cols);
    uint8_t *d = o.data;
    for (int64_t i = 0; i < rows * cols * bits / 8; i++) d[i] = (uint8_t)rng_u64(&tk_rng);
    for (int64_t i = 0; i < rows * (cols / group); i++)
        for (int k = 0; k < 2; k++) {
            uint64_t r = rng_u64(&tk_rng);
            uint16_t h = (uint16_t)(((r & 1) << 15) | ((uint64_t)(k ? 10 : 8) + (r >> 1) % 5) << 10 |
                                    ((r >> 8) & 0x3ffu));
            void *dst = k ? o.biases : o.scales;
            if (sdt == ZDT_F32) ((float *)dst)[i] = zf16_to_f32(h);
            else ((uint16_t *)dst)[i] = h;
        }
    return o;
}

/* element (r, c) as (scale, code value, bias) from the stored fields */
static inline void elem(const zweight *w, int64_t r, int64_t c, double *s, double *v, double *b) {
    const int64_t ng = w->cols / w->group, gi = r * ng + c / w->group;
    const uint8_t *row = (const uint8_t *)w->data + r * zweight_row_data_bytes(w);
    uint32_t q = zq_code(row, c, w->bits);
    *s = zweight_scale_at(w->sdtype, w->scales, gi);
    *b = w->q == ZQ_AFFINE ? zweight_scale_at(w->sdtype, w->biases, gi) : 0.0;
    *v = w->q == ZQ_AFFINE ? (double)q : (double)zfp4_e2m1[q];
}

/* T and A of the header, per output, for Y = X W^T (or X W when transposed). */
static inline void exact_q(const zweight *w, const float *x, int64_t n, bool transposed, double *ex,
                    double *ab) {
    const int64_t out = transposed ? w->cols : w->rows, K = transposed ? w->rows : w->cols;
    for (int64_t i = 0; i < n * out; i++) ex[i] = ab[i] = 0.0;
    for (int64_t r = 0; r < w->rows; r++)
        for (int64_t c = 0; c < w->cols; c++) {
            double s, v, b;
            elem(w, r, c, &s, &v, &b);
            for (int64_t t = 0; t < n; t++) {
                int64_t o = transposed ? c : r, k = transposed ? r : c;
                double xv = x[t * K + k];
                ex[t * out + o] += (s * v + b) * xv;
                ab[t * out + o] += (fabs(s * v) + fabs(b)) * fabs(xv);
            }
        }
}

static inline int64_t bound_violation(const float *y, const double *ex, const double *ab, int64_t cnt,
                               int64_t steps) {
    double g = gamma_n(steps);
    for (int64_t i = 0; i < cnt; i++)
        if (isnan(y[i]) || fabs((double)y[i] - ex[i]) > g * ab[i] + 1e-37) return i;
    return -1;
}

static inline const char *fmt_name(const zweight *w, char *buf, size_t n) {
    snprintf(buf, n, "%s g%d %s", zwfmt_table[zweight_kind(w)].name, w->group,
             zdtype_table[w->sdtype].name);
    return buf;
}

#endif
