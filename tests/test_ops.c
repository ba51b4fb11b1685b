/*
 * test_ops.c — conformance of the fast CPU kernels and of the scalar ops against
 * their references, in the style of ggml's test-backend-ops.
 *
 * Matrix products (F32, F16, BF16 weights; odd and real GLM-4.7-Flash shapes;
 * n = 1, 2, 3, 5 tokens): zk_rows_generic, zk_rows_avx2 (when the CPU has it) and
 * the `cpu` backend (1 and 2 threads, single and many jobs per call) against
 * zop_matmul_ref, and the transposed kernels against zop_matmul_t_ref.  Every output
 * sits between guard floats (canaries checked after the call), its interior starts as
 * a NaN canary (an unwritten output is a NaN, and NaN always fails), partial row and
 * column ranges may write only those rows/columns, and the cpu backend is
 * bit-identical for 1 and 2 threads and to its kernel run over the whole range.
 *
 * Error bounds (u = 2^-24, K = length of the dot product):
 *   - element-wise, rigorous: |y - exact| <= gamma_{K+1} * sum_k |w_k x_k| with
 *     gamma_n = n u / (1 - n u), the worst case of ANY summation order, FMA or not
 *     (Higham, Accuracy and Stability, 3.1); `exact` is computed in double.
 *   - normalized MSE, statistical: sum (y - ref)^2 / sum ref^2 < 1e-10.  Reordering a
 *     float32 sum of K random-sign terms moves it by ~sqrt(K) u relative, so nmse ~ K u^2
 *     (about 7e-12 at K = 2048, the largest K here); 1e-10 leaves a margin of >10 and
 *     is still ~10 orders of magnitude below what a wrong index or dtype gives.
 *
 * Attention: random zattn_job cases (absorbed-like: k and v the same latent rows,
 * k_head 0; expanded-like: per-head k/v with strides; f32 and bf16 rows; n_q 1 and > 1
 * with causal masking): the cpu backend (1 and 2 threads) equals cpu-ref bit for bit,
 * and both match a naive double-precision attention to 1e-5 of max|v| per (query, head)
 * (the output is a convex combination of the value rows, so max|v| is its natural
 * scale; max|out| is not, it can cancel to ~0 when dv is small).
 *
 * Scalar ops: zop_rmsnorm, zop_softmax, zop_silu_mul, zop_rope_interleaved and
 * zop_rope_table against double-precision re-implementations; zbf16_to_f32 and
 * zf32_to_bf16 (round to nearest even incl. ties, overflow to inf, NaN stays NaN),
 * zf16_to_f32 exhaustively (subnormals, inf, NaN).
 *
 * A seeded splitmix64 generator makes every case deterministic.
 */
#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "ops/ops.h"
#include "tcheck.h"
#include "trand.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ helpers */

static trng rng = {0x5eed2024u};

static uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

#define U_F32 (1.0 / 16777216.0) /* unit roundoff of float32, 2^-24 */
#define NMSE_MAX 1e-10

static double gamma_n(int64_t n) {
    return (double)n * U_F32 / (1.0 - (double)n * U_F32);
}

/*
 * Guarded float buffers: [GUARD canaries | n floats | GUARD canaries].  The interior
 * starts as a different NaN, so an output a kernel forgot to write fails the NaN check.
 */
#define GUARD 16
#define CANARY_GUARD 0x7fa5a5a5u
#define CANARY_FILL 0x7fc0ffeeu

typedef struct gbuf {
    float *base; /* malloc'd */
    float *p;    /* the n usable floats */
    int64_t n;
} gbuf;

static gbuf gbuf_new(int64_t n) {
    gbuf b = {.base = malloc((size_t)(n + 2 * GUARD) * sizeof(float)), .n = n};
    if (!b.base) abort();
    b.p = b.base + GUARD;
    for (int64_t i = 0; i < n + 2 * GUARD; i++) b.base[i] = u2f(CANARY_GUARD);
    for (int64_t i = 0; i < n; i++) b.p[i] = u2f(CANARY_FILL);
    return b;
}

static void gbuf_refill(gbuf *b) {
    for (int64_t i = 0; i < b->n; i++) b->p[i] = u2f(CANARY_FILL);
}

static bool gbuf_guards_ok(const gbuf *b) {
    for (int64_t i = 0; i < GUARD; i++)
        if (f2u(b->base[i]) != CANARY_GUARD || f2u(b->p[b->n + i]) != CANARY_GUARD) return false;
    return true;
}

static void gbuf_free(gbuf *b) {
    free(b->base);
    b->base = b->p = NULL;
}

static bool bits_equal(const float *a, const float *b, int64_t n) {
    return memcmp(a, b, (size_t)n * sizeof(float)) == 0;
}

static bool any_nan(const float *a, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (isnan(a[i])) return true;
    return false;
}

static double nmse_seen; /* the largest nmse of a passing product, printed at the end */

/* nmse (trand.h), remembering the largest of a passing product */
static double nmse_track(const float *y, const float *ref, int64_t n) {
    double e = nmse(y, ref, n);
    if (e < NMSE_MAX && e > nmse_seen) nmse_seen = e;
    return e;
}

/* ------------------------------------------------------------------ weights */

/* A random F16 value: normal magnitudes 2^-7..2^1, one in 32 subnormal, never inf/NaN. */
static uint16_t rand_f16(void) {
    uint64_t r = rng_u64(&rng);
    uint16_t sign = (uint16_t)((r & 1) << 15), man = (uint16_t)((r >> 1) & 0x3ff);
    uint16_t ex = (r >> 16) % 32 == 0 ? 0 : (uint16_t)(8 + (r >> 24) % 9);
    return (uint16_t)(sign | (ex << 10) | man);
}

