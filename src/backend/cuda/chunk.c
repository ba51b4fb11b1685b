/*
 * chunk.c — the prefill step of the `cuda` backend: a chunk of n tokens (n <= s->chunk)
 * through every layer with the GEMM kernels (the routed experts grouped by expert on the
 * device), absorbed or expanded MLA attention.  Also runs a single token when the session
 * asks for the expanded path.  Patterns do not change this path (the decode-only ones fall
 * back to the baseline for prefill, the others give the same values here).
 *
 *   x = embed(ids); xn = norm(x)
 *   per layer: attention -> f; x += f; xn = norm(x)
 *              FFN (dense SwiGLU, or router -> route -> grouped experts -> combine in
 *              route order + shared) -> x += f; xn = next layer's norm(x)
 *   logits = lm_head(final_norm(x)) for the last row (or every row)
 * Several GPUs (ep.h): the grouped GEMMs run only this rank's expert groups over a zeroed
 * expert-output buffer, which is then summed over the ranks (NCCL) before the combine.
 */
#include "backend/cuda/cuda_internal.h"
#include "backend/cuda/ep.h"

/* Fast mode's dense products of at least this many rows go to cuBLAS (blas.c), weights
   of at most BLAS_MAX_W elements (the bf16 copy: 128 MiB; not a whole-vocabulary lm_head). */
enum { BLAS_MIN_N = 64 };
#define BLAS_MAX_W ((int64_t)1 << 26)

/* y[n, rows] (ldy) = x[n, w.cols] (ldx) W^T: cuBLAS on bf16 copies where fast mode allows
   it (ZMLX_CUDA_GEMM_BLAS, libcublas present), else the tile kernel (cuk_gemm). */
static zmlx_status gemm(cu_sess *s, const cuw *w, const float *x, int64_t ldx, float *y, int64_t ldy, int64_t n,
                        cu_q q, zerr *e) {
    if (q.fast && s->c->gemm_blas && n >= BLAS_MIN_N && !w->stride && w->rows * w->cols <= BLAS_MAX_W &&
        ldx % 4 == 0 && ((uintptr_t)x & 15) == 0 && zcu_blas_ready(&s->blas)) {
        const zmlx_status r = zcu_blas_gemm(&s->blas, w, x, ldx, y, ldy, n, q, e);
        if (r != ZMLX_ERR_LIMIT) return r;
        *e = (zerr){{0}}; /* no room for the bf16 copies: the tile kernel needs none */
    }
    CU_TRY(e, cuk_gemm(*w, x, ldx, NULL, y, ldy, n, NULL, 0, q));
    return ZMLX_OK;
}

/* y[n, w.rows] = x[n, w.cols] W^T (returns from the caller on failure). */
#define PROJ(w, x, y, n)                                                                   \
    do {                                                                                   \
        zmlx_status r_ = gemm(s, (w), (x), (w)->cols, (y), (w)->rows, (n), q, e);           \
        if (r_ != ZMLX_OK) return r_;                                                      \
    } while (0)

