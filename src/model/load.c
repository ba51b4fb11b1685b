/*
 * load.c — binding a checkpoint directory's tensors to the model: the Hugging Face
 * names of the released GLM-4.7-Flash / DeepSeek-V3.x / Kimi-K2.5 checkpoints
 * (per-expert tensors) and the names mlx-lm's sanitize writes (stacked experts
 * `mlp.switch_mlp.*`, split MLA `self_attn.embed_q` / `unembed_out`), each weight in any
 * stored layout (dense, MLX affine / mxfp4, fp8 blocks, compressed-tensors int; resolved
 * and checked by load_weight.c against config.json's quantization block).  Weights stay
 * in the mapped files except what must be made at load (load_weight.h, mla.c); norm weights and
 * the router bias are converted to float.  DeepSeek-V3.2 adds the indexer tensors
 * `self_attn.indexer.*` of every layer.  Tensors the model does not use (the MTP layer
 * model.layers.<n_layers>.*, rotary_emb.inv_freq, vision towers, ...) are ignored.
 */
#include "model/load_weight.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct binder {
    zloader ld;      /* the weight resolver's context (m, dir, quantization, error) */
    zmlx_model *m;
    const char *dir;
    float *f32_next; /* cursor into m->f32_arena */
    zerr *e;
} binder;

/* A Linear weight [rows, cols] in whatever layout it is stored. */
#define weight(b, w, rows, cols, ...) \
    zload_weight(&(b)->ld, &(zwant){(rows), (cols), 0, true, false}, (w), __VA_ARGS__)

/* A 1-D float vector (norm weight, bias) converted into the f32 arena. */
#define vec(b, out, n, ...) \
    (*(out) = (b)->f32_next, (b)->f32_next += (n), zload_vector(&(b)->ld, *(out), (n), __VA_ARGS__))

/* kv_b: `kv_b_proj` in any layout, or mlx-lm's split `embed_q` [H, R, nope] (W_UK^T per
   head) + `unembed_out` [H, v, R] (W_UV), held as stored; for a backend that does not run
   the split pair (a device backend uploads kv_b) rebuilt into kv_b (mla.c). */
static bool bind_kv_b(binder *b, int l, zlayer *L) {
    const zmlx_config *c = &b->m->cfg;
    const int64_t H = c->n_heads, R = c->kv_lora_rank, nope = c->qk_nope_dim, v = c->v_head_dim;
    const char *p = "model.layers";
    if (zload_has(&b->ld, "%s.%d.self_attn.kv_b_proj", p, l) ||
        !zload_has(&b->ld, "%s.%d.self_attn.embed_q", p, l))
        return weight(b, &L->kv_b, H * (nope + v), R, "%s.%d.self_attn.kv_b_proj", p, l);
    if (!zload_weight(&b->ld, &(zwant){R, nope, H, true, false}, &L->embed_q,
                      "%s.%d.self_attn.embed_q", p, l) ||
        !zload_weight(&b->ld, &(zwant){v, R, H, true, false}, &L->unembed_out,
                      "%s.%d.self_attn.unembed_out", p, l))
        return false;
    const zbackend_ops *be = b->m->be;
    if (zmla_split_native(be)) return true;
    if (!zmla_rebuild_kv_b(b->m, L)) {
        b->ld.st = zerr_set(b->e, ZMLX_ERR_NOMEM, "out of memory rebuilding kv_b of layer %d", l);
        return false;
    }
    if (!be->supports_weight(&L->kv_b)) {
        b->ld.st = zerr_set(b->e, ZMLX_ERR_UNSUPPORTED, "%s: the kv_b rebuilt from layer %d's "
                            "embed_q / unembed_out (%s) cannot run on the %s backend", b->dir, l,
                            zdtype_table[L->kv_b.dtype].name, be->name);
        return false;
    }
    return true;
}

