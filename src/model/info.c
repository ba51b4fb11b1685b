/*
 * info.c — what a model costs, from its config alone: parameters (total and read per
 * decoded token), bytes per token at batch 1, KV cache bytes per position, and the
 * memory a session needs.  Used by `zmlx info` and by benchmarks for achieved GB/s.
 * Counts follow MODELS.md section 6 (one embedding row, K routed experts + shared);
 * bytes follow the stored format: Linear weights dense or quantized (MLX affine packed
 * codes + bf16 scale and bias per group, mxfp4 nibbles + an E8M0 byte per 32), the
 * router and norms 16-bit as in MLX checkpoints;
 * DeepSeek-V3.2 adds its indexer (read for every token) and the indexer-key cache.
 */
#include "model/model.h"

#include <stdio.h>
#include <string.h>

#define INFO_CTX 4096 /* context length of the memory estimate */

/* deepseek_v32's DSA indexer per layer: wq_b, wk, k_norm (weight + bias), weights_proj. */
static int64_t indexer_params(const zmlx_config *c) {
    if (c->family != ZFAM_DEEPSEEK_V32) return 0;
    const int64_t nI = c->index_n_heads, dI = c->index_head_dim;
    return nI * dI * c->q_lora_rank + dI * c->hidden_size + 2 * dI + nI * c->hidden_size;
}

/* Cache bytes per position: the latent and rope key, plus deepseek_v32's indexer key. */
static int64_t cache_row(const zmlx_config *c) {
    return c->kv_lora_rank + c->qk_rope_dim +
           (c->family == ZFAM_DEEPSEEK_V32 ? c->index_head_dim : 0);
}

/* Bytes of a [rows, cols] Linear weight stored as q says (dense when cols is not a
 * multiple of the group, as MLX leaves it). */
static int64_t lin_bytes(const zbuiltin_quant *q, int64_t rows, int64_t cols) {
    if (q->bits == 16 || q->group <= 0 || cols % q->group)
        return rows * cols * (int64_t)zdtype_table[q->dtype ? q->dtype : ZDT_BF16].size;
    const int64_t per_group = q->mode == ZQ_MXFP4 ? 1 : 4; /* E8M0 byte, or bf16 scale + bias */
    return rows * (cols * q->bits / 8 + cols / q->group * per_group);
}

static void format_name(const zbuiltin_quant *q, char *buf, size_t n) {
    if (q->bits == 16) snprintf(buf, n, "%s", zdtype_table[q->dtype ? q->dtype : ZDT_BF16].name);
    else if (q->mode == ZQ_MXFP4) snprintf(buf, n, "mxfp4");
    else snprintf(buf, n, "affine%d g%d", q->bits, q->group);
}

void zinfo_fill(const zmlx_config *c, zdtype wdt, int kv_elem, zmlx_model_info *info) {
    const zbuiltin_quant q = {.bits = 16, .dtype = wdt};
    zinfo_fill_q(c, &q, kv_elem, info);
}

zbuiltin_quant zinfo_quant_of(const zmlx_model *m) {
    const zweight *w = m->cfg.n_layers > 0 ? &m->layers[0].q_a : &m->lm_head;
    if (w->q == ZQ_NONE) return (zbuiltin_quant){.bits = 16, .dtype = m->lm_head.dtype};
    return (zbuiltin_quant){.bits = w->bits, .group = w->group, .mode = w->q};
}

void zinfo_fill_q(const zmlx_config *c, const zbuiltin_quant *q, int kv_elem,
                  zmlx_model_info *info) {
    const zdtype wdt = q->bits == 16 && q->dtype ? q->dtype : ZDT_BF16; /* norms, router */
    memset(info, 0, sizeof *info);
    snprintf(info->model_type, sizeof info->model_type, "%s", zfamily_name(c->family));
    format_name(q, info->weight_format, sizeof info->weight_format);
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

    const int64_t d = c->hidden_size, H = c->n_heads, qk = c->qk_nope_dim + c->qk_rope_dim;
    const int64_t attn = (c->q_lora_rank ? c->q_lora_rank * d + H * qk * c->q_lora_rank : H * qk * d) +
                         (c->kv_lora_rank + c->qk_rope_dim) * d +
                         H * (c->qk_nope_dim + c->v_head_dim) * c->kv_lora_rank +
                         d * H * c->v_head_dim;
    const int64_t norms = 2 * d + c->q_lora_rank + c->kv_lora_rank;
    const int64_t indexer = indexer_params(c); /* read for every token too */
    const int64_t expert = 3 * c->moe_intermediate_size * d;
    /* the same in bytes: Linear weights as q says, norms and the router 16-bit (wdt) */
    const int64_t esz = (int64_t)zdtype_table[wdt].size, mI = c->moe_intermediate_size;
    const int64_t nI = c->index_n_heads, dI = c->index_head_dim, sI = mI * c->n_shared_experts;
    const int64_t attn_b =
        (c->q_lora_rank ? lin_bytes(q, c->q_lora_rank, d) + lin_bytes(q, H * qk, c->q_lora_rank)
                        : lin_bytes(q, H * qk, d)) +
        lin_bytes(q, c->kv_lora_rank + c->qk_rope_dim, d) +
        lin_bytes(q, H * (c->qk_nope_dim + c->v_head_dim), c->kv_lora_rank) +
        lin_bytes(q, d, H * c->v_head_dim) + norms * esz +
        (indexer ? lin_bytes(q, nI * dI, c->q_lora_rank) + lin_bytes(q, dI, d) + 2 * dI * esz +
                       lin_bytes(q, nI, d)
                 : 0);
    const int64_t expert_b = 2 * lin_bytes(q, mI, d) + lin_bytes(q, d, mI);
    const int64_t shared_b = 2 * lin_bytes(q, sI, d) + lin_bytes(q, d, sI);
    int64_t total = 0, active = 0, total_b = 0, active_b = 0;
    for (int l = 0; l < c->n_layers; l++) {
        total += attn + norms + indexer;
        active += attn + norms + indexer;
        total_b += attn_b;
        active_b += attn_b;
        if (!c->layer_is_moe[l]) {
            const int64_t I = c->intermediate_size, dense_b = 2 * lin_bytes(q, I, d) + lin_bytes(q, d, I);
            total += 3 * I * d;
            active += 3 * I * d;
            total_b += dense_b;
            active_b += dense_b;
            continue;
        }
        int64_t router = c->n_routed_experts * d;
        total += router + (c->n_routed_experts + c->n_shared_experts) * expert;
        active += router + (c->experts_per_tok + c->n_shared_experts) * expert;
        total_b += router * esz + c->n_routed_experts * expert_b + shared_b;
        active_b += router * esz + c->experts_per_tok * expert_b + shared_b;
    }
    const int64_t V = c->vocab_size;
    total += V * d + d + (c->tie_word_embeddings ? 0 : V * d); /* embed, final norm, lm_head */
    active += d + d + V * d;                                   /* one embedding row */
    total_b += lin_bytes(q, V, d) + d * esz + (c->tie_word_embeddings ? 0 : lin_bytes(q, V, d));
    active_b += lin_bytes(q, 1, d) + d * esz + lin_bytes(q, V, d);
    info->params_total = total;
    info->params_active = active;
    info->weight_bytes_total = total_b;
    info->bytes_per_token = active_b;
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
