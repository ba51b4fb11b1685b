/*
 * test_cuda_attn.c — the decode and prefill attention kernels of the `cuda` backend and
 * the DSA indexer's against the CPU reference (test_cuda_kernels.c's harness: guard
 * floats around every device output, NaN canaries, NaN always fails):
 *   - absorbed attention (all heads per block, split over the context, f32 and bf16
 *     caches, one and several queries; short contexts on the short path, the spread
 *     where Hopper's code runs, and again on the splits) and expanded, dense and over
 *     sparse position lists (DeepSeek-V3.2), against zattn_head_ref to 2e-5; in fast
 *     mode the tensor-core splits and the float32 kernels;
 *   - the short-context attention with W_UV in one launch against the attention then
 *     W_UV, bit for bit, and against the reference;
 *   - the DSA indexer: keys' LayerNorm + rope and the cache write, queries' rope, the
 *     scores against a double-precision reference, the top-k exactly zidx_topk's.
 * Without a GPU: "SKIP: no CUDA device".  ZMLX_TEST_CUDA_QUICK=1 runs a smaller set (for
 * compute-sanitizer).
 */
#include "tcheck.h"

#ifndef ZMLX_HAVE_CUDA
int main(void) {
    printf("SKIP: built without CUDA\n0 passed, 0 failed, 1 skipped\n");
    return 0;
}
#else

#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "core/err.h"
#include "model/indexer.h"
#include "ops/ops.h"
#include "tcuda.h"

static const wfmt F_Q4 = {ZW_AFFINE4, 64, ZDT_BF16};

/* ------------------------------------------------------------------ attention */

/* The cache rows [lat | k_pe] (float or bf16 bits) and the separate lat / k_pe arrays a
   zattn_job reads, all holding the same values. */
/* max |a - ref| over n values; *nan counts the NaNs of a. */
static double max_err(const float *a, const float *ref, int64_t n, int64_t *nan) {
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        *nan += isnan(a[i]);
        worst = fmax(worst, fabs((double)a[i] - ref[i]));
    }
    return worst;
}

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
            float v = rng_unif(&cu_rng);
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

/* Sparse attention lists (DSA): query i < nq reads `keep` random positions of its
   pos + i + 1 (ascending) when it sees more, else is dense (-1); query 0 always dense
   when nq > 1 (mixed lists in one launch).  keep 0: NULL (dense everywhere). */
typedef struct hsel {
    int32_t *idx, *n;       /* host */
    int32_t *didx, *dn;     /* device */
    int64_t stride;
} hsel;

static hsel hsel_new(int64_t pos, int64_t nq, int64_t keep) {
    hsel h = {0};
    if (keep <= 0) return h;
    h.stride = keep;
    h.idx = malloc((size_t)(nq * keep) * 4);
    h.n = malloc((size_t)nq * 4);
    for (int64_t i = 0; i < nq; i++) {
        const int64_t Ti = pos + i + 1;
        h.n[i] = (Ti <= keep || (i == 0 && nq > 1)) ? -1 : (int32_t)keep;
        if (h.n[i] < 0) continue;
        int64_t m = 0; /* Knuth's selection sampling: ascending, uniform */
        for (int64_t u = 0; u < Ti && m < keep; u++)
            if ((double)(rng_u64(&cu_rng) % (uint64_t)(Ti - u)) < (double)(keep - m)) h.idx[i * keep + m++] = (int32_t)u;
    }
    h.didx = dup_dev(h.idx, (size_t)(nq * keep) * 4);
    h.dn = dup_dev(h.n, (size_t)nq * 4);
    return h;
}

static void hsel_free(hsel *h) {
    free(h->idx);
    free(h->n);
    if (h->didx) cudaFree(h->didx);
    if (h->dn) cudaFree(h->dn);
}

/* Keys cached in f32 or bf16 as the device stores them, read back as floats. */
static float cache_val(const uint8_t *c, bool bf16, int64_t i) {
    if (bf16) {
        uint16_t b;
        memcpy(&b, c + i * 2, 2);
        return zbf16_to_f32(b);
    }
    float v;
    memcpy(&v, c + i * 4, 4);
    return v;
}

/* The reference attention of queries ql / qp into ref (zattn_head_ref). */
static void absorbed_ref(const hcache *hc, bool bf16, int64_t H, int64_t R, int64_t rope, int64_t nq,
                         int64_t T, float scale, const hsel *sl, const float *ql, const float *qp,
                         float *ref) {
    float *scores = malloc((size_t)T * 4);
    zdtype kdt = bf16 ? ZDT_BF16 : ZDT_F32;
    zattn_job j = {.n_heads = H, .n_q = nq, .T = T, .dk = R, .dr = rope, .dv = R, .q = ql,
                   .qr = qp, .k = hc->lat, .k_stride = R, .kr = hc->kpe, .kr_stride = rope,
                   .kr_dtype = kdt, .v = hc->lat, .v_stride = R, .kv_dtype = kdt, .scale = scale,
                   .out = ref, .scratch = scores, .idx = sl->idx, .idx_n = sl->n, .idx_stride = sl->stride};
    for (int64_t i = 0; i < nq; i++)
        for (int64_t h = 0; h < H; h++) zattn_head_ref(&j, i, h, scores);
    free(scores);
}

/* max over (query, head) of max|out - ref| / max|v| (v in [-1, 1]: max|v| <= 1).  A query
   of at most ZCU_ATTN_SHORT entries takes the short path (attn.cuh, float32 throughout:
   the 2e-5 limit even in fast mode); the rest the splits and the merge, and the same
   launch again with ZMLX_CUDA_ATTN_SHORT=0 sends every query there. */
static int64_t t_short = ZCU_ATTN_SHORT; /* what ZMLX_CUDA_ATTN_SHORT says */

