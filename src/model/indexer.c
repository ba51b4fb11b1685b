/*
 * indexer.c — the DeepSeek-V3.2 DSA lightning indexer (formulas in indexer.h): key
 * projection + LayerNorm + rope into the indexer-key cache, query projection + rope,
 * the per-query scores over the cached keys, and the top-k selection that attention.c
 * hands to the attention kernel.  Everything is float32; the products run on the
 * backend's matmul (the cached keys act as the weight), the rest is scalar.  Scores are
 * only computed for queries that see more than index_topk keys: below that the
 * attention is dense, as in every reference.
 */
#include "model/indexer.h"
#include "ops/ops.h"

#include <math.h>
#include <string.h>

/* Keys of the chunk into the cache; queries and head weights into the scratch. */
static void project(zmlx_session *s, int l, int64_t n) {
    const zmlx_model *m = s->m;
    const zmlx_config *c = &m->cfg;
    const zlayer *L = &m->layers[l];
    zscratch *z = &s->s;
    const int64_t nI = c->index_n_heads, dI = c->index_head_dim, rope = c->qk_rope_dim;
    const int64_t half = rope / 2;
    zmm_job jobs[3] = {
        {.w = L->idx_wk, .x = z->xn, .y = z->ik, .n = n},
        {.w = L->idx_w, .x = z->xn, .y = z->iw, .n = n},
        {.w = L->idx_wq_b, .x = z->qa, .y = z->iq, .n = n},
    };
    m->be->matmul(m->be_ctx, jobs, 3);
    const float wscale = (float)(1.0 / sqrt((double)nI));
    for (int64_t t = 0; t < n; t++) {
        const float *ct = s->cos_t + t * half, *st = s->sin_t + t * half;
        float *k = z->ik + t * dI;
        zop_layernorm(k, L->idx_k_norm, L->idx_k_bias, dI, ZIDX_NORM_EPS, k);
        zop_rope_half(k, rope, ct, st);
        zcache_store(s->kidx[l], s->n_past + t, k, dI, s->kv_elem);
        for (int64_t h = 0; h < nI; h++) zop_rope_half(z->iq + (t * nI + h) * dI, rope, ct, st);
        for (int64_t h = 0; h < nI; h++) z->iw[t * nI + h] *= wscale;
    }
}

void zidx_combine(const float *heads, int64_t n_heads, int64_t T, const float *w, float scale,
                  float *score) {
    for (int64_t u = 0; u < T; u++) score[u] = 0.0f;
    for (int64_t h = 0; h < n_heads; h++) {
        const float *row = heads + h * T;
        for (int64_t u = 0; u < T; u++) {
            float a = row[u] * scale;
            score[u] += w[h] * (a > 0.0f ? a : 0.0f);
        }
    }
}

static void swap(float *v, int64_t a, int64_t b) {
    float t = v[a];
    v[a] = v[b];
    v[b] = t;
}

static float median3(float a, float b, float c) {
    if (a > b) {
        float t = a;
        a = b;
        b = t;
    }
    return c <= a ? a : c >= b ? b : c;
}

/* The k-th largest of v[0..n) (1 <= k <= n); reorders v.  Quickselect with a
   three-way partition, so runs of equal scores (ReLU zeros) stay linear. */
static float kth_largest(float *v, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n;
    const int64_t want = k - 1; /* index in descending order */
    while (hi - lo > 1) {
        const float p = median3(v[lo], v[lo + (hi - lo) / 2], v[hi - 1]);
        int64_t gt = lo, i = lo, lt = hi; /* [lo,gt) > p, [gt,i) == p, [lt,hi) < p */
        while (i < lt) {
            if (v[i] > p) swap(v, gt++, i++);
            else if (v[i] < p) swap(v, i, --lt);
            else i++;
        }
        if (want < gt) hi = gt;
        else if (want >= lt) lo = lt;
        else return p;
    }
    return v[lo];
}

int64_t zidx_topk(const float *score, int64_t T, int64_t k, float *work, int32_t *out) {
    if (k >= T) {
        for (int64_t u = 0; u < T; u++) out[u] = (int32_t)u;
        return T;
    }
    memcpy(work, score, (size_t)T * sizeof(float));
    const float thr = kth_largest(work, T, k);
    int64_t above = 0;
    for (int64_t u = 0; u < T; u++) above += score[u] > thr;
    int64_t ties = k - above, m = 0; /* threshold ties: the lowest positions win */
    for (int64_t u = 0; u < T; u++)
        if (score[u] > thr || (score[u] == thr && ties-- > 0)) out[m++] = (int32_t)u;
    return m;
}

/* Selection of the query at chunk row t, which sees T > index_topk keys. */
static void select_row(zmlx_session *s, int l, int64_t t, int64_t T) {
    const zmlx_model *m = s->m;
    const zmlx_config *c = &m->cfg;
    zscratch *z = &s->s;
    const int64_t nI = c->index_n_heads, dI = c->index_head_dim;
    zmm_job j = {.w = {.dtype = s->kv_elem == 2 ? ZDT_BF16 : ZDT_F32, .rows = T, .cols = dI,
                       .data = s->kidx[l]},
                 .x = z->iq + t * nI * dI, .y = z->i_heads, .n = nI};
    m->be->matmul(m->be_ctx, &j, 1);
    zidx_combine(z->i_heads, nI, T, z->iw + t * nI, (float)(1.0 / sqrt((double)dI)), z->i_score);
    z->sel_n[t] = (int32_t)zidx_topk(z->i_score, T, c->index_topk, z->i_work,
                                     z->sel + t * z->sel_cap);
}

void zidx_forward(zmlx_session *s, int l, int64_t n) {
    const int64_t topk = s->m->cfg.index_topk;
    project(s, l, n);
    for (int64_t t = 0; t < n; t++) {
        const int64_t T = s->n_past + t + 1; /* causal: keys up to this query */
        if (T <= topk) s->s.sel_n[t] = -1;
        else select_row(s, l, t, T);
    }
}
