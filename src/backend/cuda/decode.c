/*
 * decode.c — the one-token step of the `cuda` backend (absorbed MLA), stage by stage, as
 * each layer's pattern plan (patch/patch.h) says.  The same code is captured into the
 * decode graph (step.c) and launched directly.
 *
 * Baseline (no patterns): one kernel per op, as a framework launches them —
 *   rmsnorm; q_a; kv_a; MLA epilogue (norms, rope, cache write); q_b; W_UK^T (+ q_pe rope);
 *   attention (split) + merge, or at middle contexts on Hopper the spread (zcu_att_mode);
 *   W_UV; o; residual add; rmsnorm;
 *   router; route; experts' gate; experts' up; SiLU*up; shared gate; shared up; SiLU*up;
 *   experts' down; shared down; combine; residual add; rmsnorm ... final rmsnorm; lm_head.
 * Patterns (all `exact`: the same device functions give the same bits, dot.cuh):
 *   residual_norm     the residual add folded into the projection that produces it (o,
 *                     dense down) and the next RMSNorm computed by the projections that
 *                     read it, on load (q_a + kv_a in one launch, router, experts, lm_head)
 *   glm47_rope        cos/sin from the session's table; the MLA epilogue (latent norm,
 *                     k_pe rope, cache write) in extra blocks of the W_UK^T launch, q_a's
 *                     norm on load in q_b; at short and spread contexts (fast mode,
 *                     4/8-bit kv_b) the attention and W_UV in one launch (cuk_attn_uv)
 *   swiglu_mlp        gate + up + SiLU*up of the dense MLP / shared expert in one launch
 *   moe_mlp           the route computed in the experts' launch, gate + up + SiLU*up of
 *                     the K experts in that one launch
 *   shared_overlap    the shared expert's projections in the routed experts' launches
 *                     (router logits, or the experts' SwiGLU when the router's weights are
 *                     another kind; down/combine): the same grid, concurrently
 *   downproj_combine  the K down projections streamed into the route-ordered sum
 *   moe_combine       + shared + residual folded into that sum
 * With the preset a MoE layer is 10 launches (25 in the baseline), 8 with cuk_attn_uv.
 * DeepSeek-V3.2: the indexer's key and head-weight products join the q_a / kv_a launch,
 * its query product the q_b launch (separate launches in the baseline), then indexer.c's
 * three launches (keys into the cache + rope, scores, top-k) feed the attention's list.
 * Several GPUs (ep.h): the expert products read only this rank's experts (cu_mv.e0 / ne),
 * the [K, d] expert outputs are summed over the ranks (one NCCL all-reduce, captured in
 * the graph) and combined unfused (downproj_combine / moe_combine need that buffer).
 */
#include "backend/cuda/cuda_internal.h"
#include "backend/cuda/ep.h"

typedef struct dec {
    cu_sess *s;
    cu_q q;            /* q.pdl after the first launch */
    bool first;
    bool f_pending;    /* s->f holds a block output not yet added to s->x */
    int att;           /* the step's attention mode (zcu_att_mode) */
    int32_t rparts;    /* o_proj's launch wrote the next router's partials in this many
                          blocks (s->rpart; 0: not) */
} dec;

/* The queue for the next launch: the step's first kernel follows a copy, never PDL. */
static cu_q qn(dec *D) {
    cu_q q = D->q;
    if (D->first) q.pdl = false;
    D->first = false;
    return q;
}

static cu_mv mv_plain(cuw w, const float *x, const float *norm, float eps, float *y, int32_t epi) {
    return (cu_mv){.w = w, .groups = 1, .rpg = w.rows, .gmod = 1, .x = x, .norm = norm,
                   .eps = eps, .y = y, .epi = epi};
}