/* The attention block of layer l: s->xn -> s->f. */
static zmlx_status attention(cu_sess *s, int l, int64_t n, int64_t T, bool absorbed,
                             int64_t nsplit, zerr *e) {
    const cu_ctx *c = s->c;
    const zmlx_model *m = c->m;
    const zmlx_config *cf = &m->cfg;
    const cu_layer *L = &c->layers[l];
    const cu_q q = {c->stream, false, zcu_fast(c)};
    const int64_t H = cf->n_heads, nope = cf->qk_nope_dim, rope = cf->qk_rope_dim;
    const int64_t qk = nope + rope, R = cf->kv_lora_rank, vd = cf->v_head_dim, hs = nope + vd;
    void *cache = (uint8_t *)s->cache + (size_t)l * (size_t)s->cap * (size_t)s->W * s->kv_elem;
    const bool lora = cf->q_lora_rank > 0;

    PROJ(&L->kv_a, s->xn, s->kv, n);
    PROJ(&L->q_a, s->xn, lora ? s->qa : s->q, n);
    cu_prep pp = {.kv = s->kv, .R = R, .rope = rope, .qa = lora ? s->qa : NULL,
                  .ql = cf->q_lora_rank, .kv_norm = L->kv_a_norm, .q_norm = L->q_a_norm,
                  .eps = cf->attn_norm_eps, .inv_freq = c->inv_freq, .mscale = m->rope_mscale,
                  .cache = cache, .cache_bf16 = s->kv_bf16, .cs = s->cs, .step = s->d_step, .n = n};
    CU_TRY(e, cuk_attn_prep(&pp, q));
    if (lora) PROJ(&L->q_b, s->qa, s->q, n);
    const bool dsa = zcu_dsa(s);
    if (dsa) { /* DeepSeek-V3.2: the indexer's selection for every query of the chunk */
        PROJ(&L->idx_wk, s->xn, s->ik, n);
        PROJ(&L->idx_w, s->xn, s->iw, n);
        PROJ(&L->idx_wq_b, s->qa, s->iq, n);
        zmlx_status r = zcu_indexer(s, l, n, NULL, T, q, e);
        if (r != ZMLX_OK) return r;
    }
    if (absorbed) {
        cu_mvt qt = {.w = L->kv_b, .nr = nope, .row0 = 0, .grs = hs, .gmod = H, .groups = n * H,
                     .x = s->q, .xs = qk, .y = s->qabs, .ys = s->W, .rope = rope,
                     .inv_freq = c->inv_freq, .mscale = m->rope_mscale, .step = s->d_step};
        CU_TRY(e, cuk_matvec_t(&qt, q));
        cu_attn a = {.q = s->qabs, .cache = cache, .cache_bf16 = s->kv_bf16, .n_q = n, .H = H,
                     .R = R, .rope = rope, .scale = m->attn_scale, .step = s->d_step,
                     .nsplit = nsplit, .part_o = s->part_o, .part_ml = s->part_ml, .out = s->olat,
                     .cap = s->cap, .idx = dsa ? s->sel : NULL, .idx_n = s->sel_n, .idx_stride = s->sel_cap};
        CU_TRY(e, cuk_attn_absorbed(&a, q));
        cu_mv uv = {.w = L->kv_b, .groups = n * H, .rpg = vd, .row0 = nope, .grs = hs, .gmod = H,
                    .x = s->olat, .xs = R, .y = s->attn, .ys = vd};
        CU_TRY(e, cuk_matvec(&uv, 1, q));
    } else {
        CU_TRY(e, cuk_q_rope(s->q, n, H, nope, rope, s->cs, NULL, R, q));
        zmlx_status rs = zcu_reserve_expanded(s, T, e);
        if (rs != ZMLX_OK) return rs;
        CU_TRY(e, cuk_cache_to_f32(cache, s->kv_bf16, s->W, R, T, s->lat_f32, q));
        zmlx_status rg = gemm(s, &L->kv_b, s->lat_f32, R, s->kvb, H * hs, T, q, e);
        if (rg != ZMLX_OK) return rg;
        cu_attn_x ax = {.q = s->q, .kvb = s->kvb, .cache = cache, .cache_bf16 = s->kv_bf16,
                        .n = n, .H = H, .nope = nope, .rope = rope, .vd = vd, .R = R,
                        .scale = m->attn_scale, .step = s->d_step, .out = s->attn,
                        .idx = dsa ? s->sel : NULL, .idx_n = s->sel_n, .idx_stride = s->sel_cap};
        if (q.fast && s->kvb16 && cuk_attn_tc16_ok(&ax)) { /* the tiles by cp.async from bf16 */
            CU_TRY(e, cuk_to_bf16(s->kvb, H * hs, T, H * hs, s->kvb16, q));
            ax.kvb16 = s->kvb16;
            /* the keys in spans where the blocks are few (n <= s->chunk: the partials fit) */
            cuk_attn_tc16_split(&ax, T, c->sms);
            ax.part_o = s->fa_part;
            ax.part_ml = s->fa_part + s->chunk * ZCU_FA_MAX_SPLIT * H * vd;
        }
        CU_TRY(e, cuk_attn_expanded(&ax, q));
    }
    PROJ(&L->o, s->attn, s->f, n);
    return ZMLX_OK;
}

/* The routed experts' gate, up, SwiGLU and down over the rows grouped by expert (goff:
   the first of `groups` groups): in fast mode, 4-bit layouts on kernels_gemm_q4.cu's
   kernel over bf16 copies of xn and of the SwiGLU rows (ZMLX_CUDA_GEMM_Q4=0, or no
   memory for the copies: the tile kernel, the same values). */
