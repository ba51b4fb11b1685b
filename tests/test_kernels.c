/*
 * test_kernels.c — the CPU kernels of one ISA level (backend/cpu/kernels.h), in both
 * precision modes, against the reference ops; and the `cpu` backend running them.
 *
 * The level is ZMLX_CPU_ISA (ctest runs this program once per level of the
 * architecture: test_kernels_scalar, _avx2, _avx512, _avx512vnni on x86-64, _neon,
 * _neondot on aarch64 under qemu; exit 77 = skipped when the CPU lacks the level),
 * or, unset, the best level of this CPU.  `test_kernels --which` prints the level and exits.
 *
 * Every layout (F32, F16, BF16; affine 2, 3, 4, 5, 6, 8 bits x group 32, 64, 128 with
 * bf16 scales through the quantizer, and F16/F32 scales on random codes; mxfp4), on
 * odd shapes (rows 1, 3, 7, 33, 130, random; columns of 1 to 3 groups and wide rows),
 * n = 1 (matrix-vector) and 2, 3, 5, 40 tokens (matrix-matrix, token tiles), column
 * chunks of more than one stack tile, zero activations.  Outputs sit between guard
 * floats, start as NaN canaries, and partial ranges may write only their rows/columns
 * (rows: with the full-range values).
 *
 * Bounds (u = 2^-24).  T = the exact product (double, from the stored fields), A = the
 * same sum of absolute values, ng = groups per row.
 *   exact mode   |y - T| <= gamma_{K + 2 ng + 8} A (Higham 3.1, any summation order; Y = X W:
 *                gamma_{K + 8} A, the scalar level's quantized kernel bit for bit) and,
 *                over at least 32 outputs, nmse(y, reference) < 1e-9: the errors are
 *                random-sign roundings of terms up to A, so nmse ~ K u^2 (A/|T|)^2,
 *                ~2e-10 at K = 2048 with biases that cancel (A/|T| ~ 10); 1e-9 still
 *                fails a bias off by 1e-4 relative.
 *   fast mode    the int8 activations (xq.h) move each x_i by at most d_g / 2 (+ a few
 *                u), so |y - T| <= Q + gamma_{K + 2 ng + 16} (A + Q) with
 *                Q = sum_g |a_g| d_g / 2 sum_i |q_i - m| (affine; mxfp4 |E2M1| and no m)
 *                computed per output; statistically nmse(y, reference) < 2e-4 over at least
 *                32 outputs (random activations, uniform codes; the largest seen is
 *                printed).  And
 *                against the portable model of the same arithmetic
 *                (zk_qrows_q8_generic, identical int8 values): nmse < 1e-9, which any
 *                wrong code, order, group or scale fails by orders of magnitude.
 *                bf16 dot (AVX-512 BF16): |y - T| <= (2^-8 + gamma_{K+8}) A.
 * Y = X W runs the same kernels in both modes.
 * The cpu backend (1 and 2 threads, in each mode) equals its kernel over the whole
 * range bit for bit, so does a call of many jobs over row views; the fused kernels
 * (glu, combine, route) equal the unfused chain of the same kernels bit for bit.
 */
#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "ops/ops.h"
#include "tkern.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NMSE_EXACT 1e-9
#define NMSE_FAST 2e-4
#define NMSE_MODEL 1e-9

static zk_isa isa;
static void *cpu1[2], *cpu2[2]; /* backend contexts, 1 and 2 threads, [exact, fast] */
static double seen_exact, seen_fast, seen_model;

static void note(double *seen, double e) {
    if (isfinite(e) && e > *seen) *seen = e;
}

/* ------------------------------------------------------------------ weights */

/* Dense [rows, cols] of dt with values in [-1, 1) (exact in dt). */
static qw dense_new(zdtype dt, int64_t rows, int64_t cols) {
    qw o = {.w = {.dtype = dt, .rows = rows, .cols = cols}};
    const size_t es = zdtype_table[dt].size, cnt = (size_t)(rows * cols);
    o.data = xmalloc(cnt * es);
    for (size_t i = 0; i < cnt; i++) {
        float v = rng_unif(&tk_rng);
        if (dt == ZDT_F32) ((float *)o.data)[i] = v;
        else if (dt == ZDT_BF16) ((uint16_t *)o.data)[i] = zf32_to_bf16(v);
        else { /* f16 with 10 mantissa bits: a multiple of 2^-11 is exact */
            float f = (float)(int)(v * 2048.0f) / 2048.0f;
            uint16_t h = 0;
            if (f != 0.0f) {
                int e;
                float m = frexpf(fabsf(f), &e); /* f = m 2^e, m in [0.5, 1) */
                h = (uint16_t)((f < 0 ? 0x8000 : 0) | (uint16_t)(e + 14) << 10 |
                               ((uint16_t)(m * 2048.0f) & 0x3ff));
            }
            ((uint16_t *)o.data)[i] = h;
        }
    }
    o.w.data = o.data;
    return o;
}