/* A [rows, cols] weight of dtype dt with random values; wf gets them as float. */
static zweight make_weight(zdtype dt, int64_t rows, int64_t cols, float **wf) {
    int64_t n = rows * cols;
    size_t esz = zdtype_table[dt].size;
    void *data = malloc((size_t)(n > 0 ? n : 1) * esz); /* exact size: ASan sees over-reads */
    *wf = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!data || !*wf) abort();
    for (int64_t i = 0; i < n; i++) {
        if (dt == ZDT_F32) {
            ((float *)data)[i] = rng_unif(&rng);
            (*wf)[i] = ((float *)data)[i];
        } else if (dt == ZDT_BF16) {
            ((uint16_t *)data)[i] = zf32_to_bf16(rng_unif(&rng));
            (*wf)[i] = zbf16_to_f32(((uint16_t *)data)[i]);
        } else {
            ((uint16_t *)data)[i] = rand_f16();
            (*wf)[i] = zf16_to_f32(((uint16_t *)data)[i]);
        }
    }
    return (zweight){.dtype = dt, .rows = rows, .cols = cols, .data = data};
}

static float *rand_vec(int64_t n, float amp) {
    float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!v) abort();
    for (int64_t i = 0; i < n; i++) v[i] = amp * rng_unif(&rng);
    return v;
}

/*
 * The exact products in double and the sums of |terms| (for the rigorous bound).
 * transposed = false: Y[n, rows] = X[n, cols] W^T;  true: Y[n, cols] = X[n, rows] W.
 */
static void exact_product(const float *wf, int64_t rows, int64_t cols, const float *x, int64_t n,
                          bool transposed, double *ex, double *ab) {
    int64_t out = transposed ? cols : rows, K = transposed ? rows : cols;
    for (int64_t t = 0; t < n; t++)
        for (int64_t o = 0; o < out; o++) {
            double s = 0, a = 0;
            for (int64_t k = 0; k < K; k++) {
                double w = transposed ? wf[k * cols + o] : wf[o * cols + k];
                double p = w * (double)x[t * K + k];
                s += p;
                a += fabs(p);
            }
            ex[t * out + o] = s;
            ab[t * out + o] = a;
        }
}

/* y within the rigorous bound of the exact values; returns the index of the worst
 * violation or -1. */
static int64_t bound_violation(const float *y, const double *ex, const double *ab, int64_t cnt,
                               int64_t K) {
    double g = gamma_n(K + 1);
    for (int64_t i = 0; i < cnt; i++) {
        if (isnan(y[i])) return i;
        if (fabs((double)y[i] - ex[i]) > g * ab[i] + 1e-37) return i;
    }
    return -1;
}

/* ------------------------------------------------------------------ matmul */

typedef struct kernel {
    const char *name;
    zk_rows_fn rows;
    zk_cols_fn cols;
} kernel;

static int n_kernels;
static kernel kernels[4];

static void setup_kernels(void) {
    kernels[n_kernels++] = (kernel){"generic", zk_rows_generic, zk_cols_generic};
#if defined(ZMLX_HAVE_X86)
    if (!strcmp(zk_select().isa, "avx2"))
        kernels[n_kernels++] = (kernel){"avx2", zk_rows_avx2, zk_cols_avx2};
    else
        printf("note: this CPU lacks AVX2/FMA/F16C, the avx2 kernels are not tested\n");
#endif
}

static void *cpu1, *cpu2; /* cpu backend contexts with 1 and 2 threads */

static const char *dt_name(zdtype dt) {
    return zdtype_table[dt].name;
}

/*
 * One case of the (possibly transposed) product: every kernel and the cpu backend
 * against the reference, guards, partial ranges, thread-count invariance.
 */