static void case_absorbed(bool bf16, int64_t H, int64_t R, int64_t rope, int64_t pos,
                          int64_t nq, int64_t nsplit, int64_t keep) {
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
    hsel sl = hsel_new(pos, nq, keep);
    cu_attn a = {.q = dq, .cache = dc, .cache_bf16 = bf16, .n_q = nq, .H = H, .R = R,
                 .rope = rope, .scale = scale, .step = dstep, .nsplit = nsplit, .part_o = po,
                 .part_ml = pml, .out = o.p, .idx = sl.didx, .idx_n = sl.dn, .idx_stride = sl.stride};
    bool shrt[64], any_short = false;
    CHECK(nq <= 64);
    for (int64_t i = 0; i < nq; i++) {
        const int64_t n = sl.n && sl.n[i] >= 0 ? sl.n[i] : pos + i + 1;
        shrt[i] = n <= t_short;
        any_short |= shrt[i];
    }
    const size_t no = (size_t)(nq * H * R);
    float *out = malloc(no * 4), *refx = malloc(no * 4), *reft = malloc(no * 4);
    absorbed_ref(&hc, bf16, H, R, rope, nq, T, scale, &sl, ql, qp, refx);
    /* fast mode on a bf16 cache (the tensor-core splits): the reference of the bf16-rounded
       queries (the cache is exact bf16); the kernel also rounds the probabilities to bf16
       (the output moves by at most 2^-8 max|v|) and sums the scores in float32 (each
       probability moves by a factor exp(+-2 gamma_{W+32} scale max sum|q k|)) */
    const bool tc = tq_fast && cuk_attn_dec_tc_ok(&a);
    double lim = 2e-5;
    if (tc) {
        for (int64_t i = 0; i < nq * H * R; i++) ql[i] = (float)bf16r(ql[i]);
        for (int64_t i = 0; i < nq * H * rope; i++) qp[i] = (float)bf16r(qp[i]);
        absorbed_ref(&hc, bf16, H, R, rope, nq, T, scale, &sl, ql, qp, reft);
        double qkmax = 0, vmax = 0;
        for (int64_t u = 0; u < T; u++) /* the values: the latent columns */
            for (int64_t c = 0; c < R; c++) vmax = fmax(vmax, fabs(cache_val(hc.rows, true, u * W + c)));
        for (int64_t i = 0; i < nq * H; i++) {
            double sq = 0;
            for (int64_t c = 0; c < W; c++) sq += fabs(bf16r(q[i * W + c]));
            qkmax = fmax(qkmax, sq); /* sum |q| >= sum |q k| for |k| <= 1 */
        }
        const double g = 2.0 * (double)(W + 32) / 16777216.0;
        lim = vmax * (1.0 / 256.0 + 4.0 * g * qkmax * scale) + 1e-6;
    } else {
        memcpy(reft, refx, no * 4);
    }
    for (int pass = 0; pass < (any_short ? 2 : 1); pass++) {
        /* pass 0: the default (short queries on the short path); pass 1: none */
        char prev[16] = "";
        if (getenv("ZMLX_CUDA_ATTN_SHORT")) snprintf(prev, sizeof prev, "%s", getenv("ZMLX_CUDA_ATTN_SHORT"));
        if (pass == 1) setenv("ZMLX_CUDA_ATTN_SHORT", "0", 1);
        CHECK(cuk_attn_absorbed(&a, Q) == cudaSuccess);
        CHECKF(out_fetch(&o, out, "absorbed"), "absorbed attention");
        if (tc) { /* tiles of 32 and 64 rows (ZMLX_CUDA_DEC_TILE), each within the limit; one
                     tile buffer and more (ZMLX_CUDA_DEC_STAGES; the default picks by the
                     grid): the same bits */
            dout o1 = out_new(no);
            cu_attn a1 = a;
            a1.out = o1.p;
            float *y1 = malloc(no * 4);
            for (int tk = 32; tk <= 64; tk += 32) {
                setenv("ZMLX_CUDA_DEC_TILE", tk == 32 ? "32" : "64", 1);
                setenv("ZMLX_CUDA_DEC_STAGES", "1", 1);
                CHECK(cuk_attn_absorbed(&a1, Q) == cudaSuccess);
                CHECKF(out_fetch(&o1, y1, "absorbed tc, one stage"), "absorbed attention tc");
                for (int64_t i = 0; i < nq; i++) {
                    if (pass == 0 && shrt[i]) continue; /* the short path: checked below */
                    int64_t nan = 0;
                    const double worst = max_err(y1 + i * H * R, reft + i * H * R, H * R, &nan);
                    CHECKF(nan == 0 && worst <= lim, "absorbed tc tiles of %d H=%lld pos=%lld split=%lld query %lld: "
                           "max err %.3g (limit %.3g), %lld NaN", tk, (long long)H, (long long)pos,
                           (long long)nsplit, (long long)i, worst, lim, (long long)nan);
                }
                for (int st = 2; st <= 4; st++) {
                    char v[2] = {(char)('0' + st), 0};
                    setenv("ZMLX_CUDA_DEC_STAGES", v, 1);
                    CHECK(cuk_attn_absorbed(&a, Q) == cudaSuccess);
                    CHECKF(out_fetch(&o, out, "absorbed tc, several stages") && same_bits(y1, out, no),
                           "absorbed tc H=%lld pos=%lld tiles of %d: %d tile buffers differ from one", (long long)H,
                           (long long)pos, tk, st);
                }
            }
            unsetenv("ZMLX_CUDA_DEC_STAGES");
            unsetenv("ZMLX_CUDA_DEC_TILE");
            { /* the queries handed over as bf16 (cu_attn.q16, as W_UK^T's launch writes them),
                 with and without the early first tile: the same bits as converting the float
                 queries */
                uint16_t *q16 = malloc((size_t)(nq * H * W) * 2);
                for (int64_t i = 0; i < nq * H * W; i++) q16[i] = zf32_to_bf16(q[i]);
                void *dq16 = dup_dev(q16, (size_t)(nq * H * W) * 2);
                CHECK(cuk_attn_absorbed(&a1, Q) == cudaSuccess);
                CHECKF(out_fetch(&o1, y1, "absorbed tc, float queries"), "absorbed attention tc");
                for (int k = 0; k < (nq == 1 && !keep ? 3 : 1); k++) {
                    cu_attn aq = a;
                    aq.q16 = dq16;
                    aq.early = k > 0;
                    CHECK(cuk_attn_absorbed(&aq, k == 2 ? QPDL : Q) == cudaSuccess);
                    CHECKF(out_fetch(&o, out, "absorbed tc, bf16 queries") && same_bits(y1, out, no),
                           "absorbed tc H=%lld pos=%lld split=%lld: bf16 queries (early %d) differ from the float ones",
                           (long long)H, (long long)pos, (long long)nsplit, k);
                }
                cudaFree(dq16);
                free(q16);
            }
            if (nq == 1 && !keep) { /* the decode step's early span and first tile (a.early),
                                       plain and under PDL: the same bits */
                CHECK(cuk_attn_absorbed(&a1, Q) == cudaSuccess);
                CHECKF(out_fetch(&o1, y1, "absorbed tc"), "absorbed attention tc");
                cu_attn ae = a;
                ae.early = true;
                for (int k = 0; k < 2; k++) {
                    CHECK(cuk_attn_absorbed(&ae, k ? QPDL : Q) == cudaSuccess);
                    CHECKF(out_fetch(&o, out, "absorbed tc, early") && same_bits(y1, out, no),
                           "absorbed tc H=%lld pos=%lld split=%lld: the early first tile%s changes the bits",
                           (long long)H, (long long)pos, (long long)nsplit, k ? " under PDL" : "");
                }
            }
            free(y1);
            out_free(&o1);
        }
        bool all_short = pass == 0;
        for (int64_t i = 0; i < nq; i++) all_short &= shrt[i];
        if (tc && all_short) { /* the short path in the float32 split kernel (hb 8): the same bits */
            dout o8 = out_new(no);
            cu_attn a8 = a;
            a8.out = o8.p;
            a8.hb = 8;
            CHECK(cuk_attn_absorbed(&a8, Q) == cudaSuccess);
            float *y8 = malloc(no * 4);
            CHECKF(out_fetch(&o8, y8, "absorbed short, hb 8") && same_bits(y8, out, no),
                   "absorbed short H=%lld pos=%lld: the float32 kernel's short path differs from the tensor-core one's",
                   (long long)H, (long long)pos);
            free(y8);
            out_free(&o8);
        }
        if (prev[0]) setenv("ZMLX_CUDA_ATTN_SHORT", prev, 1);
        else unsetenv("ZMLX_CUDA_ATTN_SHORT");
        for (int64_t i = 0; i < nq; i++) {
            const bool sp = pass == 0 && shrt[i];
            const size_t off = (size_t)(i * H * R);
            int64_t nan = 0;
            const double worst = max_err(out + off, (sp ? refx : reft) + off, H * R, &nan);
            const double li = sp ? 2e-5 : lim;
            CHECKF(nan == 0 && worst <= li,
                   "absorbed attention%s bf16=%d H=%lld R=%lld pos=%lld nq=%lld split=%lld keep=%lld query %lld: "
                   "max err %.3g (limit %.3g), %lld NaN",
                   sp ? " short" : tc ? " tc" : "", bf16, (long long)H, (long long)R, (long long)pos,
                   (long long)nq, (long long)nsplit, (long long)keep, (long long)i, worst, li, (long long)nan);
        }
    }
    if (cuk_hopper_code() && nq == 1 && !keep && cuk_attn_spread_fits(R, rope)) {
        /* the spread (one dense query, any context the launch is given: float32 as the
           short path), plain and under PDL: the reference's values, the same bits */
        cu_attn as = a;
        as.spread = true;
        as.idx = as.idx_n = NULL;
        float *y1 = malloc(no * 4);
        CHECK(cuk_attn_absorbed(&as, Q) == cudaSuccess);
        CHECKF(out_fetch(&o, out, "absorbed spread"), "absorbed spread");
        CHECK(cuk_attn_absorbed(&as, QPDL) == cudaSuccess);
        CHECKF(out_fetch(&o, y1, "absorbed spread, PDL") && same_bits(out, y1, no),
               "absorbed spread H=%lld R=%lld pos=%lld: under PDL other bits", (long long)H, (long long)R,
               (long long)pos);
        as.early = true; /* the decode step's early step read and L2 requests */
        CHECK(cuk_attn_absorbed(&as, QPDL) == cudaSuccess);
        CHECKF(out_fetch(&o, y1, "absorbed spread, early") && same_bits(out, y1, no),
               "absorbed spread H=%lld R=%lld pos=%lld: early, other bits", (long long)H, (long long)R, (long long)pos);
        int64_t nan = 0;
        const double worst = max_err(out, refx, H * R, &nan);
        CHECKF(nan == 0 && worst <= 2e-5,
               "absorbed spread bf16=%d H=%lld R=%lld rope=%lld pos=%lld: max err %.3g (limit 2e-5), %lld NaN", bf16,
               (long long)H, (long long)R, (long long)rope, (long long)pos, worst, (long long)nan);
        free(y1);
    }
    hsel_free(&sl);
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
    free(refx);
    free(reft);
}