/* T and A per output (dense or quantized). */
static void exact_any(const zweight *w, const float *x, int64_t n, bool tr, double *ex, double *ab) {
    if (w->q != ZQ_NONE) {
        exact_q(w, x, n, tr, ex, ab);
        return;
    }
    const int64_t out = tr ? w->cols : w->rows, K = tr ? w->rows : w->cols;
    for (int64_t i = 0; i < n * out; i++) ex[i] = ab[i] = 0.0;
    for (int64_t r = 0; r < w->rows; r++)
        for (int64_t c = 0; c < w->cols; c++) {
            const double v = zweight_get(w, r, c);
            for (int64_t t = 0; t < n; t++) {
                const int64_t o = tr ? c : r, k = tr ? r : c;
                ex[t * out + o] += v * x[t * K + k];
                ab[t * out + o] += fabs(v * x[t * K + k]);
            }
        }
}

/* Q of the header per output (fast mode, quantized): the int8 activations' error. */
static void fast_err(const zweight *w, const float *x, int64_t n, double *q) {
    const int64_t G = w->group, ng = w->cols / G, m = w->q == ZQ_AFFINE ? 1 << (w->bits - 1) : 0;
    for (int64_t t = 0; t < n; t++)
        for (int64_t r = 0; r < w->rows; r++) {
            double e = 0;
            for (int64_t g = 0; g < ng; g++) {
                double amax = 0, sq = 0;
                for (int64_t i = 0; i < G; i++) {
                    amax = fmax(amax, fabs(x[t * w->cols + g * G + i]));
                    double s, v, b;
                    elem(w, r, g * G + i, &s, &v, &b);
                    sq += fabs(w->q == ZQ_AFFINE ? v - (double)m : v);
                }
                double s, v, b;
                elem(w, r, g * G, &s, &v, &b);
                e += fabs(s) * sq * amax / 127.0 * 0.5 * (1 + 1e-5);
            }
            q[t * w->rows + r] = e;
        }
}

static const char *wname(const zweight *w, char *buf, size_t n) {
    if (w->q == ZQ_NONE) snprintf(buf, n, "%s", zdtype_table[w->dtype].name);
    else fmt_name(w, buf, n);
    return buf;
}

static float *rand_x(int64_t cnt, bool zero) {
    float *x = xmalloc((size_t)cnt * sizeof(float));
    for (int64_t i = 0; i < cnt; i++) x[i] = zero ? 0.0f : rng_unif(&tk_rng);
    return x;
}

/* ------------------------------------------------------------------ products */

