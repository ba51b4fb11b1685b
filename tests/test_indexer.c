/*
 * test_indexer.c — the DeepSeek-V3.2 DSA lightning indexer (src/model/indexer.c) and
 * sparse attention, piece by piece against plain double-precision re-implementations
 * written here:
 *   - zop_layernorm (k_norm: biased variance, weight and bias) and zop_rope_half
 *     (non-interleaved: pairs (i, i + d/2), unlike the MLA's interleaved pairs);
 *   - zidx_combine: score(u) = sum_h w_h relu(q_h·k_u * scale);
 *   - zidx_topk: the k best, ties to the lower position, ascending — random scores,
 *     heavy ties (small integers, all equal), k = 1, k = T - 1, k >= T (everything);
 *   - zidx_forward on builtin:dsv32-tiny (cpu-ref and cpu, f32 cache): the cached keys
 *     of two chunks (the second one sees the first one's keys), "dense" (-1) for every
 *     query that sees no more than index_topk keys, and the selected sets of the others
 *     equal to the reference's (a difference is only allowed within 1e-6 of the k-th
 *     score, i.e. at a numerical tie);
 *   - the attention kernel: a selection list holding every causal position gives the
 *     dense result bit for bit, and a proper subset matches a double-precision masked
 *     attention (cpu-ref, and the cpu backend on 2 threads bit for bit);
 *   - at model level: index_topk at or above the context length changes nothing (bit
 *     for bit), a smaller index_topk changes the logits, and the sparse model's absorbed
 *     and expanded paths agree.
 */
#include "backend/backend.h"
#include "model/indexer.h"
#include "model/session.h"
#include "ops/ops.h"
#include "tcheck.h"
#include "trand.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ helpers */

static void fill(trng *r, float *x, int64_t n, double amp) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)(amp * rng_uni(r));
}

static double max_abs(const double *x, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

/* ------------------------------------------------------------------ scalar pieces */

static void ln_ref(const float *x, const float *w, const float *b, int64_t d, double eps,
                   double *y) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < d; i++) mean += x[i];
    mean /= (double)d;
    for (int64_t i = 0; i < d; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= (double)d;
    for (int64_t i = 0; i < d; i++) y[i] = (x[i] - mean) / sqrt(var + eps) * w[i] + b[i];
}

static void rope_half_ref(double *x, int64_t d, const float *c, const float *s) {
    const int64_t h = d / 2;
    for (int64_t i = 0; i < h; i++) {
        double a = x[i], b = x[h + i];
        x[i] = a * c[i] - b * s[i];
        x[h + i] = b * c[i] + a * s[i];
    }
}

static void test_layernorm(void) {
    trng r = {11};
    const int64_t dims[] = {1, 2, 32, 128, 300};
    for (size_t k = 0; k < sizeof dims / sizeof dims[0]; k++) {
        const int64_t d = dims[k];
        float x[300], w[300], b[300], y[300];
        double yr[300];
        fill(&r, x, d, 3.0);
        for (int64_t i = 0; i < d; i++) x[i] += 5.0f; /* a large mean: the two-pass variance */
        for (int64_t i = 0; i < d; i++) w[i] = (float)(1.0 + 0.2 * rng_uni(&r));
        fill(&r, b, d, 0.1);
        zop_layernorm(x, w, b, d, 1e-6f, y);
        ln_ref(x, w, b, d, 1e-6, yr);
        double err = 0;
        for (int64_t i = 0; i < d; i++) err = fmax(err, fabs(y[i] - yr[i]));
        CHECKF(err <= 1e-5 * fmax(1.0, max_abs(yr, d)), "layernorm d=%lld err %.3g", (long long)d,
               err);
        zop_layernorm(x, w, b, d, 1e-6f, x); /* in place */
        CHECKF(!memcmp(x, y, (size_t)d * sizeof(float)), "layernorm in place d=%lld", (long long)d);
    }
}

