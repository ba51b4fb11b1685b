/*
 * part.c — the expert partition and what each rank holds.
 *
 * Contiguous slices (what the cuda backend runs: a rank's experts stay one stack and the
 * prefill's expert groups one run of rows): with E experts over R ranks, the first E % R
 * ranks hold E / R + 1 experts, the others E / R.  Round-robin (expert e on rank e % R)
 * spreads neighbouring experts; the host emulation (tests) runs both.
 *
 * Memory: every matrix is sized with zweight_row_bytes of a template layout, so a
 * quantized layout (packed words + scales + biases) counts as the loader stores it.
 */
#include "dist/dist.h"

#include <stdio.h>

const char *zdist_scheme_name(zdist_scheme s) {
    return s == ZDIST_ROUND_ROBIN ? "round-robin" : "contiguous";
}

zmlx_status zdist_part_init(zdist_part *p, int32_t n_experts, int32_t n_ranks,
                            zdist_scheme scheme, zerr *e) {
    if (n_ranks < 1 || n_ranks > ZDIST_MAX_RANKS)
        return zerr_set(e, ZMLX_ERR_INVALID_ARG, "%d ranks: expected 1 to %d", n_ranks,
                        ZDIST_MAX_RANKS);
    if (n_experts < 0)
        return zerr_set(e, ZMLX_ERR_INVALID_ARG, "%d routed experts: negative", n_experts);
    if (n_experts == 0 && n_ranks > 1)
        return zerr_set(e, ZMLX_ERR_UNSUPPORTED,
                        "%d GPUs for a model without routed experts: expert parallelism splits "
                        "routed experts; run it on one GPU", n_ranks);
    if (n_ranks > n_experts && n_experts > 0)
        return zerr_set(e, ZMLX_ERR_INVALID_ARG,
                        "%d GPUs but the model has %d routed experts per layer: a GPU would "
                        "hold none; use at most %d GPUs", n_ranks, n_experts, n_experts);
    *p = (zdist_part){.n_experts = n_experts, .n_ranks = n_ranks, .scheme = scheme};
    return ZMLX_OK;
}

int32_t zdist_count(const zdist_part *p, int32_t rank) {
    const int32_t q = p->n_experts / p->n_ranks, r = p->n_experts % p->n_ranks;
    return q + (rank < r ? 1 : 0); /* the same for both schemes */
}

int32_t zdist_first(const zdist_part *p, int32_t rank) {
    const int32_t q = p->n_experts / p->n_ranks, r = p->n_experts % p->n_ranks;
    return rank * q + (rank < r ? rank : r);
}

int32_t zdist_owner(const zdist_part *p, int32_t expert) {
    if (p->scheme == ZDIST_ROUND_ROBIN) return expert % p->n_ranks;
    const int32_t q = p->n_experts / p->n_ranks, r = p->n_experts % p->n_ranks;
    const int32_t big = r * (q + 1); /* experts held by the first r ranks */
    return expert < big ? expert / (q + 1) : r + (expert - big) / q;
}

int32_t zdist_local(const zdist_part *p, int32_t expert) {
    if (p->scheme == ZDIST_ROUND_ROBIN) return expert / p->n_ranks;
    return expert - zdist_first(p, zdist_owner(p, expert));
}

int32_t zdist_expert(const zdist_part *p, int32_t rank, int32_t i) {
    if (p->scheme == ZDIST_ROUND_ROBIN) return rank + i * p->n_ranks;
    return zdist_first(p, rank) + i;
}

/* Bytes of a [rows, cols] matrix in the layout of t; MLX affine / mxfp4 as mlx-lm (and the
   builtins) store them: a matrix whose input width is not a multiple of the group stays
   dense (bf16). */
static int64_t mat(const zweight *t, int64_t rows, int64_t cols) {
    if (rows <= 0 || cols <= 0) return 0;
    zweight w = *t;
    if ((w.q == ZQ_AFFINE || w.q == ZQ_MXFP4) && w.group > 0 && cols % w.group)
        w = (zweight){.dtype = ZDT_BF16};
    w.rows = rows;
    w.cols = cols;
    return rows * zweight_row_bytes(&w);
}

/* One layer's replicated weights (norms and biases as float32). */
static int64_t layer_replicated(const zmlx_config *c, const zweight *o, int l) {
    const int64_t d = c->hidden_size, H = c->n_heads, ql = c->q_lora_rank, R = c->kv_lora_rank;
    const int64_t qk = c->qk_nope_dim + c->qk_rope_dim, v = c->v_head_dim, f = 4;
    int64_t b = (2 * d + ql + R) * f;
    b += ql ? mat(o, ql, d) + mat(o, H * qk, ql) : mat(o, H * qk, d);
    b += mat(o, R + c->qk_rope_dim, d) + mat(o, H * (c->qk_nope_dim + v), R) + mat(o, d, H * v);
    if (c->family == ZFAM_DEEPSEEK_V32) {
        const int64_t nI = c->index_n_heads, dI = c->index_head_dim;
        b += mat(o, nI * dI, ql) + mat(o, dI, d) + mat(o, nI, d) + 2 * dI * f;
    }
    if (!c->layer_is_moe[l]) return b + 2 * mat(o, c->intermediate_size, d) + mat(o, d, c->intermediate_size);
    const int64_t sI = (int64_t)c->moe_intermediate_size * c->n_shared_experts;
    /* router (dense bf16 beside quantized weights, as MLX keeps it) + its bias */
    const zweight bf16 = {.dtype = ZDT_BF16};
    b += mat(o->q != ZQ_NONE ? &bf16 : o, c->n_routed_experts, d) + (int64_t)c->n_routed_experts * f;
    return b + 2 * mat(o, sI, d) + mat(o, d, sI);
}

