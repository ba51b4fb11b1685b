/*
 * indexer.c — the DeepSeek-V3.2 DSA indexer's steps in a device step (decode.c and
 * chunk.c project its keys, queries and head weights with their own products; this
 * file runs the rest): the keys' LayerNorm + rope into the indexer-key cache, the
 * queries' rope, then the scores and the top-k of every query that sees more than
 * index_topk keys, a group of s->score_rows queries per launch pair (kernels_idx.cu).
 * The attention then reads s->sel / s->sel_n (cu_attn.idx).
 */
#include "backend/cuda/cuda_internal.h"

bool zcu_dsa(const cu_sess *s) {
    return s->c->m->cfg.family == ZFAM_DEEPSEEK_V32;
}

zmlx_status zcu_indexer(cu_sess *s, int l, int64_t n, const float *table, int64_t Tmax, cu_q q,
                        zerr *e) {
    const cu_ctx *c = s->c;
    const zmlx_config *cf = &c->m->cfg;
    const cu_layer *L = &c->layers[l];
    const int64_t dI = cf->index_head_dim;
    cu_idx j = {.k = s->ik, .q = s->iq, .w = s->iw, .knorm = L->idx_knorm, .kbias = L->idx_kbias,
                .nI = cf->index_n_heads, .dI = dI, .rope = cf->qk_rope_dim, .table = table,
                .inv_freq = c->inv_freq, .mscale = c->m->rope_mscale,
                .cache = (uint8_t *)s->kidx + (size_t)(l * s->cap * dI) * s->kv_elem,
                .cache_bf16 = s->kv_bf16, .score = s->iscore, .score_ld = s->cap, .sel = s->sel,
                .sel_n = s->sel_n, .topk = s->sel_cap, .step = s->d_step, .n = n};
    CU_TRY(e, cuk_idx_prep(&j, q));
    for (int64_t t0 = 0; t0 < n; t0 += s->score_rows) {
        const int64_t nt = n - t0 < s->score_rows ? n - t0 : s->score_rows;
        CU_TRY(e, cuk_idx_select(&j, t0, nt, Tmax, q));
    }
    return ZMLX_OK;
}
