/*
 * forward.c — one chunk of tokens through the decoder:
 *   x = embed(ids)
 *   per layer:  x += Attn(RMSNorm_in(x));  x += FFN(RMSNorm_post(x))
 *   logits = lm_head(RMSNorm_final(x))   (last row, or every row on request)
 * The blocks themselves are in attention.c and moe.c.
 */
#include "model/session.h"
#include "ops/ops.h"

#include <stdlib.h>

static void add_norm(float *x, const float *f, const float *w, int64_t d, float eps, float *y,
                     bool fused) {
    if (fused) {
        zop_add_rmsnorm(x, f, w, d, eps, y);
    } else {
        zop_add(x, f, d);
        zop_rmsnorm(x, w, d, eps, y);
    }
}

/* glm47_rope's cos/sin table: make it cover positions [0, want), growing in powers of
   two (never max_position_embeddings eagerly).  False if memory ran out (the caller
   then computes the values directly, which are the same). */
static bool rope_table_cover(zmlx_session *s, int64_t want) {
    if (want <= s->rope_cap) return true;
    const zmlx_model *m = s->m;
    const int64_t half = m->cfg.qk_rope_dim / 2;
    int64_t cap = s->rope_cap ? s->rope_cap : 256;
    while (cap < want) cap *= 2;
    float *c = realloc(s->rope_cos, (size_t)(cap * half) * sizeof(float));
    if (c) s->rope_cos = c;
    float *sn = realloc(s->rope_sin, (size_t)(cap * half) * sizeof(float));
    if (sn) s->rope_sin = sn;
    if (!c || !sn) return false;
    for (int64_t p = s->rope_cap; p < cap; p++)
        zop_rope_table(p, m->inv_freq, half, m->rope_mscale, s->rope_cos + p * half,
                       s->rope_sin + p * half);
    s->bytes += (cap - s->rope_cap) * half * 2 * (int64_t)sizeof(float);
    if (s->bytes > s->peak) s->peak = s->bytes;
    s->rope_cap = cap;
    return true;
}

zmlx_status zforward_chunk(zmlx_session *s, const int32_t *ids, int64_t n, float *logits,
                           bool all_logits, zerr *e) {
    const zmlx_model *m = s->m;
    const zmlx_config *c = &m->cfg;
    const int64_t d = c->hidden_size;
    zscratch *z = &s->s;
    bool absorbed = s->p.attn_path == ZMLX_ATTN_ABSORBED ||
                    (s->p.attn_path == ZMLX_ATTN_AUTO && n == 1);

    for (int64_t t = 0; t < n; t++) zop_embed(&m->embed, ids[t], z->x + t * d);
    const int64_t half = c->qk_rope_dim / 2;
    if (n == 1 && m->plan[0].rope_table && rope_table_cover(s, s->n_past + 1)) {
        /* glm47_rope: the shared table holds the values the baseline computes */
        for (int64_t i = 0; i < half; i++) {
            s->cos_t[i] = s->rope_cos[s->n_past * half + i];
            s->sin_t[i] = s->rope_sin[s->n_past * half + i];
        }
    } else {
        for (int64_t t = 0; t < n; t++)
            zop_rope_table(s->n_past + t, m->inv_freq, half, m->rope_mscale, s->cos_t + t * half,
                           s->sin_t + t * half);
    }

    /* x += f then xn = norm(x): fused when residual_norm is on (same values) */
    for (int64_t t = 0; t < n; t++)
        zop_rmsnorm(z->x + t * d, m->layers[0].attn_norm, d, c->rms_norm_eps, z->xn + t * d);
    for (int l = 0; l < c->n_layers; l++) {
        const zlayer *L = &m->layers[l];
        const bool fuse = m->plan[l].residual_norm;
        zattn_forward(s, l, n, absorbed);
        for (int64_t t = 0; t < n; t++)
            add_norm(z->x + t * d, z->f + t * d, L->ffn_norm, d, c->rms_norm_eps, z->xn + t * d, fuse);
        bool added = zffn_forward(s, l, n);
        const bool last = l + 1 == c->n_layers;
        for (int64_t t = 0; t < n; t++) {
            float *x = z->x + t * d;
            if (last) {
                if (!added) zop_add(x, z->f + t * d, d);
            } else if (added) {
                zop_rmsnorm(x, m->layers[l + 1].attn_norm, d, c->rms_norm_eps, z->xn + t * d);
            } else {
                add_norm(x, z->f + t * d, m->layers[l + 1].attn_norm, d, c->rms_norm_eps,
                         z->xn + t * d, fuse);
            }
        }
    }

    if (logits) {
        int64_t first = all_logits ? 0 : n - 1, rows = n - first;
        for (int64_t t = 0; t < rows; t++)
            zop_rmsnorm(z->x + (first + t) * d, m->final_norm, d, c->rms_norm_eps,
                        z->logits_row + t * d);
        zmm_job job = {.w = m->lm_head, .x = z->logits_row, .y = logits, .n = rows};
        m->be->matmul(m->be_ctx, &job, 1);
    }
    s->n_past += n;
    (void)e;
    return ZMLX_OK;
}