/* Y = X W^T of w through the level's table in mode `fast`, and through the backend. */
static void rows_case(const zweight *w, int64_t n, bool fast, bool zero_x) {
    char nm[64];
    wname(w, nm, sizeof nm);
    const char *mode = fast ? "fast" : "exact";
    const int64_t rows = w->rows, K = w->cols, cnt = n * rows;
    const int64_t ng = w->q == ZQ_NONE ? 0 : K / w->group;
    const zk_table tb = zk_table_get(isa, fast);
    const zk_rows_fn fn = zk_rows_for(&tb, w);
    float *x = rand_x(n * K, zero_x);
    double *ex = xmalloc((size_t)cnt * sizeof(double)), *ab = xmalloc((size_t)cnt * sizeof(double));
    double *qe = xmalloc((size_t)cnt * sizeof(double));
    exact_any(w, x, n, false, ex, ab);
    const bool q8 = fast && w->q != ZQ_NONE && isa != ZK_SCALAR;
    const bool bf16dot = fast && w->dtype == ZDT_BF16 && w->q == ZQ_NONE && zk_isa_bf16_dot(isa);
    for (int64_t i = 0; i < cnt; i++) qe[i] = 0.0;
    if (q8) fast_err(w, x, n, qe);

    gbuf ref = gbuf_new(cnt), y = gbuf_new(cnt), part = gbuf_new(cnt);
    zop_matmul_ref(w, x, n, ref.p, 0, rows);
    fn(w, x, n, y.p, 0, rows);
    const double e = nmse(y.p, ref.p, cnt);
    const int64_t steps = K + 2 * ng + (q8 ? 16 : 8);
    int64_t bad = -1;
    for (int64_t i = 0; i < cnt && bad < 0; i++) {
        double lim = qe[i] + gamma_n(steps) * (ab[i] + qe[i]) + (bf16dot ? ab[i] / 256.0 : 0.0);
        if (isnan(y.p[i]) || fabs((double)y.p[i] - ex[i]) > lim + 1e-37) bad = i;
    }
    /* the statistic needs a sample (a single small output may cancel by chance); the
     * rigorous bound holds for every output */
    const double lim = cnt < 32 ? INFINITY : q8 ? NMSE_FAST : bf16dot ? 1e-5 : NMSE_EXACT;
    if (cnt >= 32) note(q8 || bf16dot ? &seen_fast : &seen_exact, e);
    CHECKF(gbuf_guards_ok(&y) && e < lim && bad < 0,
           "%s %s %s rows [%lld x %lld] n=%lld: guards %d, nmse %.3g (max %.0e), bound violated "
           "at %lld (%g vs exact %g)", tb.isa, mode, nm, (long long)rows, (long long)K,
           (long long)n, gbuf_guards_ok(&y), e, lim, (long long)bad,
           bad < 0 ? 0.0 : (double)y.p[bad], bad < 0 ? 0.0 : ex[bad]);
    if (zero_x) CHECKF(e == 0.0, "%s %s %s: zero activations give %g", tb.isa, mode, nm, y.p[0]);
    if (q8) { /* the same arithmetic in portable C */
        gbuf mdl = gbuf_new(cnt);
        zk_qrows_q8_generic(w, x, n, mdl.p, 0, rows);
        const double em = nmse(y.p, mdl.p, cnt);
        note(&seen_model, em);
        CHECKF(em < NMSE_MODEL, "%s fast %s [%lld x %lld] n=%lld: nmse %.3g against the portable "
               "int8 model", tb.isa, nm, (long long)rows, (long long)K, (long long)n, em);
        gbuf_free(&mdl);
    }
    /* a partial range writes only its rows, with the full-range values */
    const int64_t lo = rng_int(&tk_rng, 0, rows), hi = rng_int(&tk_rng, lo, rows);
    fn(w, x, n, part.p, lo, hi);
    bool only = true, same = true;
    for (int64_t t = 0; t < n; t++)
        for (int64_t r = 0; r < rows; r++) {
            const uint32_t v = f2u(part.p[t * rows + r]);
            if (r < lo || r >= hi) only &= v == CANARY_FILL;
            else same &= v == f2u(y.p[t * rows + r]);
        }
    CHECKF(gbuf_guards_ok(&part) && only && same, "%s %s %s rows [%lld x %lld] n=%lld range "
           "[%lld, %lld): outside %d, same %d", tb.isa, mode, nm, (long long)rows, (long long)K,
           (long long)n, (long long)lo, (long long)hi, only, same);
    /* the backend: 1 thread == 2 threads == the kernel over the whole range */
    gbuf y1 = gbuf_new(cnt), y2 = gbuf_new(cnt);
    zmm_job j1 = {.w = *w, .x = x, .y = y1.p, .n = n}, j2 = {.w = *w, .x = x, .y = y2.p, .n = n};
    zbackend_cpu.matmul(cpu1[fast], &j1, 1);
    zbackend_cpu.matmul(cpu2[fast], &j2, 1);
    CHECKF(gbuf_guards_ok(&y1) && gbuf_guards_ok(&y2) && bits_equal(y1.p, y.p, cnt) &&
           bits_equal(y2.p, y.p, cnt), "cpu backend %s %s %s [%lld x %lld] n=%lld: 1 thread %s, "
           "2 threads %s its kernel", tb.isa, mode, nm, (long long)rows, (long long)K,
           (long long)n, bits_equal(y1.p, y.p, cnt) ? "==" : "!=",
           bits_equal(y2.p, y.p, cnt) ? "==" : "!=");
    gbuf_free(&y1);
    gbuf_free(&y2);
    gbuf_free(&ref);
    gbuf_free(&y);
    gbuf_free(&part);
    free(ex);
    free(ab);
    free(qe);
    free(x);
}