/*
 * Fast mode's tensor-core attention (kernels_attn_tc.cu) against a double-precision
 * attention of the same bf16-rounded queries, keys and values: the kernel also rounds the
 * probabilities to bf16 (moves the output by at most 2^-8 max|v|) and sums the scores in
 * float32 (moves each probability by a factor exp(+-gamma scale sum|q k|)).  A key too
 * many or too few moves it by about 1/T (T <= 300 here).
 */
static void expanded_tc_check(const cu_attn_x *a, const float *q, const float *kvb, const hcache *hc,
                              int64_t T, const float *out) {
    const int64_t H = a->H, nope = a->nope, rope = a->rope, vd = a->vd, n = a->n, W = a->R + rope;
    const int64_t qk = nope + rope, hs = nope + vd, pos = T - n;
    double *sc = malloc((size_t)T * sizeof *sc), worst = 0;
    int64_t bad = 0, nan = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t h = 0; h < H; h++) {
            const float *qi = q + (i * H + h) * qk;
            const int64_t Ti = pos + i + 1;
            double mx = -INFINITY, l = 0, vmax = 0, qkmax = 0;
            for (int64_t u = 0; u < Ti; u++) {
                const float *k = kvb + (u * H + h) * hs;
                double d = 0, ad = 0;
                for (int64_t c = 0; c < qk; c++) {
                    const float kc = c < nope ? k[c]
                                              : cache_val(hc->rows, hc->es == 2, u * W + a->R + c - nope);
                    const double pr = bf16r(qi[c]) * bf16r(kc);
                    d += pr;
                    ad += fabs(pr);
                }
                sc[u] = d * a->scale;
                mx = fmax(mx, sc[u]);
                qkmax = fmax(qkmax, ad * fabs(a->scale));
                for (int64_t c = 0; c < vd; c++) vmax = fmax(vmax, fabs(bf16r(k[nope + c])));
            }
            for (int64_t u = 0; u < Ti; u++) l += (sc[u] = exp(sc[u] - mx));
            const double g = 2.0 * (double)(qk + 32) / 16777216.0;
            const double bound = vmax * (1.0 / 256.0 + 4.0 * g * qkmax + 1e-6) + 1e-30;
            for (int64_t c = 0; c < vd; c++) {
                double o = 0;
                for (int64_t u = 0; u < Ti; u++) o += sc[u] * bf16r(kvb[(u * H + h) * hs + nope + c]);
                const float y = out[(i * H + h) * vd + c];
                if (isnan(y)) {
                    nan++;
                    continue;
                }
                const double r = fabs((double)y - o / l) / bound;
                worst = fmax(worst, r);
                bad += r > 1.0;
            }
        }
    CHECKF(bad == 0 && nan == 0, "expanded attention tc bf16=%d H=%lld qk=%lld vd=%lld T=%lld n=%lld: "
           "%lld over the bound, %lld NaN (worst %.3g)", hc->es == 2, (long long)H, (long long)qk,
           (long long)vd, (long long)T, (long long)n, (long long)bad, (long long)nan, worst);
    free(sc);
}

