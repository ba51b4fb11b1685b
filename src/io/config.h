/*
 * config.h — a model's config.json mapped onto one struct, for every supported family.
 *
 * Both dialects load: the released checkpoints' keys (rope_theta, rope_scaling,
 * first_k_dense_replace, moe_layer_freq) and transformers-5 keys (rope_parameters,
 * mlp_layer_types).  Kimi-K2.5 nests the text model in `text_config` and prefixes its
 * tensors with `language_model.`.  Parsing is family-agnostic; whether a family can be
 * run is decided by the model loader.  `head_dim` is never used to size attention
 * (transformers-5 aliases it to qk_rope_head_dim).
 */
#ifndef ZMLX_IO_CONFIG_H
#define ZMLX_IO_CONFIG_H

#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZCFG_MAX_LAYERS 512
#define ZCFG_MAX_EOS 16

typedef enum zfamily {
    ZFAM_GLM4_MOE_LITE = 0, /* GLM-4.7-Flash */
    ZFAM_DEEPSEEK_V3,       /* DeepSeek-V3 / V3.1 */
    ZFAM_DEEPSEEK_V32,      /* DeepSeek-V3.2 (DSA indexer) */
    ZFAM_KIMI_K25,          /* Kimi-K2.5 (deepseek_v3 text model) */
} zfamily;

typedef enum zrope_type { ZROPE_DEFAULT = 0, ZROPE_YARN } zrope_type;
typedef enum zscoring { ZSCORE_SIGMOID = 0, ZSCORE_SOFTMAX } zscoring;

typedef struct zmlx_config {
    zfamily family;
    char model_type[32];     /* as written in the file */
    char tensor_prefix[32];  /* "" or "language_model." */

    int32_t vocab_size, hidden_size, n_layers, n_heads;
    int32_t q_lora_rank;     /* 0 = q_proj without low rank */
    int32_t kv_lora_rank, qk_nope_dim, qk_rope_dim, v_head_dim;
    int32_t intermediate_size, moe_intermediate_size;
    int32_t n_routed_experts, n_shared_experts, experts_per_tok;
    int32_t n_group, topk_group;
    float routed_scaling_factor;
    bool norm_topk_prob;
    zscoring scoring;            /* missing scoring_func = sigmoid */
    uint8_t layer_is_moe[ZCFG_MAX_LAYERS]; /* from mlp_layer_types or first_k_dense_replace/moe_layer_freq */
    int32_t n_dense_layers;

    float rms_norm_eps;      /* input/post/final norms */
    float attn_norm_eps;     /* q_a / kv_a norms: rms_norm_eps for GLM, 1e-6 for DeepSeek/Kimi */

    zrope_type rope_type;
    double rope_theta;
    double rope_factor, rope_beta_fast, rope_beta_slow, rope_mscale, rope_mscale_all_dim;
    int64_t rope_orig_max_pos;
    int64_t max_position_embeddings;

    bool tie_word_embeddings;
    int32_t bos_id;          /* -1 if absent */
    int32_t pad_id;          /* -1 if absent */
    int32_t eos_ids[ZCFG_MAX_EOS];
    int32_t n_eos;

    /* deepseek_v32 indexer (0 when absent) */
    int32_t index_n_heads, index_head_dim, index_topk;
} zmlx_config;

/* Parse config.json text.  `fname` names the file in error messages. */
zmlx_status zcfg_parse(const char *text, size_t len, const char *fname, zmlx_config *out,
                       zerr *e);
/* Read and parse a file. */
zmlx_status zcfg_load(const char *path, zmlx_config *out, zerr *e);
/* zcfg_load, and the quantization block (io/qconfig.h) into *q: NULL when the config
   has none; the caller frees it with zqcfg_free.  zcfg_parse validates the block too. */
struct zqcfg;
zmlx_status zcfg_load_quant(const char *path, zmlx_config *out, struct zqcfg **q, zerr *e);
/* "glm4_moe_lite", ... */
const char *zfamily_name(zfamily f);

#endif