static void test_rope_half(void) {
    trng r = {12};
    const int64_t d = 16, half = d / 2;
    float inv[8], c[8], s[8], x[32];
    for (int64_t i = 0; i < half; i++) inv[i] = (float)pow(10000.0, -2.0 * (double)i / (double)d);
    zop_rope_table(37, inv, half, 1.0f, c, s);
    fill(&r, x, 32, 1.0);
    double xr[32];
    for (int i = 0; i < 32; i++) xr[i] = x[i];
    zop_rope_half(x, d, c, s); /* only the first d of 32 dims (the indexer's rope part) */
    rope_half_ref(xr, d, c, s);
    double err = 0;
    for (int i = 0; i < 32; i++) err = fmax(err, fabs(x[i] - xr[i]));
    CHECKF(err <= 1e-6, "rope_half err %.3g", err);
    /* pairing: (0, half) rotate together; the interleaved op pairs (0, 1) instead */
    float e0[16] = {1.0f}, e1[16] = {1.0f};
    zop_rope_half(e0, d, c, s);
    zop_rope_interleaved(e1, d, c, s);
    CHECK(e0[half] == s[0] && e0[1] == 0.0f);
    CHECK(e1[1] == s[0] && e1[half] == 0.0f);
}

static void test_combine(void) {
    trng r = {13};
    const int64_t H = 5, T = 37;
    float heads[5 * 37], w[5], out[37];
    fill(&r, heads, H * T, 2.0);
    fill(&r, w, H, 1.0);
    zidx_combine(heads, H, T, w, 0.25f, out);
    double ref[37], err = 0;
    for (int64_t u = 0; u < T; u++) {
        ref[u] = 0;
        for (int64_t h = 0; h < H; h++) ref[u] += w[h] * fmax(0.0, heads[h * T + u] * 0.25);
    }
    for (int64_t u = 0; u < T; u++) err = fmax(err, fabs(out[u] - ref[u]));
    CHECKF(err <= 1e-6 * fmax(1.0, max_abs(ref, T)), "combine err %.3g", err);
}

/* ------------------------------------------------------------------ top-k */

/* Reference: positions sorted by (score desc, position asc), the first k, ascending. */
static int64_t topk_ref(const double *score, int64_t T, int64_t k, int32_t *out) {
    int32_t *ord = malloc((size_t)T * sizeof *ord);
    for (int64_t i = 0; i < T; i++) ord[i] = (int32_t)i;
    for (int64_t i = 1; i < T; i++) /* insertion sort: clear, T small */
        for (int64_t j = i; j > 0; j--) {
            int32_t a = ord[j - 1], b = ord[j];
            bool after = score[b] > score[a] || (score[b] == score[a] && b < a);
            if (!after) break;
            ord[j - 1] = b;
            ord[j] = a;
        }
    int64_t m = k < T ? k : T;
    bool *pick = calloc((size_t)T, 1);
    for (int64_t i = 0; i < m; i++) pick[ord[i]] = true;
    int64_t n = 0;
    for (int64_t i = 0; i < T; i++)
        if (pick[i]) out[n++] = (int32_t)i;
    free(pick);
    free(ord);
    return n;
}

static void topk_case(const float *score, int64_t T, int64_t k, const char *what) {
    float *work = malloc((size_t)T * sizeof(float));
    int32_t *got = malloc((size_t)T * sizeof(int32_t)), *want = malloc((size_t)T * sizeof(int32_t));
    double *sd = malloc((size_t)T * sizeof(double));
    for (int64_t i = 0; i < T; i++) sd[i] = score[i];
    int64_t ng = zidx_topk(score, T, k, work, got), nw = topk_ref(sd, T, k, want);
    CHECKF(ng == nw && !memcmp(got, want, (size_t)nw * sizeof(int32_t)),
           "topk %s T=%lld k=%lld: %lld vs %lld positions", what, (long long)T, (long long)k,
           (long long)ng, (long long)nw);
    free(work);
    free(got);
    free(want);
    free(sd);
}

