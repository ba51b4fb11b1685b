/*
 * load.c — binding a checkpoint directory's tensors to the model: the Hugging Face
 * names of the released GLM-4.7-Flash / DeepSeek-V3 checkpoints (per-expert tensors),
 * each checked for presence, dtype and exact shape before use.  Weights stay in the
 * mapped files; only norm weights and the router bias are converted to float.
 * DeepSeek-V3.2 adds the indexer tensors `self_attn.indexer.*` of every layer.
 * Tensors the model does not use (the MTP layer model.layers.<n_layers>.*,
 * rotary_emb.inv_freq, ...) are ignored.
 */
#include "model/model.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct binder {
    zmlx_model *m;
    const char *dir;
    float *f32_next; /* cursor into m->f32_arena */
    zerr *e;
    zmlx_status st; /* of the first failure */
} binder;

static void shape_str(const int64_t *shape, int nd, char *buf, size_t n) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, n - o, "[");
    for (int i = 0; i < nd && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

/* Find `name` with exactly the shape (nd dims); NULL + message otherwise. */
static const zst_tensor *need(binder *b, const char *name, int nd, const int64_t *shape) {
    const zst_tensor *t = zst_find(b->m->archive, name);
    if (!t) {
        b->st = zerr_set(b->e, ZMLX_ERR_NOT_FOUND, "%s: tensor \"%s\" is missing from the checkpoint",
                 b->dir, name);
        return NULL;
    }
    bool ok = t->ndim == nd;
    for (int i = 0; ok && i < nd; i++) ok = t->shape[i] == shape[i];
    if (!ok) {
        char want[96], got[96];
        shape_str(shape, nd, want, sizeof want);
        shape_str(t->shape, t->ndim, got, sizeof got);
        b->st = zerr_set(b->e, ZMLX_ERR_FORMAT, "%s: tensor \"%s\" has shape %s but config.json implies %s",
                 zst_shard_path(b->m->archive, t->shard), name, got, want);
        return NULL;
    }
    return t;
}

/* The family's tensor prefix ("" or "language_model.") + the formatted name. */
static void tensor_name(const binder *b, char *name, size_t n, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static void tensor_name(const binder *b, char *name, size_t n, const char *fmt, va_list ap) {
    int o = snprintf(name, n, "%s", b->m->cfg.tensor_prefix);
    vsnprintf(name + o, n - (size_t)o, fmt, ap);
}

static bool weight(binder *b, zweight *w, int64_t rows, int64_t cols, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static bool weight(binder *b, zweight *w, int64_t rows, int64_t cols, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    tensor_name(b, name, sizeof name, fmt, ap);
    va_end(ap);
    const zst_tensor *t = need(b, name, 2, (int64_t[]){rows, cols});
    if (!t) return false;
    if (!zdtype_table[t->dtype].compute || !b->m->be->supports(t->dtype)) {
        b->st = zerr_set(b->e, ZMLX_ERR_UNSUPPORTED,
                 "%s: tensor \"%s\" has dtype %s, which the %s backend cannot run yet "
                 "(F32, F16 and BF16 are supported)",
                 zst_shard_path(b->m->archive, t->shard), name, zdtype_table[t->dtype].name,
                 b->m->be->name);
        return false;
    }
    *w = (zweight){.dtype = t->dtype, .rows = rows, .cols = cols, .data = t->data};
    return true;
}

/* A 1-D float vector (norm weight, bias) converted into the f32 arena. */
static bool vec(binder *b, float **out, int64_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bool vec(binder *b, float **out, int64_t n, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    tensor_name(b, name, sizeof name, fmt, ap);
    va_end(ap);
    const zst_tensor *t = need(b, name, 1, (int64_t[]){n});
    if (!t) return false;
    if (!zdtype_table[t->dtype].compute) {
        b->st = zerr_set(b->e, ZMLX_ERR_UNSUPPORTED, "%s: tensor \"%s\" has dtype %s (expected a float type)",
                 zst_shard_path(b->m->archive, t->shard), name, zdtype_table[t->dtype].name);
        return false;
    }
    zweight w = {.dtype = t->dtype, .rows = 1, .cols = n, .data = t->data};
    *out = b->f32_next;
    zweight_row_f32(&w, 0, *out);
    b->f32_next += n;
    return true;
}

static bool bind_attention(binder *b, int l, zlayer *L) {
    const zmlx_config *c = &b->m->cfg;
    const int64_t d = c->hidden_size, H = c->n_heads, qk = c->qk_nope_dim + c->qk_rope_dim;
    const char *p = "model.layers";
    bool ok = vec(b, &L->attn_norm, d, "%s.%d.input_layernorm.weight", p, l) &&
              vec(b, &L->ffn_norm, d, "%s.%d.post_attention_layernorm.weight", p, l);
    if (ok && c->q_lora_rank > 0) {
        ok = weight(b, &L->q_a, c->q_lora_rank, d, "%s.%d.self_attn.q_a_proj.weight", p, l) &&
             vec(b, &L->q_a_norm, c->q_lora_rank, "%s.%d.self_attn.q_a_layernorm.weight", p, l) &&
             weight(b, &L->q_b, H * qk, c->q_lora_rank, "%s.%d.self_attn.q_b_proj.weight", p, l);
    } else if (ok) {
        ok = weight(b, &L->q_a, H * qk, d, "%s.%d.self_attn.q_proj.weight", p, l);
    }
    return ok &&
           weight(b, &L->kv_a, c->kv_lora_rank + c->qk_rope_dim, d,
                  "%s.%d.self_attn.kv_a_proj_with_mqa.weight", p, l) &&
           vec(b, &L->kv_a_norm, c->kv_lora_rank, "%s.%d.self_attn.kv_a_layernorm.weight", p, l) &&
           weight(b, &L->kv_b, H * (c->qk_nope_dim + c->v_head_dim), c->kv_lora_rank,
                  "%s.%d.self_attn.kv_b_proj.weight", p, l) &&
           weight(b, &L->o, d, H * c->v_head_dim, "%s.%d.self_attn.o_proj.weight", p, l);
}

/* deepseek_v32: the DSA lightning indexer of layer l (MODELS.md 2.1). */
static bool bind_indexer(binder *b, int l, zlayer *L) {
    const zmlx_config *c = &b->m->cfg;
    if (c->family != ZFAM_DEEPSEEK_V32) return true;
    const int64_t d = c->hidden_size, nI = c->index_n_heads, dI = c->index_head_dim;
    const char *p = "model.layers";
    return weight(b, &L->idx_wq_b, nI * dI, c->q_lora_rank, "%s.%d.self_attn.indexer.wq_b.weight",
                  p, l) &&
           weight(b, &L->idx_wk, dI, d, "%s.%d.self_attn.indexer.wk.weight", p, l) &&
           vec(b, &L->idx_k_norm, dI, "%s.%d.self_attn.indexer.k_norm.weight", p, l) &&
           vec(b, &L->idx_k_bias, dI, "%s.%d.self_attn.indexer.k_norm.bias", p, l) &&
           weight(b, &L->idx_w, nI, d, "%s.%d.self_attn.indexer.weights_proj.weight", p, l);
}

static bool bind_ffn(binder *b, int l, zlayer *L, zweight *experts) {
    const zmlx_config *c = &b->m->cfg;
    const int64_t d = c->hidden_size, mI = c->moe_intermediate_size, E = c->n_routed_experts;
    const char *p = "model.layers";
    if (!L->moe)
        return weight(b, &L->gate, c->intermediate_size, d, "%s.%d.mlp.gate_proj.weight", p, l) &&
               weight(b, &L->up, c->intermediate_size, d, "%s.%d.mlp.up_proj.weight", p, l) &&
               weight(b, &L->down, d, c->intermediate_size, "%s.%d.mlp.down_proj.weight", p, l);
    L->exp_gate = experts;
    L->exp_up = experts + E;
    L->exp_down = experts + 2 * E;
    bool ok = weight(b, &L->router, E, d, "%s.%d.mlp.gate.weight", p, l) &&
              vec(b, &L->router_bias, E, "%s.%d.mlp.gate.e_score_correction_bias", p, l);
    for (int64_t x = 0; ok && x < E; x++)
        ok = weight(b, &L->exp_gate[x], mI, d, "%s.%d.mlp.experts.%lld.gate_proj.weight", p, l, (long long)x) &&
             weight(b, &L->exp_up[x], mI, d, "%s.%d.mlp.experts.%lld.up_proj.weight", p, l, (long long)x) &&
             weight(b, &L->exp_down[x], d, mI, "%s.%d.mlp.experts.%lld.down_proj.weight", p, l, (long long)x);
    if (ok && c->n_shared_experts > 0) {
        const int64_t sI = mI * c->n_shared_experts;
        ok = weight(b, &L->sh_gate, sI, d, "%s.%d.mlp.shared_experts.gate_proj.weight", p, l) &&
             weight(b, &L->sh_up, sI, d, "%s.%d.mlp.shared_experts.up_proj.weight", p, l) &&
             weight(b, &L->sh_down, d, sI, "%s.%d.mlp.shared_experts.down_proj.weight", p, l);
    }
    return ok;
}

zmlx_status zmodel_load_dir(zmlx_model *m, const char *dir, zerr *e) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    zmlx_status st = zcfg_load(path, &m->cfg, e);
    if (st != ZMLX_OK) return st;
    if ((st = zmodel_check_limits(&m->cfg, path, e)) != ZMLX_OK) return st;
    if ((st = zst_open(dir, &m->archive, e)) != ZMLX_OK) return st;

    const zmlx_config *c = &m->cfg;
    const int64_t d = c->hidden_size, E = c->n_routed_experts;
    int64_t n_moe = c->n_layers - c->n_dense_layers;
    int64_t nf = d + (int64_t)c->n_layers * (2 * d + c->q_lora_rank + c->kv_lora_rank + E +
                                              2 * (int64_t)c->index_head_dim);
    m->f32_arena = calloc((size_t)nf, sizeof(float));
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    m->expert_arena = calloc((size_t)(n_moe * 3 * E + 1), sizeof(zweight));
    if (!m->f32_arena || !m->layers || !m->expert_arena)
        return zerr_set(e, ZMLX_ERR_NOMEM, "out of memory binding %s", dir);

    binder b = {.m = m, .dir = dir, .f32_next = m->f32_arena, .e = e};
    const char *pre = "model";
    bool ok = weight(&b, &m->embed, c->vocab_size, d, "%s.embed_tokens.weight", pre) &&
              vec(&b, &m->final_norm, d, "%s.norm.weight", pre);
    if (ok && c->tie_word_embeddings) m->lm_head = m->embed;
    else if (ok) ok = weight(&b, &m->lm_head, c->vocab_size, d, "lm_head.weight");
    zweight *experts = m->expert_arena;
    for (int l = 0; ok && l < c->n_layers; l++) {
        zlayer *L = &m->layers[l];
        L->moe = c->layer_is_moe[l];
        ok = bind_attention(&b, l, L) && bind_indexer(&b, l, L) && bind_ffn(&b, l, L, experts);
        if (L->moe) experts += 3 * E;
    }
    return ok ? ZMLX_OK : b.st;
}