static void case_expanded(bool bf16, int64_t H, int64_t nope, int64_t rope, int64_t vd,
                          int64_t R, int64_t pos, int64_t n, int64_t keep) {
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
    hsel sl = hsel_new(pos, n, keep);
    cu_attn_x a = {.q = dq, .kvb = dkvb, .cache = dc, .cache_bf16 = bf16, .n = n, .H = H,
                   .nope = nope, .rope = rope, .vd = vd, .R = R, .scale = scale, .step = dstep,
                   .out = o.p, .idx = sl.didx, .idx_n = sl.dn, .idx_stride = sl.stride};
    CHECK(cuk_attn_expanded(&a, Q) == cudaSuccess);
    float *out = malloc((size_t)(n * H * vd) * 4), *ref = malloc((size_t)(n * H * vd) * 4);
    CHECKF(out_fetch(&o, out, "expanded"), "expanded attention");
    if (tq_fast && cuk_attn_tc_ok(&a)) { /* the tensor-core kernel */
        expanded_tc_check(&a, q, kvb, &hc, T, out);
        /* blocks of 64 queries (ZMLX_CUDA_FA_WARPS=4) give the same values bit for bit */
        float *o2 = malloc((size_t)(n * H * vd) * 4);
        cu_attn_x b = a;
        dout ob = out_new((size_t)(n * H * vd));
        b.out = ob.p;
        setenv("ZMLX_CUDA_FA_WARPS", "4", 1);
        CHECK(cuk_attn_expanded(&b, Q) == cudaSuccess);
        unsetenv("ZMLX_CUDA_FA_WARPS");
        CHECKF(out_fetch(&ob, o2, "expanded tc"), "expanded attention tc in blocks of 64 queries: guards");
        int64_t diff = bits_differ(o2, out, n * H * vd);
        CHECKF(diff == 0, "expanded attention tc in blocks of 64 queries (H=%lld T=%lld n=%lld): %lld of "
               "%lld values differ", (long long)H, (long long)T, (long long)n, (long long)diff, (long long)(n * H * vd));
        /* the cp.async tiles from the bf16 twin of kvb (a bf16 cache, Hopper's shared
           memory): the same values bit for bit; ZMLX_CUDA_FA_ASYNC=0 turns them off */
        if (cuk_attn_tc16_ok(&a)) {
            void *k16 = NULL;
            CHECK(cudaMalloc(&k16, (size_t)(T * H * hs) * 2) == cudaSuccess);
            CHECK(cuk_to_bf16(dkvb, H * hs, T, H * hs, k16, Q) == cudaSuccess);
            dout oc = out_new((size_t)(n * H * vd)); /* fresh: nothing left from the runs above */
            b.kvb16 = k16, b.out = oc.p;
            CHECK(cuk_attn_expanded(&b, Q) == cudaSuccess);
            CHECKF(out_fetch(&oc, o2, "expanded tc16"), "expanded attention tc from bf16 tiles: guards");
            out_free(&oc);
            diff = bits_differ(o2, out, n * H * vd);
            CHECKF(diff == 0, "expanded attention tc from bf16 tiles by cp.async (H=%lld T=%lld n=%lld): "
                   "%lld of %lld values differ", (long long)H, (long long)T, (long long)n, (long long)diff,
                   (long long)(n * H * vd));
            setenv("ZMLX_CUDA_FA_ASYNC", "0", 1);
            CHECKF(!cuk_attn_tc16_ok(&a), "ZMLX_CUDA_FA_ASYNC=0 turns the bf16 tiles off");
            unsetenv("ZMLX_CUDA_FA_ASYNC");
            /* the keys in spans (2, 3, 4 and the default for this device) and the merge:
               another order of the same sums, held to the double-precision attention; spans
               where a row sees no key, and empty spans, included */
            float *part = NULL;
            CHECK(cudaMalloc((void **)&part, (size_t)(n * ZCU_FA_MAX_SPLIT * H * (vd + 2)) * 4) == cudaSuccess);
            int sms = 0;
            CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0) == cudaSuccess);
            for (int ns = 2; ns <= 5; ns++) {
                char v[8];
                snprintf(v, sizeof v, "%d", ns == 5 ? 0 : ns);
                setenv("ZMLX_CUDA_FA_SPLITS", v, 1);
                cu_attn_x c = b;
                cuk_attn_tc16_split(&c, T, sms);
                unsetenv("ZMLX_CUDA_FA_SPLITS");
                const int64_t tiles = (T + 63) / 64;
                CHECKF(c.nsplit >= 1 && c.nsplit <= ZCU_FA_MAX_SPLIT && c.nsplit * c.split_tiles >= tiles &&
                           (c.nsplit - 1) * c.split_tiles < tiles && (ns == 5 || tiles < 2 || c.nsplit >= 2),
                       "cuk_attn_tc16_split T=%lld n=%lld asked %d: %lld spans of %lld tiles", (long long)T,
                       (long long)n, ns, (long long)c.nsplit, (long long)c.split_tiles);
                c.part_o = part, c.part_ml = part + n * ZCU_FA_MAX_SPLIT * H * vd;
                dout od = out_new((size_t)(n * H * vd));
                c.out = od.p;
                CHECK(cuk_attn_expanded(&c, Q) == cudaSuccess);
                CHECKF(out_fetch(&od, o2, "expanded tc16 spans"), "expanded attention in %lld spans: guards",
                       (long long)c.nsplit);
                expanded_tc_check(&c, q, kvb, &hc, T, o2);
                out_free(&od);
            }
            cudaFree(part);
            cudaFree(k16);
        }
        out_free(&ob);
        free(o2);
    } else {
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
                       .v_head = hs, .kv_dtype = ZDT_F32, .scale = scale, .out = ref, .scratch = scores,
                       .idx = sl.idx, .idx_n = sl.n, .idx_stride = sl.stride};
        for (int64_t i = 0; i < n; i++)
            for (int64_t h = 0; h < H; h++) zattn_head_ref(&j, i, h, scores);
        int64_t nan = 0;
        const double worst = max_err(out, ref, n * H * vd, &nan);
        CHECKF(nan == 0 && worst <= 2e-5, "expanded attention bf16=%d H=%lld T=%lld keep=%lld: max err %.3g, "
               "%lld NaN", bf16, (long long)H, (long long)T, (long long)keep, worst, (long long)nan);
        free(qn);
        free(qp);
        free(scores);
    }
    hsel_free(&sl);
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
}

/* ------------------------------------------------------------------ DSA indexer */


/* cuk_idx_prep against zop_layernorm + zop_rope_half (keys within 1e-5: the LayerNorm's
   sums run in another order; the cache holds the device's keys rounded to its dtype;
   queries and head weights bit for bit; the rope table gives the same bits as computed
   cos/sin), then cuk_idx_select: the scores against a double-precision zidx_combine over
   the cached keys (within the float sums' bound, (dI + nI) ulps of the magnitude), and the selection exactly zidx_topk's on the device's own scores (ties
   included: every fifth cached key repeats an earlier one, query 1's weights are all zero
   so all its scores tie), queries seeing no more than topk keys dense (-1). */