static void test_topk(void) {
    trng r = {14};
    const int64_t T = 500;
    float sc[500];
    const int64_t ks[] = {1, 2, 8, 100, 499, 500, 600};
    fill(&r, sc, T, 1.0);
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) topk_case(sc, T, ks[i], "random");
    for (int64_t i = 0; i < T; i++) sc[i] = (float)floor(4.0 * rng_uni(&r)); /* 8 values, many ties */
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) topk_case(sc, T, ks[i], "ties");
    for (int64_t i = 0; i < T; i++) sc[i] = 0.0f; /* ReLU zeros everywhere */
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) topk_case(sc, T, ks[i], "all equal");
    for (int64_t i = 0; i < T; i++) sc[i] = (float)(T - i); /* sorted descending */
    topk_case(sc, T, 10, "descending");
    for (int64_t i = 0; i < T; i++) sc[i] = (float)i; /* sorted ascending */
    topk_case(sc, T, 10, "ascending");
    /* explicit: ties at the boundary go to the lower positions */
    const float t6[6] = {1, 3, 2, 3, 2, 2};
    int32_t out[6];
    float work[6];
    CHECK(zidx_topk(t6, 6, 3, work, out) == 3 && out[0] == 1 && out[1] == 2 && out[2] == 3);
    CHECK(zidx_topk(t6, 6, 1, work, out) == 1 && out[0] == 1);
    CHECK(zidx_topk(t6, 6, 9, work, out) == 6 && out[5] == 5);
}

/* ------------------------------------------------------------------ zidx_forward */

typedef struct ref_layer {
    int64_t d, ql, nI, dI, rope, topk;
    double *keys; /* [T, dI] every position so far */
} ref_layer;

/* Keys, queries, head weights of one row in double, from the layer's weights. */
static void ref_row(const zlayer *L, const ref_layer *R, const float *x, const float *cq,
                    const float *c, const float *s, double *k, double *q, double *w) {
    float kf[256];
    for (int64_t i = 0; i < R->dI; i++) {
        double a = 0;
        for (int64_t j = 0; j < R->d; j++) a += (double)zweight_get(&L->idx_wk, i, j) * x[j];
        kf[i] = (float)a; /* LayerNorm input (ln_ref takes floats) */
    }
    ln_ref(kf, L->idx_k_norm, L->idx_k_bias, R->dI, 1e-6, k);
    rope_half_ref(k, R->rope, c, s);
    for (int64_t h = 0; h < R->nI; h++) {
        double *qh = q + h * R->dI;
        for (int64_t i = 0; i < R->dI; i++) {
            double a = 0;
            for (int64_t j = 0; j < R->ql; j++)
                a += (double)zweight_get(&L->idx_wq_b, h * R->dI + i, j) * cq[j];
            qh[i] = a;
        }
        rope_half_ref(qh, R->rope, c, s);
        double a = 0;
        for (int64_t j = 0; j < R->d; j++) a += (double)zweight_get(&L->idx_w, h, j) * x[j];
        w[h] = a / sqrt((double)R->nI);
    }
}

/* The session's selection of row t against the reference's scores over T keys. */
static void check_selection(const zmlx_session *s, int64_t t, int64_t T, const ref_layer *R,
                            const double *q, const double *w, const char *be) {
    if (T <= R->topk) {
        CHECKF(s->s.sel_n[t] == -1, "%s: query at %lld (T=%lld) should be dense", be,
               (long long)(s->n_past + t), (long long)T);
        return;
    }
    double *score = malloc((size_t)T * sizeof(double));
    for (int64_t u = 0; u < T; u++) {
        score[u] = 0;
        for (int64_t h = 0; h < R->nI; h++) {
            double dot = 0;
            for (int64_t i = 0; i < R->dI; i++) dot += q[h * R->dI + i] * R->keys[u * R->dI + i];
            score[u] += w[h] * fmax(0.0, dot / sqrt((double)R->dI));
        }
    }
    int32_t *want = malloc((size_t)T * sizeof(int32_t));
    int64_t nw = topk_ref(score, T, R->topk, want);
    const int32_t *got = s->s.sel + t * s->s.sel_cap;
    double kth = INFINITY, tol = 1e-6 * max_abs(score, T);
    for (int64_t i = 0; i < nw; i++) kth = fmin(kth, score[want[i]]);
    bool ok = s->s.sel_n[t] == nw;
    for (int64_t i = 0; ok && i < nw; i++)
        ok = got[i] == want[i] || (fabs(score[got[i]] - kth) <= tol && fabs(score[want[i]] - kth) <= tol);
    for (int64_t i = 1; ok && i < nw; i++) ok = got[i] > got[i - 1]; /* ascending */
    CHECKF(ok, "%s: selection of the query at %lld (T=%lld) differs from the reference", be,
           (long long)(s->n_past + t), (long long)T);
    free(score);
    free(want);
}