static void matmul_case(zdtype dt, int64_t rows, int64_t cols, int64_t n, bool transposed) {
    float *wf;
    zweight w = make_weight(dt, rows, cols, &wf);
    const int64_t out = transposed ? cols : rows, K = transposed ? rows : cols;
    const int64_t cnt = n * out;
    float *x = rand_vec(n * K, 1.0f);
    double *ex = malloc((size_t)cnt * sizeof(double)), *ab = malloc((size_t)cnt * sizeof(double));
    exact_product(wf, rows, cols, x, n, transposed, ex, ab);
    const char *tag = transposed ? "matmul_t" : "matmul";

    /* the reference itself: within the rigorous bound */
    gbuf ref = gbuf_new(cnt);
    if (transposed) zop_matmul_t_ref(&w, x, n, ref.p, 0, out);
    else zop_matmul_ref(&w, x, n, ref.p, 0, out);
    int64_t bad = bound_violation(ref.p, ex, ab, cnt, K);
    CHECKF(gbuf_guards_ok(&ref), "%s ref %s [%lld x %lld] n=%lld: guard overwritten", tag,
           dt_name(dt), (long long)rows, (long long)cols, (long long)n);
    CHECKF(bad < 0, "%s ref %s [%lld x %lld] n=%lld: element %lld = %g, exact %g", tag,
           dt_name(dt), (long long)rows, (long long)cols, (long long)n, (long long)bad,
           bad < 0 ? 0.0 : (double)ref.p[bad], bad < 0 ? 0.0 : ex[bad]);

    gbuf y = gbuf_new(cnt), part = gbuf_new(cnt);
    for (int k = 0; k < n_kernels; k++) {
        const kernel *kn = &kernels[k];
        gbuf_refill(&y);
        if (transposed) kn->cols(&w, x, n, y.p, 0, out);
        else kn->rows(&w, x, n, y.p, 0, out);
        double e = nmse_track(y.p, ref.p, cnt);
        bad = bound_violation(y.p, ex, ab, cnt, K);
        CHECKF(gbuf_guards_ok(&y), "%s %s %s [%lld x %lld] n=%lld: guard overwritten", tag,
               kn->name, dt_name(dt), (long long)rows, (long long)cols, (long long)n);
        CHECKF(!any_nan(y.p, cnt) && e < NMSE_MAX && bad < 0,
               "%s %s %s [%lld x %lld] n=%lld: nmse %.3g (max %.0e), bound violated at %lld", tag,
               kn->name, dt_name(dt), (long long)rows, (long long)cols, (long long)n, e, NMSE_MAX,
               (long long)bad);
        if (transposed && kn->cols == zk_cols_generic)
            CHECKF(bits_equal(y.p, ref.p, cnt), "zk_cols_generic must be the reference exactly");

        /* a partial range writes only its rows/columns */
        int64_t lo = rng_int(&rng, 0, out), hi = rng_int(&rng, lo, out);
        if (out > 2 && rng_u64(&rng) % 4 == 0) lo = 1, hi = out - 1;
        gbuf_refill(&part);
        if (transposed) kn->cols(&w, x, n, part.p, lo, hi);
        else kn->rows(&w, x, n, part.p, lo, hi);
        bool only = true, same = true, close = true;
        for (int64_t t = 0; t < n; t++)
            for (int64_t o = 0; o < out; o++) {
                float v = part.p[t * out + o];
                if (o < lo || o >= hi) only &= f2u(v) == CANARY_FILL;
                else {
                    same &= f2u(v) == f2u(y.p[t * out + o]);
                    close &= !isnan(v) &&
                             fabs((double)v - ex[t * out + o]) <= gamma_n(K + 1) * ab[t * out + o] + 1e-37;
                }
            }
        CHECKF(gbuf_guards_ok(&part) && only,
               "%s %s %s [%lld x %lld] n=%lld range [%lld, %lld): wrote outside its range", tag,
               kn->name, dt_name(dt), (long long)rows, (long long)cols, (long long)n,
               (long long)lo, (long long)hi);
        /* rows kernels: a row's value does not depend on the range (the cpu backend's
         * contract); column kernels may switch a column between vector and tail code */
        if (!transposed)
            CHECKF(same, "%s %s %s [%lld x %lld] n=%lld range [%lld, %lld): rows differ from "
                   "the full-range call", tag, kn->name, dt_name(dt), (long long)rows,
                   (long long)cols, (long long)n, (long long)lo, (long long)hi);
        else
            CHECKF(close, "%s %s %s [%lld x %lld] n=%lld range [%lld, %lld): out of bound", tag,
                   kn->name, dt_name(dt), (long long)rows, (long long)cols, (long long)n,
                   (long long)lo, (long long)hi);
    }

    /* the cpu backend: 1 thread == 2 threads == its kernel over the whole range */
    gbuf y1 = gbuf_new(cnt), y2 = gbuf_new(cnt);
    zmm_job j1 = {.w = w, .x = x, .y = y1.p, .n = n}, j2 = {.w = w, .x = x, .y = y2.p, .n = n};
    if (transposed) {
        zbackend_cpu.matmul_t(cpu1, &j1, 1);
        zbackend_cpu.matmul_t(cpu2, &j2, 1);
    } else {
        zbackend_cpu.matmul(cpu1, &j1, 1);
        zbackend_cpu.matmul(cpu2, &j2, 1);
    }
    gbuf_refill(&y);
    zk_table sel = zk_select();
    if (transposed) zk_cols_for(&sel, &w)(&w, x, n, y.p, 0, out);
    else zk_rows_for(&sel, &w)(&w, x, n, y.p, 0, out);
    double e = nmse_track(y1.p, ref.p, cnt);
    CHECKF(gbuf_guards_ok(&y1) && gbuf_guards_ok(&y2), "%s cpu %s [%lld x %lld] n=%lld: guard "
           "overwritten", tag, dt_name(dt), (long long)rows, (long long)cols, (long long)n);
    CHECKF(!any_nan(y1.p, cnt) && e < NMSE_MAX, "%s cpu %s [%lld x %lld] n=%lld: nmse %.3g", tag,
           dt_name(dt), (long long)rows, (long long)cols, (long long)n, e);
    CHECKF(bits_equal(y1.p, y2.p, cnt), "%s cpu %s [%lld x %lld] n=%lld: 1 and 2 threads differ",
           tag, dt_name(dt), (long long)rows, (long long)cols, (long long)n);
    CHECKF(bits_equal(y1.p, y.p, cnt), "%s cpu %s [%lld x %lld] n=%lld: differs from its %s "
           "kernel over the whole range", tag, dt_name(dt), (long long)rows, (long long)cols,
           (long long)n, sel.isa);

    gbuf_free(&y1);
    gbuf_free(&y2);
    gbuf_free(&y);
    gbuf_free(&part);
    gbuf_free(&ref);
    free(ex);
    free(ab);
    free(x);
    free(wf);
    free((void *)w.data);
}

typedef struct shape {
    int64_t rows, cols;
} shape;

static void test_matmul(void) {
    static const shape rows_shapes[] = {
        {1, 1},     {3, 7},     {7, 9},       {9, 15},
        {15, 17},   {17, 63},   {63, 65},     {65, 100},
        {100, 129}, {129, 3},   {1, 129},     {5, 256},
        {3, 257},   {33, 513},  {64, 2048},   {576, 2048},
        {1536, 2048}, {2048, 1536},
    };
    static const shape t_shapes[] = {
        {1, 1},   {7, 3},     {9, 7},     {15, 9},
        {17, 15}, {63, 17},   {65, 63},   {100, 65},
        {129, 100}, {3, 129}, {129, 1},   {192, 512},
        {256, 512}, {512, 192},
    };
    static const int64_t ns[] = {1, 2, 3, 5};
    static const zdtype dts[] = {ZDT_F32, ZDT_F16, ZDT_BF16};
    for (size_t d = 0; d < 3; d++) {
        for (size_t s = 0; s < sizeof rows_shapes / sizeof rows_shapes[0]; s++)
            for (size_t i = 0; i < 4; i++)
                matmul_case(dts[d], rows_shapes[s].rows, rows_shapes[s].cols, ns[i], false);
        for (size_t s = 0; s < sizeof t_shapes / sizeof t_shapes[0]; s++)
            for (size_t i = 0; i < 4; i++)
                matmul_case(dts[d], t_shapes[s].rows, t_shapes[s].cols, ns[i], true);
    }
}

/*
 * Many jobs per backend call — more than the backend's 512-job batch, as the
 * per-head products of a prefill chunk issue — on row views at unaligned offsets
 * (zweight_rows, as attention slices kv_b): each output equals the kernel's own.
 */