static zmlx_status experts(cu_sess *s, const cu_layer *L, int64_t n, const int32_t *goff, int64_t groups, zerr *e) {
    const cu_ctx *c = s->c;
    const zmlx_config *cf = &c->m->cfg;
    const cu_q q = {c->stream, false, zcu_fast(c)};
    const int64_t d = cf->hidden_size, K = cf->experts_per_tok, mI = cf->moe_intermediate_size;
    if (q.fast && c->gemm_q4 && cuk_gemm_q4_pair_ok(L->exp_gate, L->exp_up) && cuk_gemm_q4_ok(L->exp_down)) {
        const void *xb = NULL;
        /* the larger copy first: once it fits, the other does */
        zmlx_status r = zcu_blas_x16(&s->blas, NULL, mI, n * K, mI, q, &xb, e);
        if (r == ZMLX_OK) r = zcu_blas_x16(&s->blas, s->xn, d, n, d, q, &xb, e);
        if (r == ZMLX_OK) {
            CU_TRY(e, cuk_gemm_q4_pair(L->exp_gate, L->exp_up, xb, d, s->glist, s->ge, s->ue, mI, n, goff, groups,
                                       n * K, q));
            CU_TRY(e, cuk_silu_mul(s->ge, s->ue, n * K * mI, s->ge, q));
            r = zcu_blas_x16(&s->blas, s->ge, mI, n * K, mI, q, &xb, e);
            if (r != ZMLX_OK) return r;
            CU_TRY(e, cuk_gemm_q4(L->exp_down, xb, mI, NULL, s->de, d, n, goff, groups, n * K, q));
            return ZMLX_OK;
        }
        if (r != ZMLX_ERR_LIMIT) return r;
        *e = (zerr){{0}}; /* no room for the copies: the tile kernel needs none */
    }
    CU_TRY(e, cuk_gemm(L->exp_gate, s->xn, d, s->glist, s->ge, mI, n, goff, groups, q));
    CU_TRY(e, cuk_gemm(L->exp_up, s->xn, d, s->glist, s->ue, mI, n, goff, groups, q));
    CU_TRY(e, cuk_silu_mul(s->ge, s->ue, n * K * mI, s->ge, q));
    CU_TRY(e, cuk_gemm(L->exp_down, s->ge, mI, NULL, s->de, d, n, goff, groups, q));
    return ZMLX_OK;
}

/* The FFN of layer l on s->xn; adds into s->x and leaves the next norm (next_w, or none
   after the last layer) in s->xn. */
