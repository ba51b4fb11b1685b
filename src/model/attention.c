/*
 * attention.c — MLA attention of one layer for a chunk of n tokens at positions
 * n_past .. n_past+n-1 (DeepSeek-V3 / GLM-4.7-Flash):
 *
 *   cq   = q_a_norm(q_a(x))            q = q_b(cq)  -> per head [nope | rope]
 *   ckv  = kv_a(x) -> [latent c (kv_lora) | k_pe (rope)];  c = kv_a_norm(c)
 *   RoPE (interleaved pairs) on q_pe and k_pe; cache c and k_pe
 *   logit_h(t) = s * (q_nope_h · W_UK[h] c_t  +  q_pe_h · k_pe_t)
 *   o_h        = W_UV[h] · sum_t softmax(logit_h)(t) c_t          (absorbed)
 *              = sum_t softmax(logit_h)(t) (W_UV[h] c_t)           (expanded)
 *   out = o_proj(concat_h o_h)
 *
 * Absorbed (decode): q_lat_h = W_UK[h]^T q_nope_h, attention over the latent rows
 * themselves (one shared key/value head of width kv_lora), then W_UV.  Expanded
 * (prefill): k_nope and v of every cached position via kv_b, then ordinary attention.
 * The two are the same function of the inputs; tests check they agree.
 *
 * DeepSeek-V3.2 (DSA): the lightning indexer (indexer.c) picks, per query, the
 * index_topk cached positions both paths attend to once more keys than that exist.
 */
#include "model/indexer.h"
#include "model/session.h"
#include "ops/ops.h"

/* q, c and k_pe of the chunk; appends c and k_pe to the cache. */
static void project(zmlx_session *s, int l, int64_t n) {
    const zmlx_model *m = s->m;
    const zmlx_config *c = &m->cfg;
    const zlayer *L = &m->layers[l];
    zscratch *z = &s->s;
    const int64_t H = c->n_heads, nope = c->qk_nope_dim, rope = c->qk_rope_dim;
    const int64_t qk = nope + rope, R = c->kv_lora_rank, half = rope / 2;

    zmm_job first[2] = {
        {.w = L->kv_a, .x = z->xn, .y = z->kv, .n = n},
        {.w = L->q_a, .x = z->xn, .y = c->q_lora_rank > 0 ? z->qa : z->q, .n = n},
    };
    m->be->matmul(m->be_ctx, first, 2);
    if (c->q_lora_rank > 0) {
        for (int64_t t = 0; t < n; t++)
            zop_rmsnorm(z->qa + t * c->q_lora_rank, L->q_a_norm, c->q_lora_rank,
                        c->attn_norm_eps, z->qa + t * c->q_lora_rank);
        zmm_job qb = {.w = L->q_b, .x = z->qa, .y = z->q, .n = n};
        m->be->matmul(m->be_ctx, &qb, 1);
    }
    for (int64_t t = 0; t < n; t++) {
        const float *ct = s->cos_t + t * half, *st = s->sin_t + t * half;
        float *kv = z->kv + t * (R + rope);
        zop_rmsnorm(kv, L->kv_a_norm, R, c->attn_norm_eps, kv);
        zop_rope_interleaved(kv + R, rope, ct, st);
        zcache_store(s->lat[l], s->n_past + t, kv, R, s->kv_elem);
        zcache_store(s->kpe[l], s->n_past + t, kv + R, rope, s->kv_elem);
        for (int64_t h = 0; h < H; h++) {
            const float *qh = z->q + (t * H + h) * qk;
            float *qn = z->q_nope + (t * H + h) * nope, *qp = z->q_pe + (t * H + h) * rope;
            for (int64_t i = 0; i < nope; i++) qn[i] = qh[i];
            for (int64_t i = 0; i < rope; i++) qp[i] = qh[nope + i];
            zop_rope_interleaved(qp, rope, ct, st);
        }
    }
}

/* The indexer's selection (deepseek_v32), or the dense causal attention of every other
   family. */
static void set_sparse(const zmlx_session *s, zattn_job *aj) {
    if (s->m->cfg.family != ZFAM_DEEPSEEK_V32) return;
    aj->idx = s->s.sel;
    aj->idx_n = s->s.sel_n;
    aj->idx_stride = s->s.sel_cap;
}