static void test_many_jobs(void) {
    const int n_jobs = 1100;
    const int64_t hs = 11, cols = 13; /* odd: views start at 2-byte aligned addresses */
    for (int tr = 0; tr < 2; tr++) {
        float *wf;
        zweight w = make_weight(ZDT_BF16, hs * 8, cols, &wf);
        zmm_job *jobs = calloc((size_t)n_jobs, sizeof *jobs);
        zmm_job *jobs2 = calloc((size_t)n_jobs, sizeof *jobs2);
        float *xs = rand_vec((int64_t)n_jobs * 32, 1.0f);
        gbuf y1 = gbuf_new((int64_t)n_jobs * 32), y2 = gbuf_new((int64_t)n_jobs * 32),
             yk = gbuf_new((int64_t)n_jobs * 32);
        zk_table sel = zk_select();
        for (int j = 0; j < n_jobs; j++) {
            int64_t r0 = j % 8 * (hs - 3) + j % 3, nr = 3 + j % 5, n = 1 + j % 2;
            zweight v = zweight_rows(&w, r0, nr);
            int64_t out = tr ? v.cols : v.rows;
            jobs[j] = (zmm_job){.w = v, .x = xs + j * 32, .y = y1.p + j * 32, .n = n};
            jobs2[j] = jobs[j];
            jobs2[j].y = y2.p + j * 32;
            if (tr) zk_cols_for(&sel, &v)(&v, xs + j * 32, n, yk.p + j * 32, 0, out);
            else zk_rows_for(&sel, &v)(&v, xs + j * 32, n, yk.p + j * 32, 0, out);
        }
        if (tr) {
            zbackend_cpu.matmul_t(cpu1, jobs, n_jobs);
            zbackend_cpu.matmul_t(cpu2, jobs2, n_jobs);
        } else {
            zbackend_cpu.matmul(cpu1, jobs, n_jobs);
            zbackend_cpu.matmul(cpu2, jobs2, n_jobs);
        }
        CHECKF(gbuf_guards_ok(&y1) && gbuf_guards_ok(&y2), "many jobs: guard overwritten");
        CHECKF(bits_equal(y1.p, yk.p, y1.n), "many jobs (%s): 1-thread backend differs from the "
               "kernel", tr ? "matmul_t" : "matmul");
        CHECKF(bits_equal(y2.p, yk.p, y2.n), "many jobs (%s): 2-thread backend differs from the "
               "kernel", tr ? "matmul_t" : "matmul");
        /* and the reference backend on the same jobs within the bound */
        gbuf yr = gbuf_new((int64_t)n_jobs * 32);
        for (int j = 0; j < n_jobs; j++) jobs[j].y = yr.p + j * 32;
        if (tr) zbackend_cpu_ref.matmul_t(NULL, jobs, n_jobs);
        else zbackend_cpu_ref.matmul(NULL, jobs, n_jobs);
        double worst = 0;
        for (int j = 0; j < n_jobs; j++) {
            int64_t cnt = jobs[j].n * (tr ? jobs[j].w.cols : jobs[j].w.rows);
            worst = fmax(worst, any_nan(yr.p + j * 32, cnt) ? INFINITY
                                                            : nmse_track(y1.p + j * 32, yr.p + j * 32, cnt));
        }
        CHECKF(worst < NMSE_MAX, "many jobs (%s): cpu vs cpu-ref nmse %.3g",
               tr ? "matmul_t" : "matmul", worst);
        gbuf_free(&yr);
        gbuf_free(&y1);
        gbuf_free(&y2);
        gbuf_free(&yk);
        free(xs);
        free(jobs);
        free(jobs2);
        free(wf);
        free((void *)w.data);
    }
}

/* ------------------------------------------------------------------ attention */

/* n random elements in dt (f32 or bf16), amplitude amp. */
static void *make_rows(zdtype dt, int64_t n, float amp) {
    void *p = malloc((size_t)(n > 0 ? n : 1) * zdtype_table[dt].size);
    if (!p) abort();
    for (int64_t i = 0; i < n; i++) {
        float v = amp * rng_unif(&rng);
        if (dt == ZDT_BF16) ((uint16_t *)p)[i] = zf32_to_bf16(v);
        else ((float *)p)[i] = v;
    }
    return p;
}

static double elem(const void *base, int64_t i, zdtype dt) {
    return dt == ZDT_BF16 ? (double)zbf16_to_f32(((const uint16_t *)base)[i])
                          : (double)((const float *)base)[i];
}

/* Attention of job j in double precision, out[n_q, H, dv]; vmax[n_q, H] = the largest
 * |value| a query sees (the output is a convex combination of those rows). */
static void naive_attention(const zattn_job *j, double *out, double *vmax) {
    double *sc = malloc((size_t)j->T * sizeof(double));
    for (int64_t qi = 0; qi < j->n_q; qi++)
        for (int64_t h = 0; h < j->n_heads; h++) {
            int64_t Tv = j->T - j->n_q + qi + 1;
            const float *q = j->q + (qi * j->n_heads + h) * j->dk;
            const float *qr = j->qr + (qi * j->n_heads + h) * j->dr;
            double mx = -INFINITY;
            for (int64_t t = 0; t < Tv; t++) {
                double s = 0;
                for (int64_t i = 0; i < j->dk; i++)
                    s += (double)q[i] * elem(j->k, t * j->k_stride + h * j->k_head + i, j->kv_dtype);
                for (int64_t i = 0; i < j->dr; i++)
                    s += (double)qr[i] * elem(j->kr, t * j->kr_stride + i, j->kr_dtype);
                sc[t] = s * j->scale;
                mx = sc[t] > mx ? sc[t] : mx;
            }
            double sum = 0;
            for (int64_t t = 0; t < Tv; t++) sum += (sc[t] = exp(sc[t] - mx));
            double *o = out + (qi * j->n_heads + h) * j->dv, vm = 0;
            for (int64_t i = 0; i < j->dv; i++) o[i] = 0;
            for (int64_t t = 0; t < Tv; t++)
                for (int64_t i = 0; i < j->dv; i++) {
                    double v = elem(j->v, t * j->v_stride + h * j->v_head + i, j->kv_dtype);
                    o[i] += sc[t] / sum * v;
                    vm = fmax(vm, fabs(v));
                }
            vmax[qi * j->n_heads + h] = vm;
        }
    free(sc);
}