static bool bind_attention(binder *b, int l, zlayer *L) {
    const zmlx_config *c = &b->m->cfg;
    const int64_t d = c->hidden_size, H = c->n_heads, qk = c->qk_nope_dim + c->qk_rope_dim;
    const char *p = "model.layers";
    bool ok = vec(b, &L->attn_norm, d, "%s.%d.input_layernorm.weight", p, l) &&
              vec(b, &L->ffn_norm, d, "%s.%d.post_attention_layernorm.weight", p, l);
    if (ok && c->q_lora_rank > 0) {
        ok = weight(b, &L->q_a, c->q_lora_rank, d, "%s.%d.self_attn.q_a_proj", p, l) &&
             vec(b, &L->q_a_norm, c->q_lora_rank, "%s.%d.self_attn.q_a_layernorm.weight", p, l) &&
             weight(b, &L->q_b, H * qk, c->q_lora_rank, "%s.%d.self_attn.q_b_proj", p, l);
    } else if (ok) {
        ok = weight(b, &L->q_a, H * qk, d, "%s.%d.self_attn.q_proj", p, l);
    }
    return ok &&
           weight(b, &L->kv_a, c->kv_lora_rank + c->qk_rope_dim, d,
                  "%s.%d.self_attn.kv_a_proj_with_mqa", p, l) &&
           vec(b, &L->kv_a_norm, c->kv_lora_rank, "%s.%d.self_attn.kv_a_layernorm.weight", p, l) &&
           bind_kv_b(b, l, L) &&
           weight(b, &L->o, d, H * c->v_head_dim, "%s.%d.self_attn.o_proj", p, l);
}

/* deepseek_v32: the DSA lightning indexer of layer l (MODELS.md 2.1). */
static bool bind_indexer(binder *b, int l, zlayer *L) {
    const zmlx_config *c = &b->m->cfg;
    if (c->family != ZFAM_DEEPSEEK_V32) return true;
    const int64_t d = c->hidden_size, nI = c->index_n_heads, dI = c->index_head_dim;
    const char *p = "model.layers";
    return weight(b, &L->idx_wq_b, nI * dI, c->q_lora_rank, "%s.%d.self_attn.indexer.wq_b", p, l) &&
           weight(b, &L->idx_wk, dI, d, "%s.%d.self_attn.indexer.wk", p, l) &&
           vec(b, &L->idx_k_norm, dI, "%s.%d.self_attn.indexer.k_norm.weight", p, l) &&
           vec(b, &L->idx_k_bias, dI, "%s.%d.self_attn.indexer.k_norm.bias", p, l) &&
           weight(b, &L->idx_w, nI, d, "%s.%d.self_attn.indexer.weights_proj", p, l);
}

/* The routed experts of layer l: per-expert tensors (Hugging Face) or mlx-lm's stacked
   `mlp.switch_mlp.{gate,up,down}_proj` [E, out, in], sliced per expert. */
static bool bind_experts(binder *b, int l, zlayer *L) {
    const zmlx_config *c = &b->m->cfg;
    const int64_t d = c->hidden_size, mI = c->moe_intermediate_size, E = c->n_routed_experts;
    const char *p = "model.layers";
    static const char *const proj[3] = {"gate_proj", "up_proj", "down_proj"};
    zweight *dst[3] = {L->exp_gate, L->exp_up, L->exp_down};
    for (int k = 0; k < 3; k++) {
        const int64_t rows = k < 2 ? mI : d, cols = k < 2 ? d : mI;
        if (zload_has(&b->ld, "%s.%d.mlp.switch_mlp.%s", p, l, proj[k])) {
            zweight all;
            if (!zload_weight(&b->ld, &(zwant){rows, cols, E, true, false}, &all,
                              "%s.%d.mlp.switch_mlp.%s", p, l, proj[k]))
                return false;
            for (int64_t x = 0; x < E; x++) dst[k][x] = zweight_rows(&all, x * rows, rows);
            continue;
        }
        for (int64_t x = 0; x < E; x++)
            if (!weight(b, &dst[k][x], rows, cols, "%s.%d.mlp.experts.%lld.%s", p, l, (long long)x, proj[k]))
                return false;
    }
    return true;
}

