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
 * W_UK and W_UV come from kv_b [H*(nope+v), kv_lora] or, for mlx-lm checkpoints, from
 * the split pair held as stored (model.h, mla.c): embed_q_h = W_UK[h]^T [kv_lora, nope]
 * and unembed_out_h = W_UV[h] [v, kv_lora].  Per head (every head one job of one call):
 *                    kv_b                              split
 *   q_lat_h   matmul_t(kv_b W_UK rows, q_nope_h)   matmul(embed_q_h, q_nope_h)
 *   o_h       matmul(kv_b W_UV rows, o_lat_h)      matmul(unembed_out_h, o_lat_h)
 *   k_nope    matmul(kv_b, c) [T, H*(nope+v)]      matmul_t(embed_q_h, c) [H, T, nope]
 *   v                                              matmul(unembed_out, c) [T, H*v]
 * The same values (the split pair's dequantized elements are kv_b's), summed in another
 * order by some kernels: float32 rounding apart (tests/test_mla_split.c).
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

/* Head h's W_UV [v, kv_lora]: unembed_out's rows or kv_b's. */
static zweight w_uv(const zlayer *L, int64_t h, int64_t nope, int64_t vd) {
    return L->embed_q.data ? zweight_rows(&L->unembed_out, h * vd, vd)
                           : zweight_rows(&L->kv_b, h * (nope + vd) + nope, vd);
}

static void attend_absorbed(zmlx_session *s, int l, int64_t n, int64_t T) {
    const zmlx_model *m = s->m;
    const zmlx_config *c = &m->cfg;
    const zlayer *L = &m->layers[l];
    zscratch *z = &s->s;
    const int64_t H = c->n_heads, nope = c->qk_nope_dim, rope = c->qk_rope_dim;
    const int64_t R = c->kv_lora_rank, vd = c->v_head_dim, hs = nope + vd;
    const bool split = L->embed_q.data != NULL;
    zmm_job *jobs = z->jobs;
    for (int64_t t = 0; t < n; t++) /* q_lat_h = W_UK[h]^T q_nope_h */
        for (int64_t h = 0; h < H; h++)
            jobs[t * H + h] = (zmm_job){.w = split ? zweight_rows(&L->embed_q, h * R, R)
                                                   : zweight_rows(&L->kv_b, h * hs, nope),
                                        .x = z->q_nope + (t * H + h) * nope,
                                        .y = z->q_lat + (t * H + h) * R, .n = 1};
    (split ? m->be->matmul : m->be->matmul_t)(m->be_ctx, jobs, (int)(n * H));
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
            jobs[t * H + h] = (zmm_job){.w = w_uv(L, h, nope, vd),
                                        .x = z->o_lat + (t * H + h) * R,
                                        .y = z->attn + (t * H + h) * vd, .n = 1};
    m->be->matmul(m->be_ctx, jobs, (int)(n * H));
}

/* k_nope and v of all T positions from the float latent rows into z->kvb; the layout
   into the attention job.  kv_b: [T, H, nope | v] rows.  Split: k_nope [H, T, nope]
   (one transposed product per head), then v [T, H*v] (one product). */
static void expand_kv(zmlx_session *s, const zlayer *L, int64_t T, zattn_job *aj) {
    const zmlx_model *m = s->m;
    const zmlx_config *c = &m->cfg;
    zscratch *z = &s->s;
    const int64_t H = c->n_heads, nope = c->qk_nope_dim, R = c->kv_lora_rank;
    const int64_t vd = c->v_head_dim, hs = nope + vd;
    if (!L->embed_q.data) {
        zmm_job kb = {.w = L->kv_b, .x = z->lat_f32, .y = z->kvb, .n = T};
        m->be->matmul(m->be_ctx, &kb, 1);
        aj->k = z->kvb, aj->k_stride = H * hs, aj->k_head = hs;
        aj->v = z->kvb + nope, aj->v_stride = H * hs, aj->v_head = hs;
        return;
    }
    zmm_job *jobs = z->jobs;
    for (int64_t h = 0; h < H; h++)
        jobs[h] = (zmm_job){.w = zweight_rows(&L->embed_q, h * R, R), .x = z->lat_f32,
                            .y = z->kvb + h * T * nope, .n = T};
    m->be->matmul_t(m->be_ctx, jobs, (int)H);
    float *v = z->kvb + H * T * nope;
    zmm_job vb = {.w = L->unembed_out, .x = z->lat_f32, .y = v, .n = T};
    m->be->matmul(m->be_ctx, &vb, 1);
    aj->k = z->kvb, aj->k_stride = nope, aj->k_head = T * nope;
    aj->v = v, aj->v_stride = H * vd, aj->v_head = vd;
}

static void attend_expanded(zmlx_session *s, int l, int64_t n, int64_t T) {
    const zmlx_model *m = s->m;
    const zmlx_config *c = &m->cfg;
    zscratch *z = &s->s;
    const int64_t H = c->n_heads, nope = c->qk_nope_dim, rope = c->qk_rope_dim;
    const int64_t R = c->kv_lora_rank, vd = c->v_head_dim;
    /* latent rows as float (the cache may be bf16), then k_nope | v for every position */
    if (s->kv_elem == 2) {
        const uint16_t *src = s->lat[l];
        for (int64_t i = 0; i < T * R; i++) z->lat_f32[i] = zbf16_to_f32(src[i]);
    } else {
        const float *src = s->lat[l];
        for (int64_t i = 0; i < T * R; i++) z->lat_f32[i] = src[i];
    }
    zattn_job aj = {.n_heads = H, .n_q = n, .T = T, .dk = nope, .dr = rope, .dv = vd,
                    .q = z->q_nope, .qr = z->q_pe,
                    .kr = s->kpe[l], .kr_stride = rope,
                    .kr_dtype = s->kv_elem == 2 ? ZDT_BF16 : ZDT_F32,
                    .kv_dtype = ZDT_F32, .scale = m->attn_scale, .out = z->attn,
                    .scratch = z->attn_scores};
    expand_kv(s, &m->layers[l], T, &aj);
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