typedef struct attn_case {
    bool expanded;
    int64_t H, n_q, T, dk, dr, dv;
    zdtype kv, kr;
} attn_case;

static void attention_case(const attn_case *c) {
    const int64_t H = c->H, T = c->T, nq = c->n_q;
    zattn_job j = {.n_heads = H, .n_q = nq, .T = T, .dk = c->dk, .dr = c->dr, .dv = c->dv,
                   .kv_dtype = c->kv, .kr_dtype = c->kr};
    float *q = rand_vec(nq * H * c->dk, 3.0f), *qr = rand_vec(nq * H * (c->dr ? c->dr : 1), 3.0f);
    void *kv, *kr = make_rows(c->kr, T * c->dr, 1.0f);
    size_t esz = zdtype_table[c->kv].size;
    if (c->expanded) { /* kvb [T, H, dk + dv]: per head k_nope then v */
        int64_t hs = c->dk + c->dv;
        kv = make_rows(c->kv, T * H * hs, 1.0f);
        j.k = kv, j.k_stride = H * hs, j.k_head = hs;
        j.v = (const uint8_t *)kv + (size_t)c->dk * esz, j.v_stride = H * hs, j.v_head = hs;
    } else { /* latent rows [T, dk], keys and values at once */
        kv = make_rows(c->kv, T * c->dk, 1.0f);
        j.k = kv, j.k_stride = c->dk, j.k_head = 0;
        j.v = kv, j.v_stride = c->dk, j.v_head = 0;
    }
    j.q = q, j.qr = qr, j.kr = kr, j.kr_stride = c->dr;
    j.scale = 1.0f / sqrtf((float)(c->dk + c->dr));

    const int64_t cnt = nq * H * c->dv;
    gbuf o_ref = gbuf_new(cnt), o1 = gbuf_new(cnt), o2 = gbuf_new(cnt);
    gbuf scr = gbuf_new(2 * T);
    j.scratch = scr.p;
    j.out = o_ref.p;
    zbackend_cpu_ref.attention(NULL, &j);
    j.out = o1.p;
    zbackend_cpu.attention(cpu1, &j);
    j.out = o2.p;
    zbackend_cpu.attention(cpu2, &j);

    char what[160];
    snprintf(what, sizeof what, "attention %s kv %s kr %s H=%lld n_q=%lld T=%lld dk=%lld dr=%lld "
             "dv=%lld", c->expanded ? "expanded" : "absorbed", dt_name(c->kv), dt_name(c->kr),
             (long long)H, (long long)nq, (long long)T, (long long)c->dk, (long long)c->dr,
             (long long)c->dv);
    CHECKF(gbuf_guards_ok(&o_ref) && gbuf_guards_ok(&o1) && gbuf_guards_ok(&o2) &&
           gbuf_guards_ok(&scr), "%s: guard overwritten", what);
    CHECKF(!any_nan(o_ref.p, cnt), "%s: NaN (or unwritten output) in cpu-ref", what);
    CHECKF(bits_equal(o_ref.p, o1.p, cnt), "%s: cpu (1 thread) != cpu-ref", what);
    CHECKF(bits_equal(o_ref.p, o2.p, cnt), "%s: cpu (2 threads) != cpu-ref", what);

    double *nv = malloc((size_t)cnt * sizeof(double)), *vmax = malloc((size_t)(nq * H) * sizeof(double));
    naive_attention(&j, nv, vmax);
    double worst = 0;
    for (int64_t r = 0; r < nq * H; r++) {
        double err = 0;
        for (int64_t i = 0; i < c->dv; i++)
            err = fmax(err, fabs((double)o_ref.p[r * c->dv + i] - nv[r * c->dv + i]));
        worst = fmax(worst, vmax[r] > 0 ? err / vmax[r] : err);
    }
    CHECKF(worst <= 1e-5, "%s: max error %.3g of max|v| per head vs double (limit 1e-5)", what,
           worst);
    free(nv);
    free(vmax);
    gbuf_free(&o_ref);
    gbuf_free(&o1);
    gbuf_free(&o2);
    gbuf_free(&scr);
    free(q);
    free(qr);
    free(kv);
    free(kr);
}

static void test_attention(void) {
    static const attn_case fixed[] = {
        /* GLM-4.7-Flash decode, absorbed: 20 heads over the 512-wide latent + 64 rope */
        {false, 20, 1, 37, 512, 64, 512, ZDT_F32, ZDT_F32},
        {false, 20, 1, 37, 512, 64, 512, ZDT_BF16, ZDT_BF16},
        /* a prefill chunk, expanded: nope 192, v 256 */
        {true, 4, 9, 12, 192, 64, 256, ZDT_F32, ZDT_F32},
        {true, 4, 9, 12, 192, 64, 256, ZDT_F32, ZDT_BF16},
        /* one position, n_q = T (a fresh prompt), no rope part */
        {false, 3, 1, 1, 8, 0, 8, ZDT_F32, ZDT_F32},
        {true, 2, 5, 5, 7, 0, 5, ZDT_F32, ZDT_F32},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) attention_case(&fixed[i]);
    static const int64_t dims[] = {1, 3, 8, 17, 32, 64};
    for (int i = 0; i < 40; i++) {
        attn_case c = {.expanded = rng_u64(&rng) % 2, .H = rng_int(&rng, 1, 6), .T = rng_int(&rng, 1, 40)};
        c.n_q = rng_u64(&rng) % 3 == 0 ? 1 : rng_int(&rng, 1, c.T);
        c.dk = dims[rng_u64(&rng) % 6];
        c.dr = rng_u64(&rng) % 4 ? dims[rng_u64(&rng) % 6] : 0;
        c.dv = c.expanded ? dims[rng_u64(&rng) % 6] : c.dk;
        c.kv = rng_u64(&rng) % 2 ? ZDT_BF16 : ZDT_F32;
        c.kr = rng_u64(&rng) % 2 ? ZDT_BF16 : ZDT_F32;
        attention_case(&c);
    }
}