/* Y = X W within the bound; the scalar level's quantized kernel is the reference bit for bit. */
static void cols_case(const zweight *w, int64_t n, bool fast) {
    char nm[64];
    wname(w, nm, sizeof nm);
    const char *mode = fast ? "fast" : "exact";
    const int64_t out = w->cols, K = w->rows, cnt = n * out;
    const zk_table tb = zk_table_get(isa, fast);
    const zk_cols_fn fn = zk_cols_for(&tb, w);
    float *x = rand_x(n * K, false);
    double *ex = xmalloc((size_t)cnt * sizeof(double)), *ab = xmalloc((size_t)cnt * sizeof(double));
    exact_any(w, x, n, true, ex, ab);
    gbuf ref = gbuf_new(cnt), y = gbuf_new(cnt), part = gbuf_new(cnt);
    zop_matmul_t_ref(w, x, n, ref.p, 0, out);
    fn(w, x, n, y.p, 0, out);
    const bool quant = w->q != ZQ_NONE && isa == ZK_SCALAR; /* bit-identical */
    const int64_t bad = bound_violation(y.p, ex, ab, cnt, K + 8);
    const double e = nmse(y.p, ref.p, cnt);
    CHECKF(gbuf_guards_ok(&y) && bad < 0 && e < NMSE_EXACT && (!quant || bits_equal(y.p, ref.p, cnt)),
           "%s %s %s cols [%lld x %lld] n=%lld: guards %d, nmse %.3g, bound at %lld, %s the "
           "reference", tb.isa, mode, nm, (long long)w->rows, (long long)w->cols, (long long)n,
           gbuf_guards_ok(&y), e, (long long)bad, bits_equal(y.p, ref.p, cnt) ? "==" : "!=");
    const int64_t lo = rng_int(&tk_rng, 0, out), hi = rng_int(&tk_rng, lo, out);
    fn(w, x, n, part.p, lo, hi);
    bool only = true, ok = true;
    for (int64_t t = 0; t < n; t++)
        for (int64_t c = 0; c < out; c++) {
            const int64_t i = t * out + c;
            if (c < lo || c >= hi) only &= f2u(part.p[i]) == CANARY_FILL;
            else ok &= quant ? f2u(part.p[i]) == f2u(ref.p[i])
                             : fabs((double)part.p[i] - ex[i]) <= gamma_n(K + 8) * ab[i] + 1e-37;
        }
    CHECKF(gbuf_guards_ok(&part) && only && ok, "%s %s %s cols range [%lld, %lld): outside %d, "
           "values %d", tb.isa, mode, nm, (long long)lo, (long long)hi, only, ok);
    gbuf y1 = gbuf_new(cnt), y2 = gbuf_new(cnt);
    zmm_job j1 = {.w = *w, .x = x, .y = y1.p, .n = n}, j2 = {.w = *w, .x = x, .y = y2.p, .n = n};
    zbackend_cpu.matmul_t(cpu1[fast], &j1, 1);
    zbackend_cpu.matmul_t(cpu2[fast], &j2, 1);
    CHECKF(bits_equal(y1.p, y2.p, cnt) && nmse(y1.p, ref.p, cnt) < NMSE_EXACT &&
           (!quant || bits_equal(y1.p, ref.p, cnt)),
           "cpu backend %s %s %s cols [%lld x %lld] n=%lld", tb.isa, mode, nm, (long long)w->rows,
           (long long)w->cols, (long long)n);
    gbuf_free(&y1);
    gbuf_free(&y2);
    gbuf_free(&ref);
    gbuf_free(&y);
    gbuf_free(&part);
    free(ex);
    free(ab);
    free(x);
}

static void both_modes_rows(const zweight *w, int64_t n) {
    rows_case(w, n, false, false);
    rows_case(w, n, true, false);
}

