/*
 * upload.c — the model's weights on the device, in their stored formats (dense f32 / f16 /
 * bf16, MLX affine 2-8 bit with bf16/f16/f32 scales and biases, mxfp4 with E8M0 scales:
 * never expanded): one arena planned once (a first pass sizes every tensor, a second
 * copies), each part 256-byte aligned, a layer's routed experts stacked E x [rows, cols]
 * (data, then scales, then biases) so a kernel finds expert e from the device-side route.
 * Copies go through two pinned staging buffers so the DMA of one overlaps the memcpy
 * into the other.  What the kernels require of a weight (a layout they have, columns and
 * groups in multiples of 32) is checked here, with the weight's name in the error.
 */
#include "backend/cuda/cuda_internal.h"
#include "backend/cuda/ep.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN 256
#define STAGE_BYTES ((size_t)32 << 20)

typedef struct upl {
    cu_ctx *c;
    bool copy;            /* false: the sizing pass */
    size_t off;           /* next free byte of the arena */
    uint8_t *base;        /* the arena (copy pass) */
    void *stage[2];
    cudaEvent_t ev[2];
    int cur;
    zerr *e;
    zmlx_status st;       /* first failure */
} upl;

static size_t reserve(upl *u, size_t bytes) {
    size_t o = (u->off + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    u->off = o + bytes;
    return o;
}

static size_t round_up(size_t n) {
    return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
}

#define UPL_TRY(u, call)                                                                   \
    do {                                                                                   \
        cudaError_t cu_err_ = (call);                                                      \
        if (cu_err_ != cudaSuccess) {                                                      \
            (u)->st = zcu_fail((u)->e, cu_err_, #call, __FILE__, __LINE__, __func__);      \
            return;                                                                        \
        }                                                                                  \
    } while (0)

/* Copy bytes from host memory to arena offset off (copy pass only). */
static void put(upl *u, size_t off, const void *src, size_t bytes) {
    if (!u->copy || u->st != ZMLX_OK) return;
    const uint8_t *s = src;
    for (size_t done = 0; done < bytes;) {
        size_t n = bytes - done < STAGE_BYTES ? bytes - done : STAGE_BYTES;
        UPL_TRY(u, cudaEventSynchronize(u->ev[u->cur])); /* this buffer's last DMA is done */
        memcpy(u->stage[u->cur], s + done, n);
        UPL_TRY(u, cudaMemcpyAsync(u->base + off + done, u->stage[u->cur], n,
                                   cudaMemcpyHostToDevice, u->c->stream));
        UPL_TRY(u, cudaEventRecord(u->ev[u->cur], u->c->stream));
        u->cur ^= 1;
        done += n;
    }
}

/* The backend's format table: what the kernels need to know of a weight's scales. */
static int32_t sdt_of(zdtype dt) {
    switch (dt) {
    case ZDT_BF16: return CU_SDT_BF16;
    case ZDT_F16: return CU_SDT_F16;
    case ZDT_F32: return CU_SDT_F32;
    default: return CU_SDT_E8M0;
    }
}

/* Can the kernels run w?  On failure says why (the layout, or the shape). */
static bool runs(upl *u, const zweight *w, const char *what) {
    const zwkind k = zweight_kind(w);
    const char *why = NULL;
    if (!cuk_kind_ok((int32_t)k)) why = "a layout the cuda kernels do not have";
    else if (w->cols % 32) why = "a column count that is not a multiple of 32";
    else if (w->q != ZQ_NONE && w->group % 32) why = "a group size that is not a multiple of 32";
    if (!why) return true;
    if (u->st == ZMLX_OK)
        u->st = zerr_set(u->e, ZMLX_ERR_UNSUPPORTED,
                         "weight %s (%s, [%lld, %lld]) has %s; use --backend cpu", what,
                         k < ZW_COUNT ? zwfmt_table[k].name : "(invalid layout)",
                         (long long)w->rows, (long long)w->cols, why);
    return false;
}

/* Bytes of one matrix's data and of its scale (or bias) array. */
static size_t data_bytes(const zweight *w) {
    return (size_t)w->rows * (size_t)cuk_row_bytes((int32_t)zweight_kind(w), w->cols);
}
static size_t scale_bytes(const zweight *w) {
    if (w->q == ZQ_NONE) return 0;
    return (size_t)w->rows * (size_t)(w->cols / w->group) * zdtype_table[w->sdtype].size;
}

/* n matrices of one layout and shape, stacked: data, then scales, then biases, each
   matrix's part 256-byte aligned.  n = 1 for a plain weight; an empty one (rows 0: no
   shared expert, no q_b) stays empty. */
static cuw put_stack(upl *u, const zweight *ws, int n, const char *what) {
    cuw d = {0};
    if (ws[0].rows <= 0) return d;
    if (!runs(u, &ws[0], what)) return d;
    const zwkind k = zweight_kind(&ws[0]);
    for (int i = 1; i < n; i++)
        if (zweight_kind(&ws[i]) != k || ws[i].rows != ws[0].rows || ws[i].cols != ws[0].cols ||
            ws[i].group != ws[0].group || ws[i].sdtype != ws[0].sdtype) {
            if (u->st == ZMLX_OK)
                u->st = zerr_set(u->e, ZMLX_ERR_UNSUPPORTED,
                                 "%s: expert %d differs in layout or shape from expert 0; the "
                                 "cuda backend stacks a layer's experts", what, i);
            return d;
        }
    const size_t db = data_bytes(&ws[0]), sb = scale_bytes(&ws[0]);
    const size_t dstep = round_up(db), sstep = round_up(sb);
    const size_t off = reserve(u, dstep * (size_t)n);
    for (int i = 0; i < n; i++) put(u, off + (size_t)i * dstep, ws[i].data, db);
    d = (cuw){.data = u->base + off, .kind = (int32_t)k, .rows = ws[0].rows, .cols = ws[0].cols,
              .ld = cuk_row_bytes((int32_t)k, ws[0].cols), .stride = n > 1 ? (int64_t)dstep : 0};
    if (sb) {
        const size_t es = zdtype_table[ws[0].sdtype].size;
        const size_t soff = reserve(u, sstep * (size_t)n);
        for (int i = 0; i < n; i++) put(u, soff + (size_t)i * sstep, ws[i].scales, sb);
        d.scales = u->base + soff;
        if (ws[0].biases) {
            const size_t boff = reserve(u, sstep * (size_t)n);
            for (int i = 0; i < n; i++) put(u, boff + (size_t)i * sstep, ws[i].biases, sb);
            d.biases = u->base + boff;
        }
        d.group = ws[0].group;
        d.sdt = sdt_of(ws[0].sdtype);
        d.sstride = n > 1 ? (int64_t)(sstep / es) : 0;
    }
    return d;
}

static cuw put_weight(upl *u, const zweight *w, const char *what) {
    return put_stack(u, w, 1, what);
}

static const float *put_f32(upl *u, const float *src, int64_t n) {
    if (!src || n <= 0) return NULL;
    const size_t off = reserve(u, (size_t)n * sizeof(float));
    put(u, off, src, (size_t)n * sizeof(float));
    return (const float *)(u->base + off);
}

/* The certified route's bounds (cu_mv_route.bound): sqrt(d) ||router row e * ffn_norm||_2
   for each expert, in double from the stored weights, rounded up (1 + 1e-6); NULL where the
   route is off (ZMLX_CUDA_ROUTE_CERT != 1: no start-up work for it), without a router or
   its norm, or where a bound is not finite. */
static const float *put_rbound(upl *u, const zlayer *L, int64_t d) {
    const int64_t E = L->router.rows;
    if (u->c->route_cert != 1 || !L->ffn_norm || !L->router.data || E < 1 || E > ZCU_ROUTE_MAX_E ||
        L->router.cols != d)
        return NULL;
    const size_t off = reserve(u, (size_t)E * sizeof(float));
    if (!u->copy) return (const float *)(u->base + off);
    float b[ZCU_ROUTE_MAX_E];
    float *row = malloc((size_t)d * sizeof(float));
    if (!row) {
        u->st = zerr_set(u->e, ZMLX_ERR_NOMEM, "cuda upload: %lld floats for the router's bounds", (long long)d);
        return NULL;
    }
    bool fin = true;
    for (int64_t e = 0; e < E; e++) {
        zweight_row_f32(&L->router, e, row);
        double s = 0.0;
        for (int64_t i = 0; i < d; i++) {
            const double v = (double)row[i] * (double)L->ffn_norm[i];
            s += v * v;
        }
        const double bnd = sqrt((double)d * s) * (1.0 + 1e-6);
        fin = fin && isfinite(bnd) && bnd < 1e30;
        b[e] = (float)bnd;
    }
    free(row);
    put(u, off, b, (size_t)E * sizeof(float));
    return fin ? (const float *)(u->base + off) : NULL;
}

static cuw put_named(upl *u, const zweight *w, int l, const char *name) {
    char what[64];
    snprintf(what, sizeof what, "layer %d %s", l, name);
    return put_weight(u, w, what);
}

static void walk_layer(upl *u, const zmlx_model *m, int l) {
    const zmlx_config *c = &m->cfg;
    const zlayer *L = &m->layers[l];
    cu_layer *D = &u->c->layers[l];
    char what[64];
    D->moe = L->moe;
    D->attn_norm = put_f32(u, L->attn_norm, c->hidden_size);
    D->ffn_norm = put_f32(u, L->ffn_norm, c->hidden_size);
    D->q_a_norm = put_f32(u, L->q_a_norm, c->q_lora_rank);
    D->kv_a_norm = put_f32(u, L->kv_a_norm, c->kv_lora_rank);
    D->q_a = put_named(u, &L->q_a, l, "q_a");
    D->q_b = put_named(u, &L->q_b, l, "q_b");
    D->kv_a = put_named(u, &L->kv_a, l, "kv_a");
    D->kv_b = put_named(u, &L->kv_b, l, "kv_b");
    D->o = put_named(u, &L->o, l, "o");
    if (c->family == ZFAM_DEEPSEEK_V32) { /* the DSA indexer */
        D->idx_wq_b = put_named(u, &L->idx_wq_b, l, "indexer.wq_b");
        D->idx_wk = put_named(u, &L->idx_wk, l, "indexer.wk");
        D->idx_w = put_named(u, &L->idx_w, l, "indexer.weights_proj");
        D->idx_knorm = put_f32(u, L->idx_k_norm, c->index_head_dim);
        D->idx_kbias = put_f32(u, L->idx_k_bias, c->index_head_dim);
    }
    if (!L->moe) {
        D->gate = put_named(u, &L->gate, l, "gate");
        D->up = put_named(u, &L->up, l, "up");
        D->down = put_named(u, &L->down, l, "down");
        return;
    }
    const int E = c->n_routed_experts;
    /* several GPUs: this rank's slice [e0, e0 + ne) of the routed experts (ep.h) */
    const int e0 = u->c->ep ? u->c->ep->e0 : 0, ne = u->c->ep ? u->c->ep->ne : E;
    D->router = put_named(u, &L->router, l, "router");
    D->router_bias = put_f32(u, L->router_bias, E);
    D->rbound = put_rbound(u, L, c->hidden_size);
    snprintf(what, sizeof what, "layer %d experts' gate_proj", l);
    D->exp_gate = put_stack(u, L->exp_gate + e0, ne, what);
    snprintf(what, sizeof what, "layer %d experts' up_proj", l);
    D->exp_up = put_stack(u, L->exp_up + e0, ne, what);
    snprintf(what, sizeof what, "layer %d experts' down_proj", l);
    D->exp_down = put_stack(u, L->exp_down + e0, ne, what);
    D->sh_gate = put_named(u, &L->sh_gate, l, "sh_gate");
    D->sh_up = put_named(u, &L->sh_up, l, "sh_up");
    D->sh_down = put_named(u, &L->sh_down, l, "sh_down");
}

static void walk(upl *u, const zmlx_model *m) {
    const zmlx_config *c = &m->cfg;
    u->c->embed = put_weight(u, &m->embed, "embed_tokens");
    if (m->lm_head.data == m->embed.data && m->lm_head.rows == m->embed.rows &&
        zweight_kind(&m->lm_head) == zweight_kind(&m->embed))
        u->c->lm_head = u->c->embed; /* tied: one copy */
    else
        u->c->lm_head = put_weight(u, &m->lm_head, "lm_head");
    u->c->final_norm = put_f32(u, m->final_norm, c->hidden_size);
    u->c->inv_freq = put_f32(u, m->inv_freq, c->qk_rope_dim / 2);
    for (int l = 0; l < c->n_layers && u->st == ZMLX_OK; l++) walk_layer(u, m, l);
}

/* What the kernels assume of the model, checked once. */
static zmlx_status check_shapes(const zmlx_config *c, zerr *e) {
    if (c->family == ZFAM_DEEPSEEK_V32 &&
        (c->index_n_heads < 1 || c->index_n_heads > ZCU_IDX_MAX_HEADS || c->index_head_dim % 8 ||
         c->index_head_dim < 8 || c->index_head_dim > ZCU_IDX_MAX_DIM || c->qk_rope_dim > c->index_head_dim ||
         c->q_lora_rank < 1 || c->index_topk < 1))
        return zerr_set(e, ZMLX_ERR_UNSUPPORTED,
                        "the cuda indexer holds index_n_heads <= %d, index_head_dim a multiple of 8 "
                        "up to %d and >= qk_rope_head_dim, q_lora_rank > 0 and index_topk > 0 (this "
                        "model: %d, %d, %d, %d, %d)", ZCU_IDX_MAX_HEADS, ZCU_IDX_MAX_DIM,
                        c->index_n_heads, c->index_head_dim, c->qk_rope_dim, c->q_lora_rank, c->index_topk);
    if (c->kv_lora_rank > ZCU_ATTN_MAX_R || c->qk_rope_dim > 128 || c->v_head_dim > 512)
        return zerr_set(e, ZMLX_ERR_UNSUPPORTED,
                        "the cuda attention kernels hold kv_lora_rank <= %d, qk_rope_head_dim "
                        "<= 128, v_head_dim <= 512 (this model: %d, %d, %d)",
                        ZCU_ATTN_MAX_R, c->kv_lora_rank, c->qk_rope_dim, c->v_head_dim);
    if (c->n_routed_experts > ZCU_ROUTE_MAX_E)
        return zerr_set(e, ZMLX_ERR_UNSUPPORTED, "the cuda router holds %d experts (this model: %d)",
                        ZCU_ROUTE_MAX_E, c->n_routed_experts);
    if ((c->kv_lora_rank + c->qk_rope_dim) % 8 || c->qk_rope_dim % 2)
        return zerr_set(e, ZMLX_ERR_UNSUPPORTED,
                        "the cuda attention kernels need kv_lora_rank + qk_rope_head_dim to be a "
                        "multiple of 8 (this model: %d + %d)", c->kv_lora_rank, c->qk_rope_dim);
    if (c->experts_per_tok > ZCU_COMBINE_MAX_K)
        return zerr_set(e, ZMLX_ERR_UNSUPPORTED, "the cuda combine holds %d experts per token "
                        "(this model: %d)", ZCU_COMBINE_MAX_K, c->experts_per_tok);
    if (c->n_heads > 65535)
        return zerr_set(e, ZMLX_ERR_UNSUPPORTED, "the cuda backend holds 65535 heads (this model: %d)",
                        c->n_heads);
    return ZMLX_OK;
}

zmlx_status zcu_upload(cu_ctx *c, const zmlx_model *m, zerr *e) {
    zmlx_status st = check_shapes(&m->cfg, e);
    if (st != ZMLX_OK) return st;
    c->layers = calloc((size_t)m->cfg.n_layers, sizeof *c->layers);
    if (!c->layers) return zerr_set(e, ZMLX_ERR_NOMEM, "out of memory (cuda layer table)");
    upl u = {.c = c, .e = e, .st = ZMLX_OK};
    walk(&u, m); /* sizing */
    if (u.st != ZMLX_OK) return u.st;
    size_t free_b = 0, total_b = 0;
    CU_TRY(e, cudaMemGetInfo(&free_b, &total_b));
    if (u.off > free_b)
        return zerr_set(e, ZMLX_ERR_LIMIT,
                        "the weights need %.2f GiB on %s but only %.2f GiB of its %.2f GiB are "
                        "free; use fewer layers or --backend cpu",
                        (double)u.off / 1073741824.0, c->name, (double)free_b / 1073741824.0,
                        (double)total_b / 1073741824.0);
    cudaError_t err = cudaMalloc(&c->warena, u.off);
    if (err != cudaSuccess) {
        (void)cudaGetLastError(); /* not sticky: clear it for the next check */
        c->warena = NULL;
        return zerr_set(e, ZMLX_ERR_LIMIT, "cudaMalloc of %.2f GiB for the weights failed: %s",
                        (double)u.off / 1073741824.0, cudaGetErrorString(err));
    }
    c->wbytes = u.off;
    u = (upl){.c = c, .copy = true, .base = c->warena, .e = e, .st = ZMLX_OK};
    for (int i = 0; i < 2; i++) {
        CU_TRY(e, cudaMallocHost(&u.stage[i], STAGE_BYTES));
        CU_TRY(e, cudaEventCreateWithFlags(&u.ev[i], cudaEventDisableTiming));
        CU_TRY(e, cudaEventRecord(u.ev[i], c->stream));
    }
    walk(&u, m);
    cudaError_t sync = cudaStreamSynchronize(c->stream);
    for (int i = 0; i < 2; i++) {
        cudaFreeHost(u.stage[i]);
        cudaEventDestroy(u.ev[i]);
    }
    if (u.st != ZMLX_OK) return u.st;
    CU_TRY(e, sync);
    return ZMLX_OK;
}

void zcu_upload_free(cu_ctx *c) {
    if (c->warena) cudaFree(c->warena);
    c->warena = NULL;
    free(c->layers);
    c->layers = NULL;
}