/* ------------------------------------------------------------------ scalar ops */

static void test_rmsnorm(void) {
    static const int64_t ds[] = {1, 7, 64, 512, 576, 2048};
    for (size_t k = 0; k < sizeof ds / sizeof ds[0]; k++) {
        int64_t d = ds[k];
        float eps = k % 2 ? 1e-6f : 1e-5f;
        float *x = rand_vec(d, 2.0f), *w = rand_vec(d, 1.0f);
        gbuf y = gbuf_new(d);
        zop_rmsnorm(x, w, d, eps, y.p);
        double ss = 0;
        for (int64_t i = 0; i < d; i++) ss += (double)x[i] * x[i];
        double inv = 1.0 / sqrt(ss / (double)d + (double)eps);
        /* sum of squares: gamma_d relative; mean, eps, sqrt, divide, two products: ~6u */
        double tol = 0.5 * gamma_n(d) + 8 * U_F32, worst = 0;
        bool ok = true;
        for (int64_t i = 0; i < d; i++) {
            double r = (double)w[i] * (double)x[i] * inv;
            double err = fabs((double)y.p[i] - r);
            ok &= !isnan(y.p[i]) && err <= tol * fabs(r) + 1e-37;
            worst = fmax(worst, fabs(r) > 0 ? err / fabs(r) : err);
        }
        CHECKF(ok && gbuf_guards_ok(&y), "rmsnorm d=%lld: relative error %.3g (limit %.3g)",
               (long long)d, worst, tol);
        /* in place gives the same bits */
        float *xa = malloc((size_t)d * sizeof(float));
        memcpy(xa, x, (size_t)d * sizeof(float));
        zop_rmsnorm(xa, w, d, eps, xa);
        CHECKF(bits_equal(xa, y.p, d), "rmsnorm d=%lld: in place differs", (long long)d);
        /* zero input: y = 0, no NaN */
        for (int64_t i = 0; i < d; i++) xa[i] = 0.0f;
        zop_rmsnorm(xa, w, d, eps, xa);
        bool zero = true;
        for (int64_t i = 0; i < d; i++) zero &= xa[i] == 0.0f;
        CHECKF(zero, "rmsnorm d=%lld of zeros is not zero", (long long)d);
        free(xa);
        free(x);
        free(w);
        gbuf_free(&y);
    }
}

static void check_softmax(const float *in, int64_t n, const char *what) {
    gbuf x = gbuf_new(n);
    memcpy(x.p, in, (size_t)n * sizeof(float));
    zop_softmax(x.p, n);
    double mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) mx = fmax(mx, (double)in[i]);
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += exp((double)in[i] - mx);
    bool ok = gbuf_guards_ok(&x);
    double fsum = 0, worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double r = exp((double)in[i] - mx) / sum;
        /* x - max rounds (u |x - max| absolute in the exponent), expf (~2 ulp), the sum
           (gamma_n), the reciprocal and the product */
        double tol = (double)(n + 8) * U_F32 + U_F32 * fabs((double)in[i] - mx);
        double err = fabs((double)x.p[i] - r);
        if (r == 0) ok &= x.p[i] == 0.0f; /* a -inf input */
        else ok &= !isnan(x.p[i]) && err <= tol * r + 1e-44;
        worst = fmax(worst, r > 0 ? err / r : err);
        fsum += x.p[i];
    }
    CHECKF(ok, "softmax %s n=%lld: relative error %.3g", what, (long long)n, worst);
    CHECKF(fabs(fsum - 1.0) <= (double)(n + 8) * U_F32 * 2, "softmax %s: sums to %.9g", what, fsum);
    gbuf_free(&x);
}

static void test_softmax(void) {
    static const int64_t ns[] = {1, 2, 7, 64, 256, 4097};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        float *x = rand_vec(ns[k], 8.0f);
        check_softmax(x, ns[k], "random");
        for (int64_t i = 0; i < ns[k]; i++) x[i] += 1000.0f; /* no overflow: max subtracted */
        check_softmax(x, ns[k], "shifted by 1000");
        free(x);
    }
    float masked[6] = {1.0f, -INFINITY, 0.5f, -INFINITY, -2.0f, -INFINITY};
    check_softmax(masked, 6, "with -inf");
    float peaked[4] = {100.0f, -100.0f, 0.0f, 100.0f};
    check_softmax(peaked, 4, "peaked");
}

static void test_silu_mul(void) {
    const int64_t n = 1000;
    float *g = rand_vec(n, 12.0f), *u = rand_vec(n, 3.0f);
    g[0] = 0.0f, g[1] = -1000.0f, g[2] = 1000.0f, g[3] = -88.0f, g[4] = 89.0f, g[5] = -1e-30f;
    gbuf h = gbuf_new(n);
    zop_silu_mul(g, u, n, h.p);
    bool ok = gbuf_guards_ok(&h);
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double s = 1.0 / (1.0 + exp(-(double)g[i]));
        double r = (double)g[i] * s * (double)u[i];
        /* expf (~2 ulp of exp(-g), relative to s at most that much), 1 + e, divide, two products */
        double err = fabs((double)h.p[i] - r);
        ok &= !isnan(h.p[i]) && err <= 8 * U_F32 * fabs(r) + 1e-37;
        worst = fmax(worst, fabs(r) > 0 ? err / fabs(r) : err);
    }
    CHECKF(ok, "silu_mul: relative error %.3g vs double", worst);
    /* in place on g (as moe.c does) gives the same bits */
    float *ga = malloc((size_t)n * sizeof(float));
    memcpy(ga, g, (size_t)n * sizeof(float));
    zop_silu_mul(ga, u, n, ga);
    CHECK(bits_equal(ga, h.p, n));
    free(ga);
    free(g);
    free(u);
    gbuf_free(&h);
}

