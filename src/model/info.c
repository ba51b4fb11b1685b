/*
 * info.c — what a model costs: parameters (total and read per decoded token), bytes of
 * the weights as held in memory and read per token at batch 1, KV cache bytes per
 * position, and the memory a session needs.  Used by `zmlx info` and by benchmarks for
 * achieved GB/s.  Counts follow MODELS.md section 6 (one embedding row, K routed experts
 * + shared); DeepSeek-V3.2 adds its indexer (read for every token) and the indexer-key
 * cache.  Bytes come from zweight_bytes: of the loaded weights (zinfo_model), or of the
 * layouts the loader would make from the config's quantization block (zinfo_config,
 * which `zmlx info` uses without loading anything), or a builtin's format (zinfo_builtin:
 * MLX affine / mxfp4 / bf16 as builtin.c generates them).  Norm vectors count at the
 * dense element size.
 */
#include "io/qconfig.h"
#include "model/model.h"

#include <stdio.h>
#include <string.h>

#define INFO_CTX 4096 /* context length of the memory estimate */

/* Cache bytes per position: the latent and rope key, plus deepseek_v32's indexer key. */
static int64_t cache_row(const zmlx_config *c) {
    return c->kv_lora_rank + c->qk_rope_dim +
           (c->family == ZFAM_DEEPSEEK_V32 ? c->index_head_dim : 0);
}

/* Every kind of weight matrix of the config, with its counts (see model.h zinfo_mat). */
static void visit(const zmlx_config *c, void (*fn)(void *ctx, const zinfo_mat *m), void *ctx) {
    const int64_t d = c->hidden_size, H = c->n_heads, qk = c->qk_nope_dim + c->qk_rope_dim;
    const int64_t E = c->n_routed_experts, mI = c->moe_intermediate_size, sI = mI * c->n_shared_experts;
    zinfo_mat m;
#define MAT(l, pt, r, k, n, a, ...)                                                             \
    do {                                                                                       \
        m = (zinfo_mat){.layer = (l), .part = (pt), .rows = (r), .cols = (k), .count = (n),     \
                        .active = (a), .linear = (pt) != ZI_EMBED};                            \
        snprintf(m.module, sizeof m.module, __VA_ARGS__);                                       \
        fn(ctx, &m);                                                                           \
    } while (0)
    MAT(-1, ZI_EMBED, c->vocab_size, d, 1, 0, "model.embed_tokens");
    if (c->tie_word_embeddings) { /* the embedding read whole as the lm_head, held once */
        m.part = ZI_LM_HEAD, m.count = 0, m.active = 1;
        fn(ctx, &m);
    } else {
        MAT(-1, ZI_LM_HEAD, c->vocab_size, d, 1, 1, "lm_head");
    }
    for (int l = 0; l < c->n_layers; l++) {
        const char *p = "model.layers";
        if (c->q_lora_rank) {
            MAT(l, ZI_Q_A, c->q_lora_rank, d, 1, 1, "%s.%d.self_attn.q_a_proj", p, l);
            MAT(l, ZI_Q_B, H * qk, c->q_lora_rank, 1, 1, "%s.%d.self_attn.q_b_proj", p, l);
        } else {
            MAT(l, ZI_Q_A, H * qk, d, 1, 1, "%s.%d.self_attn.q_proj", p, l);
        }
        MAT(l, ZI_KV_A, c->kv_lora_rank + c->qk_rope_dim, d, 1, 1, "%s.%d.self_attn.kv_a_proj_with_mqa", p, l);
        MAT(l, ZI_KV_B, H * (c->qk_nope_dim + c->v_head_dim), c->kv_lora_rank, 1, 1,
            "%s.%d.self_attn.kv_b_proj", p, l);
        MAT(l, ZI_O, d, H * c->v_head_dim, 1, 1, "%s.%d.self_attn.o_proj", p, l);
        if (c->family == ZFAM_DEEPSEEK_V32) {
            const int64_t nI = c->index_n_heads, dI = c->index_head_dim;
            MAT(l, ZI_IDX_WQ_B, nI * dI, c->q_lora_rank, 1, 1, "%s.%d.self_attn.indexer.wq_b", p, l);
            MAT(l, ZI_IDX_WK, dI, d, 1, 1, "%s.%d.self_attn.indexer.wk", p, l);
            MAT(l, ZI_IDX_W, nI, d, 1, 1, "%s.%d.self_attn.indexer.weights_proj", p, l);
        }
        if (!c->layer_is_moe[l]) {
            MAT(l, ZI_GATE, c->intermediate_size, d, 1, 1, "%s.%d.mlp.gate_proj", p, l);
            MAT(l, ZI_UP, c->intermediate_size, d, 1, 1, "%s.%d.mlp.up_proj", p, l);
            MAT(l, ZI_DOWN, d, c->intermediate_size, 1, 1, "%s.%d.mlp.down_proj", p, l);
            continue;
        }
        MAT(l, ZI_ROUTER, E, d, 1, 1, "%s.%d.mlp.gate", p, l);
        MAT(l, ZI_EXP_GATE, mI, d, E, c->experts_per_tok, "%s.%d.mlp.experts.0.gate_proj", p, l);
        MAT(l, ZI_EXP_UP, mI, d, E, c->experts_per_tok, "%s.%d.mlp.experts.0.up_proj", p, l);
        MAT(l, ZI_EXP_DOWN, d, mI, E, c->experts_per_tok, "%s.%d.mlp.experts.0.down_proj", p, l);
        if (sI > 0) {
            MAT(l, ZI_SH_GATE, sI, d, 1, 1, "%s.%d.mlp.shared_experts.gate_proj", p, l);
            MAT(l, ZI_SH_UP, sI, d, 1, 1, "%s.%d.mlp.shared_experts.up_proj", p, l);
            MAT(l, ZI_SH_DOWN, d, sI, 1, 1, "%s.%d.mlp.shared_experts.down_proj", p, l);
        }
    }
#undef MAT
}