static void attend_absorbed(zmlx_session *s, int l, int64_t n, int64_t T) {
    const zmlx_model *m = s->m;
    const zmlx_config *c = &m->cfg;
    const zlayer *L = &m->layers[l];
    zscratch *z = &s->s;
    const int64_t H = c->n_heads, nope = c->qk_nope_dim, rope = c->qk_rope_dim;
    const int64_t R = c->kv_lora_rank, vd = c->v_head_dim, hs = nope + vd;
    zmm_job *jobs = z->jobs;
    for (int64_t t = 0; t < n; t++) /* q_lat_h = W_UK[h]^T q_nope_h */
        for (int64_t h = 0; h < H; h++)
            jobs[t * H + h] = (zmm_job){.w = zweight_rows(&L->kv_b, h * hs, nope),
                                        .x = z->q_nope + (t * H + h) * nope,
                                        .y = z->q_lat + (t * H + h) * R, .n = 1};
    m->be->matmul_t(m->be_ctx, jobs, (int)(n * H));
    zdtype kvdt = s->kv_elem == 2 ? ZDT_BF16 : ZDT_F32;
    zattn_job aj = {.n_heads = H, .n_q = n, .T = T, .dk = R, .dr = rope, .dv = R,
                    .q = z->q_lat, .qr = z->q_pe,
                    .k = s->lat[l], .k_stride = R, .k_head = 0,
                    .kr = s->kpe[l], .kr_stride = rope, .kr_dtype = kvdt,
                    .v = s->lat[l], .v_stride = R, .v_head = 0,
                    .kv_dtype = kvdt, .scale = m->attn_scale, .out = z->o_lat,
                    .scratch = z->attn_scores};
    set_sparse(s, &aj);
    m->be->attention(m->be_ctx, &aj);
    for (int64_t t = 0; t < n; t++) /* o_h = W_UV[h] o_lat_h */
        for (int64_t h = 0; h < H; h++)
            jobs[t * H + h] = (zmm_job){.w = zweight_rows(&L->kv_b, h * hs + nope, vd),
                                        .x = z->o_lat + (t * H + h) * R,
                                        .y = z->attn + (t * H + h) * vd, .n = 1};
    m->be->matmul(m->be_ctx, jobs, (int)(n * H));
}

static void attend_expanded(zmlx_session *s, int l, int64_t n, int64_t T) {
    const zmlx_model *m = s->m;
    const zmlx_config *c = &m->cfg;
    const zlayer *L = &m->layers[l];
    zscratch *z = &s->s;
    const int64_t H = c->n_heads, nope = c->qk_nope_dim, rope = c->qk_rope_dim;
    const int64_t R = c->kv_lora_rank, vd = c->v_head_dim, hs = nope + vd;
    /* latent rows as float (the cache may be bf16), then k_nope | v for every position */
    if (s->kv_elem == 2) {
        const uint16_t *src = s->lat[l];
        for (int64_t i = 0; i < T * R; i++) z->lat_f32[i] = zbf16_to_f32(src[i]);
    } else {
        const float *src = s->lat[l];
        for (int64_t i = 0; i < T * R; i++) z->lat_f32[i] = src[i];
    }
    zmm_job kb = {.w = L->kv_b, .x = z->lat_f32, .y = z->kvb, .n = T};
    m->be->matmul(m->be_ctx, &kb, 1);
    zattn_job aj = {.n_heads = H, .n_q = n, .T = T, .dk = nope, .dr = rope, .dv = vd,
                    .q = z->q_nope, .qr = z->q_pe,
                    .k = z->kvb, .k_stride = H * hs, .k_head = hs,
                    .kr = s->kpe[l], .kr_stride = rope,
                    .kr_dtype = s->kv_elem == 2 ? ZDT_BF16 : ZDT_F32,
                    .v = z->kvb + nope, .v_stride = H * hs, .v_head = hs,
                    .kv_dtype = ZDT_F32, .scale = m->attn_scale, .out = z->attn,
                    .scratch = z->attn_scores};
    set_sparse(s, &aj);
    m->be->attention(m->be_ctx, &aj);
}

void zattn_forward(zmlx_session *s, int l, int64_t n, bool absorbed) {
    const zmlx_model *m = s->m;
    zscratch *z = &s->s;
    project(s, l, n);
    if (m->cfg.family == ZFAM_DEEPSEEK_V32) zidx_forward(s, l, n);
    int64_t T = s->n_past + n;
    if (absorbed) attend_absorbed(s, l, n, T);
    else attend_expanded(s, l, n, T);
    zmm_job o = {.w = m->layers[l].o, .x = z->attn, .y = z->f, .n = n};
    m->be->matmul(m->be_ctx, &o, 1);
}