static void case_indexer(bool bf16, int64_t nI, int64_t dI, int64_t rope, int64_t pos, int64_t n,
                         int64_t topk, float mscale) {
    const int64_t T = pos + n, cap = T + 3, half = rope / 2;
    const size_t es = bf16 ? 2 : 4;
    float *k = malloc((size_t)(n * dI) * 4), *q = malloc((size_t)(n * nI * dI) * 4);
    float *w = malloc((size_t)(n * nI) * 4), *kn = malloc((size_t)dI * 4), *kb = malloc((size_t)dI * 4);
    float *inv = malloc((size_t)(half + 1) * 4);
    fill(k, (size_t)(n * dI), 2.0f);
    fill(q, (size_t)(n * nI * dI), 1.0f);
    fill(w, (size_t)(n * nI), 1.0f);
    fill(kn, (size_t)dI, 1.0f);
    fill(kb, (size_t)dI, 0.5f);
    if (n > 1) memset(w + nI, 0, (size_t)nI * 4);
    for (int64_t i = 0; i < half; i++) inv[i] = (float)(1.0 / pow(1e4, (double)(2 * i) / (double)rope));
    uint8_t *hc = calloc((size_t)(cap * dI), es);
    for (int64_t u = 0; u < pos; u++)
        for (int64_t j = 0; j < dI; j++) {
            uint8_t *dst = hc + (size_t)(u * dI + j) * es;
            if (u % 5 == 4 && u >= 7) {
                memcpy(dst, hc + (size_t)((u - 7) * dI + j) * es, es);
            } else if (bf16) {
                const uint16_t b = zf32_to_bf16(rng_unif(&cu_rng));
                memcpy(dst, &b, 2);
            } else {
                const float v = rng_unif(&cu_rng);
                memcpy(dst, &v, 4);
            }
        }
    cu_step step = {.pos = (int32_t)pos, .n = (int32_t)n};
    cu_step *dstep = dup_dev(&step, sizeof step);
    float *dk = dup_dev(k, (size_t)(n * dI) * 4), *dq = dup_dev(q, (size_t)(n * nI * dI) * 4);
    float *dw = dup_dev(w, (size_t)(n * nI) * 4), *dkn = dup_dev(kn, (size_t)dI * 4);
    float *dkb = dup_dev(kb, (size_t)dI * 4), *dinv = dup_dev(inv, (size_t)(half + 1) * 4);
    void *dc = dup_dev(hc, (size_t)(cap * dI) * es);
    float *dscore;
    int32_t *dsel, *dseln;
    CU(cudaMalloc((void **)&dscore, (size_t)(n * cap) * 4));
    CU(cudaMalloc((void **)&dsel, (size_t)(n * topk) * 4));
    CU(cudaMalloc((void **)&dseln, (size_t)n * 4));
    cu_idx p = {.k = dk, .q = dq, .w = dw, .knorm = dkn, .kbias = dkb, .nI = nI, .dI = dI, .rope = rope,
                .inv_freq = dinv, .mscale = mscale, .cache = dc, .cache_bf16 = bf16, .score = dscore,
                .score_ld = cap, .sel = dsel, .sel_n = dseln, .topk = topk, .step = dstep, .n = n};
    CHECK(cuk_idx_prep(&p, Q) == cudaSuccess);
    float *gk = malloc((size_t)(n * dI) * 4), *gq = malloc((size_t)(n * nI * dI) * 4);
    float *gw = malloc((size_t)(n * nI) * 4);
    uint8_t *gc = malloc((size_t)(cap * dI) * es);
    CU(cudaMemcpy(gk, dk, (size_t)(n * dI) * 4, cudaMemcpyDeviceToHost));
    CU(cudaMemcpy(gq, dq, (size_t)(n * nI * dI) * 4, cudaMemcpyDeviceToHost));
    CU(cudaMemcpy(gw, dw, (size_t)(n * nI) * 4, cudaMemcpyDeviceToHost));
    CU(cudaMemcpy(gc, dc, (size_t)(cap * dI) * es, cudaMemcpyDeviceToHost));
    double kerr = 0;
    int64_t q_bad = 0, w_bad = 0, c_bad = 0, nan = 0;
    const float ws = (float)(1.0 / sqrt((double)nI));
    float *kr = malloc((size_t)dI * 4), *qr = malloc((size_t)dI * 4);
    for (int64_t t = 0; t < n; t++) {
        float ct[64], st[64];
        zop_rope_table(pos + t, inv, half, mscale, ct, st);
        zop_layernorm(k + t * dI, kn, kb, dI, 1e-6f, kr);
        zop_rope_half(kr, rope, ct, st);
        for (int64_t j = 0; j < dI; j++) {
            const float g = gk[t * dI + j];
            nan += isnan(g);
            kerr = fmax(kerr, fabs((double)g - kr[j]) / (1.0 + fabs((double)kr[j])));
            float want = g;
            if (bf16) want = zbf16_to_f32(zf32_to_bf16(g));
            c_bad += f2u(cache_val(gc, bf16, (pos + t) * dI + j)) != f2u(want);
        }
        for (int64_t h = 0; h < nI; h++) {
            memcpy(qr, q + (t * nI + h) * dI, (size_t)dI * 4);
            zop_rope_half(qr, rope, ct, st);
            q_bad += !same_bits(qr, gq + (t * nI + h) * dI, (size_t)dI);
            const float wr = w[t * nI + h] * ws;
            w_bad += f2u(wr) != f2u(gw[t * nI + h]);
        }
    }
    CHECKF(nan == 0 && kerr <= 1e-5 && q_bad == 0 && w_bad == 0 && c_bad == 0,
           "idx_prep bf16=%d nI=%lld dI=%lld pos=%lld: key err %.3g (%lld NaN), %lld query heads, "
           "%lld weights, %lld cache values differ", bf16, (long long)nI, (long long)dI, (long long)pos,
           kerr, (long long)nan, (long long)q_bad, (long long)w_bad, (long long)c_bad);
    { /* cos | sin from the rope table: the same bits */
        float *tab, *dk2 = dup_dev(k, (size_t)(n * dI) * 4), *dq2 = dup_dev(q, (size_t)(n * nI * dI) * 4);
        float *dw2 = dup_dev(w, (size_t)(n * nI) * 4);
        void *dc2 = dup_dev(hc, (size_t)(cap * dI) * es);
        CU(cudaMalloc((void **)&tab, (size_t)(cap * (rope ? rope : 1)) * 4));
        CHECK(cuk_rope_table(tab, 0, cap, dinv, mscale, rope, Q) == cudaSuccess);
        cu_idx p2 = p;
        p2.k = dk2, p2.q = dq2, p2.w = dw2, p2.cache = dc2, p2.table = tab;
        CHECK(cuk_idx_prep(&p2, QPDL) == cudaSuccess);
        float *k2 = malloc((size_t)(n * dI) * 4), *q2 = malloc((size_t)(n * nI * dI) * 4);
        CU(cudaMemcpy(k2, dk2, (size_t)(n * dI) * 4, cudaMemcpyDeviceToHost));
        CU(cudaMemcpy(q2, dq2, (size_t)(n * nI * dI) * 4, cudaMemcpyDeviceToHost));
        CHECKF(same_bits(k2, gk, (size_t)(n * dI)) && same_bits(q2, gq, (size_t)(n * nI * dI)),
               "idx_prep: the rope table differs from computed cos/sin");
        free(k2);
        free(q2);
        cudaFree(tab);
        cudaFree(dk2);
        cudaFree(dq2);
        cudaFree(dw2);
        cudaFree(dc2);
    }

    CHECK(cuk_idx_select(&p, 0, n, T, Q) == cudaSuccess);
    float *gs = malloc((size_t)(n * cap) * 4), *work = malloc((size_t)cap * 4);
    int32_t *gsel = malloc((size_t)(n * topk) * 4), *gn = malloc((size_t)n * 4);
    int32_t *want = malloc((size_t)(topk > cap ? topk : cap) * 4);
    CU(cudaMemcpy(gs, dscore, (size_t)(n * cap) * 4, cudaMemcpyDeviceToHost));
    CU(cudaMemcpy(gsel, dsel, (size_t)(n * topk) * 4, cudaMemcpyDeviceToHost));
    CU(cudaMemcpy(gn, dseln, (size_t)n * 4, cudaMemcpyDeviceToHost));
    CU(cudaMemcpy(gc, dc, (size_t)(cap * dI) * es, cudaMemcpyDeviceToHost));
    double serr = 0;
    int64_t sel_bad = 0, dense_bad = 0, sparse = 0;
    const double sc = 1.0 / sqrt((double)dI);
    for (int64_t t = 0; t < n; t++) {
        const int64_t Tt = pos + t + 1;
        if (Tt <= topk) {
            dense_bad += gn[t] != -1;
            continue;
        }
        sparse++;
        const float *row = gs + t * cap;
        for (int64_t u = 0; u < Tt; u++) {
            double ref = 0, mag = 0;
            for (int64_t h = 0; h < nI; h++) {
                double d = 0, da = 0;
                for (int64_t j = 0; j < dI; j++) {
                    const double kv = cache_val(gc, bf16, u * dI + j);
                    d += (double)gq[(t * nI + h) * dI + j] * kv;
                    da += fabs((double)gq[(t * nI + h) * dI + j] * kv);
                }
                ref += gw[t * nI + h] * (d * sc > 0 ? d * sc : 0);
                mag += fabs((double)gw[t * nI + h]) * da * sc;
            }
            serr = fmax(serr, fabs((double)row[u] - ref) / (mag + 1e-30));
        }
        const int64_t m = zidx_topk(row, Tt, topk, work, want);
        sel_bad += gn[t] != (int32_t)m || memcmp(gsel + t * topk, want, (size_t)m * 4) != 0;
    }
    CHECKF(serr <= (double)(dI + nI + 8) * 6e-8 && sel_bad == 0 && dense_bad == 0,
           "idx_select bf16=%d nI=%lld dI=%lld pos=%lld n=%lld topk=%lld: score err %.3g of the magnitude, "
           "%lld selections differ from zidx_topk, %lld dense queries not marked (%lld sparse)", bf16,
           (long long)nI, (long long)dI, (long long)pos, (long long)n, (long long)topk, serr,
           (long long)sel_bad, (long long)dense_bad, (long long)sparse);
    cudaFree(dstep);
    cudaFree(dk);
    cudaFree(dq);
    cudaFree(dw);
    cudaFree(dkn);
    cudaFree(dkb);
    cudaFree(dinv);
    cudaFree(dc);
    cudaFree(dscore);
    cudaFree(dsel);
    cudaFree(dseln);
    free(k);
    free(q);
    free(w);
    free(kn);
    free(kb);
    free(inv);
    free(hc);
    free(gk);
    free(gq);
    free(gw);
    free(gc);
    free(kr);
    free(qr);
    free(gs);
    free(work);
    free(gsel);
    free(gn);
    free(want);
}