static void test_dense(void) {
    static const zdtype dts[] = {ZDT_F32, ZDT_F16, ZDT_BF16};
    static const int64_t shapes[][2] = {{1, 1},   {3, 7},   {7, 9},    {9, 15},  {17, 63},
                                        {65, 100}, {129, 3}, {5, 256}, {33, 513}, {70, 2048}};
    static const int64_t ns[] = {1, 2, 3, 5};
    for (int d = 0; d < 3; d++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            qw a = dense_new(dts[d], shapes[s][0], shapes[s][1]);
            for (int i = 0; i < 4; i++) both_modes_rows(&a.w, ns[i]);
            cols_case(&a.w, 1 + s % 3, s % 2);
            qw_free(&a);
        }
}

static void test_quantized(void) {
    static const int bits[] = {2, 3, 4, 5, 6, 8}, groups[] = {32, 64, 128};
    static const int64_t rows_list[] = {1, 3, 7, 33, 130}, ns[] = {1, 2, 3, 5};
    for (int f = 0; f <= 18; f++) {
        const bool mx = f == 18;
        const int B = mx ? 4 : bits[f / 3], G = mx ? 32 : groups[f % 3];
        const zqfmt q = mx ? ZQ_MXFP4 : ZQ_AFFINE;
        for (size_t ri = 0; ri < 5; ri++) {
            const int64_t cols = G * (ri % 2 ? 3 : 1) * (ri == 4 ? 2 : 1);
            qw a = qw_quantized(q, B, G, rows_list[ri], cols);
            for (size_t i = 0; i < 4; i++) both_modes_rows(&a.w, ns[i]);
            if (ri < 3) cols_case(&a.w, 1 + (int64_t)ri, ri % 2);
            qw_free(&a);
        }
        /* random odd shape, a wide row (several backend tasks), zero activations */
        qw r = qw_quantized(q, B, G, rng_int(&tk_rng, 1, 90), G * rng_int(&tk_rng, 1, 9));
        both_modes_rows(&r.w, rng_int(&tk_rng, 1, 7));
        cols_case(&r.w, 2, true);
        qw_free(&r);
        qw wide = qw_quantized(q, B, G, 300, 2048);
        both_modes_rows(&wide.w, 1);
        both_modes_rows(&wide.w, 3);
        rows_case(&wide.w, 2, true, true);
        qw_free(&wide);
    }
    /* F16 and F32 scales and biases */
    for (int b = 0; b < 6; b++) {
        qw h = qw_random(bits[b], 64, ZDT_F16, 13, 192), s = qw_random(bits[b], 32, ZDT_F32, 6, 64);
        both_modes_rows(&h.w, 1);
        both_modes_rows(&h.w, 2);
        both_modes_rows(&s.w, 3);
        cols_case(&h.w, 2, false);
        qw_free(&h);
        qw_free(&s);
    }
    /* token tiles (40 tokens) and column chunks wider than one stack tile */
    static const struct {
        zqfmt q;
        int bits, group;
        int64_t rows, cols, n;
    } big[] = {{ZQ_AFFINE, 4, 32, 5, 32 * 64, 40},         {ZQ_AFFINE, 4, 32, 3, 32 * (ZK_QSUMS + 1), 1},
               {ZQ_AFFINE, 4, 32, 3, 32 * (ZK_QSUMS + 1), 2}, {ZQ_AFFINE, 8, 128, 3, 128 * 150, 2},
               {ZQ_MXFP4, 4, 32, 2, 32 * (ZK_QSUMS + 3), 2}};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        qw a = qw_quantized(big[i].q, big[i].bits, big[i].group, big[i].rows, big[i].cols);
        both_modes_rows(&a.w, big[i].n);
        qw_free(&a);
    }
    /* no columns: empty dot products are 0 */
    qw e = qw_quantized(ZQ_AFFINE, 4, 64, 5, 0);
    both_modes_rows(&e.w, 2);
    qw_free(&e);
}

/* ------------------------------------------------------------------ backend */

