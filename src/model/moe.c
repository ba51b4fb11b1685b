/*
 * moe.c — the feed-forward block of one layer for a chunk of n tokens, as the layer's
 * stage plan (patch/patch.h) says.
 *
 * Baseline (the unfused chain, one op per step, as a framework runs it):
 *   dense:  g = gate(x); u = up(x); h = silu(g)*u; f = down(h)
 *   MoE:    logits = router(x) (float32) -> zop_route (sigmoid, bias for selection
 *           only, group limit, top-k, normalise, scale); tokens grouped per expert;
 *           g = gate_e(x); u = up_e(x); h = silu(g)*u; y = down_e(h) for all experts
 *           (one op each, like gather_qmm); f = sum_k w_k y_k in route order (score
 *           descending, ties to the lower expert index), float32; shared expert
 *           as the dense chain; f += shared.  The residual add is forward.c's.
 * Patterns (all `exact`: same values, fewer passes and parallel regions):
 *   swiglu_mlp        dense / shared gate+up+SiLU in one pass   (backend glu)
 *   moe_mlp           routed gate+up+SiLU of all experts in one pass (backend glu)
 *   shared_overlap    the shared expert joins the routed experts' regions
 *   downproj_combine  (decode) down projections streamed into the weighted sum
 *   moe_combine       + shared + residual folded into that sum (x updated here)
 *   deepseek_router   router logits + selection in one region
 */
#include "model/session.h"
#include "ops/ops.h"

typedef struct ffn_ctx {
    zmlx_session *s;
    const zlayer *L;
    const zstage_plan *p;
    int64_t n;
} ffn_ctx;

static void run_mm(const ffn_ctx *c, const zmm_job *jobs, int n) {
    if (n > 0) c->s->m->be->matmul(c->s->m->be_ctx, jobs, n);
}

/* h = silu(gate(x)) * up(x) for one MLP, as the plan says. */
static void mlp_gateup(const ffn_ctx *c, const zweight *gate, const zweight *up, const float *x,
                       int64_t n, float *g, float *u) {
    const zmlx_model *m = c->s->m;
    if (c->p->glu_fused) {
        zglu_job j = {.gate = *gate, .up = *up, .x = x, .h = g, .n = n};
        m->be->glu(m->be_ctx, &j, 1);
        return;
    }
    zmm_job gj = {.w = *gate, .x = x, .y = g, .n = n}, uj = {.w = *up, .x = x, .y = u, .n = n};
    run_mm(c, &gj, 1);
    run_mm(c, &uj, 1);
    zop_silu_mul(g, u, n * gate->rows, g);
}

static void dense(const ffn_ctx *c) {
    zscratch *z = &c->s->s;
    mlp_gateup(c, &c->L->gate, &c->L->up, z->xn, c->n, z->dg, z->du);
    zmm_job dn = {.w = c->L->down, .x = z->dg, .y = z->f, .n = c->n};
    run_mm(c, &dn, 1);
}