/* SwiGLU of one MLP into h: one job (fused) or gate, up, SiLU*up. */
static zmlx_status glu(dec *D, bool fused, cuw gate, cuw up, const float *x, const float *norm,
                       float *h, float *u, zerr *e) {
    const float eps = D->s->c->m->cfg.rms_norm_eps;
    if (fused) {
        cu_mv j = mv_plain(gate, x, norm, eps, h, CU_EPI_SWIGLU);
        j.up = up;
        CU_TRY(e, cuk_matvec(&j, 1, qn(D)));
        return ZMLX_OK;
    }
    cu_mv g = mv_plain(gate, x, norm, eps, h, CU_EPI_STORE), v = mv_plain(up, x, norm, eps, u, CU_EPI_STORE);
    CU_TRY(e, cuk_matvec(&g, 1, qn(D)));
    CU_TRY(e, cuk_matvec(&v, 1, qn(D)));
    CU_TRY(e, cuk_silu_mul(h, u, gate.rows, h, qn(D)));
    return ZMLX_OK;
}

/*
 * The input of a block: norm(x) * nw.  Adds a pending block output first (with
 * residual_norm in the same kernel as the norm).  With residual_norm and nothing pending,
 * the consumer normalises on load (*norm = nw, *xin = x); else *xin = s->xn.
 */
static zmlx_status block_input(dec *D, const zstage_plan *pl, const float *nw, const float **xin,
                               const float **norm, zerr *e) {
    cu_sess *s = D->s;
    const zmlx_config *c = &s->c->m->cfg;
    const int64_t d = c->hidden_size;
    const float eps = c->rms_norm_eps;
    *xin = s->xn;
    *norm = NULL;
    if (D->f_pending) {
        D->f_pending = false;
        if (pl->residual_norm) {
            CU_TRY(e, cuk_add_rmsnorm(s->x, s->f, nw, d, eps, s->xn, 1, qn(D)));
            return ZMLX_OK;
        }
        CU_TRY(e, cuk_add_rmsnorm(s->x, s->f, NULL, d, eps, NULL, 1, qn(D)));
    } else if (pl->residual_norm) {
        *xin = s->x;
        *norm = nw;
        return ZMLX_OK;
    }
    CU_TRY(e, cuk_rmsnorm(s->x, d, nw, d, eps, s->xn, d, 1, qn(D)));
    return ZMLX_OK;
}

