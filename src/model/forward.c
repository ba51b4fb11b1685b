/*
 * forward.c — one chunk of tokens through the decoder:
 *   x = embed(ids)
 *   per layer:  x += Attn(RMSNorm_in(x));  x += FFN(RMSNorm_post(x))
 *   logits = lm_head(RMSNorm_final(x))   (last row, or every row on request)
 * The blocks themselves are in attention.c and moe.c.
 */
#include "model/session.h"
#include "ops/ops.h"

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
    for (int64_t t = 0; t < n; t++)
        zop_rope_table(s->n_past + t, m->inv_freq, half, m->rope_mscale, s->cos_t + t * half,
                       s->sin_t + t * half);

    for (int l = 0; l < c->n_layers; l++) {
        const zlayer *L = &m->layers[l];
        for (int64_t t = 0; t < n; t++)
            zop_rmsnorm(z->x + t * d, L->attn_norm, d, c->rms_norm_eps, z->xn + t * d);
        zattn_forward(s, l, n, absorbed);
        for (int64_t t = 0; t < n; t++) zop_add(z->x + t * d, z->f + t * d, d);
        for (int64_t t = 0; t < n; t++)
            zop_rmsnorm(z->x + t * d, L->ffn_norm, d, c->rms_norm_eps, z->xn + t * d);
        zffn_forward(s, l, n);
        for (int64_t t = 0; t < n; t++) zop_add(z->x + t * d, z->f + t * d, d);
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
