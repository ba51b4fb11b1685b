/*
 * step.c — device sessions of the `cuda` backend: buffers planned once per session, the
 * MLA latent cache and the rope table on the device, the eval loop, and the CUDA graph
 * that replays the decode step.
 *
 * One token (absorbed attention) runs decode.c's step, which follows the layer's pattern
 * plan (the unfused baseline, one kernel per op, or the fused patterns); a chunk runs
 * chunk.c's GEMM step.  Chunks are up to 1,024 tokens (ZCU_CHUNK; fewer where n x heads
 * would pass a grid's 65,535, or the expert choices cuk_moe_group's 65,535): the
 * routed experts' grouped GEMMs see ~64 tokens each (GLM-4.7-Flash: a whole 64-token
 * tile) instead of ~8 at 128, and the expanded attention recomputes its keys and values
 * from the latent cache once per chunk.  ZMLX_CUDA_CHUNK=N (a measuring knob) sets fewer.
 *
 * Decode graph: the one-token step reads its position and token id from device memory
 * (cu_step, filled by a captured host-to-device copy from pinned memory) and writes the
 * logits to pinned memory, so one captured graph replays every token (one per attention
 * mode, zcu_att_mode: positions within the short-context limit, whose attention and W_UV
 * may be one cuk_attn_uv launch; past it on Hopper the spread; the rest).  It is captured
 * again when the cache grows (new buffers, a new attention split) or the model's pattern
 * set changes.  On Hopper its kernels are chained by programmatic dependent launch; if
 * the driver refuses to capture that, the graph is captured without it.
 *
 * Cache: [n_layers][cap][kv_lora + rope] rows [latent | k_pe] in f32 or bf16, growing by
 * doubling (a device-to-device copy) up to the session's max positions; the rope table
 * [cap][rope] grows with it (rows computed on the device, zop_rope_table's values).
 * DeepSeek-V3.2: the indexer keys [n_layers][cap][index_head_dim] (KV dtype) grow with
 * it, and the indexer's scores [score_rows][cap] (score_rows queries at a time, 64 MiB).
 */
#include "backend/cuda/cuda_internal.h"
#include "backend/cuda/ep.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN 256
#define DEC_SPLIT_MAX 256 /* decode attention splits (<= ZCU_ATTN_MAX_SPLIT) */
#define ZCU_LOGIT_ROWS 64  /* rows of logits on the device at a time (every row's: groups) */