/* Absorbed MLA attention of layer l for the token; output added to x (or pending in f). */
static zmlx_status attention(dec *D, int l, zerr *e) {
    cu_sess *s = D->s;
    const cu_ctx *c = s->c;
    const zmlx_model *m = c->m;
    const zmlx_config *cf = &m->cfg;
    const cu_layer *L = &c->layers[l];
    const zstage_plan *pl = &m->plan[l];
    const int64_t H = cf->n_heads, nope = cf->qk_nope_dim, rope = cf->qk_rope_dim;
    const int64_t qk = nope + rope, R = cf->kv_lora_rank, vd = cf->v_head_dim, hs = nope + vd;
    const bool lora = cf->q_lora_rank > 0, fused_rope = pl->rope_table;
    const float eps = cf->rms_norm_eps;
    void *cache = (uint8_t *)s->cache + (size_t)l * (size_t)s->cap * (size_t)s->W * s->kv_elem;
    const float *xin, *norm;
    zmlx_status r = block_input(D, pl, L->attn_norm, &xin, &norm, e);
    if (r != ZMLX_OK) return r;

    const bool dsa = zcu_dsa(s);
    /* q_a, kv_a (and the indexer's keys and head weights, DeepSeek-V3.2) of the block input */
    cu_mv proj[4] = {mv_plain(L->q_a, xin, norm, eps, lora ? s->qa : s->q, CU_EPI_STORE),
                     mv_plain(L->kv_a, xin, norm, eps, s->kv, CU_EPI_STORE),
                     mv_plain(L->idx_wk, xin, norm, eps, s->ik, CU_EPI_STORE),
                     mv_plain(L->idx_w, xin, norm, eps, s->iw, CU_EPI_STORE)};
    const int nproj = dsa ? 4 : 2;
    if (pl->residual_norm) {
        CU_TRY(e, cuk_matvec(proj, nproj, qn(D)));
    } else {
        for (int i = 0; i < nproj; i++) CU_TRY(e, cuk_matvec(&proj[i], 1, qn(D)));
    }
    cu_prep pp = {.kv = s->kv, .R = R, .rope = rope, .qa = lora && !fused_rope ? s->qa : NULL,
                  .ql = cf->q_lora_rank, .kv_norm = L->kv_a_norm, .q_norm = L->q_a_norm,
                  .eps = cf->attn_norm_eps, .inv_freq = c->inv_freq, .mscale = m->rope_mscale,
                  .table = fused_rope ? s->rope_tab : NULL, .cache = cache,
                  .cache_bf16 = s->kv_bf16, .cs = s->cs, .step = s->d_step, .n = 1};
    if (!fused_rope) CU_TRY(e, cuk_attn_prep(&pp, qn(D)));
    if (lora) { /* q_b (and the indexer's queries) of the normed query latent */
        const float *qn_w = fused_rope ? L->q_a_norm : NULL;
        cu_mv qb[2] = {mv_plain(L->q_b, s->qa, qn_w, cf->attn_norm_eps, s->q, CU_EPI_STORE),
                       mv_plain(L->idx_wq_b, s->qa, qn_w, cf->attn_norm_eps, s->iq, CU_EPI_STORE)};
        CU_TRY(e, cuk_matvec(qb, dsa ? 2 : 1, qn(D)));
    }
    if (dsa) {
        r = zcu_indexer(s, l, 1, fused_rope ? s->rope_tab : NULL, s->cap, qn(D), e);
        if (r != ZMLX_OK) return r;
    }
    /* query rows [q_lat | q_pe]: q_lat_h = W_UK[h]^T q_nope_h, q_pe rotated (with
       glm47_rope at the splits' contexts, fast, bf16 cache: also as bf16 for the tensor-core
       splits, which then copy them instead of converting them in every block) */
    void *q16 = fused_rope && D->att == ZCU_ATT_SPLITS && s->kv_bf16 && D->q.fast && !dsa && c->dec_q16
                    ? s->qabs16 : NULL;
    cu_mvt qt = {.w = L->kv_b, .nr = nope, .row0 = 0, .grs = hs, .gmod = H, .groups = H,
                 .x = s->q, .xs = qk, .y = s->qabs, .ys = s->W, .rope = rope,
                 .inv_freq = c->inv_freq, .mscale = m->rope_mscale,
                 .table = fused_rope ? s->rope_tab : NULL, .step = s->d_step,
                 .prep = fused_rope ? &pp : NULL, .y16 = q16};
    cu_attn a = {.q = s->qabs, .q16 = q16, .cache = cache, .cache_bf16 = s->kv_bf16, .n_q = 1, .H = H, .R = R,
                 .rope = rope, .scale = m->attn_scale, .step = s->d_step,
                 .nsplit = zcu_dec_nsplit(s, s->cap), .part_o = s->part_o, .part_ml = s->part_ml,
                 .out = s->olat, .hb = c->attn_hb8 && s->cap <= 2048 ? 8 : 0, .cap = s->cap,
                 .idx = dsa ? s->sel : NULL, .idx_n = s->sel_n, .idx_stride = s->sel_cap};
    /* o_h = W_UV[h] o_lat_h */
    cu_mv uv = {.w = L->kv_b, .groups = H, .rpg = vd, .row0 = nope, .grs = hs, .gmod = H,
                .x = s->olat, .xs = R, .y = s->attn, .ys = vd, .epi = CU_EPI_STORE};
    CU_TRY(e, cuk_matvec_t(&qt, qn(D)));
    /* the spread's band on Hopper (zcu_att_mode): baseline and patterns alike */
    a.spread = D->att == ZCU_ATT_SPREAD && !dsa;
    /* dense: the step's first launch waits for everything before it (zcu_decode), so the
       cache rows before the step's are there (DSA's lists are this step's work) */
    a.early = !dsa && c->dec_early;
    /* glm47_rope at a short or spread context: the attention and W_UV in one launch
       (kernels_attn_uv.cu: the same bits) */
    const cu_attn_uv au = {.at = a, .uv = uv, .split = a.spread ? ZCU_ATTN_SPREAD_N : c->attn_uv_split};
    if (D->att != ZCU_ATT_SPLITS && c->attn_uv_split > 0 && fused_rope && !dsa && cuk_attn_uv_ok(&au, D->q)) {
        CU_TRY(e, cuk_attn_uv(&au, qn(D)));
    } else {
        CU_TRY(e, cuk_attn_absorbed(&a, qn(D)));
        CU_TRY(e, cuk_matvec(&uv, 1, qn(D)));
    }
    cu_mv o = mv_plain(L->o, s->attn, NULL, eps, pl->residual_norm ? s->x : s->f,
                       pl->residual_norm ? CU_EPI_ADD : CU_EPI_STORE);
    /* the certified route (moe_ffn; ZMLX_CUDA_ROUTE_CERT=1, for measuring): o's blocks also
       sum the next router's logits over their outputs, so the experts' launch can route
       before the router's own logits (2: the partials alone; 3: the router's rows to L2) */
    D->rparts = 0;
    if (c->route_cert && L->moe && L->ffn_norm && pl->residual_norm && pl->experts_fused &&
        pl->down_combine && !c->ep && L->router.kind == ZW_BF16) {
        if (c->route_cert == 3) {
            o.l2 = L->router.data, o.l2_bytes = L->router.rows * L->router.ld;
        } else {
            cu_mv oc = o;
            oc.rp = (cu_rpart){.w = L->router, .g = L->ffn_norm, .out = s->rpart};
            const int32_t nb = cuk_rpart_blocks(&oc, D->q);
            if (nb > 0) o = oc, D->rparts = nb;
        }
    }
    CU_TRY(e, cuk_matvec(&o, 1, qn(D)));
    D->f_pending = !pl->residual_norm;
    return ZMLX_OK;
}

