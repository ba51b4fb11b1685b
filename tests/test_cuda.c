/*
 * test_cuda.c — the `cuda` backend against the CPU reference, ggml test-backend-ops style.
 *
 * Kernel conformance (each production launcher of backend/cuda/kernels.h on random inputs,
 * GLM-4.7-Flash shapes and odd ones, every weight kind):
 *   - every device output lies between guard floats and starts as a NaN canary: a guard
 *     that changed is an out-of-bounds write, an unwritten element stays NaN, and NaN
 *     always fails;
 *   - products (matvec, grouped/per-head/routed, SwiGLU, transposed, GEMM, grouped GEMM)
 *     against a double-precision dot with the rigorous bound of any summation order,
 *     |y - exact| <= gamma_{K+1} sum_k |w_k x_k| (as tests/test_ops.c);
 *   - elementwise steps that repeat the reference's arithmetic (rope, the MoE combine's
 *     residual, embedding, cache conversion) bit for bit; the RMSNorms (tree-ordered sum
 *     of squares) and SwiGLU (device expf) within a few ulps;
 *   - the router: chosen experts and their order exactly as zop_route (ties included:
 *     constant logits pick 0..k-1), weights to 1e-6; the grouping of a chunk by expert
 *     exactly as moe.c;
 *   - attention, absorbed (split over the context, f32 and bf16 caches, one and several
 *     queries) and expanded, against zattn_head_ref to 2e-5 of max|v|.
 * Models (the whole step on the device):
 *   - the golden fixtures (transformers float32): 40/40 greedy tokens, logits of the first
 *     and last step within 1e-4 * max|ref|, prefill argmax, absorbed and expanded paths;
 *   - builtin:glm47-mini against the cpu backend: every logits row of a prefill and of
 *     the decode steps (the decode graph) within 1e-4 * max|ref|, f32 and bf16 caches;
 *     a 700-token context (cache growth, graph re-capture, split attention); two runs
 *     bit-identical; deepseek_v32 refused with a clear message.
 * Without a GPU: the clean failure of `--backend cuda` is checked, then
 * "SKIP: no CUDA device (<reason>)" and exit 0.  ZMLX_TEST_CUDA_QUICK=1 keeps the kernel
 * cases and one fixture (for compute-sanitizer runs).
 */
#include "tcheck.h"
#include "tgolden.h"
#include "zmlx.h"

#ifndef ZMLX_HAVE_CUDA
int main(void) {
    printf("SKIP: built without CUDA\n0 passed, 0 failed, 1 skipped\n");
    return 0;
}
#else

#include "backend/backend.h"
#include "backend/cuda/kernels.h"
#include "core/err.h"
#include "ops/ops.h"

#include <cuda_runtime_api.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>

/* ------------------------------------------------------------------ helpers */

static uint64_t rng_state = 0xc0dac0daULL;