/* ------------------------------------------------------------------ cases */

/* The absorbed attention: GLM (20 heads in one block), the tiny fixtures, DeepSeek's 128
   heads; sparse lists (DeepSeek-V3.2): kept positions per query, dense and sparse mixed.
   f32 and bf16 caches; in fast mode the bf16 ones with rows of a multiple of 16 run the
   tensor-core splits (rope 32), the others the float32 ones (rope 8).  Where Hopper's code
   runs, every case of one dense query also runs the spread (case_absorbed). */
static void absorbed_cases(bool quick) {
    for (int b = 0; b < 2; b++) {
        case_absorbed(b, 20, 512, 64, 0, 1, 1, 0);
        case_absorbed(b, 20, 512, 64, 4, 1, 2, 0);
        case_absorbed(b, 20, 512, 64, 37, 1, 8, 0);
        case_absorbed(b, 20, 512, 64, 159, 1, 8, 0);  /* the short path's last context */
        case_absorbed(b, 20, 512, 64, 160, 1, 8, 0);  /* the splits' first */
        case_absorbed(b, 20, 512, 64, 40, 1, 1, 0);   /* one split (the launch widened: a block a head) */
        case_absorbed(b, 7, 96, 32, 155, 8, 3, 0);    /* queries on both paths in one launch */
        case_absorbed(b, 4, 64, 16, 300, 3, 2, 100);  /* sparse lists: short ones beside a dense long one */
        setenv("ZMLX_CUDA_ATTN_SHORT", "16", 1);      /* a lower limit (the measuring knob) */
        t_short = 16;
        case_absorbed(b, 20, 512, 64, 12, 8, 8, 0);
        unsetenv("ZMLX_CUDA_ATTN_SHORT");
        t_short = ZCU_ATTN_SHORT;
        case_absorbed(b, 20, 512, 64, 300, 1, 3, 0);
        if (!quick) case_absorbed(b, 20, 512, 64, 4095, 1, 32, 0);
        case_absorbed(b, 20, 512, 64, 4095, 1, 132, 0); /* a split per H100 SM: 128 of 132 hold a tile */
        case_absorbed(b, 20, 512, 64, 4095, 1, 16, 0);  /* eight tiles a split: every stage depth's pipeline */
        case_absorbed(b, 20, 512, 64, 1000, 1, 5, 0);   /* seven tiles a split, the last split three and a part */
        if (!quick) case_absorbed(b, 20, 512, 64, 8191, 1, 256, 0); /* the most splits the merge takes */
        case_absorbed(b, 20, 512, 64, 10, 5, 1, 0);   /* prefill on the absorbed path */
        case_absorbed(b, 4, 64, 16, 20, 3, 2, 0);     /* tiny, several queries and splits */
        case_absorbed(b, 7, 96, 8, 50, 2, 3, 0);      /* heads not a multiple of 4 */
        case_absorbed(b, 7, 96, 32, 50, 2, 3, 0);
        case_absorbed(b, 3, 36, 4, 200, 1, 2, 0);     /* latent pieces of 4, not of 32 (the spread's) */
        if (!quick) case_absorbed(b, 128, 512, 64, 70, 1, 4, 0);
        case_absorbed(b, 4, 64, 16, 20, 3, 2, 8);     /* dsv32-tiny: topk 8 */
        case_absorbed(b, 128, 512, 64, 300, 1, 8, 100);
        case_absorbed(b, 20, 512, 64, 5000, 1, 64, 2048); /* the release's topk at 5k */
        case_absorbed(b, 7, 96, 8, 40, 4, 1, 9);      /* prefill: one query dense, three sparse */
        case_absorbed(b, 7, 96, 32, 40, 4, 1, 9);
    }
}


/*
 * The attention with W_UV in one launch (cuk_attn_uv, glm47_rope) against the launches it
 * replaces, BIT FOR BIT, as the decode runs them: the query rows and the token's cache
 * row from W_UK^T's launch, then
 *   - at short contexts the absorbed attention (its short path) and the per-head W_UV,
 *     against cuk_attn_uv with 8, 1, 3 and 2 blocks a head (several W_UV batches a warp)
 *     and under PDL;
 *   - where Hopper's code runs (cuk_hopper_code), at any context, the spread
 *     (cuk_attn_absorbed with at.spread: a cluster of ZCU_ATTN_SPREAD_N blocks a head) and
 *     W_UV, against cuk_attn_uv's spread, plain and under PDL (other block counts
 *     refused), and the spread's o_lat against zattn_head_ref to 2e-5 (float32
 *     throughout, as the short path).
 * Fast mode (tq_fast), kv_b of format f, position pos (pos + 1 entries).
 */