/* One chunk of n random rows at the session's n_past through layer l's indexer. */
static void forward_chunk(zmlx_session *s, int l, int64_t n, ref_layer *R, trng *r,
                          const char *be) {
    const zmlx_model *m = s->m;
    const zlayer *L = &m->layers[l];
    const int64_t half = m->cfg.qk_rope_dim / 2;
    fill(r, s->s.xn, n * R->d, 1.0);
    fill(r, s->s.qa, n * R->ql, 1.0);
    for (int64_t t = 0; t < n; t++)
        zop_rope_table(s->n_past + t, m->inv_freq, half, m->rope_mscale, s->cos_t + t * half,
                       s->sin_t + t * half);
    zidx_forward(s, l, n);
    double *q = malloc((size_t)(n * R->nI * R->dI) * sizeof(double));
    double *w = malloc((size_t)(n * R->nI) * sizeof(double));
    double kerr = 0, kmax = 0;
    for (int64_t t = 0; t < n; t++) {
        double *k = R->keys + (s->n_past + t) * R->dI;
        ref_row(L, R, s->s.xn + t * R->d, s->s.qa + t * R->ql, s->cos_t + t * half,
                s->sin_t + t * half, k, q + t * R->nI * R->dI, w + t * R->nI);
        const float *kc = (const float *)s->kidx[l] + (s->n_past + t) * R->dI;
        for (int64_t i = 0; i < R->dI; i++) {
            kerr = fmax(kerr, fabs(kc[i] - k[i]));
            kmax = fmax(kmax, fabs(k[i]));
        }
    }
    CHECKF(kerr <= 1e-5 * kmax, "%s: cached indexer keys err %.3g (max %.3g)", be, kerr, kmax);
    for (int64_t t = 0; t < n; t++)
        check_selection(s, t, s->n_past + t + 1, R, q + t * R->nI * R->dI, w + t * R->nI, be);
    free(q);
    free(w);
    s->n_past += n;
}

static zmlx_model *load(const char *spec, zmlx_backend_kind be, int threads) {
    zmlx_model_params p = zmlx_model_default_params();
    p.backend = be;
    p.threads = threads;
    p.precision = ZMLX_PRECISION_EXACT;
    char err[ZMLX_ERR_MAX] = "";
    zmlx_model *m = NULL;
    zmlx_status st = zmlx_model_load(spec, &p, &m, err, sizeof err);
    CHECKF(st == ZMLX_OK, "load %s: %s", spec, err);
    return st == ZMLX_OK ? m : NULL;
}

static void test_forward(zmlx_backend_kind be, int threads, const char *name) {
    zmlx_model *m = load("builtin:dsv32-tiny", be, threads);
    if (!m) return;
    zmlx_session *s = NULL;
    char err[ZMLX_ERR_MAX];
    CHECK(zmlx_session_init(m, NULL, &s, err, sizeof err) == ZMLX_OK);
    const zmlx_config *c = &m->cfg;
    CHECK(c->family == ZFAM_DEEPSEEK_V32 && c->index_topk == 8 && s->kv_elem == 4);
    ref_layer R = {.d = c->hidden_size, .ql = c->q_lora_rank, .nI = c->index_n_heads,
                   .dI = c->index_head_dim, .rope = c->qk_rope_dim, .topk = c->index_topk};
    R.keys = calloc((size_t)(64 * R.dI), sizeof(double));
    trng r = {15};
    for (int l = 0; l < 2; l++) {
        s->n_past = 0;
        forward_chunk(s, l, 6, &R, &r, name);  /* positions 0-5: all dense */
        forward_chunk(s, l, 7, &R, &r, name);  /* 6-12: 9 keys and more are sparse */
        forward_chunk(s, l, 1, &R, &r, name);  /* a decode step */
        forward_chunk(s, l, 20, &R, &r, name); /* a longer chunk: T up to 34 */
    }
    s->n_past = 0;
    free(R.keys);
    zmlx_session_free(s);
    zmlx_model_free(m);
}