static void test_rope(void) {
    /* the table: cos/sin of the float32 product pos * inv_freq, times mscale */
    const int64_t half = 32;
    float inv_freq[32], cs[32], sn[32];
    for (int64_t i = 0; i < half; i++) inv_freq[i] = (float)(1.0 / pow(1e6, (double)(2 * i) / 64.0));
    static const int64_t poss[] = {0, 1, 2, 17, 4095, 131071, 202751};
    static const float mscales[] = {1.0f, 1.3f};
    for (size_t m = 0; m < 2; m++)
        for (size_t k = 0; k < sizeof poss / sizeof poss[0]; k++) {
            int64_t pos = poss[k];
            zop_rope_table(pos, inv_freq, half, mscales[m], cs, sn);
            bool ok = true;
            double worst = 0;
            for (int64_t i = 0; i < half; i++) {
                double ang = (double)pos * (double)inv_freq[i]; /* exact in double */
                /* |fl(pos * f) - pos * f| <= u |ang| moves cos/sin by as much, then the
                   rounding of cos and of the product with mscale */
                double tol = (U_F32 * fabs(ang) + 3 * U_F32) * mscales[m];
                double ec = fabs((double)cs[i] - mscales[m] * cos(ang));
                double es = fabs((double)sn[i] - mscales[m] * sin(ang));
                ok &= ec <= tol && es <= tol;
                worst = fmax(worst, fmax(ec, es) / tol);
            }
            CHECKF(ok, "rope_table pos=%lld mscale=%g: error %.3g of its bound", (long long)pos,
                   (double)mscales[m], worst);
        }
    /* pos 0 is the identity rotation */
    zop_rope_table(0, inv_freq, half, 1.0f, cs, sn);
    bool ident = true;
    for (int64_t i = 0; i < half; i++) ident &= cs[i] == 1.0f && sn[i] == 0.0f;
    CHECK(ident);

    /* the rotation of interleaved pairs */
    for (int rep = 0; rep < 20; rep++) {
        const int64_t d = 64;
        float x[64], x0[64];
        for (int64_t i = 0; i < d; i++) x0[i] = x[i] = 4.0f * rng_unif(&rng);
        for (int64_t i = 0; i < half; i++) {
            double a = 7.0 * rng_unif(&rng);
            cs[i] = (float)cos(a);
            sn[i] = (float)sin(a);
        }
        zop_rope_interleaved(x, d, cs, sn);
        bool ok = true;
        for (int64_t i = 0; i < half; i++) {
            double a = x0[2 * i], b = x0[2 * i + 1], c = cs[i], s = sn[i];
            double r0 = a * c - b * s, r1 = b * c + a * s;
            double tol = 3 * U_F32 * (fabs(a) + fabs(b)) + 1e-37;
            ok &= fabs((double)x[2 * i] - r0) <= tol && fabs((double)x[2 * i + 1] - r1) <= tol;
        }
        CHECKF(ok, "rope_interleaved rep %d: pairs not rotated as (a c - b s, b c + a s)", rep);
    }
    /* rotating by pos then by -pos gives the input back (to rounding) */
    {
        const int64_t d = 64;
        float x[64], x0[64], c1[32], s1[32], c2[32], s2[32];
        for (int64_t i = 0; i < d; i++) x0[i] = x[i] = rng_unif(&rng);
        zop_rope_table(123, inv_freq, half, 1.0f, c1, s1);
        for (int64_t i = 0; i < half; i++) c2[i] = c1[i], s2[i] = -s1[i];
        zop_rope_interleaved(x, d, c1, s1);
        zop_rope_interleaved(x, d, c2, s2);
        double err = 0;
        for (int64_t i = 0; i < d; i++) err = fmax(err, fabs((double)x[i] - x0[i]));
        CHECKF(err < 1e-6, "rope round trip error %.3g", err);
    }
}

/* ------------------------------------------------------------------ conversions */

/* Round-to-nearest-even of f to bf16, decided in double from the two neighbours. */
static uint16_t bf16_rne_model(float f) {
    uint32_t u = f2u(f), sign = u & 0x80000000u, mag = u & 0x7fffffffu;
    if (mag > 0x7f800000u) return 0; /* NaN: checked separately */
    if (mag == 0x7f800000u) return (uint16_t)((sign | mag) >> 16);
    uint32_t lo = mag >> 16; /* truncated magnitude */
    double vlo = (double)u2f(lo << 16), a = fabs((double)f);
    uint32_t hi = lo + 1;
    double vhi = hi == 0x7f80u ? ldexp(1.0, 128) : (double)u2f(hi << 16);
    uint32_t r;
    if (a - vlo < vhi - a) r = lo;
    else if (a - vlo > vhi - a) r = hi;
    else r = (lo & 1) ? hi : lo;
    return (uint16_t)((sign >> 16) | r);
}