static void case_attn_uv(wfmt f, bool bf16, int64_t H, int64_t nope, int64_t vd, int64_t R, int64_t rope,
                         int64_t pos) {
    const bool short_ok = pos + 1 <= cuk_attn_short_max(), spread_ok = cuk_hopper_code() && R % 4 == 0;
    if (!short_ok && !spread_ok) return;
    char fn[48];
    wfmt_name(f, fn, sizeof fn);
    const int64_t hs = nope + vd, qk = nope + rope, W = R + rope, half = rope / 2, cap = pos + 3;
    hmat m = hmat_new(f, H * hs, R);
    cuw dw = to_dev(&m);
    hcache hc = hcache_new(bf16, cap, R, rope);
    float *q = malloc((size_t)(H * qk) * 4), *kv = malloc((size_t)W * 4), *kvn = malloc((size_t)R * 4);
    float *inv = malloc((size_t)(half + 1) * 4);
    fill(q, (size_t)(H * qk), 1.0f);
    fill(kv, (size_t)W, 2.0f);
    fill(kvn, (size_t)R, 1.0f);
    for (int64_t i = 0; i < half; i++) inv[i] = (float)(1.0 / pow(1e4, (double)(2 * i) / (double)rope));
    cu_step step = {.pos = (int32_t)pos, .n = 1};
    cu_step *dstep = dup_dev(&step, sizeof step);
    float *dq = dup_dev(q, (size_t)(H * qk) * 4), *dkvn = dup_dev(kvn, (size_t)R * 4), *dkv = dup_dev(kv, (size_t)W * 4);
    float *dinv = dup_dev(inv, (size_t)(half + 1) * 4), *tab, *qabs, *po, *pml, *cs;
    CU(cudaMalloc((void **)&tab, (size_t)((pos + 1) * rope + 1) * 4));
    CHECK(cuk_rope_table(tab, 0, pos + 1, dinv, 1.0f, rope, Q) == cudaSuccess);
    CU(cudaMalloc((void **)&qabs, (size_t)(H * W) * 4));
    CU(cudaMalloc((void **)&po, (size_t)(2 * H * R) * 4));
    CU(cudaMalloc((void **)&pml, (size_t)(2 * H * 2) * 4));
    CU(cudaMalloc((void **)&cs, (size_t)(rope + 1) * 4));
    const size_t ny = (size_t)(H * vd), nl = (size_t)(H * R);
    float *y0 = malloc(ny * 4), *y1 = malloc(ny * 4), *hol = malloc(nl * 4), *ref = malloc(nl * 4);
    float *qh = malloc((size_t)(H * W) * 4), *ql = malloc(nl * 4), *qp = malloc((size_t)(H * rope + 1) * 4);
    /* the query rows and the token's cache row (W_UK^T with the MLA epilogue) */
    void *dc = dup_dev(hc.rows, (size_t)(cap * W) * hc.es);
    cu_prep pp = {.kv = dkv, .R = R, .rope = rope, .kv_norm = dkvn, .eps = 1e-6f, .inv_freq = dinv,
                  .mscale = 1.0f, .table = tab, .cache = dc, .cache_bf16 = bf16, .cs = cs, .step = dstep, .n = 1};
    cu_mvt uk = {.w = dw, .nr = nope, .row0 = 0, .grs = hs, .gmod = H, .groups = H, .x = dq, .xs = qk,
                 .y = qabs, .ys = W, .rope = rope, .inv_freq = dinv, .mscale = 1.0f, .table = tab,
                 .step = dstep, .prep = &pp};
    CHECK(cuk_matvec_t(&uk, Q) == cudaSuccess);
    { /* the same launch also writing its rows as bf16 (cu_mvt.y16, for the tensor-core
         splits): the float rows unchanged, the bf16 ones their rounding (the epilogue's
         cache row written again, the same) */
        uint16_t *h16 = malloc((size_t)(H * W) * 2), *d16;
        float *f0 = malloc((size_t)(H * W) * 4), *f1 = malloc((size_t)(H * W) * 4);
        CU(cudaMalloc((void **)&d16, (size_t)(H * W) * 2));
        CU(cudaMemset(d16, 0xff, (size_t)(H * W) * 2));
        CU(cudaMemcpy(f0, qabs, (size_t)(H * W) * 4, cudaMemcpyDeviceToHost));
        cu_mvt u16 = uk;
        u16.y16 = d16;
        CHECK(cuk_matvec_t(&u16, Q) == cudaSuccess);
        CU(cudaMemcpy(f1, qabs, (size_t)(H * W) * 4, cudaMemcpyDeviceToHost));
        CU(cudaMemcpy(h16, d16, (size_t)(H * W) * 2, cudaMemcpyDeviceToHost));
        int64_t bad = 0;
        for (int64_t i = 0; i < H * W; i++) bad += h16[i] != zf32_to_bf16(f1[i]);
        CHECKF(same_bits(f0, f1, (size_t)(H * W)) && bad == 0,
               "W_UK^T with bf16 rows: %lld of %lld bf16 values are not the float rows' rounding", (long long)bad,
               (long long)(H * W));
        u16.ys = W + 1; /* odd rows: the rope pairs' 4-byte stores would misalign */
        CHECK(cuk_matvec_t(&u16, Q) == cudaErrorInvalidValue);
        cudaFree(d16);
        free(f0);
        free(f1);
        free(h16);
    }
    for (int sp = 0; sp < 2; sp++) { /* 0: the short path, 1: the spread */
        if (!(sp ? spread_ok : short_ok)) continue;
        dout ol = out_new(nl), o = out_new(ny);
        cu_attn at = {.q = qabs, .cache = dc, .cache_bf16 = bf16, .n_q = 1, .H = H, .R = R, .rope = rope,
                      .scale = 0.07f, .step = dstep, .nsplit = 2, .part_o = po, .part_ml = pml, .out = ol.p,
                      .hb = 8, .spread = sp};
        cu_mv uv = {.w = dw, .groups = H, .rpg = vd, .row0 = nope, .grs = hs, .gmod = H, .x = ol.p, .xs = R,
                    .y = o.p, .ys = vd, .epi = CU_EPI_STORE};
        CHECK(cuk_attn_absorbed(&at, Q) == cudaSuccess);
        CHECK(cuk_matvec(&uv, 1, Q) == cudaSuccess);
        const bool got = out_fetch(&ol, hol, "o_lat");
        CHECKF(out_fetch(&o, y0, "attention + W_UV") && got, "attention + W_UV %s spread %d", fn, sp);
        if (sp) { /* the spread's o_lat against the reference */
            CU(cudaMemcpy(qh, qabs, (size_t)(H * W) * 4, cudaMemcpyDeviceToHost));
            CU(cudaMemcpy(hc.rows, dc, (size_t)(cap * W) * hc.es, cudaMemcpyDeviceToHost));
            for (int64_t t = 0; t < cap; t++) /* the token's row as W_UK^T's epilogue wrote it */
                for (int64_t j = 0; j < W; j++)
                    memcpy(j < R ? (uint8_t *)hc.lat + (size_t)(t * R + j) * hc.es
                                 : (uint8_t *)hc.kpe + (size_t)(t * rope + j - R) * hc.es,
                           (const uint8_t *)hc.rows + (size_t)(t * W + j) * hc.es, hc.es);
            for (int64_t h = 0; h < H; h++) {
                memcpy(ql + h * R, qh + h * W, (size_t)R * 4);
                memcpy(qp + h * rope, qh + h * W + R, (size_t)rope * 4);
            }
            const hsel dense = {0};
            absorbed_ref(&hc, bf16, H, R, rope, 1, pos + 1, at.scale, &dense, ql, qp, ref);
            int64_t nan = 0;
            const double err = max_err(hol, ref, (int64_t)nl, &nan);
            CHECKF(nan == 0 && err <= 2e-5, "spread %s bf16=%d H=%lld pos=%lld: o_lat err %.3g (NaN %lld)", fn, bf16,
                   (long long)H, (long long)pos, err, (long long)nan);
        }
        const int splits[6] = {8, 1, 3, 3, 2, 8}; /* the 4th and the 6th under PDL, the 5th and 6th early */
        for (int si = 0; si < 6; si++) {
            dout of = out_new(ny);
            cu_attn_uv au = {.at = at, .uv = uv, .split = splits[si]};
            au.at.out = NULL, au.at.part_o = au.at.part_ml = NULL, au.uv.x = NULL, au.uv.y = of.p;
            if (f.sdt != ZDT_BF16) { /* scales other than MLX's bf16: the two launches */
                CHECKF(!cuk_attn_uv_ok(&au, Q), "attn_uv %s: taken with scales other than bf16", fn);
                out_free(&of);
                break;
            }
            if (sp && splits[si] != ZCU_ATTN_SPREAD_N) { /* the spread's bits are its blocks' */
                CHECK(!cuk_attn_uv_ok(&au, Q) && cuk_attn_uv(&au, Q) == cudaErrorInvalidValue);
                out_free(&of);
                continue;
            }
            CHECK(cuk_attn_uv_ok(&au, Q));
            au.at.early = si >= 4; /* the decode step's early step read and L2 requests */
            CHECK(cuk_attn_uv(&au, si == 3 || si == 5 ? QPDL : Q) == cudaSuccess);
            CHECKF(out_fetch(&of, y1, "attn_uv") && same_bits(y0, y1, ny),
                   "attn_uv %s bf16=%d H=%lld pos=%lld split %d spread %d: W_UV's output differs from the two "
                   "launches'",
                   fn, bf16, (long long)H, (long long)pos, splits[si], sp);
            au.at.idx = au.at.idx_n = (const int32_t *)dstep; /* sparse lists: not this launch's */
            CHECK(!cuk_attn_uv_ok(&au, Q) && cuk_attn_uv(&au, Q) == cudaErrorInvalidValue);
            au.at.idx = au.at.idx_n = NULL;
            CHECK(!cuk_attn_uv_ok(&au, (cu_q){S, false, false})); /* exact mode: the two launches */
            out_free(&of);
        }
        if (sp) { /* the spread refuses sparse lists and several queries */
            cu_attn bad = at;
            bad.idx = bad.idx_n = (const int32_t *)dstep;
            CHECK(cuk_attn_absorbed(&bad, Q) == cudaErrorInvalidValue);
            bad = at;
            bad.n_q = 2;
            CHECK(cuk_attn_absorbed(&bad, Q) == cudaErrorInvalidValue);
        }
        out_free(&o);
        out_free(&ol);
    }
    free(y0);
    free(y1);
    free(hol);
    free(ref);
    free(qh);
    free(ql);
    free(qp);
    cudaFree(dc);
    cudaFree(cs);
    cudaFree(pml);
    cudaFree(po);
    cudaFree(qabs);
    cudaFree(tab);
    cudaFree(dinv);
    cudaFree(dkv);
    cudaFree(dkvn);
    cudaFree(dq);
    cudaFree(dstep);
    free(inv);
    free(kvn);
    free(kv);
    free(q);
    hcache_free(&hc);
    cuw_free(&dw);
    hmat_free(&m);
}