/* Route every token; fill count/offset/slot so expert e's rows are offset[e].. */
static void route(const ffn_ctx *c) {
    const zmlx_model *m = c->s->m;
    const zmlx_config *cf = &m->cfg;
    zscratch *z = &c->s->s;
    const int32_t E = cf->n_routed_experts, K = cf->experts_per_tok;
    const int64_t n = c->n;
    zrouter_cfg rc = {.n_experts = E, .k = K, .n_group = cf->n_group, .topk_group = cf->topk_group,
                      .norm_topk_prob = cf->norm_topk_prob, .scale = cf->routed_scaling_factor,
                      .softmax_scoring = cf->scoring == ZSCORE_SOFTMAX};
    if (c->p->router_fused) {
        zroute_job rj = {.router = c->L->router, .x = z->xn, .n = n, .logits = z->router_logits,
                         .cfg = rc, .bias = c->L->router_bias, .work = z->route_work,
                         .idx = z->route_idx, .w = z->route_w};
        m->be->route(m->be_ctx, &rj);
    } else {
        zmm_job rj = {.w = c->L->router, .x = z->xn, .y = z->router_logits, .n = n};
        run_mm(c, &rj, 1);
        for (int64_t t = 0; t < n; t++)
            zop_route(&rc, z->router_logits + t * E, c->L->router_bias, z->route_work,
                      z->route_idx + t * K, z->route_w + t * K);
    }
    for (int32_t e = 0; e < E; e++) z->count[e] = 0;
    for (int64_t t = 0; t < n; t++)
        for (int32_t k = 0; k < K; k++) z->count[z->route_idx[t * K + k]]++;
    z->offset[0] = 0;
    for (int32_t e = 0; e < E; e++) z->offset[e + 1] = z->offset[e] + z->count[e];
    for (int32_t e = 0; e < E; e++) z->count[e] = 0; /* reused as fill cursor */
    for (int64_t t = 0; t < n; t++)
        for (int32_t k = 0; k < K; k++) {
            int32_t e = z->route_idx[t * K + k];
            z->slot[t * K + k] = z->offset[e] + z->count[e]++;
        }
}

/* Routed (and with shared_overlap, shared) gate/up/SiLU: h rows in z->ge / z->sg. */
static void experts_gateup(const ffn_ctx *c, bool shared) {
    const zmlx_model *m = c->s->m;
    zscratch *z = &c->s->s;
    const int32_t E = m->cfg.n_routed_experts;
    const int64_t d = m->cfg.hidden_size, mI = m->cfg.moe_intermediate_size;
    const bool with_shared = shared && c->p->shared_overlap;
    if (c->p->experts_fused) {
        zglu_job *jobs = z->glu_jobs;
        int nj = 0;
        for (int32_t e = 0; e < E; e++) {
            int64_t cnt = z->offset[e + 1] - z->offset[e], r0 = z->offset[e];
            if (cnt)
                jobs[nj++] = (zglu_job){.gate = c->L->exp_gate[e], .up = c->L->exp_up[e],
                                        .x = z->xe + r0 * d, .h = z->ge + r0 * mI, .n = cnt};
        }
        if (with_shared)
            jobs[nj++] = (zglu_job){.gate = c->L->sh_gate, .up = c->L->sh_up, .x = z->xn, .h = z->sg, .n = c->n};
        m->be->glu(m->be_ctx, jobs, nj);
        if (with_shared) return;
    } else {
        /* one op for every expert's gate, one for every expert's up (gather_qmm style) */
        for (int pass = 0; pass < 2; pass++) {
            zmm_job *jobs = z->jobs;
            int nj = 0;
            for (int32_t e = 0; e < E; e++) {
                int64_t cnt = z->offset[e + 1] - z->offset[e], r0 = z->offset[e];
                if (cnt)
                    jobs[nj++] = (zmm_job){.w = pass ? c->L->exp_up[e] : c->L->exp_gate[e],
                                           .x = z->xe + r0 * d, .y = (pass ? z->ue : z->ge) + r0 * mI,
                                           .n = cnt};
            }
            if (with_shared)
                jobs[nj++] = (zmm_job){.w = pass ? c->L->sh_up : c->L->sh_gate, .x = z->xn,
                                       .y = pass ? z->su : z->sg, .n = c->n};
            run_mm(c, jobs, nj);
        }
        zop_silu_mul(z->ge, z->ue, c->n * m->cfg.experts_per_tok * mI, z->ge);
        if (with_shared) {
            zop_silu_mul(z->sg, z->su, c->n * c->L->sh_gate.rows, z->sg);
            return;
        }
    }
    if (shared) mlp_gateup(c, &c->L->sh_gate, &c->L->sh_up, z->xn, c->n, z->sg, z->su);
}