/* Many jobs over row views of one weight (as attention slices kv_b), per mode. */
static void test_views_jobs(const zweight *w) {
    enum { NJ = 600 };
    const int64_t K = w->cols;
    for (int fast = 0; fast < 2; fast++) {
        const zk_table tb = zk_table_get(isa, fast);
        zmm_job *jobs = calloc(NJ, sizeof *jobs), *jobs2 = calloc(NJ, sizeof *jobs2);
        float *x = rand_x(NJ * 2 * K, false);
        gbuf y1 = gbuf_new(NJ * 16), y2 = gbuf_new(NJ * 16), yk = gbuf_new(NJ * 16);
        for (int j = 0; j < NJ; j++) {
            const int64_t r0 = j % 31, nr = 1 + j % 8, n = 1 + j % 2;
            zweight v = zweight_rows(w, r0, nr);
            jobs[j] = (zmm_job){.w = v, .x = x + j * 2 * K, .y = y1.p + j * 16, .n = n};
            jobs2[j] = jobs[j];
            jobs2[j].y = y2.p + j * 16;
            zk_rows_for(&tb, &v)(&v, x + j * 2 * K, n, yk.p + j * 16, 0, nr);
        }
        zbackend_cpu.matmul(cpu1[fast], jobs, NJ);
        zbackend_cpu.matmul(cpu2[fast], jobs2, NJ);
        CHECKF(gbuf_guards_ok(&y1) && gbuf_guards_ok(&y2) && bits_equal(y1.p, yk.p, y1.n) &&
               bits_equal(y2.p, yk.p, y2.n), "%s %s: jobs over row views", tb.isa,
               fast ? "fast" : "exact");
        gbuf_free(&y1);
        gbuf_free(&y2);
        gbuf_free(&yk);
        free(x);
        free(jobs);
        free(jobs2);
    }
}

/* The fused kernels against the chain of the same kernels, bit for bit. */
static void test_fused(const zweight *gate, const zweight *up, const zweight *down,
                       const zweight *router, int64_t N) {
    const int64_t I = gate->rows, d = gate->cols, E = router->rows;
    enum { KX = 4, NMAX = 20 };
    for (int fast = 0; fast < 2; fast++) {
        const zk_table tb = zk_table_get(isa, fast);
        const char *mode = fast ? "fast" : "exact";
        float *x = rand_x(N * d, false);
        /* glu: h = silu(x gate^T) * (x up^T) */
        float *g = xmalloc((size_t)(N * I) * sizeof(float)), *u = xmalloc((size_t)(N * I) * sizeof(float));
        gbuf h = gbuf_new(N * I), hf = gbuf_new(N * I);
        zk_rows_for(&tb, gate)(gate, x, N, g, 0, I);
        zk_rows_for(&tb, up)(up, x, N, u, 0, I);
        zop_silu_mul(g, u, N * I, h.p);
        zglu_job gj = {.gate = *gate, .up = *up, .x = x, .h = hf.p, .n = N};
        zbackend_cpu.glu(cpu2[fast], &gj, 1);
        CHECKF(gbuf_guards_ok(&hf) && bits_equal(h.p, hf.p, N * I), "%s %s: fused glu differs",
               tb.isa, mode);
        /* combine: out += sum_k w_k (down h_k) + shared (down h_sh) */
        gbuf out = gbuf_new(d), outf = gbuf_new(d);
        float *yk = xmalloc((size_t)((KX + 1) * d) * sizeof(float));
        zcombine_job cj = {.k = KX, .sh_down = *down, .sh_h = h.p + 2 * I, .out = outf.p,
                           .residual = true};
        for (int k = 0; k < KX; k++) {
            cj.down[k] = *down;
            cj.h[k] = k % 2 ? h.p + k / 2 * I : u + k / 2 * I;
            cj.w[k] = 0.25f + 0.1f * (float)k;
            zk_rows_for(&tb, down)(down, cj.h[k], 1, yk + k * d, 0, d);
        }
        zk_rows_for(&tb, down)(down, cj.sh_h, 1, yk + KX * d, 0, d);
        for (int64_t i = 0; i < d; i++) {
            out.p[i] = outf.p[i] = rng_unif(&tk_rng);
            float acc = 0.0f;
            for (int k = 0; k < KX; k++) acc += cj.w[k] * yk[k * d + i];
            acc += yk[KX * d + i];
            out.p[i] = out.p[i] + acc;
        }
        zbackend_cpu.combine(cpu2[fast], &cj);
        CHECKF(gbuf_guards_ok(&outf) && bits_equal(out.p, outf.p, d), "%s %s: fused combine "
               "differs", tb.isa, mode);
        /* route: logits = x router^T, then zop_route per token */
        zrouter_cfg rc = {.n_experts = (int32_t)E, .k = 2, .n_group = 1, .topk_group = 1,
                          .norm_topk_prob = true, .scale = 1.5f};
        float *lg = xmalloc((size_t)(N * E) * sizeof(float)), *lgf = xmalloc((size_t)(N * E) * sizeof(float));
        float *work = xmalloc((size_t)(2 * E) * sizeof(float)), rw[NMAX * 2], rwf[NMAX * 2];
        int32_t ri[NMAX * 2], rif[NMAX * 2];
        zk_rows_for(&tb, router)(router, x, N, lg, 0, E);
        for (int t = 0; t < N; t++) zop_route(&rc, lg + t * E, NULL, work, ri + 2 * t, rw + 2 * t);
        zroute_job rj = {.router = *router, .x = x, .n = N, .logits = lgf, .cfg = rc, .work = work,
                         .idx = rif, .w = rwf};
        zbackend_cpu.route(cpu2[fast], &rj);
        CHECKF(bits_equal(lg, lgf, N * E) && !memcmp(ri, rif, (size_t)N * 2 * sizeof ri[0]) &&
                   bits_equal(rw, rwf, N * 2),
               "%s %s: fused route differs", tb.isa, mode);
        gbuf_free(&h);
        gbuf_free(&hf);
        gbuf_free(&out);
        gbuf_free(&outf);
        free(g);
        free(u);
        free(yk);
        free(lg);
        free(lgf);
        free(work);
        free(x);
    }
}