typedef struct acc {
    zinfo_bytes_fn bytes;
    void *ctx;
    int64_t params_total, params_active, bytes_total, bytes_active;
} acc;

static void add(void *vctx, const zinfo_mat *m) {
    acc *a = vctx;
    const int64_t b = a->bytes(a->ctx, m), n = m->rows * m->cols;
    a->params_total += n * m->count;
    a->bytes_total += b * m->count;
    if (m->part == ZI_EMBED) { /* one row per token */
        a->params_active += m->cols;
        a->bytes_active += m->rows > 0 ? b / m->rows : 0;
    } else {
        a->params_active += n * m->active;
        a->bytes_active += b * m->active;
    }
}

void zinfo_fill(const zmlx_config *c, zinfo_bytes_fn bytes, void *ctx, int vec_elem,
                const char *format, int kv_elem, zmlx_model_info *info) {
    memset(info, 0, sizeof *info);
    snprintf(info->model_type, sizeof info->model_type, "%s", zfamily_name(c->family));
    snprintf(info->weight_format, sizeof info->weight_format, "%s", format);
    snprintf(info->kv_dtype, sizeof info->kv_dtype, "%s", kv_elem == 2 ? "bf16" : "f32");
    info->vocab_size = c->vocab_size;
    info->hidden_size = c->hidden_size;
    info->n_layers = c->n_layers;
    info->n_heads = c->n_heads;
    info->n_dense_layers = c->n_dense_layers;
    info->n_routed_experts = c->n_routed_experts;
    info->n_shared_experts = c->n_shared_experts;
    info->experts_per_tok = c->experts_per_tok;
    info->q_lora_rank = c->q_lora_rank;
    info->kv_lora_rank = c->kv_lora_rank;
    info->qk_nope_dim = c->qk_nope_dim;
    info->qk_rope_dim = c->qk_rope_dim;
    info->v_head_dim = c->v_head_dim;
    info->intermediate_size = c->intermediate_size;
    info->moe_intermediate_size = c->moe_intermediate_size;
    info->max_position_embeddings = c->max_position_embeddings;

    acc a = {.bytes = bytes, .ctx = ctx};
    visit(c, add, &a);
    /* vectors, read for every token: norms per layer (+ the indexer's k_norm weight and
       bias) and the final norm */
    const int64_t d = c->hidden_size, H = c->n_heads;
    const int64_t vecs = (int64_t)c->n_layers * (2 * d + c->q_lora_rank + c->kv_lora_rank) + d +
                         (c->family == ZFAM_DEEPSEEK_V32 ? (int64_t)c->n_layers * 2 * c->index_head_dim : 0);
    info->params_total = a.params_total + vecs;
    info->params_active = a.params_active + vecs;
    info->weight_bytes_total = a.bytes_total + vecs * vec_elem;
    info->bytes_per_token = a.bytes_active + vecs * vec_elem;
    info->kv_bytes_per_position = (int64_t)c->n_layers * cache_row(c) * kv_elem;
    info->mem_ctx = c->max_position_embeddings < INFO_CTX ? c->max_position_embeddings : INFO_CTX;
    /* scratch: expanded-attention (and indexer scoring) buffers per position plus ~64 MiB
       of chunk buffers */
    int64_t per_pos = info->kv_bytes_per_position +
                      4 * (H * (c->qk_nope_dim + c->v_head_dim) + c->kv_lora_rank) +
                      (c->family == ZFAM_DEEPSEEK_V32 ? 4 * (c->index_n_heads + 2) : 0);
    info->mem_needed_bytes = info->weight_bytes_total + info->mem_ctx * per_pos + (64LL << 20);
    info->mem_available_bytes = zmem_available();
    info->fits = info->mem_available_bytes < 0 || info->mem_needed_bytes <= info->mem_available_bytes;
}

