/*
 * step.c — device sessions of the `cuda` backend: buffers planned once per session, the
 * MLA latent cache on the device, the forward pass of a chunk as a sequence of kernel
 * launches on one stream, and the CUDA graph that replays the decode step.
 *
 * The forward pass follows src/model/forward.c, attention.c and moe.c (the unpatched
 * baseline, op for op; the patterns' fusions are host-side schedules and do not apply):
 *   x = embed(ids); xn = norm(x)
 *   per layer: attention (absorbed or expanded MLA) -> f; x += f; xn = norm(x)
 *              FFN (dense SwiGLU, or router -> route -> experts -> combine in route order
 *              + shared) -> x += f; xn = next layer's norm(x)
 *   logits = lm_head(final_norm(x))
 * One token uses matrix-vector kernels, a chunk uses the GEMM kernels (the routed experts
 * grouped on the device).  Chunks are ZCU_CHUNK tokens, as the host path's, so
 * ZMLX_ATTN_AUTO picks the same path for each chunk.
 *
 * Decode graph: a single-token absorbed step reads its position and token id from device
 * memory (cu_step, filled by a captured host-to-device copy from pinned memory) and writes
 * the logits to pinned memory, so one captured graph replays every token.  It is captured
 * again only when the cache grows (new buffers, a new attention split).
 *
 * Cache: [n_layers][cap][kv_lora + rope] rows [latent | k_pe] in f32 or bf16, growing by
 * doubling (a device-to-device copy) up to the session's max positions.
 */
#include "backend/cuda/cuda_internal.h"
#include "backend/cuda/ep.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN 256
#define DEC_SPLIT_MAX 64 /* decode attention splits (<= ZCU_ATTN_MAX_SPLIT) */

typedef struct cu_sess {
    cu_ctx *c;
    int64_t max_pos, cap;
    bool kv_bf16;
    size_t kv_elem;
    int64_t W;                /* cache row: kv_lora + rope */
    void *cache;              /* [n_layers][cap][W] */
    void *arena;              /* the chunk buffers below, one allocation */
    size_t arena_bytes;
    float *x, *xn, *f, *xrow;  /* [C, d] residual, normed, block output, final-normed */
    float *qa;                 /* [C, q_lora] */
    float *q;                  /* [C, H, nope + rope] */
    float *kv;                 /* [C, W] */
    float *qabs;               /* [C, H, W] absorbed queries [q_lat | q_pe] */
    float *olat;               /* [C, H, R] */
    float *attn;               /* [C, H * vd] */
    float *cs;                 /* [C, rope] cos | sin */
    float *part_o, *part_ml;   /* attention splits */
    float *logits;             /* [C, V] */
    float *rlog, *rw;          /* [C, E], [C, K] */
    int32_t *ridx, *goff, *glist, *gslot; /* [C, K], [E + 1], [C * K], [C, K] */
    int32_t *lidx;             /* [C, K] several GPUs: route ids in this rank's slice, -1 */
    float *ge, *ue, *de;       /* [C * K, mI], [C * K, mI], [C * K, d] */
    float *sg, *su, *sd;       /* [C, sI], [C, sI], [C, d] shared expert */
    float *dg, *du;            /* [C, I] dense MLP */
    cu_step *d_step;
    cu_step *h_step;           /* pinned */
    float *h_logits;           /* pinned [V] */
    float *lat_f32, *kvb;      /* expanded path: [xcap, R], [xcap, H * (nope + vd)] */
    int64_t xcap;
    cudaGraphExec_t graph;     /* the decode step, valid for graph_cap */
    int64_t graph_cap;
    int64_t bytes;
} cu_sess;