static void test_backend(void) {
    qw q = qw_quantized(ZQ_AFFINE, 4, 64, 40, 128);
    test_views_jobs(&q.w);
    qw_free(&q);
    /* MoE-shaped blocks: 4-bit g64 (and mxfp4) gate/up/down, a bf16 router */
    /* several row tiles of each fused kernel: 320 glu rows, 576 combine rows */
    qw gate = qw_quantized(ZQ_AFFINE, 4, 64, 320, 576), up = qw_quantized(ZQ_AFFINE, 4, 64, 320, 576);
    qw down = qw_quantized(ZQ_AFFINE, 4, 64, 576, 320), router = dense_new(ZDT_BF16, 16, 576);
    test_fused(&gate.w, &up.w, &down.w, &router.w, 3);  /* decode-size tiles */
    test_fused(&gate.w, &up.w, &down.w, &router.w, 20); /* prefill-size tiles */
    qw m1 = qw_quantized(ZQ_MXFP4, 4, 32, 64, 96), m2 = qw_quantized(ZQ_MXFP4, 4, 32, 64, 96);
    qw md = qw_quantized(ZQ_MXFP4, 4, 32, 96, 64), mr = dense_new(ZDT_BF16, 8, 96);
    test_fused(&m1.w, &m2.w, &md.w, &mr.w, 3);
    qw *all[] = {&gate, &up, &down, &router, &m1, &m2, &md, &mr};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) qw_free(all[i]);
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv) {
    char why[320];
    if (!zk_isa_choose(&isa, why, sizeof why)) {
        printf("SKIP: %s\n", why);
        return 77;
    }
    char desc[320];
    zk_isa_describe(desc, sizeof desc);
    printf("kernels: %s\n", desc);
    if (argc > 1 && !strcmp(argv[1], "--which")) return 0; /* the dispatch only */
    for (int f = 0; f < 2; f++) {
        if (zbackend_cpu.init(1, &cpu1[f]) != ZMLX_OK || zbackend_cpu.init(2, &cpu2[f]) != ZMLX_OK) {
            fprintf(stderr, "cpu backend failed to start\n");
            return 1;
        }
        zbackend_cpu.set_precision(cpu1[f], f ? ZMLX_PRECISION_FAST : ZMLX_PRECISION_EXACT);
        zbackend_cpu.set_precision(cpu2[f], f ? ZMLX_PRECISION_FAST : ZMLX_PRECISION_EXACT);
    }
    test_dense();
    test_quantized();
    test_backend();
    printf("largest nmse seen: exact %.3g (limit %.0e), fast %.3g (limit %.0e), fast vs the "
           "int8 model %.3g (limit %.0e)\n", seen_exact, NMSE_EXACT, seen_fast, NMSE_FAST,
           seen_model, NMSE_MODEL);
    for (int f = 0; f < 2; f++) {
        zbackend_cpu.free(cpu1[f]);
        zbackend_cpu.free(cpu2[f]);
    }
    return tc_done();
}