/* ---------------------------------------------------------------- a loaded model */

/* The loaded weight of one kind (experts: expert 0; all experts of a layer share a layout). */
static int64_t model_bytes(void *ctx, const zinfo_mat *mt) {
    const zmlx_model *m = ctx;
    const zlayer *L = mt->layer >= 0 ? &m->layers[mt->layer] : NULL;
    const zweight *w = NULL;
    switch (mt->part) {
    case ZI_EMBED: w = &m->embed; break;
    case ZI_LM_HEAD: w = &m->lm_head; break;
    case ZI_Q_A: w = &L->q_a; break;
    case ZI_Q_B: w = &L->q_b; break;
    case ZI_KV_A: w = &L->kv_a; break;
    case ZI_KV_B: /* or the split pair held in its place (mla.c) */
        if (L->embed_q.data) return zweight_bytes(&L->embed_q) + zweight_bytes(&L->unembed_out);
        w = &L->kv_b;
        break;
    case ZI_EMBED_Q: w = &L->embed_q; break;
    case ZI_UNEMBED_OUT: w = &L->unembed_out; break;
    case ZI_O: w = &L->o; break;
    case ZI_IDX_WQ_B: w = &L->idx_wq_b; break;
    case ZI_IDX_WK: w = &L->idx_wk; break;
    case ZI_IDX_W: w = &L->idx_w; break;
    case ZI_GATE: w = &L->gate; break;
    case ZI_UP: w = &L->up; break;
    case ZI_DOWN: w = &L->down; break;
    case ZI_ROUTER: w = &L->router; break;
    case ZI_EXP_GATE: w = &L->exp_gate[0]; break;
    case ZI_EXP_UP: w = &L->exp_up[0]; break;
    case ZI_EXP_DOWN: w = &L->exp_down[0]; break;
    case ZI_SH_GATE: w = &L->sh_gate; break;
    case ZI_SH_UP: w = &L->sh_up; break;
    case ZI_SH_DOWN: w = &L->sh_down; break;
    }
    return w ? zweight_bytes(w) : 0;
}

void zinfo_model(const zmlx_model *m, int kv_elem, zmlx_model_info *info) {
    /* norm vectors at the checkpoint's dense dtype: its final norm's, else lm_head's */
    zdtype dt = m->lm_head.q == ZQ_NONE ? m->lm_head.dtype : ZDT_BF16;
    char name[96];
    snprintf(name, sizeof name, "%smodel.norm.weight", m->cfg.tensor_prefix);
    const zst_tensor *t = m->archive ? zst_find(m->archive, name) : NULL;
    if (t && zdtype_table[t->dtype].compute) dt = t->dtype;
    zinfo_fill(&m->cfg, model_bytes, (void *)m, (int)zdtype_table[dt].size,
               m->weight_format[0] ? m->weight_format : zdtype_table[dt].name, kv_elem, info);
}

/* ---------------------------------------------------------------- from the config alone */

typedef struct predict {
    const zmlx_config *c;
    const zqcfg *q;
    zdtype dense;   /* dense weights and MLX / int scales */
    zinfo_mla mla;  /* how kv_b is held */
} predict;

/* The layout the loader would hold for one matrix, from the declaration of its module
   (load_weight.c's rules: MLX quantizes what divides by the group, fp8 every Linear but
   lm_head, the router and the indexer's weights_proj, ints below a whole group go to
   float32, int biases are made in the scales' dtype).  Only the fields sizes read. */
static zweight predict_layout(const predict *p, const zinfo_mat *mt) {
    zweight w = {.dtype = p->dense, .rows = mt->rows, .cols = mt->cols};
    if (mt->part == ZI_ROUTER) return w;
    char path[160];
    snprintf(path, sizeof path, "%s%s", p->c->tensor_prefix, mt->module);
    zqmod q;
    if (zqcfg_module(p->q, path, p->c->tensor_prefix, mt->linear, &q) == ZQDECL_DENSE) return w;
    zweight qw = {.dtype = ZDT_U32, .rows = mt->rows, .cols = mt->cols, .bits = q.bits,
                  .group = q.group, .sdtype = p->dense};
    switch (q.mode) {
    case ZQMODE_AFFINE:
    case ZQMODE_MXFP4:
        if (mt->cols % q.group) return w; /* mlx-lm leaves it unquantized */
        qw.q = q.mode == ZQMODE_MXFP4 ? ZQ_MXFP4 : ZQ_AFFINE;
        if (qw.q == ZQ_MXFP4) qw.sdtype = ZDT_U8;
        return qw;
    case ZQMODE_FP8_BLOCK:
        if (mt->part == ZI_LM_HEAD || mt->part == ZI_EMBED || mt->part == ZI_IDX_W) return w;
        qw.q = ZQ_FP8_BLOCK, qw.dtype = ZDT_F8_E4M3, qw.sdtype = ZDT_F32;
        return qw;
    case ZQMODE_INT_SYM:
        if (mt->cols % q.group) { /* dequantized at load */
            w.dtype = ZDT_F32;
            return w;
        }
        qw.q = ZQ_AFFINE;
        return qw;
    case ZQMODE_DENSE: break;
    }
    return w;
}

