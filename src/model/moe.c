/*
 * moe.c — the feed-forward block of one layer for a chunk of n tokens.
 *
 * Dense layers:  f = down(silu(gate(x)) * up(x))
 * MoE layers:    router logits (float32) -> zop_route (sigmoid, bias for selection
 *                only, group limit, top-k, normalise, scale) -> each selected expert
 *                runs on the tokens that chose it (tokens grouped per expert, so
 *                prefill reads each expert once per chunk) -> per token
 *                f = sum_k w_k * expert_k(x)   in the route order (score descending,
 *                                              ties to the lower expert index)
 *                    + shared(x)
 *                The residual add happens in forward.c.
 */
#include "model/session.h"
#include "ops/ops.h"

static void dense(zmlx_session *s, const zlayer *L, int64_t n) {
    const zmlx_model *m = s->m;
    zscratch *z = &s->s;
    const int64_t I = L->gate.rows;
    zmm_job gu[2] = {{.w = L->gate, .x = z->xn, .y = z->dg, .n = n},
                     {.w = L->up, .x = z->xn, .y = z->du, .n = n}};
    m->be->matmul(m->be_ctx, gu, 2);
    zop_silu_mul(z->dg, z->du, n * I, z->dg);
    zmm_job dn = {.w = L->down, .x = z->dg, .y = z->f, .n = n};
    m->be->matmul(m->be_ctx, &dn, 1);
}

/* Route every token; fill count/offset/slot so expert e's rows are offset[e].. */
static void route(zmlx_session *s, const zlayer *L, int64_t n) {
    const zmlx_model *m = s->m;
    const zmlx_config *c = &m->cfg;
    zscratch *z = &s->s;
    const int32_t E = c->n_routed_experts, K = c->experts_per_tok;
    zmm_job rj = {.w = L->router, .x = z->xn, .y = z->router_logits, .n = n};
    m->be->matmul(m->be_ctx, &rj, 1);
    zrouter_cfg rc = {.n_experts = E, .k = K, .n_group = c->n_group, .topk_group = c->topk_group,
                      .norm_topk_prob = c->norm_topk_prob, .scale = c->routed_scaling_factor,
                      .softmax_scoring = c->scoring == ZSCORE_SOFTMAX};
    for (int32_t e = 0; e < E; e++) z->count[e] = 0;
    for (int64_t t = 0; t < n; t++) {
        zop_route(&rc, z->router_logits + t * E, L->router_bias, z->route_work,
                  z->route_idx + t * K, z->route_w + t * K);
        for (int32_t k = 0; k < K; k++) z->count[z->route_idx[t * K + k]]++;
    }
    z->offset[0] = 0;
    for (int32_t e = 0; e < E; e++) z->offset[e + 1] = z->offset[e] + z->count[e];
    for (int32_t e = 0; e < E; e++) z->count[e] = 0; /* reused as fill cursor */
    for (int64_t t = 0; t < n; t++)
        for (int32_t k = 0; k < K; k++) {
            int32_t e = z->route_idx[t * K + k];
            z->slot[t * K + k] = z->offset[e] + z->count[e]++;
        }
}

static void moe(zmlx_session *s, const zlayer *L, int64_t n) {
    const zmlx_model *m = s->m;
    const zmlx_config *c = &m->cfg;
    zscratch *z = &s->s;
    const int32_t E = c->n_routed_experts, K = c->experts_per_tok;
    const int64_t d = c->hidden_size, mI = c->moe_intermediate_size;
    const int64_t sI = L->sh_gate.rows;
    const bool shared = c->n_shared_experts > 0;
    route(s, L, n);

    for (int64_t t = 0; t < n; t++) /* gather each token's input into its expert rows */
        for (int32_t k = 0; k < K; k++) {
            float *dst = z->xe + (int64_t)z->slot[t * K + k] * d;
            for (int64_t i = 0; i < d; i++) dst[i] = z->xn[t * d + i];
        }

    zmm_job *jobs = z->jobs;
    int nj = 0;
    for (int32_t e = 0; e < E; e++) {
        int64_t cnt = z->offset[e + 1] - z->offset[e], r0 = z->offset[e];
        if (!cnt) continue;
        jobs[nj++] = (zmm_job){.w = L->exp_gate[e], .x = z->xe + r0 * d, .y = z->ge + r0 * mI, .n = cnt};
        jobs[nj++] = (zmm_job){.w = L->exp_up[e], .x = z->xe + r0 * d, .y = z->ue + r0 * mI, .n = cnt};
    }
    if (shared) {
        jobs[nj++] = (zmm_job){.w = L->sh_gate, .x = z->xn, .y = z->sg, .n = n};
        jobs[nj++] = (zmm_job){.w = L->sh_up, .x = z->xn, .y = z->su, .n = n};
    }
    m->be->matmul(m->be_ctx, jobs, nj);

    int64_t rows = n * K;
    zop_silu_mul(z->ge, z->ue, rows * mI, z->ge);
    if (shared) zop_silu_mul(z->sg, z->su, n * sI, z->sg);

    nj = 0;
    for (int32_t e = 0; e < E; e++) {
        int64_t cnt = z->offset[e + 1] - z->offset[e], r0 = z->offset[e];
        if (!cnt) continue;
        jobs[nj++] = (zmm_job){.w = L->exp_down[e], .x = z->ge + r0 * mI, .y = z->de + r0 * d, .n = cnt};
    }
    if (shared) jobs[nj++] = (zmm_job){.w = L->sh_down, .x = z->sg, .y = z->sd, .n = n};
    m->be->matmul(m->be_ctx, jobs, nj);

    /* combine: routed outputs in route order (score descending, ties to lower index),
       float32, then the shared expert */
    for (int64_t t = 0; t < n; t++) {
        float *f = z->f + t * d;
        for (int64_t i = 0; i < d; i++) f[i] = 0.0f;
        for (int32_t k = 0; k < K; k++) {
            const float w = z->route_w[t * K + k];
            const float *y = z->de + (int64_t)z->slot[t * K + k] * d;
            for (int64_t i = 0; i < d; i++) f[i] += w * y[i];
        }
        if (shared)
            for (int64_t i = 0; i < d; i++) f[i] += z->sd[t * d + i];
    }
}

void zffn_forward(zmlx_session *s, int l, int64_t n) {
    const zlayer *L = &s->m->layers[l];
    if (L->moe) moe(s, L, n);
    else dense(s, L, n);
}