static void test_bf16(void) {
    /* bf16 -> f32 is the top half of the float, for every pattern */
    bool ok = true;
    for (uint32_t h = 0; h < 65536; h++) ok &= f2u(zbf16_to_f32((uint16_t)h)) == h << 16;
    CHECKF(ok, "zbf16_to_f32 is not the top half of the float");

    /* f32 -> bf16 against the model for every high half x interesting low halves */
    static const uint32_t lows[] = {0x0000, 0x0001, 0x7fff, 0x8000, 0x8001, 0xffff, 0x4000};
    long bad = 0;
    uint32_t first_bad = 0;
    for (uint32_t hi = 0; hi < 65536; hi++)
        for (size_t k = 0; k < sizeof lows / sizeof lows[0] + 1; k++) {
            uint32_t low = k < sizeof lows / sizeof lows[0] ? lows[k] : (uint32_t)(rng_u64(&rng) & 0xffff);
            uint32_t u = hi << 16 | low;
            float f = u2f(u);
            uint16_t got = zf32_to_bf16(f);
            bool good;
            if (isnan(f)) /* stays a NaN of the same sign */
                good = (got & 0x7f80u) == 0x7f80u && (got & 0x7fu) != 0 && (got >> 15) == (u >> 31);
            else good = got == bf16_rne_model(f);
            if (!good && bad++ == 0) first_bad = u;
        }
    CHECKF(bad == 0, "zf32_to_bf16: %ld wrong, first 0x%08x -> 0x%04x", bad, first_bad,
           zf32_to_bf16(u2f(first_bad)));

    /* named cases */
    CHECK(zf32_to_bf16(1.0f) == 0x3f80);
    CHECK(zf32_to_bf16(u2f(0x3f808000u)) == 0x3f80); /* tie, even stays */
    CHECK(zf32_to_bf16(u2f(0x3f818000u)) == 0x3f82); /* tie, odd rounds up */
    CHECK(zf32_to_bf16(u2f(0x3f807fffu)) == 0x3f80); /* just below the tie */
    CHECK(zf32_to_bf16(u2f(0x3f808001u)) == 0x3f81); /* just above */
    CHECK(zf32_to_bf16(u2f(0xbf818000u)) == 0xbf82); /* negative tie */
    CHECK(zf32_to_bf16(u2f(0x7f7fffffu)) == 0x7f80); /* FLT_MAX overflows to inf */
    CHECK(zf32_to_bf16(u2f(0x7f7f7fffu)) == 0x7f7f); /* largest that stays finite */
    CHECK(zf32_to_bf16(INFINITY) == 0x7f80);
    CHECK(zf32_to_bf16(-INFINITY) == 0xff80);
    CHECK(zf32_to_bf16(0.0f) == 0x0000);
    CHECK(zf32_to_bf16(-0.0f) == 0x8000);
    CHECK(zf32_to_bf16(u2f(0x00008000u)) == 0x0000); /* subnormal tie to even zero */
    CHECK(zf32_to_bf16(u2f(0x00018000u)) == 0x0002);
    CHECK(zf32_to_bf16(u2f(0x007fffffu)) == 0x0080); /* largest subnormal rounds to normal */
    uint16_t sn = zf32_to_bf16(u2f(0x7f800001u)); /* signalling NaN: truncation would be inf */
    CHECKF(isnan(zbf16_to_f32(sn)), "signalling NaN 0x7f800001 -> 0x%04x is not a NaN", sn);
    uint16_t qn = zf32_to_bf16(u2f(0xffc00000u));
    CHECKF(isnan(zbf16_to_f32(qn)) && (qn & 0x8000), "negative NaN -> 0x%04x", qn);
    uint16_t big = zf32_to_bf16(u2f(0x7fffffffu));
    CHECKF(isnan(zbf16_to_f32(big)), "NaN 0x7fffffff -> 0x%04x is not a NaN", big);
    /* round trip of every bf16 value */
    ok = true;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = zbf16_to_f32((uint16_t)h);
        ok &= isnan(f) ? isnan(zbf16_to_f32(zf32_to_bf16(f))) : zf32_to_bf16(f) == h;
    }
    CHECKF(ok, "bf16 -> f32 -> bf16 is not the identity");
}

static void test_f16(void) {
    long bad = 0;
    uint32_t first = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        uint32_t sign = h >> 15, ex = (h >> 10) & 31, man = h & 1023;
        float got = zf16_to_f32((uint16_t)h);
        bool good;
        if (ex == 31 && man) good = isnan(got) && (f2u(got) >> 31) == sign;
        else {
            double v = ex == 31 ? INFINITY
                       : ex == 0 ? ldexp((double)man, -24)
                                 : ldexp(1.0 + man / 1024.0, (int)ex - 15);
            if (sign) v = -v;
            good = (double)got == v && (f2u(got) >> 31) == sign; /* -0 keeps its sign */
        }
        if (!good && bad++ == 0) first = h;
    }
    CHECKF(bad == 0, "zf16_to_f32: %ld wrong, first 0x%04x -> %.9g", bad, first,
           (double)zf16_to_f32((uint16_t)first));
    CHECK(zf16_to_f32(0x0001) == 5.9604644775390625e-08f); /* smallest subnormal 2^-24 */
    CHECK(zf16_to_f32(0x03ff) == 6.09755516052246094e-05f); /* largest subnormal */
    CHECK(zf16_to_f32(0x0400) == 6.103515625e-05f);          /* smallest normal 2^-14 */
    CHECK(zf16_to_f32(0x7bff) == 65504.0f);
    CHECK(zf16_to_f32(0x3c00) == 1.0f);
    CHECK(zf16_to_f32(0xc000) == -2.0f);
    CHECK(isinf(zf16_to_f32(0x7c00)) && zf16_to_f32(0x7c00) > 0);
    CHECK(isinf(zf16_to_f32(0xfc00)) && zf16_to_f32(0xfc00) < 0);
    CHECK(isnan(zf16_to_f32(0x7e00)) && isnan(zf16_to_f32(0x7c01)));
    CHECK(f2u(zf16_to_f32(0x8000)) == 0x80000000u);
}

int main(void) {
    setup_kernels();
    if (zbackend_cpu.init(1, &cpu1) != ZMLX_OK || zbackend_cpu.init(2, &cpu2) != ZMLX_OK) {
        fprintf(stderr, "cpu backend failed to start\n");
        return 1;
    }
    CHECK(zbackend_cpu.threads(cpu1) == 1 && zbackend_cpu.threads(cpu2) == 2);
    printf("kernels: selected %s\n", zk_select().isa);
    test_bf16();
    test_f16();
    test_rmsnorm();
    test_softmax();
    test_silu_mul();
    test_rope();
    test_matmul();
    test_many_jobs();
    test_attention();
    printf("largest matmul nmse seen: %.3g (limit %.0e)\n", nmse_seen, NMSE_MAX);
    zbackend_cpu.free(cpu1);
    zbackend_cpu.free(cpu2);
    return tc_done();
}