static zmlx_status dense_ffn(dec *D, int l, const float *xin, const float *norm, zerr *e) {
    cu_sess *s = D->s;
    const cu_layer *L = &s->c->layers[l];
    const zstage_plan *pl = &s->c->m->plan[l];
    zmlx_status r = glu(D, pl->glu_fused, L->gate, L->up, xin, norm, s->dg, s->du, e);
    if (r != ZMLX_OK) return r;
    cu_mv dn = mv_plain(L->down, s->dg, NULL, 0.0f, pl->residual_norm ? s->x : s->f,
                        pl->residual_norm ? CU_EPI_ADD : CU_EPI_STORE);
    CU_TRY(e, cuk_matvec(&dn, 1, qn(D)));
    D->f_pending = !pl->residual_norm;
    return ZMLX_OK;
}

static zmlx_status moe_ffn(dec *D, int l, const float *xin, const float *norm, zerr *e) {
    cu_sess *s = D->s;
    const cu_ctx *c = s->c;
    const zmlx_config *cf = &c->m->cfg;
    const cu_layer *L = &c->layers[l];
    const zstage_plan *pl = &c->m->plan[l];
    const int64_t d = cf->hidden_size, K = cf->experts_per_tok, mI = cf->moe_intermediate_size;
    const float eps = cf->rms_norm_eps;
    const bool shared = L->sh_gate.rows > 0, overlap = shared && pl->shared_overlap;
    /* several GPUs: this rank's experts only, and the fused down + combine off (ep.h) */
    const cu_ep *ep = c->ep;
    const int32_t e0 = ep ? ep->e0 : 0, ne = ep ? ep->ne : 0;
    const bool down_combine = pl->down_combine && !ep;
    bool router_in = false; /* cuk_glu_router: the combine resets s->rsig */
    const float *hq = NULL;  /* the experts' launch staged h for the combine */
    const cu_route_cfg rc = {.n_experts = cf->n_routed_experts, .k = (int32_t)K,
                             .n_group = cf->n_group, .topk_group = cf->topk_group,
                             .norm_topk_prob = cf->norm_topk_prob,
                             .softmax_scoring = cf->scoring == ZSCORE_SOFTMAX,
                             .scale = cf->routed_scaling_factor};
    cu_mv jobs[ZCU_MV_JOBS];
    int nj = 0;
    jobs[nj++] = mv_plain(L->router, xin, norm, eps, s->rlog, CU_EPI_STORE);
    if (pl->experts_fused) {
        /* router logits (+ the shared expert's SwiGLU), then the experts with the route
           computed in their own launch.  A launch runs one weight kind: when the router's
           differs from the shared expert's (a bf16 router beside 4-bit experts), the
           shared SwiGLU joins the experts' launch instead of making a third. */
        const cu_mv sh_glu = {.w = L->sh_gate, .up = L->sh_up, .groups = 1, .rpg = L->sh_gate.rows,
                              .gmod = 1, .x = xin, .norm = norm, .eps = eps, .y = s->sg,
                              .epi = CU_EPI_SWIGLU};
        const bool sh_with_experts = overlap && pl->glu_fused && L->sh_gate.kind != L->router.kind;
        if (overlap && pl->glu_fused && !sh_with_experts) {
            jobs[nj++] = sh_glu;
        } else if (overlap && !pl->glu_fused) {
            jobs[nj++] = mv_plain(L->sh_gate, xin, norm, eps, s->sg, CU_EPI_STORE);
            jobs[nj++] = mv_plain(L->sh_up, xin, norm, eps, s->su, CU_EPI_STORE);
        }
        cu_mv ex[2] = {{.w = L->exp_gate, .up = L->exp_up, .routed = true,
                        .route = {.logits = s->rsig, .bias = L->router_bias, .cfg = rc, .idx = s->ridx,
                                  .w = s->rw},
                        .groups = K, .rpg = mI, .gmod = 1, .x = xin, .norm = norm, .eps = eps,
                        .y = s->ge, .ys = mI, .epi = CU_EPI_SWIGLU, .e0 = e0, .ne = ne},
                       sh_glu};
        const int nex = sh_with_experts ? 2 : 1;
        /* the router alone before the experts: its logits inside their launch (the combine
           sets them back), one launch boundary fewer */
        cu_mv rj = jobs[0];
        rj.y = s->rsig;
        router_in = down_combine && nj == 1 && cuk_glu_router_ok(&rj, ex, nex, D->q);
        /* with o's partials (attention above), the certified route (route.cuh), where the
           router-in launch takes it */
        if (router_in && D->rparts > 0 && L->rbound && xin == s->x && norm == L->ffn_norm && c->route_cert == 1) {
            ex[0].route.part = s->rpart, ex[0].route.nparts = D->rparts, ex[0].route.bound = L->rbound;
            if (!cuk_glu_router_ok(&rj, ex, nex, D->q))
                ex[0].route.part = NULL, ex[0].route.nparts = 0, ex[0].route.bound = NULL;
        }
        D->rparts = 0;
        /* the experts' launch also writes ge's and sg's staged int8 form once, which every
           block of the combine would otherwise stage (its hq): with the shared expert in
           the same launch or none in the combine */
        if (router_in && L->exp_down.kind == ZW_AFFINE4 &&
            (!overlap || (nex == 2 && L->sh_down.group == L->exp_down.group && L->sh_gate.rows == mI))) {
            const int64_t sq = cuk_stage_floats(mI);
            ex[0].yq = s->hq, ex[0].yq_group = L->exp_down.group;
            ex[1].yq = s->hq + K * sq, ex[1].yq_group = L->exp_down.group;
            if (cuk_glu_router_yq_ok(&rj, ex, nex, D->q)) {
                hq = s->hq;
            } else {
                ex[0].yq = ex[1].yq = NULL;
            }
        }
        if (router_in) {
            CU_TRY(e, cuk_glu_router(&rj, ex, nex, qn(D)));
        } else {
            ex[0].route.logits = s->rlog;
            CU_TRY(e, cuk_matvec(jobs, nj, qn(D)));
            if (overlap && !pl->glu_fused) CU_TRY(e, cuk_silu_mul(s->sg, s->su, L->sh_gate.rows, s->sg, qn(D)));
            CU_TRY(e, cuk_matvec(ex, nex, qn(D)));
        }
    } else {
        /* baseline: router, route, one launch for every expert's gate, one for up */
        CU_TRY(e, cuk_matvec(jobs, 1, qn(D)));
        CU_TRY(e, cuk_route(rc, s->rlog, L->router_bias, 1, s->ridx, s->rw, qn(D)));
        nj = 0;
        jobs[nj++] = (cu_mv){.w = L->exp_gate, .idx = s->ridx, .groups = K, .rpg = mI, .gmod = 1,
                             .x = xin, .norm = norm, .eps = eps, .y = s->ge, .ys = mI,
                             .e0 = e0, .ne = ne};
        jobs[nj++] = (cu_mv){.w = L->exp_up, .idx = s->ridx, .groups = K, .rpg = mI, .gmod = 1,
                             .x = xin, .norm = norm, .eps = eps, .y = s->ue, .ys = mI,
                             .e0 = e0, .ne = ne};
        if (overlap) {
            jobs[nj++] = mv_plain(L->sh_gate, xin, norm, eps, s->sg, CU_EPI_STORE);
            jobs[nj++] = mv_plain(L->sh_up, xin, norm, eps, s->su, CU_EPI_STORE);
            CU_TRY(e, cuk_matvec(jobs, nj, qn(D)));
        } else {
            CU_TRY(e, cuk_matvec(&jobs[0], 1, qn(D)));
            CU_TRY(e, cuk_matvec(&jobs[1], 1, qn(D)));
        }
        CU_TRY(e, cuk_silu_mul(s->ge, s->ue, K * mI, s->ge, qn(D)));
        if (overlap) CU_TRY(e, cuk_silu_mul(s->sg, s->su, L->sh_gate.rows, s->sg, qn(D)));
    }
    if (shared && !overlap) { /* the shared expert on its own */
        zmlx_status r = glu(D, pl->glu_fused, L->sh_gate, L->sh_up, xin, norm, s->sg, s->su, e);
        if (r != ZMLX_OK) return r;
    }
    const cu_mv shd = mv_plain(L->sh_down, s->sg, NULL, 0.0f, s->sd, CU_EPI_STORE);
    if (down_combine) {
        if (shared && !overlap) CU_TRY(e, cuk_matvec(&shd, 1, qn(D)));
        cu_combine cb = {.down = L->exp_down, .idx = s->ridx, .w = s->rw, .K = K, .h = s->ge, .hs = mI,
                         .sh_down = overlap ? L->sh_down : (cuw){0}, .sh_h = overlap ? s->sg : NULL,
                         .sh_out = shared && !overlap ? s->sd : NULL, .x = s->x, .out = s->f,
                         .residual = pl->combine_residual, .reset = router_in ? s->rsig : NULL,
                         .nreset = router_in ? (int32_t)cf->n_routed_experts : 0, .hq = hq};
        CU_TRY(e, cuk_combine(&cb, qn(D)));
    } else {
        nj = 0;
        jobs[nj++] = (cu_mv){.w = L->exp_down, .idx = s->ridx, .groups = K, .rpg = d, .gmod = 1,
                             .x = s->ge, .xs = mI, .y = s->de, .ys = d, .e0 = e0, .ne = ne};
        if (overlap) jobs[nj++] = shd;
        CU_TRY(e, cuk_matvec(jobs, nj, qn(D)));
        if (shared && !overlap) CU_TRY(e, cuk_matvec(&shd, 1, qn(D)));
        if (ep) { /* the slot buffer [K, d], summed over the ranks: exact (dist.h) */
            zmlx_status r = zcu_nccl_sum(ep->nccl, ep->comm, s->de, (size_t)(K * d), c->stream, e);
            if (r != ZMLX_OK) return r;
            D->first = true; /* the next kernel follows NCCL's: no PDL overlap */
        }
        CU_TRY(e, cuk_moe_combine(s->rw, NULL, K, s->de, shared ? s->sd : NULL,
                                  pl->combine_residual ? s->x : NULL, s->f, NULL, eps, NULL, d, 1, qn(D)));
    }
    D->f_pending = !pl->combine_residual;
    return ZMLX_OK;
}