/* kv_b of a split checkpoint: embed_q [H*R, nope] + unembed_out [H*v, R] as declared, or
   (rebuilt, mla.c) one kv_b, a copy when both are dense, else float32. */
static int64_t predict_split(const predict *p, const zinfo_mat *mt) {
    const zmlx_config *c = p->c;
    zinfo_mat eq = *mt, uo = *mt;
    const int64_t H = c->n_heads;
    eq.part = ZI_EMBED_Q, eq.rows = H * c->kv_lora_rank, eq.cols = c->qk_nope_dim;
    uo.part = ZI_UNEMBED_OUT, uo.rows = H * c->v_head_dim, uo.cols = c->kv_lora_rank;
    snprintf(eq.module, sizeof eq.module, "model.layers.%d.self_attn.embed_q", mt->layer);
    snprintf(uo.module, sizeof uo.module, "model.layers.%d.self_attn.unembed_out", mt->layer);
    const zweight we = predict_layout(p, &eq), wu = predict_layout(p, &uo);
    if (p->mla == ZINFO_MLA_SPLIT) return zweight_bytes(&we) + zweight_bytes(&wu);
    const bool copy = we.q == ZQ_NONE && wu.q == ZQ_NONE && we.dtype == wu.dtype;
    return mt->rows * mt->cols * (int64_t)zdtype_table[copy ? we.dtype : ZDT_F32].size;
}

static int64_t predict_bytes(void *ctx, const zinfo_mat *mt) {
    const predict *p = ctx;
    if (mt->part == ZI_KV_B && p->mla != ZINFO_MLA_KV_B) return predict_split(p, mt);
    const zweight w = predict_layout(p, mt);
    return zweight_bytes(&w);
}

void zinfo_config(const zmlx_config *c, const zqcfg *q, zdtype dense, zinfo_mla mla, int kv_elem,
                  zmlx_model_info *info) {
    predict p = {c, q, dense, mla};
    char fmt[32];
    if (q) zqcfg_describe(q, fmt, sizeof fmt);
    else snprintf(fmt, sizeof fmt, "%s", zdtype_table[dense].name);
    zinfo_fill(c, predict_bytes, &p, (int)zdtype_table[dense].size, fmt, kv_elem, info);
}

/* ---------------------------------------------------------------- a builtin's format */

void zbuiltin_quant_describe(const zbuiltin_quant *q, char *buf, size_t n) {
    if (q->bits == 16) snprintf(buf, n, "BF16"); /* as a dense checkpoint reports it */
    else if (q->mode == ZQ_MXFP4) snprintf(buf, n, "mxfp4");
    else snprintf(buf, n, "affine%d g%d", q->bits, q->group);
}

/* Bytes builtin.c makes for one matrix: every Linear weight (the embedding too) in the
   builtin's format when its input width divides by the group, else bf16; the router bf16
   (as MLX checkpoints keep it). */
static int64_t builtin_bytes(void *ctx, const zinfo_mat *mt) {
    const zbuiltin_quant *q = ctx;
    if (mt->part == ZI_ROUTER || q->bits == 16 || q->group <= 0 || mt->cols % q->group)
        return mt->rows * mt->cols * 2;
    const bool mx = q->mode == ZQ_MXFP4;
    zweight w = {.dtype = ZDT_U32, .rows = mt->rows, .cols = mt->cols, .q = q->mode,
                 .bits = q->bits, .group = q->group, .sdtype = mx ? ZDT_U8 : ZDT_BF16};
    return zweight_bytes(&w);
}

void zinfo_builtin(const zmlx_config *c, const zbuiltin_quant *q, int kv_elem,
                   zmlx_model_info *info) {
    char fmt[32];
    zbuiltin_quant_describe(q, fmt, sizeof fmt);
    zinfo_fill(c, builtin_bytes, (void *)q, 2, fmt, kv_elem, info);
}