/* ------------------------------------------------------------------ sparse attention */

static void test_attention_lists(void) {
    trng r = {16};
    enum { H = 3, NQ = 4, T = 11, DK = 8, DR = 4, DV = 8 };
    float q[NQ * H * DK], qr[NQ * H * DR], k[T * DK], kr[T * DR], v[T * DV];
    float out_dense[NQ * H * DV], out_list[NQ * H * DV], scratch[T];
    fill(&r, q, NQ * H * DK, 1.0);
    fill(&r, qr, NQ * H * DR, 1.0);
    fill(&r, k, T * DK, 1.0);
    fill(&r, kr, T * DR, 1.0);
    fill(&r, v, T * DV, 1.0);
    zattn_job j = {.n_heads = H, .n_q = NQ, .T = T, .dk = DK, .dr = DR, .dv = DV, .q = q,
                   .qr = qr, .k = k, .k_stride = DK, .kr = kr, .kr_stride = DR,
                   .kr_dtype = ZDT_F32, .v = v, .v_stride = DV, .kv_dtype = ZDT_F32,
                   .scale = 0.3f, .out = out_dense, .scratch = scratch};
    zbackend_cpu_ref.attention(NULL, &j);
    /* every causal position listed, and a mix with "dense" (-1) rows */
    int32_t idx[NQ * T], idx_n[NQ];
    for (int qi = 0; qi < NQ; qi++) {
        idx_n[qi] = qi == 2 ? -1 : T - NQ + qi + 1;
        for (int t = 0; t < T; t++) idx[qi * T + t] = t;
    }
    j.idx = idx;
    j.idx_n = idx_n;
    j.idx_stride = T;
    j.out = out_list;
    zbackend_cpu_ref.attention(NULL, &j);
    CHECK(!memcmp(out_dense, out_list, sizeof out_dense));
    /* a proper subset: positions {0, 3, 5, last} of each query */
    for (int qi = 0; qi < NQ; qi++) {
        int last = T - NQ + qi;
        int32_t pick[4] = {0, 3, 5, last};
        idx_n[qi] = 4;
        for (int i = 0; i < 4; i++) idx[qi * T + i] = pick[i];
    }
    zbackend_cpu_ref.attention(NULL, &j);
    /* the threaded backend runs the same kernel per (query, head): bit for bit */
    float out_cpu[NQ * H * DV], scratch2[2 * T];
    void *ctx = NULL;
    CHECK(zbackend_cpu.init(2, &ctx) == ZMLX_OK);
    zattn_job jc = j;
    jc.out = out_cpu;
    jc.scratch = scratch2;
    if (ctx) zbackend_cpu.attention(ctx, &jc);
    CHECK(!memcmp(out_cpu, out_list, sizeof out_cpu));
    zbackend_cpu.free(ctx);
    double err = 0;
    for (int qi = 0; qi < NQ; qi++)
        for (int h = 0; h < H; h++) {
            double sc[4], mx = -INFINITY, sum = 0, o[DV] = {0};
            for (int i = 0; i < 4; i++) {
                int t = idx[qi * T + i];
                double a = 0;
                for (int c = 0; c < DK; c++) a += (double)q[(qi * H + h) * DK + c] * k[t * DK + c];
                for (int c = 0; c < DR; c++) a += (double)qr[(qi * H + h) * DR + c] * kr[t * DR + c];
                sc[i] = a * 0.3;
                mx = fmax(mx, sc[i]);
            }
            for (int i = 0; i < 4; i++) sum += sc[i] = exp(sc[i] - mx);
            for (int i = 0; i < 4; i++)
                for (int c = 0; c < DV; c++) o[c] += sc[i] / sum * v[idx[qi * T + i] * DV + c];
            for (int c = 0; c < DV; c++)
                err = fmax(err, fabs(o[c] - out_list[(qi * H + h) * DV + c]));
        }
    CHECKF(err <= 1e-5, "sparse attention vs double: %.3g", err);
}