int zcu_att_mode(const cu_sess *s, int64_t pos) {
    const cu_ctx *c = s->c;
    const zmlx_model *m = c->m;
    const zmlx_config *cf = &m->cfg;
    bool rope = false; /* glm47_rope on some layer */
    for (int l = 0; l < cf->n_layers; l++) rope |= m->plan[l].rope_table;
    const int64_t n = pos + 1;
    const bool fits = cuk_attn_spread_fits(cf->kv_lora_rank, cf->qk_rope_dim) && cf->n_heads <= ZCU_ATTN_SPREAD_MAX_H;
    if (c->hopper && fits && !zcu_dsa(s) && n > cuk_attn_spread_min() && n <= cuk_attn_spread_max())
        return ZCU_ATT_SPREAD;
    if (n <= cuk_attn_short_max()) return c->attn_uv_split > 0 && zcu_fast(c) && rope ? ZCU_ATT_SHORT : ZCU_ATT_SPLITS;
    return ZCU_ATT_SPLITS;
}

zmlx_status zcu_decode(cu_sess *s, bool pdl, int att, zerr *e) {
    const cu_ctx *c = s->c;
    const zmlx_model *m = c->m;
    const zmlx_config *cf = &m->cfg;
    dec D = {.s = s, .q = {c->stream, pdl, zcu_fast(c)}, .first = true, .f_pending = false, .att = att};
    /* cuk_glu_router's logits start every step unset, whatever an earlier step that failed
       between an experts' launch and its combine left there (the combines reset them
       between layers) */
    const size_t ne = (size_t)(cf->n_routed_experts > 0 ? cf->n_routed_experts : 1);
    CU_TRY(e, cudaMemsetAsync(s->rsig, 0xff, ne * sizeof(float), c->stream));
    CU_TRY(e, cuk_embed(c->embed, s->d_step, 1, s->x, qn(&D)));
    for (int l = 0; l < cf->n_layers; l++) {
        zmlx_status r = attention(&D, l, e);
        if (r != ZMLX_OK) return r;
        const float *xin, *norm;
        r = block_input(&D, &m->plan[l], c->layers[l].ffn_norm, &xin, &norm, e);
        if (r == ZMLX_OK) r = c->layers[l].moe ? moe_ffn(&D, l, xin, norm, e) : dense_ffn(&D, l, xin, norm, e);
        if (r != ZMLX_OK) return r;
    }
    const float *xin, *norm;
    zmlx_status r = block_input(&D, &m->plan[cf->n_layers - 1], c->final_norm, &xin, &norm, e);
    if (r != ZMLX_OK) return r;
    cu_mv lm = mv_plain(c->lm_head, xin, norm, cf->rms_norm_eps, s->logits, CU_EPI_STORE);
    CU_TRY(e, cuk_matvec(&lm, 1, qn(&D)));
    return ZMLX_OK;
}
