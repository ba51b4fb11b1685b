/*
 * tcuda.h — helpers of the CUDA tests (test_cuda.c, test_cuda_kernels.c, test_cuda_attn.c): random data,
 * device copies, guarded outputs (guard floats around, NaN canaries inside), host
 * matrices of every weight layout (dense, or quantized by MLX's quantizers from random
 * floats) and their upload in upload.c's layout, and the error bound of a dot product.
 * Only for builds with CUDA (ZMLX_HAVE_CUDA).
 */
#ifndef ZMLX_TCUDA_H
#define ZMLX_TCUDA_H

#include "backend/backend.h"
#include "backend/cuda/kernels.h"
#include "core/err.h"
#include "model/weight.h"
#include "ops/quant.h"
#include "tcheck.h"
#include "trand.h"

#include <cuda_runtime_api.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>

/* The CUDA tests' one generator (trand.h), seeded as before. */
static trng cu_rng = {0xc0dac0daULL};

static inline void fill(float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = rng_unif(&cu_rng) * scale;
}

static inline uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

#define CU(call)                                                                       \
    do {                                                                               \
        cudaError_t err_ = (call);                                                     \
        if (err_ != cudaSuccess) {                                                     \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call,              \
                    cudaGetErrorString(err_));                                         \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

static cudaStream_t S;
/* The precision mode the product cases run in (cu_q.fast): main() runs them exact, then
   the int8-activation layouts again fast. */
static bool tq_fast;
#define Q ((cu_q){S, false, tq_fast})
#define QPDL ((cu_q){S, true, tq_fast})

/* A device copy of host data. */
/* The start of a kernel test: false, after the SKIP lines, where no CUDA device answers;
   else the device named, the stream S made, the kernels' attributes set, and *quick
   (ZMLX_TEST_CUDA_QUICK=1: the short run for compute-sanitizer). */
static inline bool tcu_begin(bool *quick) {
    zerr e = {{0}};
    const zbackend_ops *be = zbackend_get(ZMLX_BACKEND_CUDA);
    CHECK(be != NULL);
    if (!be || be->probe(&e) != ZMLX_OK) {
        printf("SKIP: no CUDA device (%s)\n", e.msg);
        printf("%d passed, %d failed, 1 skipped\n", tc_pass, tc_fail);
        return false;
    }
    struct cudaDeviceProp prop;
    CU(cudaGetDeviceProperties(&prop, 0));
    printf("device: %s (%d SMs, %.1f GiB, sm_%d%d)\n", prop.name, prop.multiProcessorCount,
           (double)prop.totalGlobalMem / 1073741824.0, prop.major, prop.minor);
    CU(cudaStreamCreate(&S));
    CU(cuk_init());
    *quick = getenv("ZMLX_TEST_CUDA_QUICK") && !strcmp(getenv("ZMLX_TEST_CUDA_QUICK"), "1");
    return true;
}

static inline void *dup_dev(const void *h, size_t bytes) {
    void *d;
    CU(cudaMalloc(&d, bytes ? bytes : 1));
    if (bytes) CU(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
    return d;
}

/* Device output of n floats between GUARD-float guards; everything starts as a canary
   NaN.  out_fetch copies the interior back and checks the guards. */
#define GUARD 64
#define CANARY 0x7fbadbadu

typedef struct dout {
    float *base, *p;
    size_t n;
} dout;

static inline dout out_new(size_t n) {
    dout o = {.n = n};
    size_t all = n + 2 * GUARD;
    uint32_t *h = malloc(all * 4);
    for (size_t i = 0; i < all; i++) h[i] = CANARY;
    o.base = dup_dev(h, all * 4);
    o.p = o.base + GUARD;
    free(h);
    return o;
}

/* A guarded output starting as a copy of host[n] (outputs that are updated in place). */
static inline dout out_from(const float *host, size_t n) {
    dout o = out_new(n);
    CU(cudaMemcpy(o.p, host, n * 4, cudaMemcpyHostToDevice));
    return o;
}

/* Fetch into host[n]; false (and a message) if a guard moved. */
static inline bool out_fetch(dout *o, float *host, const char *what) {
    size_t all = o->n + 2 * GUARD;
    float *h = malloc(all * 4);
    CU(cudaStreamSynchronize(S));
    CU(cudaMemcpy(h, o->base, all * 4, cudaMemcpyDeviceToHost));
    bool ok = true;
    for (size_t i = 0; i < GUARD; i++)
        ok = ok && f2u(h[i]) == CANARY && f2u(h[GUARD + o->n + i]) == CANARY;
    if (!ok) fprintf(stderr, "%s: out-of-bounds write (guard changed)\n", what);
    memcpy(host, h + GUARD, o->n * 4);
    free(h);
    return ok;
}

static inline void out_free(dout *o) {
    cudaFree(o->base);
}

/* ------------------------------------------------------------------ weights */

/* A weight layout to test: a zwkind plus, quantized, group and scale dtype. */
typedef struct wfmt {
    zwkind kind;
    int group;
    zdtype sdt; /* affine: BF16, F16 or F32 */
} wfmt;

static inline const char *wfmt_name(wfmt f, char *buf, size_t n) {
    if (zwfmt_table[f.kind].q == ZQ_AFFINE)
        snprintf(buf, n, "%s g%d %s", zwfmt_table[f.kind].name, f.group, zdtype_table[f.sdt].name);
    else
        snprintf(buf, n, "%s", zwfmt_table[f.kind].name);
    return buf;
}

/* A random host matrix of a layout (owned buffers behind w). */
typedef struct hmat {
    zweight w;
    void *data, *scales, *biases;
} hmat;

static inline uint16_t f32_to_f16(float v) { /* round to nearest even, values in f16 range */
    uint32_t u = f2u(v), s = (u >> 16) & 0x8000u;
    int e = (int)((u >> 23) & 0xff) - 127 + 15;
    uint32_t m = u & 0x7fffffu;
    if (e <= 0) return (uint16_t)s; /* tiny: zero (never produced by these tests' scales) */
    uint32_t r = (m >> 13) + (((m >> 12) & 1) && ((m & 0xfffu) || ((m >> 13) & 1)));
    return (uint16_t)(s | (((uint32_t)e << 10) + r));
}

static inline hmat hmat_new(wfmt f, int64_t rows, int64_t cols) {
    hmat m = {0};
    const zwfmt *t = &zwfmt_table[f.kind];
    const size_t n = (size_t)(rows * cols);
    if (t->q == ZQ_NONE) {
        const size_t es = zdtype_table[t->dtype].size;
        m.data = malloc(n * es > 0 ? n * es : 1);
        for (size_t i = 0; i < n; i++) {
            float v = rng_unif(&cu_rng);
            if (t->dtype == ZDT_F32) {
                ((float *)m.data)[i] = v;
            } else if (t->dtype == ZDT_BF16) {
                ((uint16_t *)m.data)[i] = zf32_to_bf16(v);
            } else { /* f16: sign, exponent 10..15 (2^-5 .. 1), random mantissa */
                uint16_t s = (uint16_t)((rng_u64(&cu_rng) & 1) << 15), ex = (uint16_t)(10 + rng_u64(&cu_rng) % 6);
                ((uint16_t *)m.data)[i] = (uint16_t)(s | (ex << 10) | (rng_u64(&cu_rng) & 0x3ff));
            }
        }
        m.w = (zweight){.dtype = t->dtype, .rows = rows, .cols = cols, .data = m.data};
        return m;
    }
    const int bits = t->bits, group = t->q == ZQ_MXFP4 ? 32 : f.group;
    const int64_t ng = cols / group, words = cols * bits / 32;
    float *row = malloc((size_t)cols * 4);
    m.data = malloc((size_t)(rows * words) * 4 + 4);
    if (t->q == ZQ_MXFP4) {
        m.scales = malloc((size_t)(rows * ng));
        for (int64_t r = 0; r < rows; r++) {
            for (int64_t c = 0; c < cols; c++) row[c] = rng_unif(&cu_rng) * (float)(1 + (c / 32) % 5);
            zquant_mxfp4_row(row, cols, (uint32_t *)m.data + r * words, (uint8_t *)m.scales + r * ng);
        }
        m.w = (zweight){.dtype = ZDT_U32, .rows = rows, .cols = cols, .data = m.data, .q = ZQ_MXFP4,
                        .bits = 4, .group = 32, .sdtype = ZDT_U8, .scales = m.scales};
    } else {
        uint16_t *sb = malloc((size_t)(rows * ng) * 2), *bb = malloc((size_t)(rows * ng) * 2);
        for (int64_t r = 0; r < rows; r++) {
            for (int64_t c = 0; c < cols; c++) row[c] = rng_unif(&cu_rng) * 0.5f + 0.25f * (float)((c / group) % 3);
            zquant_affine_row(row, cols, bits, group, (uint32_t *)m.data + r * words, sb + r * ng, bb + r * ng);
        }
        const size_t es = zdtype_table[f.sdt].size;
        m.scales = malloc((size_t)(rows * ng) * es);
        m.biases = malloc((size_t)(rows * ng) * es);
        for (int64_t i = 0; i < rows * ng; i++) {
            const float s = zbf16_to_f32(sb[i]), b = zbf16_to_f32(bb[i]);
            if (f.sdt == ZDT_BF16) {
                ((uint16_t *)m.scales)[i] = sb[i];
                ((uint16_t *)m.biases)[i] = bb[i];
            } else if (f.sdt == ZDT_F16) {
                ((uint16_t *)m.scales)[i] = f32_to_f16(s);
                ((uint16_t *)m.biases)[i] = f32_to_f16(b);
            } else {
                ((float *)m.scales)[i] = s;
                ((float *)m.biases)[i] = b;
            }
        }
        free(sb);
        free(bb);
        m.w = (zweight){.dtype = ZDT_U32, .rows = rows, .cols = cols, .data = m.data, .q = ZQ_AFFINE,
                        .bits = bits, .group = group, .sdtype = f.sdt, .scales = m.scales,
                        .biases = m.biases};
    }
    free(row);
    return m;
}

static inline void hmat_free(hmat *m) {
    free(m->data);
    free(m->scales);
    free(m->biases);
}

/* n matrices of one layout stacked as upload.c does (each part 256-byte aligned). */
static inline cuw stack_dev(const hmat *ms, int n) {
    const zweight *w = &ms[0].w;
    const zwkind k = zweight_kind(w);
    const size_t db = (size_t)(w->rows * cuk_row_bytes((int32_t)k, w->cols));
    const size_t dstep = (db + 255) & ~(size_t)255;
    uint8_t *h = calloc(1, dstep * (size_t)n);
    for (int i = 0; i < n; i++) memcpy(h + (size_t)i * dstep, ms[i].data, db);
    cuw d = {.data = dup_dev(h, dstep * (size_t)n), .kind = (int32_t)k, .rows = w->rows,
             .cols = w->cols, .ld = cuk_row_bytes((int32_t)k, w->cols),
             .stride = n > 1 ? (int64_t)dstep : 0};
    free(h);
    if (w->q != ZQ_NONE) {
        const size_t es = zdtype_table[w->sdtype].size, sb = (size_t)(w->rows * (w->cols / w->group)) * es;
        const size_t sstep = (sb + 255) & ~(size_t)255;
        uint8_t *hs = calloc(1, sstep * (size_t)n), *hb = calloc(1, sstep * (size_t)n);
        for (int i = 0; i < n; i++) {
            memcpy(hs + (size_t)i * sstep, ms[i].scales, sb);
            if (ms[i].biases) memcpy(hb + (size_t)i * sstep, ms[i].biases, sb);
        }
        d.scales = dup_dev(hs, sstep * (size_t)n);
        d.biases = w->biases ? dup_dev(hb, sstep * (size_t)n) : NULL;
        d.group = w->group;
        d.sdt = w->sdtype == ZDT_BF16 ? CU_SDT_BF16 : w->sdtype == ZDT_F16 ? CU_SDT_F16
              : w->sdtype == ZDT_F32 ? CU_SDT_F32 : CU_SDT_E8M0;
        d.sstride = n > 1 ? (int64_t)(sstep / es) : 0;
        free(hs);
        free(hb);
    }
    return d;
}

static inline cuw to_dev(const hmat *m) {
    return stack_dev(m, 1);
}

static inline void cuw_free(cuw *w) {
    cudaFree((void *)w->data);
    if (w->scales) cudaFree((void *)w->scales);
    if (w->biases) cudaFree((void *)w->biases);
}

/* ------------------------------------------------------------------ dot bound */

/* Check y against the exact dot (double): dense and mxfp4 sum w*x; affine the factored
   T = sum_g (s sum q x + b sum x) with A = sum_g (|s| sum |q x| + |b| sum |x|), and the
   rigorous bound gamma_{K + 2 nu + 8} A of any summation order (tests/test_quant.c). */
typedef struct dotchk {
    double worst; /* max |y - exact| / bound */
    int64_t bad, nan;
} dotchk;

static inline void dot_exact(const zweight *w, int64_t r, const float *x, double *exact, double *asum) {
    double s = 0, a = 0;
    if (w->q == ZQ_AFFINE) {
        const uint8_t *row = (const uint8_t *)w->data + (size_t)r * (size_t)zweight_row_data_bytes(w);
        const int64_t ng = w->cols / w->group;
        for (int64_t g = 0; g < ng; g++) {
            const double sc = zweight_scale_at(w->sdtype, w->scales, r * ng + g);
            const double bi = zweight_scale_at(w->sdtype, w->biases, r * ng + g);
            double sq = 0, aq = 0, sx = 0, ax = 0;
            for (int64_t c = g * w->group; c < (g + 1) * w->group; c++) {
                const double q = (double)zq_code(row, c, w->bits);
                sq += q * x[c];
                aq += fabs(q * x[c]);
                sx += x[c];
                ax += fabs((double)x[c]);
            }
            s += sc * sq + bi * sx;
            a += fabs(sc) * aq + fabs(bi) * ax;
        }
    } else {
        for (int64_t c = 0; c < w->cols; c++) {
            double p = (double)zweight_get(w, r, c) * (double)x[c];
            s += p;
            a += fabs(p);
        }
    }
    *exact = s;
    *asum = a;
}

/*
 * Fast mode (tq_fast, a layout cuk_q8_kind names): the int8 activations (q8.cuh, the CPU's
 * xq.h) move each x_i by at most d_g / 2 with d_g = amax_g / 127, so the dot moves by at
 * most  Q = sum_g |s_g| d_g / 2 sum_i |q_i - m|  (the centred codes meet the error; the
 * bias term is exact).  0 in exact mode.  As tests/test_kernels.c's fast_err.
 */
static inline double dot_fast_err(const zweight *w, int64_t r, const float *x) {
    if (!tq_fast || !cuk_q8_kind((int32_t)zweight_kind(w))) return 0.0;
    const uint8_t *row = (const uint8_t *)w->data + (size_t)r * (size_t)zweight_row_data_bytes(w);
    const int64_t ng = w->cols / w->group;
    const double m = (double)(1 << (w->bits - 1));
    double e = 0;
    for (int64_t g = 0; g < ng; g++) {
        double amax = 0, sq = 0;
        for (int64_t c = g * w->group; c < (g + 1) * w->group; c++) {
            amax = fmax(amax, fabs((double)x[c]));
            sq += fabs((double)zq_code(row, c, w->bits) - m);
        }
        e += fabs(zweight_scale_at(w->sdtype, w->scales, r * ng + g)) * sq * amax / 127.0 * 0.5 * (1 + 1e-5);
    }
    return e;
}

/* One result against its bound (NaN always fails). */
static inline void dotchk_add(dotchk *c, float y, double exact, double bound) {
    if (isnan(y)) {
        c->nan++;
        return;
    }
    double r = fabs((double)y - exact) / bound;
    if (r > c->worst) c->worst = r;
    if (r > 1.0) c->bad++;
}

/* |y - exact| <= qe + gamma_{K + 2 K/32 + 16} (asum + qe): any summation order, plus the
   fast mode's activation error qe (dot_fast_err; 0 exact). */
static inline void dot_check_q(dotchk *c, float y, double exact, double asum, double qe, int64_t K) {
    const double u = 1.0 / 16777216.0, n = (double)(K + 2 * (K / 32) + (qe > 0 ? 16 : 8));
    dotchk_add(c, y, exact, qe + n * u / (1.0 - n * u) * (asum + qe) + 1e-30);
}

static inline void dot_check(dotchk *c, float y, double exact, double asum, int64_t K) {
    dot_check_q(c, y, exact, asum, 0.0, K);
}

/* bf16 rounding of a float (round to nearest even), back as a double. */
static inline double bf16r(float v) {
    return (double)zbf16_to_f32(zf32_to_bf16(v));
}

/* Fast mode's tensor-core GEMM (kernels_gemm_tc.cu): the dot of the bf16-rounded weight
   (the reference's float value, rounded) and activation, in double, and its |terms| sum;
   *big = the largest |term| (one element whose rounding went the other way). */
static inline void dot_bf16(const zweight *w, int64_t r, const float *x, double *exact, double *asum,
                            double *big) {
    double s = 0, a = 0, m = 0;
    for (int64_t c = 0; c < w->cols; c++) {
        const double p = bf16r(zweight_get(w, r, c)) * bf16r(x[c]);
        s += p;
        a += fabs(p);
        m = fmax(m, fabs(p));
    }
    *exact = s;
    *asum = a;
    *big = m;
}

/* |y - exact| <= 2 gamma_{K + 32} asum + 2^-8 big: the products of bf16 values are exact
   in float32, the tensor cores' sums may truncate (twice the round-to-nearest bound). */
static inline void dot_check_tc(dotchk *c, float y, double exact, double asum, double big, int64_t K) {
    const double u = 1.0 / 16777216.0, n = (double)(K + 32);
    dotchk_add(c, y, exact, 2.0 * n * u / (1.0 - n * u) * asum + big / 256.0 + 1e-30);
}

#define DOTCHK_OK(c, what, ...)                                                        \
    CHECKF((c).bad == 0 && (c).nan == 0, what ": %lld over the bound, %lld NaN (worst %.3g)", \
           __VA_ARGS__, (long long)(c).bad, (long long)(c).nan, (c).worst)

/* Two device results the same bits? */
static inline bool same_bits(const float *a, const float *b, size_t n) {
    return memcmp(a, b, n * 4) == 0;
}

/* How many of n values differ in their bits. */
static inline int64_t bits_differ(const float *a, const float *b, int64_t n) {
    int64_t d = 0;
    for (int64_t i = 0; i < n; i++) d += f2u(a[i]) != f2u(b[i]);
    return d;
}

#endif