static void attn_uv_cases(bool quick) {
    for (int b = 0; b < 2; b++) {
        case_attn_uv((wfmt){ZW_AFFINE8, 32, ZDT_BF16}, b, 3, 8, 20, 96, 8, 40); /* partial batches */
        case_attn_uv((wfmt){ZW_AFFINE8, 32, ZDT_F16}, b, 3, 8, 20, 96, 8, 40);  /* refused: f16 scales */
        if (quick) continue; /* (compute-sanitizer) */
        case_attn_uv(F_Q4, b, 20, 192, 256, 512, 64, 15); /* GLM-4.7-Flash */
        case_attn_uv(F_Q4, b, 20, 192, 256, 512, 64, 0);  /* the first token */
        case_attn_uv(F_Q4, b, 20, 192, 256, 512, 64, 159); /* the short path's last context */
        case_attn_uv(F_Q4, b, 20, 192, 256, 512, 64, 160); /* the spread only from here */
        case_attn_uv(F_Q4, b, 20, 192, 256, 512, 64, 700);
        case_attn_uv(F_Q4, b, 20, 192, 256, 512, 64, ZCU_ATTN_SPREAD_MAX - 1); /* the spread's last */
        case_attn_uv(F_Q4, b, 20, 192, 256, 512, 64, 3000); /* far past it (the launch takes any) */
        case_attn_uv((wfmt){ZW_AFFINE8, 32, ZDT_BF16}, b, 3, 8, 20, 96, 8, 333);
        case_attn_uv((wfmt){ZW_AFFINE4, 128, ZDT_BF16}, b, 5, 128, 128, 256, 64, 7);
    }
}

/* Exact mode: the absorbed and expanded kernels, the indexer. */
static void exact_cases(bool quick) {
    absorbed_cases(quick);
    for (int b = 0; b < 2; b++) {
        case_expanded(b, 4, 32, 16, 32, 64, 30, 4, 0);
        case_expanded(b, 20, 192, 64, 256, 512, 70, 3, 0);
        case_expanded(b, 3, 10, 6, 300, 20, 200, 2, 0);
        case_expanded(b, 4, 32, 16, 32, 64, 30, 4, 8);
        case_expanded(b, 3, 10, 6, 300, 20, 200, 3, 150);
    }
    /* the DSA indexer: DeepSeek-V3.2 (64 heads of 128, rope 64), the fixture's (16 of 32),
       odd sizes; chunks with dense and sparse queries */
    for (int b = 0; b < 2; b++) {
        case_indexer(b, 64, 128, 64, 3000, 2, 2048, 1.0f);
        if (!quick) case_indexer(b, 64, 128, 64, 40000, 1, 2048, 1.0f);
        case_indexer(b, 16, 32, 16, 20, 5, 8, 1.2f);
        case_indexer(b, 16, 32, 16, 5, 6, 8, 1.0f);
        case_indexer(b, 3, 24, 8, 300, 3, 37, 1.0f);
        case_indexer(b, 64, 128, 64, 70, 130, 64, 1.0f); /* a whole chunk and more */
    }
}

/* Fast mode (tq_fast): prefill's tensor-core attention (float32 kernels where tiles of 16
   do not fit), the decode splits on the tensor cores, the attention with W_UV. */
static void expanded_fast_cases(bool quick) {
    for (int b = 0; b < 2; b++) {
        case_expanded(b, 4, 32, 16, 32, 64, 30, 4, 0);
        case_expanded(b, 20, 192, 64, 256, 512, 70, 3, 0);   /* GLM-4.7-Flash */
        case_expanded(b, 20, 192, 64, 256, 512, 0, 130, 0);  /* a first chunk: three query tiles */
        if (!quick) case_expanded(b, 20, 192, 64, 256, 512, 90, 300, 0); /* three 128-query blocks, a partial one */
        case_expanded(b, 3, 128, 64, 128, 512, 100, 70, 0);  /* DeepSeek-V3 head dims */
        case_expanded(b, 2, 32, 16, 48, 64, 5, 67, 0);       /* vd not a multiple of 32 */
        case_expanded(b, 3, 10, 6, 300, 20, 200, 2, 0);      /* no tiles of 16: float32 kernel */
        case_expanded(b, 4, 32, 16, 32, 64, 30, 4, 8);       /* sparse: float32 kernel */
    }
}

static void fast_cases(bool quick) {
    expanded_fast_cases(quick);
    absorbed_cases(quick); /* with a bf16 cache and W % 16 == 0: the tensor-core splits */
    attn_uv_cases(quick);
}

int main(void) {
    bool quick = false;
    if (!tcu_begin(&quick)) return tc_fail ? 1 : 0;
    const char *only = getenv("ZMLX_TEST_ATTN_ONLY"); /* "expanded": fast mode's prefill
                                                          attention alone, "uv": the
                                                          attention with W_UV alone
                                                          (compute-sanitizer) */
    if (only && (!strcmp(only, "expanded") || !strcmp(only, "uv"))) {
        tq_fast = true;
        if (!strcmp(only, "uv")) attn_uv_cases(quick);
        else expanded_fast_cases(quick);
        CU(cudaStreamSynchronize(S));
        CU(cudaGetLastError());
        return tc_done();
    }
    exact_cases(quick);
    printf("exact cases: %d passed, %d failed\n", tc_pass, tc_fail);
    tq_fast = true;
    fast_cases(quick);
    tq_fast = false;
    CU(cudaStreamSynchronize(S));
    CU(cudaGetLastError());
    return tc_done();
}
#endif