static size_t carve(size_t *off, size_t bytes) {
    size_t o = (*off + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    *off = o + (bytes ? bytes : 1);
    return o;
}

/* Splits of the decode attention for a cache of cap positions (fixed per graph). */
static int64_t dec_nsplit(int64_t cap) {
    int64_t n = (cap + 31) / 32;
    return n < 1 ? 1 : n > DEC_SPLIT_MAX ? DEC_SPLIT_MAX : n;
}

/* cudaMalloc that reports running out as ZMLX_ERR_LIMIT (and clears the error). */
static zmlx_status dev_alloc(void **p, size_t bytes, const char *what, zerr *e) {
    cudaError_t err = cudaMalloc(p, bytes);
    if (err == cudaSuccess) return ZMLX_OK;
    (void)cudaGetLastError();
    *p = NULL;
    return zerr_set(e, ZMLX_ERR_LIMIT, "out of GPU memory: %s needs %.1f MiB (%s)", what,
                    (double)bytes / 1048576.0, cudaGetErrorString(err));
}

static zmlx_status plan_buffers(cu_sess *s, zerr *e) {
    const zmlx_config *c = &s->c->m->cfg;
    const size_t C = ZCU_CHUNK, d = (size_t)c->hidden_size, H = (size_t)c->n_heads;
    const size_t R = (size_t)c->kv_lora_rank, rope = (size_t)c->qk_rope_dim;
    const size_t qk = (size_t)(c->qk_nope_dim + c->qk_rope_dim), vd = (size_t)c->v_head_dim;
    const size_t E = (size_t)(c->n_routed_experts > 0 ? c->n_routed_experts : 1);
    const size_t K = (size_t)(c->experts_per_tok > 0 ? c->experts_per_tok : 1);
    const size_t mI = (size_t)c->moe_intermediate_size, V = (size_t)c->vocab_size;
    const size_t sI = mI * (size_t)(c->n_shared_experts > 0 ? c->n_shared_experts : 1);
    const size_t I = (size_t)c->intermediate_size, W = (size_t)s->W, f = sizeof(float);
    const size_t ql = (size_t)(c->q_lora_rank > 0 ? c->q_lora_rank : 1);
    const size_t nparts = (DEC_SPLIT_MAX > C ? DEC_SPLIT_MAX : C) * H;
    size_t off = 0;
    /* offsets first, pointers after the one allocation */
    size_t o_x = carve(&off, C * d * f), o_xn = carve(&off, C * d * f), o_f = carve(&off, C * d * f);
    size_t o_xrow = carve(&off, C * d * f), o_qa = carve(&off, C * ql * f);
    size_t o_q = carve(&off, C * H * qk * f), o_kv = carve(&off, C * W * f);
    size_t o_qabs = carve(&off, C * H * W * f), o_olat = carve(&off, C * H * R * f);
    size_t o_attn = carve(&off, C * H * vd * f), o_cs = carve(&off, C * rope * f);
    size_t o_po = carve(&off, nparts * R * f), o_pml = carve(&off, nparts * 2 * f);
    size_t o_log = carve(&off, C * V * f), o_rlog = carve(&off, C * E * f);
    size_t o_rw = carve(&off, C * K * f), o_ridx = carve(&off, C * K * 4);
    size_t o_goff = carve(&off, (E + 1) * 4), o_glist = carve(&off, C * K * 4);
    size_t o_gslot = carve(&off, C * K * 4), o_ge = carve(&off, C * K * mI * f);
    size_t o_lidx = carve(&off, C * K * 4);
    size_t o_ue = carve(&off, C * K * mI * f), o_de = carve(&off, C * K * d * f);
    size_t o_sg = carve(&off, C * sI * f), o_su = carve(&off, C * sI * f);
    size_t o_sd = carve(&off, C * d * f), o_dg = carve(&off, C * I * f), o_du = carve(&off, C * I * f);
    size_t o_step = carve(&off, sizeof(cu_step));
    zmlx_status st = dev_alloc(&s->arena, off, "the session's buffers", e);
    if (st != ZMLX_OK) return st;
    s->arena_bytes = off;
    uint8_t *b = s->arena;
    s->x = (float *)(b + o_x), s->xn = (float *)(b + o_xn), s->f = (float *)(b + o_f);
    s->xrow = (float *)(b + o_xrow), s->qa = (float *)(b + o_qa), s->q = (float *)(b + o_q);
    s->kv = (float *)(b + o_kv), s->qabs = (float *)(b + o_qabs), s->olat = (float *)(b + o_olat);
    s->attn = (float *)(b + o_attn), s->cs = (float *)(b + o_cs);
    s->part_o = (float *)(b + o_po), s->part_ml = (float *)(b + o_pml);
    s->logits = (float *)(b + o_log), s->rlog = (float *)(b + o_rlog), s->rw = (float *)(b + o_rw);
    s->ridx = (int32_t *)(b + o_ridx), s->goff = (int32_t *)(b + o_goff);
    s->glist = (int32_t *)(b + o_glist), s->gslot = (int32_t *)(b + o_gslot);
    s->lidx = (int32_t *)(b + o_lidx);
    s->ge = (float *)(b + o_ge), s->ue = (float *)(b + o_ue), s->de = (float *)(b + o_de);
    s->sg = (float *)(b + o_sg), s->su = (float *)(b + o_su), s->sd = (float *)(b + o_sd);
    s->dg = (float *)(b + o_dg), s->du = (float *)(b + o_du);
    s->d_step = (cu_step *)(b + o_step);
    CU_TRY(e, cudaMemsetAsync(s->arena, 0, off, s->c->stream));
    CU_TRY(e, cudaMallocHost((void **)&s->h_step, sizeof(cu_step)));
    CU_TRY(e, cudaMallocHost((void **)&s->h_logits, V * f));
    s->bytes += (int64_t)off;
    return ZMLX_OK;
}

static void drop_graph(cu_sess *s) {
    if (s->graph) cudaGraphExecDestroy(s->graph);
    s->graph = NULL;
    s->graph_cap = 0;
}

/* Make the cache hold `want` positions (doubling, at most max_pos). */
static zmlx_status reserve_cache(cu_sess *s, int64_t want, zerr *e) {
    if (want <= s->cap) return ZMLX_OK;
    const zmlx_config *c = &s->c->m->cfg;
    int64_t cap = s->cap ? s->cap : 256;
    while (cap < want) cap *= 2;
    if (cap > s->max_pos) cap = s->max_pos;
    const size_t row = (size_t)s->W * s->kv_elem, L = (size_t)c->n_layers;
    void *nc = NULL;
    char what[96];
    snprintf(what, sizeof what, "the KV cache of %lld positions", (long long)cap);
    zmlx_status st = dev_alloc(&nc, L * (size_t)cap * row, what, e);
    if (st != ZMLX_OK) return st;
    if (s->cap > 0) {
        CU_TRY(e, cudaMemcpy2DAsync(nc, (size_t)cap * row, s->cache, (size_t)s->cap * row,
                                    (size_t)s->cap * row, L, cudaMemcpyDeviceToDevice,
                                    s->c->stream));
        CU_TRY(e, cudaStreamSynchronize(s->c->stream));
        cudaFree(s->cache);
    }
    s->bytes += (int64_t)(L * (size_t)(cap - s->cap) * row);
    s->cache = nc;
    s->cap = cap;
    drop_graph(s); /* its kernels point at the old cache */
    return ZMLX_OK;
}

/* The expanded path's per-position buffers for T positions. */
static zmlx_status reserve_expanded(cu_sess *s, int64_t T, zerr *e) {
    if (T <= s->xcap) return ZMLX_OK;
    const zmlx_config *c = &s->c->m->cfg;
    const int64_t cap = s->cap; /* T <= cap */
    const size_t hs = (size_t)(c->n_heads * (c->qk_nope_dim + c->v_head_dim));
    CU_TRY(e, cudaStreamSynchronize(s->c->stream)); /* nothing in flight uses the old ones */
    if (s->lat_f32) cudaFree(s->lat_f32);
    if (s->kvb) cudaFree(s->kvb);
    s->bytes -= s->xcap * (int64_t)(((size_t)c->kv_lora_rank + hs) * sizeof(float));
    s->lat_f32 = s->kvb = NULL;
    s->xcap = 0;
    zmlx_status st = dev_alloc((void **)&s->lat_f32, (size_t)cap * (size_t)c->kv_lora_rank * sizeof(float),
                               "the expanded attention's latent rows", e);
    if (st == ZMLX_OK)
        st = dev_alloc((void **)&s->kvb, (size_t)cap * hs * sizeof(float),
                       "the expanded attention's keys and values", e);
    if (st != ZMLX_OK) return st;
    s->xcap = cap;
    s->bytes += cap * (int64_t)(((size_t)c->kv_lora_rank + hs) * sizeof(float));
    return ZMLX_OK;
}

zmlx_status zcu_session_init(void *ctx, int64_t max_pos, void **dev, int64_t *bytes, zerr *e) {
    cu_ctx *c = ctx;
    *dev = NULL;
    cu_sess *s = calloc(1, sizeof *s);
    if (!s) return zerr_set(e, ZMLX_ERR_NOMEM, "out of memory (cuda session)");
    s->c = c;
    s->max_pos = max_pos;
    s->kv_bf16 = c->m->kv_dtype == ZMLX_KV_BF16;
    s->kv_elem = s->kv_bf16 ? 2 : 4;
    s->W = c->m->cfg.kv_lora_rank + c->m->cfg.qk_rope_dim;
    zmlx_status st = plan_buffers(s, e);
    if (st == ZMLX_OK) st = reserve_cache(s, max_pos < 256 ? max_pos : 256, e);
    if (st != ZMLX_OK) {
        zcu_session_free(c, s);
        return st;
    }
    *bytes = s->bytes;
    *dev = s;
    return ZMLX_OK;
}

void zcu_session_free(void *ctx, void *dev) {
    cu_sess *s = dev;
    if (!s) return;
    drop_graph(s);
    if (s->cache) cudaFree(s->cache);
    if (s->arena) cudaFree(s->arena);
    if (s->lat_f32) cudaFree(s->lat_f32);
    if (s->kvb) cudaFree(s->kvb);
    if (s->h_step) cudaFreeHost(s->h_step);
    if (s->h_logits) cudaFreeHost(s->h_logits);
    free(s);
}

/* y[n, w.rows] = x[n, w.cols] W^T: the matvec kernel for one token, the GEMM for more. */
static cudaError_t proj(const cuw *w, const float *x, float *y, int64_t n, cudaStream_t st) {
    if (n == 1) {
        cu_mv p = {.w = *w, .groups = 1, .rpg = w->rows, .gmod = 1, .x = x, .y = y};
        return cuk_matvec(&p, 1, st);
    }
    return cuk_gemm(*w, x, w->cols, NULL, y, w->rows, n, NULL, 0, st);
}

/* The attention block of layer l: s->xn -> s->f. */
static zmlx_status attention(cu_sess *s, int l, int64_t n, int64_t T, bool absorbed,
                             int64_t nsplit, zerr *e) {
    const cu_ctx *c = s->c;
    const zmlx_model *m = c->m;
    const zmlx_config *cf = &m->cfg;
    const cu_layer *L = &c->layers[l];
    cudaStream_t st = c->stream;
    const int64_t H = cf->n_heads, nope = cf->qk_nope_dim, rope = cf->qk_rope_dim;
    const int64_t qk = nope + rope, R = cf->kv_lora_rank, vd = cf->v_head_dim, hs = nope + vd;
    void *cache = (uint8_t *)s->cache + (size_t)l * (size_t)s->cap * (size_t)s->W * s->kv_elem;
    const bool lora = cf->q_lora_rank > 0;

    if (n == 1) { /* kv_a and q_a read the same x: one launch */
        cu_mv j[2] = {{.w = L->kv_a, .groups = 1, .rpg = L->kv_a.rows, .gmod = 1, .x = s->xn, .y = s->kv},
                      {.w = L->q_a, .groups = 1, .rpg = L->q_a.rows, .gmod = 1, .x = s->xn,
                       .y = lora ? s->qa : s->q}};
        CU_TRY(e, cuk_matvec(j, 2, st));
    } else {
        CU_TRY(e, proj(&L->kv_a, s->xn, s->kv, n, st));
        CU_TRY(e, proj(&L->q_a, s->xn, lora ? s->qa : s->q, n, st));
    }
    cu_prep pp = {.kv = s->kv, .R = R, .rope = rope, .qa = lora ? s->qa : NULL,
                  .ql = cf->q_lora_rank, .kv_norm = L->kv_a_norm, .q_norm = L->q_a_norm,
                  .eps = cf->attn_norm_eps, .inv_freq = c->inv_freq, .mscale = m->rope_mscale,
                  .cache = cache, .cache_bf16 = s->kv_bf16, .cs = s->cs, .step = s->d_step, .n = n};
    CU_TRY(e, cuk_attn_prep(&pp, st));
    if (lora) CU_TRY(e, proj(&L->q_b, s->qa, s->q, n, st));
    if (absorbed) {
        /* query rows [q_lat | q_pe]: q_lat_h = W_UK[h]^T q_nope_h, q_pe rotated */
        cu_mvt qt = {.w = L->kv_b, .nr = nope, .row0 = 0, .grs = hs, .gmod = H, .groups = n * H,
                     .x = s->q, .xs = qk, .y = s->qabs, .ys = s->W, .cs = s->cs, .rope = rope};
        CU_TRY(e, cuk_matvec_t(&qt, st));
        cu_attn a = {.q = s->qabs, .cache = cache, .cache_bf16 = s->kv_bf16, .n_q = n, .H = H,
                     .R = R, .rope = rope, .scale = m->attn_scale, .step = s->d_step,
                     .nsplit = nsplit, .part_o = s->part_o, .part_ml = s->part_ml, .out = s->olat};
        CU_TRY(e, cuk_attn_absorbed(&a, st));
        /* o_h = W_UV[h] o_lat_h */
        cu_mv uv = {.w = L->kv_b, .groups = n * H, .rpg = vd, .row0 = nope, .grs = hs, .gmod = H,
                    .x = s->olat, .xs = R, .y = s->attn, .ys = vd};
        CU_TRY(e, cuk_matvec(&uv, 1, st));
    } else {
        CU_TRY(e, cuk_q_rope(s->q, n, H, nope, rope, s->cs, NULL, R, st));
        zmlx_status rs = reserve_expanded(s, T, e);
        if (rs != ZMLX_OK) return rs;
        CU_TRY(e, cuk_cache_to_f32(cache, s->kv_bf16, s->W, R, T, s->lat_f32, st));
        CU_TRY(e, cuk_gemm(L->kv_b, s->lat_f32, R, NULL, s->kvb, H * hs, T, NULL, 0, st));
        cu_attn_x ax = {.q = s->q, .kvb = s->kvb, .cache = cache, .cache_bf16 = s->kv_bf16,
                        .n = n, .H = H, .nope = nope, .rope = rope, .vd = vd, .R = R,
                        .scale = m->attn_scale, .step = s->d_step, .out = s->attn};
        CU_TRY(e, cuk_attn_expanded(&ax, st));
    }
    CU_TRY(e, proj(&L->o, s->attn, s->f, n, st));
    return ZMLX_OK;
}

/* The FFN of layer l on s->xn; adds into s->x and leaves the next norm (next_w, or none
   after the last layer) in s->xn. */
static zmlx_status ffn(cu_sess *s, int l, int64_t n, const float *next_w, zerr *e) {
    const cu_ctx *c = s->c;
    const zmlx_config *cf = &c->m->cfg;
    const cu_layer *L = &c->layers[l];
    cudaStream_t st = c->stream;
    const int64_t d = cf->hidden_size, K = cf->experts_per_tok, E = cf->n_routed_experts;
    const int64_t mI = cf->moe_intermediate_size;
    const float eps = cf->rms_norm_eps;
    if (!L->moe) {
        if (n == 1) {
            cu_mv g = {.w = L->gate, .up = L->up, .groups = 1, .rpg = L->gate.rows, .gmod = 1,
                       .x = s->xn, .y = s->dg};
            CU_TRY(e, cuk_matvec(&g, 1, st));
        } else {
            CU_TRY(e, proj(&L->gate, s->xn, s->dg, n, st));
            CU_TRY(e, proj(&L->up, s->xn, s->du, n, st));
            CU_TRY(e, cuk_silu_mul(s->dg, s->du, n * L->gate.rows, s->dg, st));
        }
        CU_TRY(e, proj(&L->down, s->dg, s->f, n, st));
        CU_TRY(e, cuk_add_rmsnorm(s->x, s->f, next_w, d, eps, s->xn, n, st));
        return ZMLX_OK;
    }
    const bool shared = L->sh_gate.rows > 0;
    const cu_route_cfg rc = {.n_experts = (int32_t)E, .k = (int32_t)K, .n_group = cf->n_group,
                             .topk_group = cf->topk_group, .norm_topk_prob = cf->norm_topk_prob,
                             .softmax_scoring = cf->scoring == ZSCORE_SOFTMAX,
                             .scale = cf->routed_scaling_factor};
    if (n == 1) {
        /* router logits and the shared expert's SwiGLU (same x) in one launch; then the
           route, the K chosen experts' SwiGLU in route order, and the K + shared downs */
        cu_mv j[2] = {{.w = L->router, .groups = 1, .rpg = L->router.rows, .gmod = 1, .x = s->xn,
                       .y = s->rlog},
                      {.w = L->sh_gate, .up = L->sh_up, .groups = 1, .rpg = L->sh_gate.rows,
                       .gmod = 1, .x = s->xn, .y = s->sg}};
        CU_TRY(e, cuk_matvec(j, shared ? 2 : 1, st));
        CU_TRY(e, cuk_route(rc, s->rlog, L->router_bias, n, s->ridx, s->rw, st));
        const int32_t *eidx = c->ep ? s->lidx : s->ridx; /* several GPUs: this rank's
                                                            experts, -1 elsewhere */
        if (c->ep) CU_TRY(e, cuk_ep_localize(s->ridx, K, c->ep->e0, c->ep->ne, s->lidx, st));
        cu_mv gu = {.w = L->exp_gate, .up = L->exp_up, .idx = eidx, .groups = K, .rpg = mI,
                    .gmod = 1, .x = s->xn, .y = s->ge, .ys = mI};
        CU_TRY(e, cuk_matvec(&gu, 1, st));
        cu_mv dn[2] = {{.w = L->exp_down, .idx = eidx, .groups = K, .rpg = d, .gmod = 1,
                        .x = s->ge, .xs = mI, .y = s->de, .ys = d},
                       {.w = L->sh_down, .groups = 1, .rpg = d, .gmod = 1, .x = s->sg, .y = s->sd}};
        CU_TRY(e, cuk_matvec(dn, shared ? 2 : 1, st));
        if (c->ep) { /* the slot buffer [K, d]: exact sum (dist.h) */
            zmlx_status r = zcu_nccl_sum(c->ep->nccl, c->ep->comm, s->de, (size_t)(K * d), st, e);
            if (r != ZMLX_OK) return r;
        }
        CU_TRY(e, cuk_moe_combine(s->rw, NULL, K, s->de, shared ? s->sd : NULL, s->x, next_w,
                                  eps, s->xn, d, 1, st));
        return ZMLX_OK;
    }
    /* a chunk: rows grouped by expert (slot order as moe.c), one grouped GEMM each */
    CU_TRY(e, proj(&L->router, s->xn, s->rlog, n, st));
    CU_TRY(e, cuk_route(rc, s->rlog, L->router_bias, n, s->ridx, s->rw, st));
    CU_TRY(e, cuk_moe_group(s->ridx, n, K, E, s->goff, s->glist, s->gslot, st));
    /* several GPUs: only this rank's groups (rows goff[e0] .. goff[e0 + ne)), the other
       rows of the slot buffer +0.0, then its exact sum (dist.h) */
    const int32_t *goff = c->ep ? s->goff + c->ep->e0 : s->goff;
    const int64_t groups = c->ep ? c->ep->ne : E;
    if (c->ep) CU_TRY(e, cudaMemsetAsync(s->de, 0, (size_t)(n * K * d) * sizeof(float), st));
    CU_TRY(e, cuk_gemm(L->exp_gate, s->xn, d, s->glist, s->ge, mI, n, goff, groups, st));
    CU_TRY(e, cuk_gemm(L->exp_up, s->xn, d, s->glist, s->ue, mI, n, goff, groups, st));
    CU_TRY(e, cuk_silu_mul(s->ge, s->ue, n * K * mI, s->ge, st));
    CU_TRY(e, cuk_gemm(L->exp_down, s->ge, mI, NULL, s->de, d, n, goff, groups, st));
    if (c->ep) {
        zmlx_status r = zcu_nccl_sum(c->ep->nccl, c->ep->comm, s->de, (size_t)(n * K * d), st, e);
        if (r != ZMLX_OK) return r;
    }
    if (shared) {
        CU_TRY(e, proj(&L->sh_gate, s->xn, s->sg, n, st));
        CU_TRY(e, proj(&L->sh_up, s->xn, s->su, n, st));
        CU_TRY(e, cuk_silu_mul(s->sg, s->su, n * L->sh_gate.rows, s->sg, st));
        CU_TRY(e, proj(&L->sh_down, s->sg, s->sd, n, st));
    }
    CU_TRY(e, cuk_moe_combine(s->rw, s->gslot, K, s->de, shared ? s->sd : NULL, s->x, next_w,
                              eps, s->xn, d, n, st));
    return ZMLX_OK;
}

typedef enum { LOGITS_NONE, LOGITS_LAST, LOGITS_ALL } logits_mode;

/* Enqueue one chunk of n tokens (its cu_step already on the device); T = positions after
   it (used by the expanded path, which never runs in a graph). */
static zmlx_status enqueue_chunk(cu_sess *s, int64_t n, int64_t T, bool absorbed,
                                 int64_t nsplit, logits_mode lm, zerr *e) {
    const cu_ctx *c = s->c;
    const zmlx_config *cf = &c->m->cfg;
    cudaStream_t st = c->stream;
    const int64_t d = cf->hidden_size;
    const float eps = cf->rms_norm_eps;
    CU_TRY(e, cuk_embed(c->embed, s->d_step, n, s->x, st));
    CU_TRY(e, cuk_rmsnorm(s->x, d, c->layers[0].attn_norm, d, eps, s->xn, d, n, st));
    for (int l = 0; l < cf->n_layers; l++) {
        zmlx_status r = attention(s, l, n, T, absorbed, nsplit, e);
        if (r != ZMLX_OK) return r;
        CU_TRY(e, cuk_add_rmsnorm(s->x, s->f, c->layers[l].ffn_norm, d, eps, s->xn, n, st));
        const float *next_w = l + 1 < cf->n_layers ? c->layers[l + 1].attn_norm : NULL;
        r = ffn(s, l, n, next_w, e);
        if (r != ZMLX_OK) return r;
    }
    if (lm == LOGITS_NONE) return ZMLX_OK;
    const int64_t first = lm == LOGITS_ALL ? 0 : n - 1, rows = n - first;
    CU_TRY(e, cuk_rmsnorm(s->x + first * d, d, c->final_norm, d, eps, s->xrow, d, rows, st));
    CU_TRY(e, proj(&c->lm_head, s->xrow, s->logits, rows, st));
    return ZMLX_OK;
}

/* Capture the single-token absorbed step (step copy in, logits out) for the current cache. */
static zmlx_status capture_decode(cu_sess *s, zerr *e) {
    cudaStream_t st = s->c->stream;
    const size_t V = (size_t)s->c->m->cfg.vocab_size;
    drop_graph(s);
    CU_TRY(e, cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
    zmlx_status r = ZMLX_OK;
    cudaError_t err = cudaMemcpyAsync(s->d_step, s->h_step, offsetof(cu_step, ids) + sizeof(int32_t),
                                      cudaMemcpyHostToDevice, st);
    if (err != cudaSuccess) r = zcu_fail(e, err, "cudaMemcpyAsync(step)", __FILE__, __LINE__, __func__);
    if (r == ZMLX_OK) r = enqueue_chunk(s, 1, 0, true, dec_nsplit(s->cap), LOGITS_LAST, e);
    if (r == ZMLX_OK) {
        err = cudaMemcpyAsync(s->h_logits, s->logits, V * sizeof(float), cudaMemcpyDeviceToHost, st);
        if (err != cudaSuccess) r = zcu_fail(e, err, "cudaMemcpyAsync(logits)", __FILE__, __LINE__, __func__);
    }
    cudaGraph_t g = NULL;
    err = cudaStreamEndCapture(st, &g); /* always: leaves the stream usable */
    if (r != ZMLX_OK) {
        if (g) cudaGraphDestroy(g);
        (void)cudaGetLastError();
        return r;
    }
    CU_TRY(e, err);
    err = cudaGraphInstantiate(&s->graph, g, 0);
    cudaGraphDestroy(g);
    CU_TRY(e, err);
    s->graph_cap = s->cap;
    return ZMLX_OK;
}

zmlx_status zcu_session_eval(void *ctx, void *dev, const zdev_eval *ev, int64_t *bytes, zerr *e) {
    cu_sess *s = dev;
    const cu_ctx *c = s->c;
    cudaStream_t st = c->stream;
    const int64_t V = c->m->cfg.vocab_size;
    zmlx_status r = reserve_cache(s, ev->pos + ev->n, e);
    if (r != ZMLX_OK) return r;
    for (int64_t done = 0; done < ev->n;) {
        const int64_t n = ev->n - done < ZCU_CHUNK ? ev->n - done : ZCU_CHUNK;
        const bool last = done + n == ev->n;
        const bool absorbed = ev->path == ZMLX_ATTN_ABSORBED || (ev->path == ZMLX_ATTN_AUTO && n == 1);
        logits_mode lm = LOGITS_NONE;
        float *dst = NULL;
        if (ev->logits && ev->all_logits) {
            lm = LOGITS_ALL;
            dst = ev->logits + done * V;
        } else if (ev->logits && last) {
            lm = LOGITS_LAST;
            dst = ev->logits;
        }
        s->h_step->pos = (int32_t)(ev->pos + done);
        s->h_step->n = (int32_t)n;
        memcpy(s->h_step->ids, ev->ids + done, (size_t)n * sizeof(int32_t));
        if (n == 1 && absorbed && lm != LOGITS_NONE) { /* the decode graph */
            if (!s->graph || s->graph_cap != s->cap) {
                r = capture_decode(s, e);
                if (r != ZMLX_OK) return r;
            }
            CU_TRY(e, cudaGraphLaunch(s->graph, st));
            CU_TRY(e, cudaStreamSynchronize(st));
            memcpy(dst, s->h_logits, (size_t)V * sizeof(float));
        } else {
            CU_TRY(e, cudaMemcpyAsync(s->d_step, s->h_step,
                                      offsetof(cu_step, ids) + (size_t)n * sizeof(int32_t),
                                      cudaMemcpyHostToDevice, st));
            r = enqueue_chunk(s, n, ev->pos + done + n, absorbed, n == 1 ? dec_nsplit(s->cap) : 1,
                              lm, e);
            if (r != ZMLX_OK) return r;
            if (lm == LOGITS_ALL)
                CU_TRY(e, cudaMemcpyAsync(dst, s->logits, (size_t)(n * V) * sizeof(float),
                                          cudaMemcpyDeviceToHost, st));
            else if (lm == LOGITS_LAST)
                CU_TRY(e, cudaMemcpyAsync(s->h_logits, s->logits, (size_t)V * sizeof(float),
                                          cudaMemcpyDeviceToHost, st));
            CU_TRY(e, cudaStreamSynchronize(st));
            if (lm == LOGITS_LAST) memcpy(dst, s->h_logits, (size_t)V * sizeof(float));
        }
        done += n;
    }
    *bytes = s->bytes;
    return ZMLX_OK;
}