static bool bind_ffn(binder *b, int l, zlayer *L, zweight *experts) {
    const zmlx_config *c = &b->m->cfg;
    const int64_t d = c->hidden_size, mI = c->moe_intermediate_size, E = c->n_routed_experts;
    const char *p = "model.layers";
    if (!L->moe)
        return weight(b, &L->gate, c->intermediate_size, d, "%s.%d.mlp.gate_proj", p, l) &&
               weight(b, &L->up, c->intermediate_size, d, "%s.%d.mlp.up_proj", p, l) &&
               weight(b, &L->down, d, c->intermediate_size, "%s.%d.mlp.down_proj", p, l);
    L->exp_gate = experts;
    L->exp_up = experts + E;
    L->exp_down = experts + 2 * E;
    bool ok = zload_weight(&b->ld, &(zwant){E, d, 0, true, true}, &L->router, "%s.%d.mlp.gate", p, l) &&
              vec(b, &L->router_bias, E, "%s.%d.mlp.gate.e_score_correction_bias", p, l) &&
              bind_experts(b, l, L);
    if (ok && c->n_shared_experts > 0) {
        const int64_t sI = mI * c->n_shared_experts;
        ok = weight(b, &L->sh_gate, sI, d, "%s.%d.mlp.shared_experts.gate_proj", p, l) &&
             weight(b, &L->sh_up, sI, d, "%s.%d.mlp.shared_experts.up_proj", p, l) &&
             weight(b, &L->sh_down, d, sI, "%s.%d.mlp.shared_experts.down_proj", p, l);
    }
    return ok;
}

zmlx_status zmodel_load_dir(zmlx_model *m, const char *dir, zerr *e) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    zqcfg *q = NULL;
    zmlx_status st = zcfg_load_quant(path, &m->cfg, &q, e);
    if (st != ZMLX_OK) return st;
    if ((st = zmodel_check_limits(&m->cfg, path, e)) != ZMLX_OK || (st = zst_open(dir, &m->archive, e)) != ZMLX_OK) {
        zqcfg_free(q);
        return st;
    }
    const zmlx_config *c = &m->cfg;
    const int64_t d = c->hidden_size, E = c->n_routed_experts;
    int64_t n_moe = c->n_layers - c->n_dense_layers;
    int64_t nf = d + (int64_t)c->n_layers * (2 * d + c->q_lora_rank + c->kv_lora_rank + E +
                                              2 * (int64_t)c->index_head_dim);
    m->f32_arena = calloc((size_t)nf, sizeof(float));
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    m->expert_arena = calloc((size_t)(n_moe * 3 * E + 1), sizeof(zweight));
    if (!m->f32_arena || !m->layers || !m->expert_arena) {
        zqcfg_free(q);
        return zerr_set(e, ZMLX_ERR_NOMEM, "out of memory binding %s", dir);
    }

    binder b = {.ld = {.m = m, .dir = dir, .q = q, .e = e}, .m = m, .dir = dir,
                .f32_next = m->f32_arena, .e = e};
    const char *pre = "model";
    bool ok = zload_weight(&b.ld, &(zwant){c->vocab_size, d, 0, false, false}, &m->embed,
                           "%s.embed_tokens", pre) &&
              vec(&b, &m->final_norm, d, "%s.norm.weight", pre);
    if (ok && c->tie_word_embeddings) m->lm_head = m->embed;
    else if (ok) ok = weight(&b, &m->lm_head, c->vocab_size, d, "lm_head");
    if (q) zqcfg_describe(q, m->weight_format, sizeof m->weight_format);
    zweight *experts = m->expert_arena;
    for (int l = 0; ok && l < c->n_layers; l++) {
        zlayer *L = &m->layers[l];
        L->moe = c->layer_is_moe[l];
        ok = bind_attention(&b, l, L) && bind_indexer(&b, l, L) && bind_ffn(&b, l, L, experts);
        if (L->moe) experts += 3 * E;
    }
    zqcfg_free(q);
    return ok ? ZMLX_OK : b.ld.st;
}