static size_t carve(size_t *off, size_t bytes) {
    size_t o = (*off + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    *off = o + (bytes ? bytes : 1);
    return o;
}

/* Splits of the decode attention for a cache of cap positions (fixed per graph): spans
   of one 32-position tile (ZMLX_CUDA_DEC_SPAN positions) while there are multiprocessors
   to fill, at most one block per multiprocessor (ZMLX_CUDA_DEC_SPLITS; longer spans
   beyond): each split then keeps several tiles in flight, and the merge reads fewer
   partials (H100, 32k: 256 splits 179 tok/s, 132 splits 195). */
int64_t zcu_dec_nsplit(const cu_sess *s, int64_t cap) {
    const int64_t span = s->c->dec_span > 0 ? s->c->dec_span : 32;
    int64_t n = (cap + span - 1) / span, most = s->c->dec_splits > 0 ? s->c->dec_splits : s->c->sms;
    if (most > DEC_SPLIT_MAX) most = DEC_SPLIT_MAX;
    return n < 1 ? 1 : n > most ? most : n;
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
    const size_t C = (size_t)s->chunk, d = (size_t)c->hidden_size, H = (size_t)c->n_heads;
    const size_t R = (size_t)c->kv_lora_rank, rope = (size_t)c->qk_rope_dim;
    const size_t qk = (size_t)(c->qk_nope_dim + c->qk_rope_dim), vd = (size_t)c->v_head_dim;
    const size_t E = (size_t)(c->n_routed_experts > 0 ? c->n_routed_experts : 1);
    const size_t K = (size_t)(c->experts_per_tok > 0 ? c->experts_per_tok : 1);
    const size_t mI = (size_t)c->moe_intermediate_size, V = (size_t)c->vocab_size;
    const size_t sI = mI * (size_t)(c->n_shared_experts > 0 ? c->n_shared_experts : 1);
    const size_t I = (size_t)c->intermediate_size, W = (size_t)s->W, f = sizeof(float);
    const size_t ql = (size_t)(c->q_lora_rank > 0 ? c->q_lora_rank : 1);
    const size_t nparts = (DEC_SPLIT_MAX > C ? DEC_SPLIT_MAX : C) * H;
    const bool dsa = zcu_dsa(s);
    const size_t nI = dsa ? (size_t)c->index_n_heads : 1, dI = dsa ? (size_t)c->index_head_dim : 1;
    s->sel_cap = dsa ? (c->index_topk < s->max_pos ? c->index_topk : s->max_pos) : 1;
    size_t off = 0;
    /* offsets first, pointers after the one allocation */
    size_t o_x = carve(&off, C * d * f), o_xn = carve(&off, C * d * f), o_f = carve(&off, C * d * f);
    size_t o_xrow = carve(&off, C * d * f), o_qa = carve(&off, C * ql * f);
    size_t o_q = carve(&off, C * H * qk * f), o_kv = carve(&off, C * W * f);
    size_t o_qabs = carve(&off, C * H * W * f), o_olat = carve(&off, C * H * R * f);
    size_t o_qabs16 = carve(&off, H * W * 2);
    size_t o_attn = carve(&off, C * H * vd * f), o_cs = carve(&off, C * rope * f);
    size_t o_po = carve(&off, nparts * R * f), o_pml = carve(&off, nparts * 2 * f);
    s->logit_rows = C < ZCU_LOGIT_ROWS ? (int64_t)C : ZCU_LOGIT_ROWS;
    size_t o_log = carve(&off, (size_t)s->logit_rows * V * f), o_rlog = carve(&off, C * E * f), o_rsig = carve(&off, E * f);
    size_t o_rw = carve(&off, C * K * f), o_ridx = carve(&off, C * K * 4);
    size_t o_goff = carve(&off, (E + 1) * 4), o_glist = carve(&off, C * K * 4);
    size_t o_gslot = carve(&off, C * K * 4), o_ge = carve(&off, C * K * mI * f);
    size_t o_ue = carve(&off, C * K * mI * f), o_de = carve(&off, C * K * d * f);
    size_t o_sg = carve(&off, C * sI * f), o_su = carve(&off, C * sI * f);
    size_t o_hq = carve(&off, (size_t)(K + 1) * (size_t)cuk_stage_floats(mI) * f);
    size_t o_rpart = carve(&off, (size_t)cuk_rpart_floats(d, (int32_t)E) * f);
    size_t o_sd = carve(&off, C * d * f), o_dg = carve(&off, C * I * f), o_du = carve(&off, C * I * f);
    size_t o_ik = carve(&off, C * dI * f), o_iq = carve(&off, C * nI * dI * f);
    size_t o_iw = carve(&off, C * nI * f), o_sel = carve(&off, C * (size_t)s->sel_cap * 4);
    size_t o_seln = carve(&off, C * 4);
    size_t o_step = carve(&off, sizeof(cu_step));
    size_t o_amax = carve(&off, sizeof(int32_t)), o_amw = carve(&off, cuk_argmax_work_bytes());
    zmlx_status st = dev_alloc(&s->arena, off, "the session's buffers", e);
    if (st != ZMLX_OK) return st;
    uint8_t *b = s->arena;
    s->x = (float *)(b + o_x), s->xn = (float *)(b + o_xn), s->f = (float *)(b + o_f);
    s->xrow = (float *)(b + o_xrow), s->qa = (float *)(b + o_qa), s->q = (float *)(b + o_q);
    s->kv = (float *)(b + o_kv), s->qabs = (float *)(b + o_qabs), s->olat = (float *)(b + o_olat);
    s->qabs16 = b + o_qabs16;
    s->attn = (float *)(b + o_attn), s->cs = (float *)(b + o_cs);
    s->part_o = (float *)(b + o_po), s->part_ml = (float *)(b + o_pml);
    s->logits = (float *)(b + o_log), s->rlog = (float *)(b + o_rlog), s->rw = (float *)(b + o_rw);
    s->rsig = (float *)(b + o_rsig);
    s->ridx = (int32_t *)(b + o_ridx), s->goff = (int32_t *)(b + o_goff);
    s->glist = (int32_t *)(b + o_glist), s->gslot = (int32_t *)(b + o_gslot);
    s->ge = (float *)(b + o_ge), s->ue = (float *)(b + o_ue), s->de = (float *)(b + o_de);
    s->sg = (float *)(b + o_sg), s->su = (float *)(b + o_su), s->sd = (float *)(b + o_sd);
    s->hq = (float *)(b + o_hq), s->rpart = (float *)(b + o_rpart);
    s->dg = (float *)(b + o_dg), s->du = (float *)(b + o_du);
    s->ik = (float *)(b + o_ik), s->iq = (float *)(b + o_iq), s->iw = (float *)(b + o_iw);
    s->sel = (int32_t *)(b + o_sel), s->sel_n = (int32_t *)(b + o_seln);
    s->d_step = (cu_step *)(b + o_step);
    s->d_amax = (int32_t *)(b + o_amax), s->d_amw = (int32_t *)(b + o_amw);
    CU_TRY(e, cudaMemsetAsync(s->arena, 0, off, s->c->stream));
    CU_TRY(e, cudaMallocHost((void **)&s->h_step, sizeof(cu_step)));
    CU_TRY(e, cudaMallocHost((void **)&s->h_logits, V * f));
    CU_TRY(e, cudaMallocHost((void **)&s->h_amax, sizeof(int32_t)));
    s->bytes += (int64_t)off;
    return ZMLX_OK;
}

static void drop_one_graph(cu_graph *g) {
    if (g->exec) cudaGraphExecDestroy(g->exec);
    *g = (cu_graph){0};
}

static void drop_graph(cu_sess *s) {
    for (int i = 0; i < ZCU_ATT_MODES; i++) drop_one_graph(&s->graph[i]);
}

/* Make the cache (and the rope table) hold `want` positions (doubling, at most max_pos). */
static zmlx_status reserve_cache(cu_sess *s, int64_t want, zerr *e) {
    if (want <= s->cap) return ZMLX_OK;
    const cu_ctx *cx = s->c;
    const zmlx_config *c = &cx->m->cfg;
    int64_t cap = s->cap ? s->cap : 256;
    while (cap < want) cap *= 2;
    if (cap > s->max_pos) cap = s->max_pos;
    const size_t row = (size_t)s->W * s->kv_elem, L = (size_t)c->n_layers;
    const size_t rope = (size_t)c->qk_rope_dim;
    const bool dsa = zcu_dsa(s);
    const size_t irow = dsa ? (size_t)c->index_head_dim * s->kv_elem : 0;
    /* the indexer's scores: as many queries at a time as 64 MiB hold (at least one) */
    int64_t srows = (int64_t)((64u << 20) / ((size_t)cap * sizeof(float)));
    srows = srows < 1 ? 1 : srows > s->chunk ? s->chunk : srows;
    void *nc = NULL, *nt = NULL, *nk = NULL, *ns = NULL;
    char what[96];
    snprintf(what, sizeof what, "the KV cache of %lld positions", (long long)cap);
    zmlx_status st = dev_alloc(&nc, L * (size_t)cap * row, what, e);
    if (st == ZMLX_OK) st = dev_alloc(&nt, (size_t)cap * (rope ? rope : 1) * sizeof(float), "the rope table", e);
    if (st == ZMLX_OK && dsa) {
        snprintf(what, sizeof what, "the indexer keys of %lld positions", (long long)cap);
        st = dev_alloc(&nk, L * (size_t)cap * irow, what, e);
        if (st == ZMLX_OK)
            st = dev_alloc(&ns, (size_t)srows * (size_t)cap * sizeof(float), "the indexer's scores", e);
    }
    if (st != ZMLX_OK) {
        if (nc) cudaFree(nc);
        if (nt) cudaFree(nt);
        if (nk) cudaFree(nk);
        return st;
    }
    const cu_q q = {cx->stream, false, false};
    if (s->cap > 0) {
        CU_TRY(e, cudaMemcpy2DAsync(nc, (size_t)cap * row, s->cache, (size_t)s->cap * row,
                                    (size_t)s->cap * row, L, cudaMemcpyDeviceToDevice, cx->stream));
        CU_TRY(e, cudaMemcpyAsync(nt, s->rope_tab, (size_t)s->cap * rope * sizeof(float),
                                  cudaMemcpyDeviceToDevice, cx->stream));
        if (dsa)
            CU_TRY(e, cudaMemcpy2DAsync(nk, (size_t)cap * irow, s->kidx, (size_t)s->cap * irow,
                                        (size_t)s->cap * irow, L, cudaMemcpyDeviceToDevice, cx->stream));
    }
    CU_TRY(e, cuk_rope_table(nt, s->cap, cap, cx->inv_freq, cx->m->rope_mscale, (int64_t)rope, q));
    CU_TRY(e, cudaStreamSynchronize(cx->stream));
    if (s->cache) cudaFree(s->cache);
    if (s->rope_tab) cudaFree(s->rope_tab);
    if (s->kidx) cudaFree(s->kidx);
    if (s->iscore) cudaFree(s->iscore);
    s->bytes += (int64_t)((L * (row + irow) + rope * sizeof(float)) * (size_t)(cap - s->cap));
    if (dsa) s->bytes += (int64_t)sizeof(float) * (srows * cap - s->score_rows * s->cap);
    s->cache = nc;
    s->rope_tab = nt;
    s->kidx = nk;
    s->iscore = ns;
    s->score_rows = dsa ? srows : 0;
    s->cap = cap;
    drop_graph(s); /* its kernels point at the old cache */
    return ZMLX_OK;
}

/* The expanded path's per-position buffers for T positions. */
zmlx_status zcu_reserve_expanded(cu_sess *s, int64_t T, zerr *e) {
    if (T <= s->xcap) return ZMLX_OK;
    const zmlx_config *c = &s->c->m->cfg;
    const int64_t cap = s->cap; /* T <= cap */
    const size_t hs = (size_t)(c->n_heads * (c->qk_nope_dim + c->v_head_dim));
    CU_TRY(e, cudaStreamSynchronize(s->c->stream)); /* nothing in flight uses the old ones */
    /* bytes a position: latent rows and keys / values in float, their bf16 twin where the
       tensor-core attention may read it (fast mode, bf16 cache) */
    const bool x16 = zcu_fast(s->c) && s->kv_bf16;
    const size_t per = ((size_t)c->kv_lora_rank + hs) * sizeof(float) + (x16 ? hs * 2 : 0);
    const size_t part = x16 ? (size_t)s->chunk * ZCU_FA_MAX_SPLIT * (size_t)c->n_heads *
                                  ((size_t)c->v_head_dim + 2) * sizeof(float) : 0;
    if (s->lat_f32) cudaFree(s->lat_f32);
    if (s->kvb) cudaFree(s->kvb);
    if (s->kvb16) cudaFree(s->kvb16);
    s->bytes -= s->xcap * (int64_t)s->xper;
    s->lat_f32 = s->kvb = NULL;
    s->kvb16 = NULL;
    s->xcap = 0;
    zmlx_status st = dev_alloc((void **)&s->lat_f32, (size_t)cap * (size_t)c->kv_lora_rank * sizeof(float),
                               "the expanded attention's latent rows", e);
    if (st == ZMLX_OK)
        st = dev_alloc((void **)&s->kvb, (size_t)cap * hs * sizeof(float),
                       "the expanded attention's keys and values", e);
    if (st == ZMLX_OK && x16)
        st = dev_alloc(&s->kvb16, (size_t)cap * hs * 2, "the expanded attention's bf16 keys and values", e);
    if (st == ZMLX_OK && x16 && !s->fa_part) { /* a chunk's worth: kept as the cache grows */
        st = dev_alloc((void **)&s->fa_part, part, "the expanded attention's partial sums", e);
        if (st == ZMLX_OK) s->bytes += (int64_t)part;
    }
    if (st != ZMLX_OK) return st;
    s->xcap = cap;
    s->xper = per;
    s->bytes += cap * (int64_t)per;
    return ZMLX_OK;
}

zmlx_status zcu_synthetic_context(void *dev, int64_t T, uint32_t seed, zerr *e) {
    cu_sess *s = dev;
    if (T > s->max_pos) return zerr_set(e, ZMLX_ERR_LIMIT, "synthetic context of %lld positions "
                                        "past the session limit %lld", (long long)T, (long long)s->max_pos);
    zmlx_status st = reserve_cache(s, T, e);
    if (st != ZMLX_OK) return st;
    const cu_q q = {s->c->stream, false, false};
    const int64_t L = s->c->m->cfg.n_layers;
    const int64_t dI = zcu_dsa(s) ? s->c->m->cfg.index_head_dim : 0;
    for (int64_t l = 0; l < L; l++) { /* rows 0 .. T of every layer (and its indexer keys) */
        CU_TRY(e, cuk_fill_random((uint8_t *)s->cache + (size_t)l * (size_t)s->cap * (size_t)s->W * s->kv_elem,
                                  T * s->W, s->kv_bf16, seed + (uint32_t)l, q));
        if (dI)
            CU_TRY(e, cuk_fill_random((uint8_t *)s->kidx + (size_t)(l * s->cap * dI) * s->kv_elem, T * dI,
                                      s->kv_bf16, seed + 0x10000u + (uint32_t)l, q));
    }
    CU_TRY(e, cudaStreamSynchronize(s->c->stream));
    return ZMLX_OK;
}

/* Tokens per prefill chunk: ZCU_CHUNK, fewer where chunk x heads would pass 65,535 (the
   per-head grids) or the chunk's expert choices cuk_moe_group's 65,535 (its 16-bit
   counts), a multiple of 64 (the GEMM tiles); ZMLX_CUDA_CHUNK asks for fewer. */
static int64_t chunk_size(const zmlx_config *cf) {
    int64_t c = ZCU_CHUNK;
    const int64_t heads = cf->n_heads, K = cf->experts_per_tok;
    if (heads > 0 && c > 65535 / heads) c = 65535 / heads;
    if (K > 0 && c > 65535 / K) c = 65535 / K;
    if (c > 64) c -= c % 64;
    const char *v = getenv("ZMLX_CUDA_CHUNK");
    if (v && atoll(v) >= 1 && atoll(v) < c) c = atoll(v);
    return c < 1 ? 1 : c;
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
    s->chunk = chunk_size(&c->m->cfg);
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
    if (s->rope_tab) cudaFree(s->rope_tab);
    if (s->kidx) cudaFree(s->kidx);
    if (s->iscore) cudaFree(s->iscore);
    if (s->arena) cudaFree(s->arena);
    if (s->lat_f32) cudaFree(s->lat_f32);
    if (s->kvb) cudaFree(s->kvb);
    if (s->kvb16) cudaFree(s->kvb16);
    if (s->fa_part) cudaFree(s->fa_part);
    if (s->h_step) cudaFreeHost(s->h_step);
    if (s->h_logits) cudaFreeHost(s->h_logits);
    if (s->h_amax) cudaFreeHost(s->h_amax);
    zcu_blas_free(&s->blas);
    free(s);
}

/* What leaves the device after a step whose last row's logits are in s->logits: those
   logits (into the pinned buffer), or (amax) their greedy token. */
static zmlx_status logits_out(cu_sess *s, bool amax, bool pdl, zerr *e) {
    const cu_ctx *c = s->c;
    const size_t V = (size_t)c->m->cfg.vocab_size;
    if (amax) {
        const cu_q q = {.st = c->stream, .pdl = pdl, .fast = zcu_fast(c)};
        CU_TRY(e, cuk_argmax(s->logits, (int64_t)V, s->d_amw, s->d_amax, q));
        CU_TRY(e, cudaMemcpyAsync(s->h_amax, s->d_amax, sizeof(int32_t), cudaMemcpyDeviceToHost, c->stream));
        return ZMLX_OK;
    }
    CU_TRY(e, cudaMemcpyAsync(s->h_logits, s->logits, V * sizeof(float), cudaMemcpyDeviceToHost, c->stream));
    return ZMLX_OK;
}

/* Capture the one-token step (step copy in, logits out; amax: the greedy token out
   instead) for the current cache and pattern set into graph[att]; with pdl, its kernels
   chained by programmatic dependent launch. */
static zmlx_status capture_decode(cu_sess *s, bool pdl, bool amax, int att, zerr *e) {
    cudaStream_t st = s->c->stream;
    cu_graph *gr = &s->graph[att];
    drop_one_graph(gr);
    CU_TRY(e, cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
    zmlx_status r = ZMLX_OK;
    cudaError_t err = cudaMemcpyAsync(s->d_step, s->h_step, offsetof(cu_step, ids) + sizeof(int32_t),
                                      cudaMemcpyHostToDevice, st);
    if (err != cudaSuccess) r = zcu_fail(e, err, "cudaMemcpyAsync(step)", __FILE__, __LINE__, __func__);
    if (r == ZMLX_OK) r = zcu_decode(s, pdl, att, e);
    if (r == ZMLX_OK) r = logits_out(s, amax, pdl, e);
    cudaGraph_t g = NULL;
    err = cudaStreamEndCapture(st, &g); /* always: leaves the stream usable */
    if (r != ZMLX_OK) {
        if (g) cudaGraphDestroy(g);
        (void)cudaGetLastError();
        return r;
    }
    CU_TRY(e, err);
    err = cudaGraphInstantiate(&gr->exec, g, 0);
    cudaGraphDestroy(g);
    CU_TRY(e, err);
    *gr = (cu_graph){.exec = gr->exec, .cap = s->cap, .patterns = s->c->m->patterns, .pdl = pdl, .amax = amax};
    return ZMLX_OK;
}

/* The decode graph for the current cache and patterns (captured when needed): with PDL
   where the device has it, else (or if that capture fails) without. */
static zmlx_status decode_graph(cu_sess *s, bool amax, int att, zerr *e) {
    const cu_graph *gr = &s->graph[att];
    if (gr->exec && gr->cap == s->cap && gr->patterns == s->c->m->patterns && gr->amax == amax) return ZMLX_OK;
    if (s->c->pdl) {
        zerr e2 = {{0}};
        if (capture_decode(s, true, amax, att, &e2) == ZMLX_OK) return ZMLX_OK;
        (void)cudaGetLastError();
    }
    return capture_decode(s, false, amax, att, e);
}

zmlx_status zcu_session_eval(void *ctx, void *dev, const zdev_eval *ev, int64_t *bytes, zerr *e) {
    cu_sess *s = dev;
    const cu_ctx *c = s->c;
    cudaStream_t st = c->stream;
    const int64_t V = c->m->cfg.vocab_size;
    const bool amax = ev->argmax != NULL; /* the greedy token of the last row, no logits */
    if (amax && ev->logits) return zerr_set(e, ZMLX_ERR_INVALID_ARG, "argmax and logits both asked for");
    zmlx_status r = reserve_cache(s, ev->pos + ev->n, e);
    if (r != ZMLX_OK) return r;
    for (int64_t done = 0; done < ev->n;) {
        const int64_t n = ev->n - done < s->chunk ? ev->n - done : s->chunk;
        const bool last = done + n == ev->n;
        const bool absorbed = ev->path == ZMLX_ATTN_ABSORBED || (ev->path == ZMLX_ATTN_AUTO && n == 1);
        const bool want = (ev->logits && (ev->all_logits || last)) || (amax && last);
        float *dst = !ev->logits || !want ? NULL : ev->all_logits ? ev->logits + done * V : ev->logits;
        const bool every = dst && ev->all_logits; /* every row's logits: zcu_chunk copies them */
        s->h_step->pos = (int32_t)(ev->pos + done);
        s->h_step->n = (int32_t)n;
        memcpy(s->h_step->ids, ev->ids + done, (size_t)n * sizeof(int32_t));
        const int att = n == 1 ? zcu_att_mode(s, ev->pos + done) : ZCU_ATT_SPLITS;
        if (n == 1 && absorbed && want) { /* the decode graph */
            r = decode_graph(s, amax, att, e);
            if (r != ZMLX_OK) return r;
            CU_TRY(e, cudaGraphLaunch(s->graph[att].exec, st));
            CU_TRY(e, cudaStreamSynchronize(st));
            if (amax) *ev->argmax = *s->h_amax;
            else memcpy(dst, s->h_logits, (size_t)V * sizeof(float));
            done += n;
            continue;
        }
        CU_TRY(e, cudaMemcpyAsync(s->d_step, s->h_step, offsetof(cu_step, ids) + (size_t)n * sizeof(int32_t),
                                  cudaMemcpyHostToDevice, st));
        if (n == 1 && absorbed) {
            r = zcu_decode(s, c->pdl, att, e); /* the graph's step, launched directly */
        } else {
            const int64_t nsplit = n == 1 ? zcu_dec_nsplit(s, s->cap) : 1;
            r = zcu_chunk(s, n, ev->pos + done + n, absorbed, nsplit, want, every ? dst : NULL, e);
        }
        if (r != ZMLX_OK) return r;
        if (want && !every && (r = logits_out(s, amax, false, e)) != ZMLX_OK) return r;
        CU_TRY(e, cudaStreamSynchronize(st));
        if (want && amax) *ev->argmax = *s->h_amax;
        else if (want && !ev->all_logits) memcpy(dst, s->h_logits, (size_t)V * sizeof(float));
        done += n;
    }
    *bytes = s->bytes + (int64_t)(s->blas.wcap + s->blas.xcap);
    return ZMLX_OK;
}