/* ------------------------------------------------------------------ model level */

static float *run_prompt(zmlx_model *m, zmlx_attn_path path, const int32_t *ids, int n,
                         int steps) {
    const int32_t V = zmlx_model_vocab_size(m);
    zmlx_session_params sp = zmlx_session_default_params();
    sp.attn_path = path;
    zmlx_session *s = NULL;
    char err[ZMLX_ERR_MAX];
    float *lg = calloc((size_t)(steps + 1) * (size_t)V, sizeof(float));
    CHECK(zmlx_session_init(m, &sp, &s, err, sizeof err) == ZMLX_OK);
    if (!s) return lg;
    CHECK(zmlx_session_eval(s, ids, (size_t)n, lg, 0) == ZMLX_OK);
    for (int i = 0; i < steps; i++) {
        int32_t tok = (int32_t)((i * 131 + 7) % V); /* fixed tokens: same inputs everywhere */
        CHECK(zmlx_session_eval(s, &tok, 1, lg + (size_t)(i + 1) * (size_t)V, 0) == ZMLX_OK);
    }
    zmlx_session_free(s);
    return lg;
}

static double rel_diff(const float *a, const float *b, size_t n) {
    double mx = 0, md = 0;
    for (size_t i = 0; i < n; i++) {
        mx = fmax(mx, fabs(b[i]));
        md = fmax(md, fabs((double)a[i] - b[i]));
    }
    return md / mx;
}

static void test_model_level(void) {
    const int32_t ids[12] = {0, 12, 900, 4, 55, 321, 77, 640, 9, 1020, 13, 600};
    const int steps = 4; /* 16 positions in all */
    zmlx_model *wide = load("builtin:dsv32-tiny:index_topk=16", ZMLX_BACKEND_CPU, 2);
    zmlx_model *huge = load("builtin:dsv32-tiny:index_topk=100000", ZMLX_BACKEND_CPU, 2);
    zmlx_model *sparse = load("builtin:dsv32-tiny:index_topk=4", ZMLX_BACKEND_CPU, 2);
    if (!wide || !huge || !sparse) goto out;
    const size_t n = (size_t)(steps + 1) * (size_t)zmlx_model_vocab_size(wide);
    float *a = run_prompt(wide, ZMLX_ATTN_AUTO, ids, 12, steps);
    float *b = run_prompt(huge, ZMLX_ATTN_AUTO, ids, 12, steps);
    float *sa = run_prompt(sparse, ZMLX_ATTN_ABSORBED, ids, 12, steps);
    float *se = run_prompt(sparse, ZMLX_ATTN_EXPANDED, ids, 12, steps);
    float *sd = run_prompt(sparse, ZMLX_ATTN_AUTO, ids, 12, steps);
    CHECKF(!memcmp(a, b, n * sizeof(float)), "index_topk >= context must be dense bit for bit");
    CHECKF(rel_diff(sd, a, n) > 1e-3, "index_topk 4 should change the logits (%.3g)",
           rel_diff(sd, a, n));
    double d = rel_diff(sa, se, n);
    CHECKF(d <= 1e-4, "sparse absorbed vs expanded: %.3g", d);
    printf("dsv32-tiny index_topk=4: absorbed vs expanded rel %.3g, vs dense %.3g\n", d,
           rel_diff(sd, a, n));
    free(a);
    free(b);
    free(sa);
    free(se);
    free(sd);
out:
    zmlx_model_free(wide);
    zmlx_model_free(huge);
    zmlx_model_free(sparse);
}

int main(void) {
    test_layernorm();
    test_rope_half();
    test_combine();
    test_topk();
    test_attention_lists();
    test_forward(ZMLX_BACKEND_CPU_REF, 1, "cpu-ref");
    test_forward(ZMLX_BACKEND_CPU, 2, "cpu");
    test_model_level();
    return tc_done();
}