/* A device session's planned buffers for chunks of 128 tokens (backend/cuda/step.c's
   plan, rounded up) plus the expanded attention's per-position rows at ctx. */
static int64_t session_buffers(const zmlx_config *c, int64_t ctx) {
    const int64_t C = 128, d = c->hidden_size, H = c->n_heads, R = c->kv_lora_rank;
    const int64_t rope = c->qk_rope_dim, W = R + rope, qk = c->qk_nope_dim + rope;
    const int64_t v = c->v_head_dim, K = c->experts_per_tok, E = c->n_routed_experts;
    const int64_t mI = c->moe_intermediate_size, sI = mI * c->n_shared_experts;
    int64_t fl = C * (4 * d + c->q_lora_rank + H * qk + W + H * W + H * R + H * v + rope);
    fl += (C > 64 ? C : 64) * H * (R + 2);         /* attention splits */
    fl += C * (c->vocab_size + E + 2 * K);          /* logits, router, weights + ids */
    fl += C * K * (2 * mI + d) + C * (2 * sI + d) + 2 * C * c->intermediate_size;
    fl += ctx * (R + H * (c->qk_nope_dim + v));     /* expanded path */
    return fl * 4 + ((int64_t)1 << 20);
}

void zdist_rank_bytes(const zmlx_config *c, const zweight *expert, const zweight *other,
                      int kv_elem, int64_t ctx, const zdist_part *p, int32_t rank,
                      zdist_bytes *b) {
    const int64_t d = c->hidden_size, mI = c->moe_intermediate_size;
    *b = (zdist_bytes){.ctx = ctx};
    b->replicated = mat(other, c->vocab_size, d) * (c->tie_word_embeddings ? 1 : 2) +
                    (d + c->qk_rope_dim / 2) * 4; /* final norm, rope frequencies */
    for (int l = 0; l < c->n_layers; l++) {
        b->replicated += layer_replicated(c, other, l);
        b->moe_layers += c->layer_is_moe[l] ? 1 : 0;
    }
    b->expert_one = 2 * mat(expert, mI, d) + mat(expert, d, mI);
    b->n_experts = c->n_routed_experts > 0 ? zdist_count(p, rank) : 0;
    b->experts = b->expert_one * b->n_experts * b->moe_layers;
    const int64_t row = c->kv_lora_rank + c->qk_rope_dim +
                        (c->family == ZFAM_DEEPSEEK_V32 ? c->index_head_dim : 0);
    b->cache = (int64_t)c->n_layers * ctx * row * kv_elem;
    b->buffers = session_buffers(c, ctx);
    b->total = b->replicated + b->experts + b->cache + b->buffers;
}

static double gib(int64_t b) {
    return (double)b / 1073741824.0;
}

zmlx_status zdist_fit(const zmlx_config *c, const zweight *expert, const zweight *other,
                      int kv_elem, int64_t ctx, const zdist_part *p, const zdist_where *w,
                      int64_t avail, zerr *e) {
    zdist_bytes b;
    zdist_rank_bytes(c, expert, other, kv_elem, ctx, p, w->rank, &b);
    if (b.total <= avail) return ZMLX_OK;
    /* the fewest GPUs of this size that would hold rank 0's slice (the largest) */
    char hint[160];
    const int64_t fixed = b.replicated + b.cache + b.buffers;
    int32_t need = 0;
    for (int32_t r = p->n_ranks + 1; r <= p->n_experts && r <= ZDIST_MAX_RANKS && !need; r++) {
        zdist_part q = {.n_experts = p->n_experts, .n_ranks = r, .scheme = p->scheme};
        if (fixed + b.expert_one * b.moe_layers * zdist_count(&q, 0) <= avail) need = r;
    }
    if (need)
        snprintf(hint, sizeof hint, "the model needs at least %d such GPUs (or fewer layers, or "
                 "fewer bits per weight)", need);
    else
        snprintf(hint, sizeof hint, "no number of such GPUs holds it: the part every GPU keeps "
                 "is %.2f GiB; use fewer layers or fewer bits per weight", gib(fixed));
    char where[320];
    if (w->gpu_name)
        snprintf(where, sizeof where, "rank %d of %d (GPU %d, %s)", w->rank, w->n_ranks, w->gpu,
                 w->gpu_name);
    else
        snprintf(where, sizeof where, "rank %d of %d (GPU %d)", w->rank, w->n_ranks, w->gpu);
    return zerr_set(e, ZMLX_ERR_LIMIT,
                    "%s cannot hold its slice: it needs %.2f GiB = %.2f GiB replicated "
                    "(embeddings, attention, routers, shared experts, dense layers) + %.2f GiB "
                    "of routed experts (%d of %d in each of %d MoE layers, %.1f MiB each) + "
                    "%.2f GiB KV cache (%lld positions) + %.2f GiB buffers, but %.2f GiB are "
                    "free; %s",
                    where, gib(b.total), gib(b.replicated), gib(b.experts), b.n_experts,
                    p->n_experts, b.moe_layers, (double)b.expert_one / 1048576.0, gib(b.cache),
                    (long long)b.ctx, gib(b.buffers), gib(avail), hint);
}