/* Decode with downproj_combine: the weighted sum straight from the down products. */
static bool combine_fused(const ffn_ctx *c, bool shared) {
    const zmlx_model *m = c->s->m;
    zscratch *z = &c->s->s;
    const int32_t K = m->cfg.experts_per_tok;
    const int64_t mI = m->cfg.moe_intermediate_size;
    zcombine_job j = {.k = K, .out = c->p->combine_residual ? z->x : z->f,
                      .residual = c->p->combine_residual};
    for (int32_t k = 0; k < K; k++) { /* route order: score descending, ties to lower index */
        int32_t e = z->route_idx[k];
        j.down[k] = c->L->exp_down[e];
        j.h[k] = z->ge + (int64_t)z->slot[k] * mI;
        j.w[k] = z->route_w[k];
    }
    if (shared && c->p->shared_overlap) {
        j.sh_down = c->L->sh_down;
        j.sh_h = z->sg;
    } else if (shared) {
        zmm_job sj = {.w = c->L->sh_down, .x = z->sg, .y = z->sd, .n = 1};
        run_mm(c, &sj, 1);
        j.sh_out = z->sd;
    }
    m->be->combine(m->be_ctx, &j);
    return c->p->combine_residual;
}

static bool moe(const ffn_ctx *c) {
    const zmlx_model *m = c->s->m;
    zscratch *z = &c->s->s;
    const int32_t E = m->cfg.n_routed_experts, K = m->cfg.experts_per_tok;
    const int64_t d = m->cfg.hidden_size, mI = m->cfg.moe_intermediate_size, n = c->n;
    const bool shared = m->cfg.n_shared_experts > 0;
    route(c);
    for (int64_t t = 0; t < n; t++) /* gather each token's input into its expert rows */
        for (int32_t k = 0; k < K; k++) {
            float *dst = z->xe + (int64_t)z->slot[t * K + k] * d;
            for (int64_t i = 0; i < d; i++) dst[i] = z->xn[t * d + i];
        }
    experts_gateup(c, shared);
    if (c->p->down_combine && n == 1) return combine_fused(c, shared);

    zmm_job *jobs = z->jobs;
    int nj = 0;
    for (int32_t e = 0; e < E; e++) {
        int64_t cnt = z->offset[e + 1] - z->offset[e], r0 = z->offset[e];
        if (cnt)
            jobs[nj++] = (zmm_job){.w = c->L->exp_down[e], .x = z->ge + r0 * mI, .y = z->de + r0 * d, .n = cnt};
    }
    const bool shared_in_region = shared && c->p->shared_overlap;
    if (shared_in_region) jobs[nj++] = (zmm_job){.w = c->L->sh_down, .x = z->sg, .y = z->sd, .n = n};
    run_mm(c, jobs, nj);
    if (shared && !shared_in_region) {
        zmm_job sj = {.w = c->L->sh_down, .x = z->sg, .y = z->sd, .n = n};
        run_mm(c, &sj, 1);
    }
    /* combine: routed outputs in route order, float32, then the shared expert
       (then the residual, when moe_combine folds it in) */
    const bool res = c->p->combine_residual;
    for (int64_t t = 0; t < n; t++) {
        float *f = z->f + t * d, *x = z->x + t * d;
        for (int64_t i = 0; i < d; i++) {
            float acc = 0.0f;
            for (int32_t k = 0; k < K; k++)
                acc += z->route_w[t * K + k] * z->de[(int64_t)z->slot[t * K + k] * d + i];
            if (shared) acc += z->sd[t * d + i];
            if (res) x[i] = x[i] + acc;
            else f[i] = acc;
        }
    }
    return res;
}

bool zffn_forward(zmlx_session *s, int l, int64_t n) {
    const zlayer *L = &s->m->layers[l];
    ffn_ctx c = {.s = s, .L = L, .p = &s->m->plan[l], .n = n};
    if (L->moe) return moe(&c);
    dense(&c);
    return false;
}