static uint64_t rng_u64(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static float rng_unif(void) { /* [-1, 1) */
    return (float)((double)(rng_u64() >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
}

static void fill(float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = rng_unif() * scale;
}

static uint32_t f2u(float f) {
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

/* A device copy of host data. */
static void *dup_dev(const void *h, size_t bytes) {
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

static dout out_new(size_t n) {
    dout o = {.n = n};
    size_t all = n + 2 * GUARD;
    uint32_t *h = malloc(all * 4);
    for (size_t i = 0; i < all; i++) h[i] = CANARY;
    o.base = dup_dev(h, all * 4);
    o.p = o.base + GUARD;
    free(h);
    return o;
}

/* Fetch into host[n]; false (and a message) if a guard moved. */
static bool out_fetch(dout *o, float *host, const char *what) {
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

static void out_free(dout *o) {
    cudaFree(o->base);
}

/* A random host matrix of a dense kind, values in [-1, 1). */
typedef struct hmat {
    zweight w;
    void *data;
} hmat;

static hmat hmat_new(zdtype dt, int64_t rows, int64_t cols) {
    hmat m = {0};
    size_t n = (size_t)(rows * cols), es = zdtype_table[dt].size;
    m.data = malloc(n * es > 0 ? n * es : 1);
    for (size_t i = 0; i < n; i++) {
        float v = rng_unif();
        if (dt == ZDT_F32) {
            ((float *)m.data)[i] = v;
        } else if (dt == ZDT_BF16) {
            ((uint16_t *)m.data)[i] = zf32_to_bf16(v);
        } else { /* f16: sign, exponent 10..15 (2^-5 .. 1), random mantissa */
            uint16_t s = (uint16_t)((rng_u64() & 1) << 15), ex = (uint16_t)(10 + rng_u64() % 6);
            ((uint16_t *)m.data)[i] = (uint16_t)(s | (ex << 10) | (rng_u64() & 0x3ff));
        }
    }
    m.w = (zweight){.dtype = dt, .rows = rows, .cols = cols, .data = m.data};
    return m;
}

static cuw to_dev(const zweight *w) {
    size_t bytes = (size_t)(w->rows * w->cols) * zdtype_table[w->dtype].size;
    return (cuw){.data = dup_dev(w->data, bytes), .kind = (int32_t)zweight_kind(w),
                 .rows = w->rows, .cols = w->cols, .ld = w->cols};
}

/* n matrices stacked as upload.c does (stride = elements of one, rounded to 256 bytes). */
static cuw stack_dev(const hmat *ms, int n) {
    const zweight *w = &ms[0].w;
    size_t es = zdtype_table[w->dtype].size, bytes = (size_t)(w->rows * w->cols) * es;
    size_t step = (bytes + 255) & ~(size_t)255;
    uint8_t *h = calloc(1, step * (size_t)n);
    for (int i = 0; i < n; i++) memcpy(h + (size_t)i * step, ms[i].data, bytes);
    cuw d = {.data = dup_dev(h, step * (size_t)n), .kind = (int32_t)zweight_kind(w),
             .rows = w->rows, .cols = w->cols, .ld = w->cols, .stride = (int64_t)(step / es)};
    free(h);
    return d;
}

static const char *dt_name(zdtype dt) {
    return zdtype_table[dt].name;
}

/* Check y against an exact dot (double) with the rigorous bound of any summation order. */
typedef struct dotchk {
    double worst; /* max |y - exact| / bound */
    int64_t bad, nan;
} dotchk;

static void dot_check(dotchk *c, float y, double exact, double asum, int64_t K) {
    const double u = 1.0 / 16777216.0, g = (double)(K + 1) * u / (1.0 - (double)(K + 1) * u);
    const double bound = g * asum + 1e-30;
    if (isnan(y)) {
        c->nan++;
        return;
    }
    double r = fabs((double)y - exact) / bound;
    if (r > c->worst) c->worst = r;
    if (r > 1.0) c->bad++;
}

static void dot_exact(const zweight *w, int64_t r, const float *x, double *exact, double *asum) {
    double s = 0, a = 0;
    for (int64_t c = 0; c < w->cols; c++) {
        double p = (double)zweight_get(w, r, c) * (double)x[c];
        s += p;
        a += fabs(p);
    }
    *exact = s;
    *asum = a;
}

#define DOTCHK_OK(c, what, ...)                                                        \
    CHECKF((c).bad == 0 && (c).nan == 0, what ": %lld over the bound, %lld NaN (worst %.3g)", \
           __VA_ARGS__, (long long)(c).bad, (long long)(c).nan, (c).worst)

/* ------------------------------------------------------------------ products */

static void case_matvec(zdtype dt, int64_t rows, int64_t cols) {
    hmat m = hmat_new(dt, rows, cols);
    float *x = malloc((size_t)cols * 4), *y = malloc((size_t)rows * 4);
    fill(x, (size_t)cols, 1.0f);
    cuw dw = to_dev(&m.w);
    float *dx = dup_dev(x, (size_t)cols * 4);
    dout o = out_new((size_t)rows);
    cu_mv p = {.w = dw, .groups = 1, .rpg = rows, .gmod = 1, .x = dx, .y = o.p};
    CHECK(cuk_matvec(&p, 1, S) == cudaSuccess);
    CHECKF(out_fetch(&o, y, "matvec"), "matvec %s [%lld, %lld]", dt_name(dt), (long long)rows, (long long)cols);
    dotchk c = {0};
    for (int64_t r = 0; r < rows; r++) {
        double ex, as;
        dot_exact(&m.w, r, x, &ex, &as);
        dot_check(&c, y[r], ex, as, cols);
    }
    DOTCHK_OK(c, "matvec %s [%lld, %lld]", dt_name(dt), (long long)rows, (long long)cols);
    out_free(&o);
    cudaFree((void *)dw.data);
    cudaFree(dx);
    free(m.data);
    free(x);
    free(y);
}

/* Absorbed MLA's W_UV per head: y[h, r] = kv_b[h*hs + nope + r] · x[h]; and W_UK^T. */
static void case_per_head(zdtype dt, int64_t H, int64_t nope, int64_t vd, int64_t R) {
    const int64_t hs = nope + vd;
    hmat m = hmat_new(dt, H * hs, R);
    cuw dw = to_dev(&m.w);
    float *x = malloc((size_t)(H * R) * 4), *y = malloc((size_t)(H * vd) * 4);
    fill(x, (size_t)(H * R), 1.0f);
    float *dx = dup_dev(x, (size_t)(H * R) * 4);
    dout o = out_new((size_t)(H * vd));
    cu_mv p = {.w = dw, .groups = H, .rpg = vd, .row0 = nope, .grs = hs, .gmod = H, .x = dx,
               .xs = R, .y = o.p, .ys = vd};
    CHECK(cuk_matvec(&p, 1, S) == cudaSuccess);
    CHECKF(out_fetch(&o, y, "per-head"), "per-head matvec %s", dt_name(dt));
    dotchk c = {0};
    for (int64_t h = 0; h < H; h++)
        for (int64_t r = 0; r < vd; r++) {
            double ex, as;
            dot_exact(&m.w, h * hs + nope + r, x + h * R, &ex, &as);
            dot_check(&c, y[h * vd + r], ex, as, R);
        }
    DOTCHK_OK(c, "per-head W_UV %s H=%lld", dt_name(dt), (long long)H);
    out_free(&o);

    /* transposed: q_lat[h, c] = sum_i kv_b[h*hs + i][c] q_nope[h, i] into rows of R + 7,
       and q_pe (6 values after q_nope) rotated into columns R .. R + 5 */
    const int64_t ys = R + 7, rp = 6, qk = nope + rp;
    float *q = malloc((size_t)(H * qk) * 4), *yt = malloc((size_t)(H * ys) * 4), cs[6];
    fill(q, (size_t)(H * qk), 1.0f);
    fill(cs, 6, 1.0f);
    float *dq = dup_dev(q, (size_t)(H * qk) * 4), *dcs = dup_dev(cs, sizeof cs);
    dout ot = out_new((size_t)(H * ys));
    cu_mvt pt = {.w = dw, .nr = nope, .row0 = 0, .grs = hs, .gmod = H, .groups = H, .x = dq,
                 .xs = qk, .y = ot.p, .ys = ys, .cs = dcs, .rope = rp};
    CHECK(cuk_matvec_t(&pt, S) == cudaSuccess);
    CHECKF(out_fetch(&ot, yt, "matvec_t"), "matvec_t %s", dt_name(dt));
    dotchk ct = {0};
    int64_t untouched = 0;
    for (int64_t h = 0; h < H; h++) {
        for (int64_t col = 0; col < R; col++) {
            double s = 0, a = 0;
            for (int64_t i = 0; i < nope; i++) {
                double pr = (double)zweight_get(&m.w, h * hs + i, col) * q[h * qk + i];
                s += pr;
                a += fabs(pr);
            }
            dot_check(&ct, yt[h * ys + col], s, a, nope);
        }
        float qp[6];
        memcpy(qp, q + h * qk + nope, sizeof qp);
        zop_rope_interleaved(qp, rp, cs, cs + rp / 2);
        untouched += !memcmp(qp, yt + h * ys + R, sizeof qp); /* bit for bit */
        for (int64_t col = R + rp; col < ys; col++) untouched += f2u(yt[h * ys + col]) == CANARY;
    }
    DOTCHK_OK(ct, "transposed W_UK^T %s", dt_name(dt));
    CHECKF(untouched == H * (ys - R - rp + 1),
           "matvec_t: q_pe rope not bit-identical or a write past its columns (%lld of %lld)",
           (long long)untouched, (long long)(H * (ys - R - rp + 1)));
    cudaFree(dcs);
    out_free(&ot);
    cudaFree(dq);
    free(q);
    free(yt);
    cudaFree(dx);
    cudaFree((void *)dw.data);
    free(m.data);
    free(x);
    free(y);
}

/* Routed experts by device-side index: SwiGLU and down, as the decode step runs them. */
static void case_experts(zdtype dt, int E, int64_t mI, int64_t d) {
    enum { K = 4 };
    const int32_t idx[K] = {E - 1, 2 % E, 0, 2 % E}; /* a repeat is fine here */
    hmat *g = malloc((size_t)E * sizeof *g), *u = malloc((size_t)E * sizeof *u);
    hmat *dn = malloc((size_t)E * sizeof *dn);
    for (int e = 0; e < E; e++) {
        g[e] = hmat_new(dt, mI, d);
        u[e] = hmat_new(dt, mI, d);
        dn[e] = hmat_new(dt, d, mI);
    }
    cuw dg = stack_dev(g, E), du = stack_dev(u, E), dd = stack_dev(dn, E);
    float *x = malloc((size_t)d * 4), *h = malloc((size_t)(K * mI) * 4), *y = malloc((size_t)(K * d) * 4);
    fill(x, (size_t)d, 1.0f);
    float *dx = dup_dev(x, (size_t)d * 4);
    int32_t *didx = dup_dev(idx, sizeof idx);
    dout oh = out_new((size_t)(K * mI));
    cu_mv pg = {.w = dg, .up = du, .idx = didx, .groups = K, .rpg = mI, .gmod = 1, .x = dx,
                .y = oh.p, .ys = mI};
    CHECK(cuk_matvec(&pg, 1, S) == cudaSuccess);
    CHECKF(out_fetch(&oh, h, "glu"), "glu matvec %s", dt_name(dt));
    int64_t bad = 0;
    double worst = 0;
    for (int k = 0; k < K; k++)
        for (int64_t r = 0; r < mI; r++) {
            double eg, ag, eu, au;
            dot_exact(&g[idx[k]].w, r, x, &eg, &ag);
            dot_exact(&u[idx[k]].w, r, x, &eu, &au);
            const double sg = 1.0 / (1.0 + exp(-eg)), ref = eg * sg * eu;
            /* first-order propagation of each dot's bound through silu(g) * u, plus the
               few roundings of the elementwise step */
            const double gam = (double)(d + 1) / 16777216.0;
            const double bound = gam * (ag * fabs(eu) * 1.2 + au * fabs(eg * sg)) + 4e-7 * fabs(ref) + 1e-30;
            double r_ = fabs(h[k * mI + r] - ref) / bound;
            if (isnan(h[k * mI + r]) || r_ > 1.0) bad++;
            if (r_ > worst) worst = r_;
        }
    CHECKF(bad == 0, "glu matvec %s: %lld bad (worst %.3g)", dt_name(dt), (long long)bad, worst);
    /* down: y[k] = down[idx[k]] h[k] (the device h as input) */
    float *dh = dup_dev(h, (size_t)(K * mI) * 4);
    dout oy = out_new((size_t)(K * d));
    cu_mv p = {.w = dd, .idx = didx, .groups = K, .rpg = d, .gmod = 1, .x = dh, .xs = mI,
               .y = oy.p, .ys = d};
    CHECK(cuk_matvec(&p, 1, S) == cudaSuccess);
    CHECKF(out_fetch(&oy, y, "down"), "routed down %s", dt_name(dt));
    dotchk c = {0};
    for (int k = 0; k < K; k++)
        for (int64_t r = 0; r < d; r++) {
            double ex, as;
            dot_exact(&dn[idx[k]].w, r, h + k * mI, &ex, &as);
            dot_check(&c, y[k * d + r], ex, as, mI);
        }
    DOTCHK_OK(c, "routed down %s", dt_name(dt));
    out_free(&oh);
    out_free(&oy);
    cudaFree(dh);
    cudaFree(dx);
    cudaFree(didx);
    cudaFree((void *)dg.data);
    cudaFree((void *)du.data);
    cudaFree((void *)dd.data);
    for (int e = 0; e < E; e++) {
        free(g[e].data);
        free(u[e].data);
        free(dn[e].data);
    }
    free(g);
    free(u);
    free(dn);
    free(x);
    free(h);
    free(y);
}

/* Several products in one call (mixed kinds and alignments: split into runs) give the
   same bits as one call each. */
static void case_multi(void) {
    hmat a = hmat_new(ZDT_BF16, 576, 2048), b = hmat_new(ZDT_F32, 64, 2048);
    hmat c = hmat_new(ZDT_BF16, 768, 2048), u = hmat_new(ZDT_BF16, 768, 2048);
    hmat odd = hmat_new(ZDT_BF16, 5, 2047);
    float *x = malloc(2048 * 4);
    fill(x, 2048, 1.0f);
    float *dx = dup_dev(x, 2048 * 4);
    cuw da = to_dev(&a.w), db = to_dev(&b.w), dc = to_dev(&c.w), du = to_dev(&u.w), dd = to_dev(&odd.w);
    const int64_t outs[4] = {576, 64, 768, 5};
    dout o[4], one[4];
    for (int i = 0; i < 4; i++) {
        o[i] = out_new((size_t)outs[i]);
        one[i] = out_new((size_t)outs[i]);
    }
    cu_mv j[4] = {{.w = da, .groups = 1, .rpg = 576, .gmod = 1, .x = dx, .y = o[0].p},
                  {.w = db, .groups = 1, .rpg = 64, .gmod = 1, .x = dx, .y = o[1].p},
                  {.w = dc, .up = du, .groups = 1, .rpg = 768, .gmod = 1, .x = dx, .y = o[2].p},
                  {.w = dd, .groups = 1, .rpg = 5, .gmod = 1, .x = dx, .y = o[3].p}};
    CHECK(cuk_matvec(j, 4, S) == cudaSuccess);
    int64_t same = 0, total = 0;
    for (int i = 0; i < 4; i++) {
        cu_mv s1 = j[i];
        s1.y = one[i].p;
        CHECK(cuk_matvec(&s1, 1, S) == cudaSuccess);
        float *h1 = malloc((size_t)outs[i] * 4), *h2 = malloc((size_t)outs[i] * 4);
        CHECKF(out_fetch(&o[i], h1, "multi") && out_fetch(&one[i], h2, "single"), "multi job %d", i);
        same += !memcmp(h1, h2, (size_t)outs[i] * 4);
        total++;
        free(h1);
        free(h2);
        out_free(&o[i]);
        out_free(&one[i]);
    }
    CHECKF(same == total, "matvec: %lld of %lld jobs of a batch match their single launch",
           (long long)same, (long long)total);
    cu_mv bad = j[2];
    bad.up = db; /* up of another kind and shape: refused */
    CHECK(cuk_matvec(&bad, 1, S) == cudaErrorInvalidValue);
    (void)cudaGetLastError();
    cuw ws[] = {da, db, dc, du, dd};
    for (int i = 0; i < 5; i++) cudaFree((void *)ws[i].data);
    cudaFree(dx);
    free(x);
    free(a.data);
    free(b.data);
    free(c.data);
    free(u.data);
    free(odd.data);
}

/* Y = X W^T over n tokens, plain and with a row gather. */
static void case_gemm(zdtype dt, int64_t rows, int64_t cols, int64_t n) {
    hmat m = hmat_new(dt, rows, cols);
    const int64_t nx = n + 3;
    float *x = malloc((size_t)(nx * cols) * 4), *y = malloc((size_t)(n * rows) * 4);
    fill(x, (size_t)(nx * cols), 1.0f);
    int32_t *rows_of = malloc((size_t)n * 4);
    for (int64_t j = 0; j < n; j++) rows_of[j] = (int32_t)(rng_u64() % (uint64_t)nx);
    cuw dw = to_dev(&m.w);
    float *dx = dup_dev(x, (size_t)(nx * cols) * 4);
    int32_t *drows = dup_dev(rows_of, (size_t)n * 4);
    for (int gather = 0; gather < 2; gather++) {
        dout o = out_new((size_t)(n * rows));
        CHECK(cuk_gemm(dw, dx, cols, gather ? drows : NULL, o.p, rows, n, NULL, 0, S) == cudaSuccess);
        CHECKF(out_fetch(&o, y, "gemm"), "gemm %s", dt_name(dt));
        dotchk c = {0};
        for (int64_t j = 0; j < n; j++)
            for (int64_t r = 0; r < rows; r++) {
                double ex, as;
                dot_exact(&m.w, r, x + (gather ? rows_of[j] : j) * cols, &ex, &as);
                dot_check(&c, y[j * rows + r], ex, as, cols);
            }
        DOTCHK_OK(c, "gemm %s [%lld, %lld] n=%lld gather=%d", dt_name(dt), (long long)rows,
                  (long long)cols, (long long)n, gather);
        out_free(&o);
    }
    cudaFree((void *)dw.data);
    cudaFree(dx);
    cudaFree(drows);
    free(m.data);
    free(x);
    free(y);
    free(rows_of);
}

/* The host grouping of moe.c's route(): goff, list (token of each row), slot. */
static void group_ref(const int32_t *idx, int64_t n, int64_t K, int64_t E, int32_t *goff,
                      int32_t *list, int32_t *slot) {
    int32_t *cnt = calloc((size_t)E, 4);
    for (int64_t i = 0; i < n * K; i++) cnt[idx[i]]++;
    goff[0] = 0;
    for (int64_t e = 0; e < E; e++) {
        goff[e + 1] = goff[e] + cnt[e];
        cnt[e] = 0;
    }
    for (int64_t t = 0; t < n; t++)
        for (int64_t k = 0; k < K; k++) {
            int32_t e = idx[t * K + k], s = goff[e] + cnt[e]++;
            slot[t * K + k] = s;
            list[s] = (int32_t)t;
        }
    free(cnt);
}

/* The prefill MoE: grouping on the device, then a grouped GEMM over the gathered rows. */
static void case_grouped(zdtype dt, int E, int64_t K, int64_t rows, int64_t cols, int64_t n) {
    int32_t *idx = malloc((size_t)(n * K) * 4);
    for (int64_t t = 0; t < n; t++) /* K distinct experts per token */
        for (int64_t k = 0; k < K; k++) {
            int32_t e;
            bool dup;
            do {
                e = (int32_t)(rng_u64() % (uint64_t)E);
                dup = false;
                for (int64_t j = 0; j < k; j++) dup |= idx[t * K + j] == e;
            } while (dup);
            idx[t * K + k] = e;
        }
    int32_t *goff = malloc((size_t)(E + 1) * 4), *list = malloc((size_t)(n * K) * 4);
    int32_t *slot = malloc((size_t)(n * K) * 4);
    group_ref(idx, n, K, E, goff, list, slot);
    int32_t *didx = dup_dev(idx, (size_t)(n * K) * 4);
    int32_t *dgoff, *dlist, *dslot;
    CU(cudaMalloc((void **)&dgoff, (size_t)(E + 1) * 4));
    CU(cudaMalloc((void **)&dlist, (size_t)(n * K) * 4));
    CU(cudaMalloc((void **)&dslot, (size_t)(n * K) * 4));
    CHECK(cuk_moe_group(didx, n, K, E, dgoff, dlist, dslot, S) == cudaSuccess);
    int32_t *hg = malloc((size_t)(E + 1) * 4), *hl = malloc((size_t)(n * K) * 4), *hs = malloc((size_t)(n * K) * 4);
    CU(cudaMemcpy(hg, dgoff, (size_t)(E + 1) * 4, cudaMemcpyDeviceToHost));
    CU(cudaMemcpy(hl, dlist, (size_t)(n * K) * 4, cudaMemcpyDeviceToHost));
    CU(cudaMemcpy(hs, dslot, (size_t)(n * K) * 4, cudaMemcpyDeviceToHost));
    CHECKF(!memcmp(hg, goff, (size_t)(E + 1) * 4) && !memcmp(hl, list, (size_t)(n * K) * 4) &&
               !memcmp(hs, slot, (size_t)(n * K) * 4),
           "moe_group differs from moe.c's grouping (E=%d n=%lld)", E, (long long)n);

    hmat *ms = malloc((size_t)E * sizeof *ms);
    for (int e = 0; e < E; e++) ms[e] = hmat_new(dt, rows, cols);
    cuw dw = stack_dev(ms, E);
    float *x = malloc((size_t)(n * cols) * 4), *y = malloc((size_t)(n * K * rows) * 4);
    fill(x, (size_t)(n * cols), 1.0f);
    float *dx = dup_dev(x, (size_t)(n * cols) * 4);
    dout o = out_new((size_t)(n * K * rows));
    CHECK(cuk_gemm(dw, dx, cols, dlist, o.p, rows, n, dgoff, E, S) == cudaSuccess);
    CHECKF(out_fetch(&o, y, "grouped gemm"), "grouped gemm %s", dt_name(dt));
    dotchk c = {0};
    for (int64_t t = 0; t < n; t++)
        for (int64_t k = 0; k < K; k++)
            for (int64_t r = 0; r < rows; r++) {
                double ex, as;
                dot_exact(&ms[idx[t * K + k]].w, r, x + t * cols, &ex, &as);
                dot_check(&c, y[(int64_t)slot[t * K + k] * rows + r], ex, as, cols);
            }
    DOTCHK_OK(c, "grouped gemm %s E=%d n=%lld", dt_name(dt), E, (long long)n);
    out_free(&o);
    cudaFree((void *)dw.data);
    cudaFree(dx);
    cudaFree(didx);
    cudaFree(dgoff);
    cudaFree(dlist);
    cudaFree(dslot);
    for (int e = 0; e < E; e++) free(ms[e].data);
    free(ms);
    free(idx);
    free(goff);
    free(list);
    free(slot);
    free(hg);
    free(hl);
    free(hs);
    free(x);
    free(y);
}

/* ------------------------------------------------------------------ elementwise */

static bool near_rel(const float *a, const float *ref, size_t n, double rel, double abs_,
                     double *worst) {
    bool ok = true;
    *worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - ref[i]), b = rel * fabs(ref[i]) + abs_;
        if (isnan(a[i]) || d > b) ok = false;
        if (d / b > *worst) *worst = d / b;
    }
    return ok;
}

static void case_norms(int64_t d, int64_t n) {
    const float eps = 1e-5f;
    float *x = malloc((size_t)(n * d) * 4), *f = malloc((size_t)(n * d) * 4), *w = malloc((size_t)d * 4);
    float *y = malloc((size_t)(n * d) * 4), *ref = malloc((size_t)(n * d) * 4);
    fill(x, (size_t)(n * d), 3.0f);
    fill(f, (size_t)(n * d), 1.0f);
    fill(w, (size_t)d, 1.0f);
    float *dx = dup_dev(x, (size_t)(n * d) * 4), *dw = dup_dev(w, (size_t)d * 4);
    float *df = dup_dev(f, (size_t)(n * d) * 4);
    dout o = out_new((size_t)(n * d));
    CHECK(cuk_rmsnorm(dx, d, dw, d, eps, o.p, d, n, S) == cudaSuccess);
    CHECKF(out_fetch(&o, y, "rmsnorm"), "rmsnorm d=%lld", (long long)d);
    for (int64_t t = 0; t < n; t++) zop_rmsnorm(x + t * d, w, d, eps, ref + t * d);
    double worst;
    CHECKF(near_rel(y, ref, (size_t)(n * d), 2e-6, 1e-7, &worst), "rmsnorm d=%lld worst %.3g",
           (long long)d, worst);
    /* x += f, xn = rmsnorm(x): x bit for bit, xn within a few ulps */
    CHECK(cuk_add_rmsnorm(dx, df, dw, d, eps, o.p, n, S) == cudaSuccess);
    CHECKF(out_fetch(&o, y, "add_rmsnorm"), "add_rmsnorm d=%lld", (long long)d);
    float *xs = malloc((size_t)(n * d) * 4);
    CU(cudaMemcpy(xs, dx, (size_t)(n * d) * 4, cudaMemcpyDeviceToHost));
    for (int64_t t = 0; t < n; t++) {
        zop_add(x + t * d, f + t * d, d);
        zop_rmsnorm(x + t * d, w, d, eps, ref + t * d);
    }
    CHECKF(!memcmp(xs, x, (size_t)(n * d) * 4), "add_rmsnorm: residual not bit-identical");
    CHECKF(near_rel(y, ref, (size_t)(n * d), 2e-6, 1e-7, &worst), "add_rmsnorm worst %.3g", worst);
    out_free(&o);
    cudaFree(dx);
    cudaFree(dw);
    cudaFree(df);
    free(x);
    free(f);
    free(w);
    free(y);
    free(ref);
    free(xs);
}

/* MLA epilogue: rope table, q_a / kv_a norms, k_pe rope, the cache write; then q rope. */
static void case_attn_prep(bool bf16, int64_t R, int64_t rope, int64_t ql, int64_t H,
                           int64_t nope, int64_t pos, int64_t n, float mscale) {
    const int64_t W = R + rope, half = rope / 2, cap = pos + n + 3;
    const float eps = 1e-6f;
    float *kv = malloc((size_t)(n * W) * 4), *qa = malloc((size_t)(n * ql) * 4);
    float *kvn = malloc((size_t)R * 4), *qn = malloc((size_t)ql * 4), *inv = malloc((size_t)half * 4);
    fill(kv, (size_t)(n * W), 2.0f);
    fill(qa, (size_t)(n * ql), 2.0f);
    fill(kvn, (size_t)R, 1.0f);
    fill(qn, (size_t)ql, 1.0f);
    for (int64_t i = 0; i < half; i++) inv[i] = (float)(1.0 / pow(1e4, (double)(2 * i) / (double)rope));
    cu_step step = {.pos = (int32_t)pos, .n = (int32_t)n};
    cu_step *dstep = dup_dev(&step, sizeof step);
    float *dkv = dup_dev(kv, (size_t)(n * W) * 4), *dqa = dup_dev(qa, (size_t)(n * ql) * 4);
    float *dkvn = dup_dev(kvn, (size_t)R * 4), *dqn = dup_dev(qn, (size_t)ql * 4);
    float *dinv = dup_dev(inv, (size_t)half * 4);
    const size_t es = bf16 ? 2 : 4, cache_floats = ((size_t)(cap * W) * es + 3) / 4;
    dout cache = out_new(cache_floats), cs = out_new((size_t)(n * rope));
    cu_prep p = {.kv = dkv, .R = R, .rope = rope, .qa = dqa, .ql = ql, .kv_norm = dkvn,
                 .q_norm = dqn, .eps = eps, .inv_freq = dinv, .mscale = mscale,
                 .cache = cache.p, .cache_bf16 = bf16, .cs = cs.p, .step = dstep, .n = n};
    CHECK(cuk_attn_prep(&p, S) == cudaSuccess);
    float *hcs = malloc((size_t)(n * rope) * 4), *hcache = malloc(cache_floats * 4);
    CHECKF(out_fetch(&cs, hcs, "prep cs"), "attn_prep cs");
    CHECKF(out_fetch(&cache, hcache, "prep cache"), "attn_prep cache (bf16=%d)", bf16);
    float *gkv = malloc((size_t)(n * W) * 4), *gqa = malloc((size_t)(n * ql) * 4);
    CU(cudaMemcpy(gkv, dkv, (size_t)(n * W) * 4, cudaMemcpyDeviceToHost));
    CU(cudaMemcpy(gqa, dqa, (size_t)(n * ql) * 4, cudaMemcpyDeviceToHost));
    int64_t cs_bad = 0, kv_bad = 0, rope_bad = 0, cache_bad = 0, untouched = 0;
    for (int64_t t = 0; t < n; t++) {
        float c_ref[64], s_ref[64];
        zop_rope_table(pos + t, inv, half, mscale, c_ref, s_ref);
        for (int64_t i = 0; i < half; i++)
            cs_bad += fabsf(hcs[t * rope + i] - c_ref[i]) > 1e-7f ||
                      fabsf(hcs[t * rope + half + i] - s_ref[i]) > 1e-7f;
        float *k = kv + t * W, *q = qa + t * ql;
        zop_rmsnorm(k, kvn, R, eps, k);
        zop_rmsnorm(q, qn, ql, eps, q);
        double worst;
        kv_bad += !near_rel(gkv + t * W, k, (size_t)R, 2e-6, 1e-7, &worst);
        kv_bad += !near_rel(gqa + t * ql, q, (size_t)ql, 2e-6, 1e-7, &worst);
        /* rope on the device's own k_pe input: bit for bit with the device cs */
        float kp[128];
        memcpy(kp, kv + t * W + R, (size_t)rope * 4);
        zop_rope_interleaved(kp, rope, hcs + t * rope, hcs + t * rope + half);
        rope_bad += memcmp(kp, gkv + t * W + R, (size_t)rope * 4) != 0;
        for (int64_t c = 0; c < W; c++) {
            float want = gkv[t * W + c], got;
            if (bf16) {
                got = zbf16_to_f32(((uint16_t *)hcache)[(pos + t) * W + c]);
                want = zbf16_to_f32(zf32_to_bf16(want));
            } else {
                got = hcache[(pos + t) * W + c];
            }
            cache_bad += f2u(got) != f2u(want);
        }
    }
    /* rows outside pos .. pos + n - 1 untouched */
    for (int64_t t = 0; t < cap; t++) {
        if (t >= pos && t < pos + n) continue;
        const uint8_t *row = (const uint8_t *)hcache + (size_t)(t * W) * es;
        bool same = true;
        for (size_t b = 0; b < (size_t)W * es && (size_t)(t * W) * es + b < cache_floats * 4; b++)
            same = same && row[b] == ((const uint8_t *)&(uint32_t){CANARY})[((size_t)(t * W) * es + b) % 4];
        untouched += same;
    }
    CHECKF(cs_bad == 0, "attn_prep rope table: %lld values off", (long long)cs_bad);
    CHECKF(kv_bad == 0, "attn_prep norms: %lld rows off", (long long)kv_bad);
    CHECKF(rope_bad == 0, "attn_prep k_pe rope not bit-identical (%lld rows)", (long long)rope_bad);
    CHECKF(cache_bad == 0, "attn_prep cache write: %lld values off (bf16=%d)", (long long)cache_bad, bf16);
    CHECKF(untouched == cap - n, "attn_prep wrote other cache rows (%lld of %lld intact)",
           (long long)untouched, (long long)(cap - n));

    /* q rope per head, and the copy into the absorbed query rows */
    const int64_t qk = nope + rope;
    float *q = malloc((size_t)(n * H * qk) * 4), *gq = malloc((size_t)(n * H * qk) * 4);
    fill(q, (size_t)(n * H * qk), 1.0f);
    float *dq = dup_dev(q, (size_t)(n * H * qk) * 4);
    float *dcs = dup_dev(hcs, (size_t)(n * rope) * 4);
    dout qabs = out_new((size_t)(n * H * W));
    float *hq = malloc((size_t)(n * H * W) * 4);
    CHECK(cuk_q_rope(dq, n, H, nope, rope, dcs, qabs.p, R, S) == cudaSuccess);
    CHECKF(out_fetch(&qabs, hq, "q_rope"), "q_rope");
    CU(cudaMemcpy(gq, dq, (size_t)(n * H * qk) * 4, cudaMemcpyDeviceToHost));
    int64_t qbad = 0;
    for (int64_t t = 0; t < n; t++)
        for (int64_t h = 0; h < H; h++) {
            float *x = q + (t * H + h) * qk;
            zop_rope_interleaved(x + nope, rope, hcs + t * rope, hcs + t * rope + half);
            qbad += memcmp(x, gq + (t * H + h) * qk, (size_t)qk * 4) != 0;
            qbad += memcmp(x + nope, hq + (t * H + h) * W + R, (size_t)rope * 4) != 0;
            for (int64_t c = 0; c < R; c++) qbad += f2u(hq[(t * H + h) * W + c]) != CANARY;
        }
    CHECKF(qbad == 0, "q_rope not bit-identical to zop_rope_interleaved (%lld)", (long long)qbad);
    out_free(&qabs);
    out_free(&cache);
    out_free(&cs);
    cudaFree(dq);
    cudaFree(dcs);
    cudaFree(dstep);
    cudaFree(dkv);
    cudaFree(dqa);
    cudaFree(dkvn);
    cudaFree(dqn);
    cudaFree(dinv);
    free(kv);
    free(qa);
    free(kvn);
    free(qn);
    free(inv);
    free(hcs);
    free(hcache);
    free(gkv);
    free(gqa);
    free(q);
    free(gq);
    free(hq);
}

static void case_silu_combine(int64_t d, int64_t K, int64_t n) {
    /* silu_mul */
    const int64_t m = 3001;
    float *g = malloc((size_t)m * 4), *u = malloc((size_t)m * 4), *h = malloc((size_t)m * 4), *ref = malloc((size_t)m * 4);
    fill(g, (size_t)m, 6.0f);
    fill(u, (size_t)m, 2.0f);
    float *dg = dup_dev(g, (size_t)m * 4), *du = dup_dev(u, (size_t)m * 4);
    dout o = out_new((size_t)m);
    CHECK(cuk_silu_mul(dg, du, m, o.p, S) == cudaSuccess);
    CHECKF(out_fetch(&o, h, "silu"), "silu_mul");
    zop_silu_mul(g, u, m, ref);
    double worst;
    CHECKF(near_rel(h, ref, (size_t)m, 1e-6, 1e-30, &worst), "silu_mul worst %.3g", worst);
    out_free(&o);

    /* combine in route order; the residual bit for bit (no contraction), then the norm */
    float *w = malloc((size_t)(n * K) * 4), *de = malloc((size_t)(n * K * d) * 4);
    float *sd = malloc((size_t)(n * d) * 4), *x = malloc((size_t)(n * d) * 4), *nw = malloc((size_t)d * 4);
    int32_t *slot = malloc((size_t)(n * K) * 4);
    fill(w, (size_t)(n * K), 1.0f);
    fill(de, (size_t)(n * K * d), 1.0f);
    fill(sd, (size_t)(n * d), 1.0f);
    fill(x, (size_t)(n * d), 1.0f);
    fill(nw, (size_t)d, 1.0f);
    for (int64_t i = 0; i < n * K; i++) slot[i] = (int32_t)((i * 7 + 3) % (n * K)); /* a permutation when gcd(7, nK) = 1 */
    float *dw = dup_dev(w, (size_t)(n * K) * 4), *dde = dup_dev(de, (size_t)(n * K * d) * 4);
    float *dsd = dup_dev(sd, (size_t)(n * d) * 4), *dnw = dup_dev(nw, (size_t)d * 4);
    int32_t *dslot = dup_dev(slot, (size_t)(n * K) * 4);
    for (int with_slot = 0; with_slot < 2; with_slot++) {
        float *dx = dup_dev(x, (size_t)(n * d) * 4);
        dout xn = out_new((size_t)(n * d));
        CHECK(cuk_moe_combine(dw, with_slot ? dslot : NULL, K, dde, dsd, dx, dnw, 1e-5f, xn.p, d,
                              n, S) == cudaSuccess);
        float *gx = malloc((size_t)(n * d) * 4), *gxn = malloc((size_t)(n * d) * 4);
        float *rx = malloc((size_t)(n * d) * 4), *rxn = malloc((size_t)(n * d) * 4);
        CHECKF(out_fetch(&xn, gxn, "combine"), "moe_combine");
        CU(cudaMemcpy(gx, dx, (size_t)(n * d) * 4, cudaMemcpyDeviceToHost));
        memcpy(rx, x, (size_t)(n * d) * 4);
        for (int64_t t = 0; t < n; t++) { /* moe.c's loop, then forward.c's add */
            for (int64_t i = 0; i < d; i++) {
                float acc = 0.0f;
                for (int64_t k = 0; k < K; k++) {
                    int64_t s = with_slot ? slot[t * K + k] : t * K + k;
                    acc += w[t * K + k] * de[s * d + i];
                }
                acc += sd[t * d + i];
                rx[t * d + i] += acc;
            }
            zop_rmsnorm(rx + t * d, nw, d, 1e-5f, rxn + t * d);
        }
        CHECKF(!memcmp(gx, rx, (size_t)(n * d) * 4), "moe_combine (slot=%d): residual not bit-identical",
               with_slot);
        CHECKF(near_rel(gxn, rxn, (size_t)(n * d), 2e-6, 1e-7, &worst), "moe_combine norm worst %.3g", worst);
        out_free(&xn);
        cudaFree(dx);
        free(gx);
        free(gxn);
        free(rx);
        free(rxn);
    }
    cudaFree(dg);
    cudaFree(du);
    cudaFree(dw);
    cudaFree(dde);
    cudaFree(dsd);
    cudaFree(dnw);
    cudaFree(dslot);
    free(g);
    free(u);
    free(h);
    free(ref);
    free(w);
    free(de);
    free(sd);
    free(x);
    free(nw);
    free(slot);
}

static void case_embed_convert(zdtype dt, int64_t V, int64_t d) {
    hmat m = hmat_new(dt, V, d);
    cuw dw = to_dev(&m.w);
    cu_step step = {.pos = 0, .n = 3, .ids = {(int32_t)(V - 1), 0, (int32_t)(V / 2)}};
    cu_step *dstep = dup_dev(&step, sizeof step);
    dout o = out_new((size_t)(3 * d));
    float *y = malloc((size_t)(3 * d) * 4), *ref = malloc((size_t)d * 4);
    CHECK(cuk_embed(dw, dstep, 3, o.p, S) == cudaSuccess);
    CHECKF(out_fetch(&o, y, "embed"), "embed %s", dt_name(dt));
    int64_t bad = 0;
    for (int t = 0; t < 3; t++) {
        zop_embed(&m.w, step.ids[t], ref);
        bad += memcmp(ref, y + t * d, (size_t)d * 4) != 0;
    }
    CHECKF(bad == 0, "embed %s not bit-identical", dt_name(dt));
    out_free(&o);
    /* cache rows -> float latents */
    const int64_t T = 9, R = 24, W = 33;
    uint16_t *c16 = malloc((size_t)(T * W) * 2);
    float *c32 = malloc((size_t)(T * W) * 4), *lat = malloc((size_t)(T * R) * 4);
    fill(c32, (size_t)(T * W), 1.0f);
    for (int64_t i = 0; i < T * W; i++) c16[i] = zf32_to_bf16(c32[i]);
    for (int b = 0; b < 2; b++) {
        void *dc = b ? dup_dev(c16, (size_t)(T * W) * 2) : dup_dev(c32, (size_t)(T * W) * 4);
        dout ol = out_new((size_t)(T * R));
        CHECK(cuk_cache_to_f32(dc, b, W, R, T, ol.p, S) == cudaSuccess);
        CHECKF(out_fetch(&ol, lat, "cache_to_f32"), "cache_to_f32");
        int64_t cb = 0;
        for (int64_t t = 0; t < T; t++)
            for (int64_t c = 0; c < R; c++)
                cb += f2u(lat[t * R + c]) != f2u(b ? zbf16_to_f32(c16[t * W + c]) : c32[t * W + c]);
        CHECKF(cb == 0, "cache_to_f32 (bf16=%d): %lld values off", b, (long long)cb);
        out_free(&ol);
        cudaFree(dc);
    }
    cudaFree((void *)dw.data);
    cudaFree(dstep);
    free(m.data);
    free(y);
    free(ref);
    free(c16);
    free(c32);
    free(lat);
}

/* ------------------------------------------------------------------ router */

static void case_route(int E, int K, int G, int TG, bool softmax, bool norm, float scale,
                       int ties, int64_t n) {
    float *lg = malloc((size_t)(n * E) * 4), *bias = malloc((size_t)E * 4);
    if (ties == 1) { /* all equal: the lowest ids, in order */
        for (int64_t i = 0; i < n * E; i++) lg[i] = 0.25f;
        for (int e = 0; e < E; e++) bias[e] = 0.0f;
    } else if (ties == 2) { /* pairs of equal scores */
        for (int64_t i = 0; i < n * E; i++) lg[i] = (float)((i % E) / 2) * 0.125f - 1.0f;
        for (int e = 0; e < E; e++) bias[e] = 0.0f;
    } else {
        fill(lg, (size_t)(n * E), 4.0f);
        fill(bias, (size_t)E, 0.1f);
    }
    cu_route_cfg cfg = {.n_experts = E, .k = K, .n_group = G, .topk_group = TG,
                        .norm_topk_prob = norm, .softmax_scoring = softmax, .scale = scale};
    zrouter_cfg rc = {.n_experts = E, .k = K, .n_group = G, .topk_group = TG,
                      .norm_topk_prob = norm, .scale = scale, .softmax_scoring = softmax};
    float *dl = dup_dev(lg, (size_t)(n * E) * 4), *db = dup_dev(bias, (size_t)E * 4);
    int32_t *didx;
    CU(cudaMalloc((void **)&didx, (size_t)(n * K) * 4));
    dout ow = out_new((size_t)(n * K));
    CHECK(cuk_route(cfg, dl, db, n, didx, ow.p, S) == cudaSuccess);
    float *w = malloc((size_t)(n * K) * 4), *work = malloc((size_t)(2 * E) * 4), rw[64];
    int32_t *idx = malloc((size_t)(n * K) * 4), ri[64];
    CHECKF(out_fetch(&ow, w, "route"), "route");
    CU(cudaMemcpy(idx, didx, (size_t)(n * K) * 4, cudaMemcpyDeviceToHost));
    int64_t idx_bad = 0, w_bad = 0;
    for (int64_t t = 0; t < n; t++) {
        zop_route(&rc, lg + t * E, bias, work, ri, rw);
        for (int k = 0; k < K; k++) {
            idx_bad += idx[t * K + k] != ri[k];
            w_bad += isnan(w[t * K + k]) || fabsf(w[t * K + k] - rw[k]) > 1e-6f * fabsf(rw[k]) + 1e-30f;
        }
    }
    CHECKF(idx_bad == 0, "route E=%d K=%d G=%d/%d softmax=%d ties=%d: %lld experts differ from zop_route",
           E, K, G, TG, softmax, ties, (long long)idx_bad);
    CHECKF(w_bad == 0, "route E=%d K=%d: %lld weights off", E, K, (long long)w_bad);
    out_free(&ow);
    cudaFree(dl);
    cudaFree(db);
    cudaFree(didx);
    free(lg);
    free(bias);
    free(w);
    free(work);
    free(idx);
}

/* ------------------------------------------------------------------ attention */

/* The cache rows [lat | k_pe] (float or bf16 bits) and the separate lat / k_pe arrays a
   zattn_job reads, all holding the same values. */
typedef struct hcache {
    void *rows;              /* [T, W] */
    void *lat, *kpe;         /* [T, R], [T, rope] */
    size_t es;
} hcache;

static hcache hcache_new(bool bf16, int64_t T, int64_t R, int64_t rope) {
    const int64_t W = R + rope;
    hcache c = {.es = bf16 ? 2 : 4};
    c.rows = malloc((size_t)(T * W) * c.es);
    c.lat = malloc((size_t)(T * R) * c.es);
    c.kpe = malloc((size_t)(T * rope) * c.es + 1);
    for (int64_t t = 0; t < T; t++)
        for (int64_t j = 0; j < W; j++) {
            float v = rng_unif();
            uint8_t *dst = (uint8_t *)c.rows + (size_t)(t * W + j) * c.es;
            uint8_t *sep = j < R ? (uint8_t *)c.lat + (size_t)(t * R + j) * c.es
                                 : (uint8_t *)c.kpe + (size_t)(t * rope + j - R) * c.es;
            if (bf16) {
                uint16_t b = zf32_to_bf16(v);
                memcpy(dst, &b, 2);
                memcpy(sep, &b, 2);
            } else {
                memcpy(dst, &v, 4);
                memcpy(sep, &v, 4);
            }
        }
    return c;
}

static void hcache_free(hcache *c) {
    free(c->rows);
    free(c->lat);
    free(c->kpe);
}

/* max over (query, head) of max|out - ref| / max|v| (v in [-1, 1]: max|v| <= 1) */
static void case_absorbed(bool bf16, int64_t H, int64_t R, int64_t rope, int64_t pos,
                          int64_t nq, int64_t nsplit) {
    const int64_t W = R + rope, T = pos + nq;
    const float scale = 0.1f;
    hcache hc = hcache_new(bf16, T + 5, R, rope); /* rows past T must not matter */
    float *q = malloc((size_t)(nq * H * W) * 4), *ql = malloc((size_t)(nq * H * R) * 4);
    float *qp = malloc((size_t)(nq * H * rope) * 4 + 4);
    fill(q, (size_t)(nq * H * W), 1.0f);
    for (int64_t i = 0; i < nq * H; i++) {
        memcpy(ql + i * R, q + i * W, (size_t)R * 4);
        memcpy(qp + i * rope, q + i * W + R, (size_t)rope * 4);
    }
    cu_step step = {.pos = (int32_t)pos, .n = (int32_t)nq};
    cu_step *dstep = dup_dev(&step, sizeof step);
    float *dq = dup_dev(q, (size_t)(nq * H * W) * 4);
    void *dc = dup_dev(hc.rows, (size_t)((T + 5) * W) * hc.es);
    float *po, *pml;
    CU(cudaMalloc((void **)&po, (size_t)(nq * nsplit * H * R) * 4));
    CU(cudaMalloc((void **)&pml, (size_t)(nq * nsplit * H * 2) * 4));
    dout o = out_new((size_t)(nq * H * R));
    cu_attn a = {.q = dq, .cache = dc, .cache_bf16 = bf16, .n_q = nq, .H = H, .R = R,
                 .rope = rope, .scale = scale, .step = dstep, .nsplit = nsplit, .part_o = po,
                 .part_ml = pml, .out = o.p};
    CHECK(cuk_attn_absorbed(&a, S) == cudaSuccess);
    float *out = malloc((size_t)(nq * H * R) * 4), *ref = malloc((size_t)(nq * H * R) * 4);
    CHECKF(out_fetch(&o, out, "absorbed"), "absorbed attention");
    float *scores = malloc((size_t)T * 4);
    zdtype kdt = bf16 ? ZDT_BF16 : ZDT_F32;
    zattn_job j = {.n_heads = H, .n_q = nq, .T = T, .dk = R, .dr = rope, .dv = R, .q = ql,
                   .qr = qp, .k = hc.lat, .k_stride = R, .kr = hc.kpe, .kr_stride = rope,
                   .kr_dtype = kdt, .v = hc.lat, .v_stride = R, .kv_dtype = kdt, .scale = scale,
                   .out = ref, .scratch = scores};
    for (int64_t i = 0; i < nq; i++)
        for (int64_t h = 0; h < H; h++) zattn_head_ref(&j, i, h, scores);
    double worst = 0;
    int64_t nan = 0;
    for (int64_t i = 0; i < nq * H * R; i++) {
        nan += isnan(out[i]);
        worst = fmax(worst, fabs((double)out[i] - ref[i]));
    }
    CHECKF(nan == 0 && worst <= 2e-5,
           "absorbed attention bf16=%d H=%lld R=%lld pos=%lld nq=%lld split=%lld: max err %.3g, %lld NaN",
           bf16, (long long)H, (long long)R, (long long)pos, (long long)nq, (long long)nsplit,
           worst, (long long)nan);
    out_free(&o);
    cudaFree(dstep);
    cudaFree(dq);
    cudaFree(dc);
    cudaFree(po);
    cudaFree(pml);
    hcache_free(&hc);
    free(q);
    free(ql);
    free(qp);
    free(out);
    free(ref);
    free(scores);
}

static void case_expanded(bool bf16, int64_t H, int64_t nope, int64_t rope, int64_t vd,
                          int64_t R, int64_t pos, int64_t n) {
    const int64_t T = pos + n, W = R + rope, qk = nope + rope, hs = nope + vd;
    const float scale = 0.1f;
    hcache hc = hcache_new(bf16, T, R, rope);
    float *q = malloc((size_t)(n * H * qk) * 4), *kvb = malloc((size_t)(T * H * hs) * 4);
    fill(q, (size_t)(n * H * qk), 1.0f);
    fill(kvb, (size_t)(T * H * hs), 1.0f);
    cu_step step = {.pos = (int32_t)pos, .n = (int32_t)n};
    cu_step *dstep = dup_dev(&step, sizeof step);
    float *dq = dup_dev(q, (size_t)(n * H * qk) * 4), *dkvb = dup_dev(kvb, (size_t)(T * H * hs) * 4);
    void *dc = dup_dev(hc.rows, (size_t)(T * W) * hc.es);
    dout o = out_new((size_t)(n * H * vd));
    cu_attn_x a = {.q = dq, .kvb = dkvb, .cache = dc, .cache_bf16 = bf16, .n = n, .H = H,
                   .nope = nope, .rope = rope, .vd = vd, .R = R, .scale = scale, .step = dstep,
                   .out = o.p};
    CHECK(cuk_attn_expanded(&a, S) == cudaSuccess);
    float *out = malloc((size_t)(n * H * vd) * 4), *ref = malloc((size_t)(n * H * vd) * 4);
    CHECKF(out_fetch(&o, out, "expanded"), "expanded attention");
    /* the reference reads q_nope / q_pe as separate arrays */
    float *qn = malloc((size_t)(n * H * nope) * 4), *qp = malloc((size_t)(n * H * rope) * 4);
    for (int64_t i = 0; i < n * H; i++) {
        memcpy(qn + i * nope, q + i * qk, (size_t)nope * 4);
        memcpy(qp + i * rope, q + i * qk + nope, (size_t)rope * 4);
    }
    float *scores = malloc((size_t)T * 4);
    zattn_job j = {.n_heads = H, .n_q = n, .T = T, .dk = nope, .dr = rope, .dv = vd, .q = qn,
                   .qr = qp, .k = kvb, .k_stride = H * hs, .k_head = hs,
                   .kr = (const uint8_t *)hc.rows + (size_t)R * hc.es, .kr_stride = W,
                   .kr_dtype = bf16 ? ZDT_BF16 : ZDT_F32, .v = kvb + nope, .v_stride = H * hs,
                   .v_head = hs, .kv_dtype = ZDT_F32, .scale = scale, .out = ref, .scratch = scores};
    for (int64_t i = 0; i < n; i++)
        for (int64_t h = 0; h < H; h++) zattn_head_ref(&j, i, h, scores);
    double worst = 0;
    int64_t nan = 0;
    for (int64_t i = 0; i < n * H * vd; i++) {
        nan += isnan(out[i]);
        worst = fmax(worst, fabs((double)out[i] - ref[i]));
    }
    CHECKF(nan == 0 && worst <= 2e-5, "expanded attention bf16=%d H=%lld T=%lld: max err %.3g, %lld NaN",
           bf16, (long long)H, (long long)T, worst, (long long)nan);
    out_free(&o);
    cudaFree(dstep);
    cudaFree(dq);
    cudaFree(dkvb);
    cudaFree(dc);
    hcache_free(&hc);
    free(q);
    free(kvb);
    free(out);
    free(ref);
    free(qn);
    free(qp);
    free(scores);
}

static void kernel_cases(bool quick) {
    /* GLM-4.7-Flash decode shapes (q_a, kv_a, q_b, o, router, lm_head slice), odd ones */
    case_matvec(ZDT_BF16, 768, 2048);
    case_matvec(ZDT_BF16, 576, 2048);
    case_matvec(ZDT_BF16, 5120, 768);
    case_matvec(ZDT_BF16, 2048, 5120);
    case_matvec(ZDT_F32, 64, 2048);
    case_matvec(ZDT_F16, 256, 2048);
    case_matvec(ZDT_F32, 100, 1000);
    case_matvec(ZDT_BF16, 100, 1001); /* rows not 16-byte aligned: scalar path */
    case_matvec(ZDT_F16, 33, 70);
    case_matvec(ZDT_BF16, 1, 8);
    case_matvec(ZDT_BF16, 300, 10240); /* the dense MLP's down: a row over 8 warps */
    case_matvec(ZDT_F32, 37, 4096);    /* 4 warps a row, a half-empty last block */
    if (!quick) case_matvec(ZDT_BF16, 8192, 2048);
    case_per_head(ZDT_BF16, 20, 192, 256, 512); /* GLM-4.7-Flash kv_b */
    case_per_head(ZDT_F32, 4, 32, 32, 64);      /* the tiny fixtures */
    case_per_head(ZDT_F16, 3, 5, 7, 12);
    case_multi();
    case_experts(ZDT_BF16, quick ? 4 : 8, 1536, 2048);
    case_experts(ZDT_F32, 5, 64, 128);
    case_experts(ZDT_F16, 3, 40, 72); /* odd: scalar path */
    case_gemm(ZDT_BF16, 768, 2048, 37);
    case_gemm(ZDT_F32, 100, 130, 5);
    case_gemm(ZDT_F16, 129, 64, 130);
    case_gemm(ZDT_BF16, 576, 512, 1);
    case_grouped(ZDT_BF16, 64, 4, 96, 256, 70);
    case_grouped(ZDT_F32, 16, 4, 64, 128, 128);
    case_grouped(ZDT_BF16, 8, 4, 33, 40, 3);
    /* elementwise */
    case_norms(2048, 3);
    case_norms(130, 2);
    for (int b = 0; b < 2; b++) {
        case_attn_prep(b, 512, 64, 768, 20, 192, 5, 3, 1.0f);  /* GLM-4.7-Flash */
        case_attn_prep(b, 64, 16, 64, 4, 32, 0, 1, 1.2f);      /* tiny, YaRN mscale */
        case_attn_prep(b, 512, 64, 1536, 2, 128, 70000, 2, 1.0f); /* DeepSeek-V3, far position */
    }
    case_silu_combine(2048, 4, 1);
    case_silu_combine(130, 8, 5);
    case_silu_combine(64, 16, 3);
    case_embed_convert(ZDT_BF16, 1000, 2048);
    case_embed_convert(ZDT_F32, 10, 100);
    case_embed_convert(ZDT_F16, 17, 24);
    /* router: GLM-4.7-Flash, DeepSeek-V3 groups, Kimi, the tiny fixtures, softmax, ties */
    case_route(64, 4, 1, 1, false, true, 1.8f, 0, 7);
    case_route(256, 8, 8, 4, false, true, 2.5f, 0, 5);
    case_route(384, 8, 1, 1, false, true, 2.827f, 0, 3);
    case_route(16, 4, 4, 2, false, true, 2.5f, 0, 9);
    case_route(8, 4, 1, 1, false, true, 1.8f, 0, 4);
    case_route(64, 6, 1, 1, true, false, 1.0f, 0, 3);
    case_route(64, 4, 1, 1, false, true, 1.8f, 1, 2);
    case_route(64, 8, 8, 4, false, true, 2.5f, 1, 2);
    case_route(64, 16, 4, 2, false, false, 1.0f, 2, 2);
    case_route(1024, 16, 1, 1, false, true, 1.0f, 0, 2);
    /* attention */
    for (int b = 0; b < 2; b++) {
        case_absorbed(b, 20, 512, 64, 0, 1, 1);
        case_absorbed(b, 20, 512, 64, 4, 1, 8);
        case_absorbed(b, 20, 512, 64, 37, 1, 8);
        case_absorbed(b, 20, 512, 64, 300, 1, 64);
        if (!quick) case_absorbed(b, 20, 512, 64, 2047, 1, 64);
        case_absorbed(b, 20, 512, 64, 10, 5, 1);   /* prefill on the absorbed path */
        case_absorbed(b, 4, 64, 16, 20, 3, 2);     /* tiny, several queries and splits */
        case_absorbed(b, 7, 100, 10, 50, 2, 3);    /* heads not a multiple of 4 */
        case_expanded(b, 4, 32, 16, 32, 64, 30, 4);
        case_expanded(b, 20, 192, 64, 256, 512, 70, 3);
        case_expanded(b, 3, 10, 6, 300, 20, 200, 2);
    }
}

/* ------------------------------------------------------------------ models */

static double rel_err(const float *a, const float *ref, size_t n) {
    double mx = 0, md = 0;
    for (size_t i = 0; i < n; i++) {
        mx = fmax(mx, fabs(ref[i]));
        md = isnan(a[i]) ? INFINITY : fmax(md, fabs((double)a[i] - ref[i]));
    }
    return mx > 0 ? md / mx : md;
}

static zmlx_model *load(const char *path, zmlx_backend_kind be, zmlx_kv_dtype kv) {
    zmlx_model_params mp = zmlx_model_default_params();
    mp.backend = be;
    mp.precision = ZMLX_PRECISION_EXACT;
    mp.kv_dtype = kv;
    mp.patterns = "none";
    mp.threads = 0;
    zmlx_model *m = NULL;
    char err[ZMLX_ERR_MAX];
    zmlx_status st = zmlx_model_load(path, &mp, &m, err, sizeof err);
    CHECKF(st == ZMLX_OK, "load %s: %s", path, err);
    return m;
}

static void run_golden(const char *name, zmlx_attn_path path) {
    char dir[1024];
    tc_shared(dir, sizeof dir, "fixtures/models/");
    strncat(dir, name, sizeof dir - strlen(dir) - 1);
    golden g = {0};
    CHECKF(load_golden(dir, &g), "%s golden", name);
    if (!g.vocab) return;
    zmlx_model *m = load(dir, ZMLX_BACKEND_CUDA, ZMLX_KV_DEFAULT);
    if (!m) return;
    zmlx_session_params sp = zmlx_session_default_params();
    sp.attn_path = path;
    zmlx_session *s = NULL;
    char err[ZMLX_ERR_MAX];
    CHECKF(zmlx_session_init(m, &sp, &s, err, sizeof err) == ZMLX_OK, "%s", err);
    float *all = malloc(g.n_prompt * g.vocab * sizeof(float));
    CHECKF(zmlx_session_eval(s, g.prompt, g.n_prompt, all, 1) == ZMLX_OK, "%s", zmlx_session_error(s));
    size_t am = 0;
    for (size_t t = 0; t < g.n_prompt; t++) am += argmax(all + t * g.vocab, g.vocab) == g.prefill_argmax[t];
    CHECKF(am == g.n_prompt, "%s cuda: prefill argmax %zu/%zu", name, am, g.n_prompt);
    float *logits = all + (g.n_prompt - 1) * g.vocab;
    double r0 = rel_err(logits, g.step0, g.vocab);
    CHECKF(r0 <= 1e-4, "%s cuda path=%d step0 rel err %.3g", name, path, r0);
    size_t same = 0;
    for (size_t i = 0; i < g.n_tokens; i++) {
        same += argmax(logits, g.vocab) == g.tokens[i];
        if (i + 1 == g.n_tokens) break;
        CHECK(zmlx_session_eval(s, &g.tokens[i], 1, logits, 0) == ZMLX_OK);
    }
    double r1 = rel_err(logits, g.last, g.vocab);
    CHECKF(same == g.n_tokens, "%s cuda path=%d: greedy tokens %zu/%zu", name, path, same, g.n_tokens);
    CHECKF(r1 <= 1e-4, "%s cuda path=%d last rel err %.3g", name, path, r1);
    printf("golden %-14s cuda path=%d: %zu/%zu tokens, step0 rel err %.3g, last %.3g\n", name,
           path, same, g.n_tokens, r0, r1);
    free(all);
    free(g.step0);
    free(g.last);
    zmlx_session_free(s);
    zmlx_model_free(m);
}

/* glm47-mini on the cpu backend and on cuda: prefill rows, then decode steps fed the cpu's
   greedy tokens; every logits row within 1e-4 * max|ref|. */
static void cpu_vs_cuda(const char *spec, zmlx_kv_dtype kv, int64_t n_prompt, int steps) {
    zmlx_model *mc = load(spec, ZMLX_BACKEND_CPU, kv), *mg = load(spec, ZMLX_BACKEND_CUDA, kv);
    if (!mc || !mg) {
        zmlx_model_free(mc);
        zmlx_model_free(mg);
        return;
    }
    const size_t V = (size_t)zmlx_model_vocab_size(mc);
    zmlx_session *sc = NULL, *sg = NULL;
    char err[ZMLX_ERR_MAX];
    CHECK(zmlx_session_init(mc, NULL, &sc, err, sizeof err) == ZMLX_OK);
    CHECK(zmlx_session_init(mg, NULL, &sg, err, sizeof err) == ZMLX_OK);
    int32_t *ids = malloc((size_t)n_prompt * 4);
    for (int64_t i = 0; i < n_prompt; i++) ids[i] = (int32_t)(rng_u64() % V);
    const bool rows = n_prompt <= 200; /* all rows of a short prompt, the last of a long one */
    float *lc = malloc((size_t)(rows ? n_prompt : 1) * V * 4), *lg = malloc((size_t)(rows ? n_prompt : 1) * V * 4);
    CHECKF(zmlx_session_eval(sc, ids, (size_t)n_prompt, lc, rows) == ZMLX_OK, "%s", zmlx_session_error(sc));
    CHECKF(zmlx_session_eval(sg, ids, (size_t)n_prompt, lg, rows) == ZMLX_OK, "%s", zmlx_session_error(sg));
    double worst = 0;
    for (int64_t t = 0; t < (rows ? n_prompt : 1); t++) worst = fmax(worst, rel_err(lg + t * V, lc + t * V, V));
    /* f32 cache: summation order only.  bf16 cache: a latent one f32 ulp apart can round to
       a neighbouring bf16 (2^-8 relative), so the bound is that of an approx setting, still
       ten times under the bf16-vs-f32 cache difference (~4e-3, tests/test_session.c). */
    const double tol = kv == ZMLX_KV_BF16 ? 2e-3 : 1e-4;
    CHECKF(worst <= tol, "%s kv=%d prefill %lld: cuda vs cpu rel err %.3g", spec, kv,
           (long long)n_prompt, worst);
    double wd = 0;
    int agree = 0;
    const float *pc = lc + (rows ? n_prompt - 1 : 0) * V, *pg = lg + (rows ? n_prompt - 1 : 0) * V;
    float *dc = malloc(V * 4), *dg = malloc(V * 4);
    for (int i = 0; i < steps; i++) {
        int32_t tok = argmax(pc, V);
        agree += argmax(pg, V) == tok;
        CHECK(zmlx_session_eval(sc, &tok, 1, dc, 0) == ZMLX_OK);
        CHECKF(zmlx_session_eval(sg, &tok, 1, dg, 0) == ZMLX_OK, "%s", zmlx_session_error(sg));
        wd = fmax(wd, rel_err(dg, dc, V));
        pc = dc;
        pg = dg;
    }
    CHECKF(wd <= tol, "%s kv=%d decode: cuda vs cpu rel err %.3g", spec, kv, wd);
    CHECKF(agree == steps, "%s kv=%d: greedy argmax agreed %d/%d", spec, kv, agree, steps);
    printf("%s kv=%s prompt %lld: cuda vs cpu prefill rel err %.3g, %d decode steps %.3g, argmax %d/%d\n",
           spec, kv == ZMLX_KV_BF16 ? "bf16" : "f32", (long long)n_prompt, worst, steps, wd, agree, steps);
    CHECK(zmlx_session_peak_bytes(sg) > 0);
    free(ids);
    free(lc);
    free(lg);
    free(dc);
    free(dg);
    zmlx_session_free(sc);
    zmlx_session_free(sg);
    zmlx_model_free(mc);
    zmlx_model_free(mg);
}

/* Two runs of the same tokens on fresh sessions: identical logits bits. */
static void determinism(const char *spec) {
    zmlx_model *m = load(spec, ZMLX_BACKEND_CUDA, ZMLX_KV_DEFAULT);
    if (!m) return;
    const size_t V = (size_t)zmlx_model_vocab_size(m);
    int32_t ids[20];
    for (int i = 0; i < 20; i++) ids[i] = (int32_t)(rng_u64() % V);
    uint64_t hash[2] = {0, 0};
    float *l = malloc(V * 4);
    for (int run = 0; run < 2; run++) {
        zmlx_session *s = NULL;
        char err[ZMLX_ERR_MAX];
        CHECK(zmlx_session_init(m, NULL, &s, err, sizeof err) == ZMLX_OK);
        CHECK(zmlx_session_eval(s, ids, 12, l, 0) == ZMLX_OK);
        for (int i = 12; i < 20; i++) CHECK(zmlx_session_eval(s, &ids[i], 1, l, 0) == ZMLX_OK);
        uint64_t h = 1469598103934665603ULL; /* FNV-1a over the last logits */
        for (size_t i = 0; i < V * 4; i++) h = (h ^ ((uint8_t *)l)[i]) * 1099511628211ULL;
        hash[run] = h;
        zmlx_session_free(s);
    }
    CHECKF(hash[0] == hash[1], "%s: two cuda runs differ (%016llx vs %016llx)", spec,
           (unsigned long long)hash[0], (unsigned long long)hash[1]);
    printf("%s: last-logits hash %016llx, twice\n", spec, (unsigned long long)hash[0]);
    free(l);
    zmlx_model_free(m);
}

static void refusals(void) {
    char dir[1024], err[ZMLX_ERR_MAX];
    tc_shared(dir, sizeof dir, "fixtures/models/dsv32-tiny");
    zmlx_model_params mp = zmlx_model_default_params();
    mp.backend = ZMLX_BACKEND_CUDA;
    zmlx_model *m = NULL;
    zmlx_status st = zmlx_model_load(dir, &mp, &m, err, sizeof err);
    CHECKF(st == ZMLX_ERR_UNSUPPORTED && strstr(err, "deepseek_v32"), "dsv32 on cuda: %d %s", st, err);
    zmlx_model_free(m);
}

int main(void) {
    zerr e = {{0}};
    const zbackend_ops *be = zbackend_get(ZMLX_BACKEND_CUDA);
    CHECK(be != NULL);
    if (!be || be->probe(&e) != ZMLX_OK) {
        /* no GPU here: `--backend cuda` must fail cleanly, and everything else still run */
        zmlx_model_params mp = zmlx_model_default_params();
        mp.backend = ZMLX_BACKEND_CUDA;
        zmlx_model *m = NULL;
        char err[ZMLX_ERR_MAX] = "";
        zmlx_status st = zmlx_model_load("builtin:glm47-tiny", &mp, &m, err, sizeof err);
        CHECKF(st == ZMLX_ERR_BACKEND && m == NULL && strstr(err, "CUDA unavailable"),
               "load on cuda without a device: status %d, \"%s\"", st, err);
        mp.backend = ZMLX_BACKEND_CPU;
        st = zmlx_model_load("builtin:glm47-tiny", &mp, &m, err, sizeof err);
        CHECKF(st == ZMLX_OK, "cpu load after the cuda failure: %s", err);
        zmlx_model_free(m);
        printf("SKIP: no CUDA device (%s)\n", e.msg);
        printf("%d passed, %d failed, 1 skipped\n", tc_pass, tc_fail);
        return tc_fail ? 1 : 0;
    }
    struct cudaDeviceProp prop;
    CU(cudaGetDeviceProperties(&prop, 0));
    printf("device: %s (%d SMs, %.1f GiB)\n", prop.name, prop.multiProcessorCount,
           (double)prop.totalGlobalMem / 1073741824.0);
    CU(cudaStreamCreate(&S));
    CU(cuk_init());
    const bool quick = getenv("ZMLX_TEST_CUDA_QUICK") && !strcmp(getenv("ZMLX_TEST_CUDA_QUICK"), "1");
    kernel_cases(quick);
    int kernel_fail = tc_fail;
    printf("kernel cases: %d passed, %d failed\n", tc_pass, tc_fail);
    run_golden("glm47-tiny", ZMLX_ATTN_AUTO);
    if (!quick) {
        run_golden("glm47-tiny-v5", ZMLX_ATTN_AUTO);
        run_golden("dsv3-tiny", ZMLX_ATTN_AUTO);
        run_golden("glm47-tiny", ZMLX_ATTN_ABSORBED);
        run_golden("glm47-tiny", ZMLX_ATTN_EXPANDED);
        run_golden("dsv3-tiny", ZMLX_ATTN_ABSORBED);
        refusals();
        cpu_vs_cuda("builtin:glm47-mini:bits=16", ZMLX_KV_F32, 40, 24);
        cpu_vs_cuda("builtin:glm47-mini:bits=16", ZMLX_KV_BF16, 40, 24);
        cpu_vs_cuda("builtin:glm47-mini:bits=16", ZMLX_KV_F32, 700, 6);
        determinism("builtin:glm47-mini:bits=16"); /* bf16: the cuda backend runs dense weights */
    }
    (void)kernel_fail;
    cudaStreamDestroy(S);
    return tc_done();
}
#endif