static zmlx_status ffn(cu_sess *s, int l, int64_t n, const float *next_w, zerr *e) {
    const cu_ctx *c = s->c;
    const zmlx_config *cf = &c->m->cfg;
    const cu_layer *L = &c->layers[l];
    const cu_q q = {c->stream, false, zcu_fast(c)};
    const int64_t d = cf->hidden_size, K = cf->experts_per_tok, E = cf->n_routed_experts;
    const float eps = cf->rms_norm_eps;
    if (!L->moe) {
        PROJ(&L->gate, s->xn, s->dg, n);
        PROJ(&L->up, s->xn, s->du, n);
        CU_TRY(e, cuk_silu_mul(s->dg, s->du, n * L->gate.rows, s->dg, q));
        PROJ(&L->down, s->dg, s->f, n);
        CU_TRY(e, cuk_add_rmsnorm(s->x, s->f, next_w, d, eps, s->xn, n, q));
        return ZMLX_OK;
    }
    const bool shared = L->sh_gate.rows > 0;
    const cu_route_cfg rc = {.n_experts = (int32_t)E, .k = (int32_t)K, .n_group = cf->n_group,
                             .topk_group = cf->topk_group, .norm_topk_prob = cf->norm_topk_prob,
                             .softmax_scoring = cf->scoring == ZSCORE_SOFTMAX,
                             .scale = cf->routed_scaling_factor};
    /* rows grouped by expert (slot order as moe.c), one grouped GEMM each */
    PROJ(&L->router, s->xn, s->rlog, n);
    CU_TRY(e, cuk_route(rc, s->rlog, L->router_bias, n, s->ridx, s->rw, q));
    CU_TRY(e, cuk_moe_group(s->ridx, n, K, E, s->goff, s->glist, s->gslot, q));
    /* several GPUs: only this rank's groups (rows goff[e0] .. goff[e0 + ne)), the other
       rows of the slot buffer +0.0, then its exact sum over the ranks (dist.h) */
    const cu_ep *ep = c->ep;
    const int32_t *goff = ep ? s->goff + ep->e0 : s->goff;
    const int64_t groups = ep ? ep->ne : E;
    if (ep) CU_TRY(e, cudaMemsetAsync(s->de, 0, (size_t)(n * K * d) * sizeof(float), c->stream));
    zmlx_status r = experts(s, L, n, goff, groups, e);
    if (r != ZMLX_OK) return r;
    if (ep) {
        r = zcu_nccl_sum(ep->nccl, ep->comm, s->de, (size_t)(n * K * d), c->stream, e);
        if (r != ZMLX_OK) return r;
    }
    if (shared) {
        PROJ(&L->sh_gate, s->xn, s->sg, n);
        PROJ(&L->sh_up, s->xn, s->su, n);
        CU_TRY(e, cuk_silu_mul(s->sg, s->su, n * L->sh_gate.rows, s->sg, q));
        PROJ(&L->sh_down, s->sg, s->sd, n);
    }
    CU_TRY(e, cuk_moe_combine(s->rw, s->gslot, K, s->de, shared ? s->sd : NULL, s->x, NULL, next_w,
                              eps, s->xn, d, n, q));
    return ZMLX_OK;
}

zmlx_status zcu_chunk(cu_sess *s, int64_t n, int64_t T, bool absorbed, int64_t nsplit,
                      bool logits, float *all, zerr *e) {
    const cu_ctx *c = s->c;
    const zmlx_config *cf = &c->m->cfg;
    const cu_q q = {c->stream, false, zcu_fast(c)};
    const int64_t d = cf->hidden_size;
    const float eps = cf->rms_norm_eps;
    CU_TRY(e, cuk_embed(c->embed, s->d_step, n, s->x, q));
    CU_TRY(e, cuk_rmsnorm(s->x, d, c->layers[0].attn_norm, d, eps, s->xn, d, n, q));
    for (int l = 0; l < cf->n_layers; l++) {
        zmlx_status r = attention(s, l, n, T, absorbed, nsplit, e);
        if (r != ZMLX_OK) return r;
        CU_TRY(e, cuk_add_rmsnorm(s->x, s->f, c->layers[l].ffn_norm, d, eps, s->xn, n, q));
        const float *next_w = l + 1 < cf->n_layers ? c->layers[l + 1].attn_norm : NULL;
        r = ffn(s, l, n, next_w, e);
        if (r != ZMLX_OK) return r;
    }
    if (!logits) return ZMLX_OK;
    const int64_t first = all ? 0 : n - 1, rows = n - first;
    CU_TRY(e, cuk_rmsnorm(s->x + first * d, d, c->final_norm, d, eps, s->xrow, d, rows, q));
    const int64_t V = c->lm_head.rows;
    if (rows == 1) { /* the decode product (one row) */
        cu_mv lm = {.w = c->lm_head, .groups = 1, .rpg = c->lm_head.rows, .gmod = 1, .x = s->xrow,
                    .y = s->logits};
        CU_TRY(e, cuk_matvec(&lm, 1, q));
        if (all) CU_TRY(e, cudaMemcpyAsync(all, s->logits, (size_t)V * sizeof(float), cudaMemcpyDeviceToHost, c->stream));
        return ZMLX_OK;
    }
    /* every row's logits, s->logit_rows rows at a time through s->logits into all */
    for (int64_t r0 = 0; r0 < n; r0 += s->logit_rows) {
        const int64_t m = n - r0 < s->logit_rows ? n - r0 : s->logit_rows;
        PROJ(&c->lm_head, s->xrow + r0 * d, s->logits, m);
        CU_TRY(e, cudaMemcpyAsync(all + r0 * V, s->logits, (size_t)(m * V) * sizeof(float), cudaMemcpyDeviceToHost,
                                  c->stream));
    }
    return ZMLX_OK;
}
