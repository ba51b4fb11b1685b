/*
 * model.h — the generic DeepSeek-style decoder (MLA attention + MoE) as loaded:
 * configuration, per-layer weights (views into mapped files or a generated arena),
 * and the backend that runs it.  Family differences (GLM-4.7-Flash, DeepSeek-V3.x,
 * Kimi-K2.5) live in the config (rope variant, router groups, eps) and in the tensor
 * names of load.c.
 */
#ifndef ZMLX_MODEL_MODEL_H
#define ZMLX_MODEL_MODEL_H

#include "backend/backend.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "model/weight.h"
#include "patch/patch.h"
#include "zmlx.h"

typedef struct zowned zowned;

typedef struct zlayer {
    bool moe;
    float *attn_norm;  /* [d]          input_layernorm */
    float *ffn_norm;   /* [d]          post_attention_layernorm */
    float *q_a_norm;   /* [q_lora] */
    float *kv_a_norm;  /* [kv_lora] */
    zweight q_a;       /* [q_lora, d]                 (q_proj [H*(nope+rope), d] if q_lora == 0) */
    zweight q_b;       /* [H*(nope+rope), q_lora]     per head: [nope | rope] rows */
    zweight kv_a;      /* [kv_lora + rope, d]         rows: [latent | k_pe] */
    zweight kv_b;      /* [H*(nope+v), kv_lora]       per head: W_UK [nope] then W_UV [v] rows */
    /* mlx-lm's split MLA weights held as stored (mla.c), instead of kv_b: exactly one of
       kv_b and this pair has data.  Per-head row views: zweight_rows(&embed_q, h*kv_lora,
       kv_lora), zweight_rows(&unembed_out, h*v, v). */
    zweight embed_q;     /* [H*kv_lora, nope]        head h: W_UK[h]^T, quantized along nope */
    zweight unembed_out; /* [H*v, kv_lora]           head h: W_UV[h], quantized along kv_lora */
    zweight o;         /* [d, H*v] */
    /* DSA lightning indexer (deepseek_v32 only), nI heads of width dI */
    zweight idx_wq_b;  /* [nI*dI, q_lora]             per head: [rope | rest] rows */
    zweight idx_wk;    /* [dI, d] */
    float *idx_k_norm, *idx_k_bias; /* [dI] LayerNorm weight, bias */
    zweight idx_w;     /* [nI, d]                     weights_proj */
    /* dense MLP (moe == false) */
    zweight gate, up;  /* [I, d] */
    zweight down;      /* [d, I] */
    /* MoE (moe == true) */
    zweight router;    /* [E, d] */
    float *router_bias; /* [E]  e_score_correction_bias, selection only */
    zweight *exp_gate, *exp_up; /* E x [mI, d] */
    zweight *exp_down;          /* E x [d, mI] */
    zweight sh_gate, sh_up;     /* [mI * n_shared, d] */
    zweight sh_down;            /* [d, mI * n_shared] */
} zlayer;

struct zmlx_model {
    char name[128];
    zmlx_config cfg;
    zweight embed;      /* [V, d] */
    zweight lm_head;    /* [V, d] */
    float *final_norm;  /* [d] */
    zlayer *layers;     /* [n_layers] */
    float *inv_freq;    /* [rope/2] rope frequencies (YaRN-corrected where configured) */
    float rope_mscale;  /* YaRN attention factor applied to cos/sin (1 for GLM) */
    float attn_scale;   /* softmax scale */

    /* backing storage */
    zst_archive *archive;  /* mapped checkpoint, or NULL */
    void *arena;           /* generated weights (builtin), or NULL: 2 MiB-aligned inside arena_map */
    size_t arena_bytes;
    void *arena_map;       /* the anonymous mapping holding the arena */
    size_t arena_map_bytes;
    float *f32_arena;      /* norms and biases converted to float */
    zweight *expert_arena; /* the exp_* arrays of all layers */
    zowned *owned;         /* loader-made arrays (owned.c): int biases, dequantized weights */
    char weight_format[32]; /* "mlx affine4 g64", "fp8 e4m3 b128", ...; "" = the dense dtype */

    zpatch_set patterns;    /* the applied pattern set */
    zstage_plan *plan;      /* [n_layers] which implementation runs each stage */
    const zbackend_ops *be;
    void *be_ctx;
    zmlx_model_params params;
    zmlx_kv_dtype kv_dtype; /* resolved (never DEFAULT) */
};

/* Zeroed, 64-byte aligned memory owned by the model (freed with it); NULL when out of
   memory.  For the loader (owned.c). */
void *zmodel_alloc(zmlx_model *m, size_t bytes);
int64_t zmodel_owned_bytes(const zmlx_model *m);
void zmodel_owned_free(zowned *c);

/* Rope frequencies inv_freq[qk_rope_head_dim / 2] (YaRN-corrected where configured:
   MODELS.md 3.3), the YaRN attention factor applied to cos/sin, and the softmax scale
   (1/sqrt(q/k head dim), times mscale(factor, mscale_all_dim)^2 under YaRN). */
void zrope_params(const zmlx_config *c, float *inv_freq, float *rope_mscale, float *attn_scale);

/* Shared by load.c and builtin.c: rope tables, scales, backend; called last. */
zmlx_status zmodel_finish(zmlx_model *m, zerr *e);

zmlx_status zmodel_load_dir(zmlx_model *m, const char *dir, zerr *e);
zmlx_status zmodel_load_builtin(zmlx_model *m, const char *spec, zerr *e);

/* Limits the kernels rely on (group count, experts per token, ...), checked at load. */
zmlx_status zmodel_check_limits(const zmlx_config *c, const char *where, zerr *e);

/* How a model stores its Linear weights: `bits` 16 = dense of `dtype`; else MLX affine
 * (bits 2..8, group 32/64/128, bf16 scales and biases) or mxfp4 (`mode`). */
typedef struct zbuiltin_quant {
    int bits, group;
    zqfmt mode;
    zdtype dtype; /* dense only; 0 = BF16 */
} zbuiltin_quant;

/* Parse `NAME[:key=value,...]` into a config and weight format for a builtin model (no
 * weights).  Default format: affine 4-bit, group 64. */
zmlx_status zbuiltin_config(const char *spec, zmlx_config *cfg, uint64_t *seed, zbuiltin_quant *q,
                            zerr *e);

/* One kind of weight matrix of a model (info.c): its module path (no tensor prefix;
   experts: expert 0), shape, how many the model holds and how many a token reads. */
typedef enum zinfo_part {
    ZI_EMBED, ZI_LM_HEAD, ZI_Q_A, ZI_Q_B, ZI_KV_A, ZI_KV_B, ZI_O, ZI_IDX_WQ_B, ZI_IDX_WK,
    ZI_IDX_W, ZI_GATE, ZI_UP, ZI_DOWN, ZI_ROUTER, ZI_EXP_GATE, ZI_EXP_UP, ZI_EXP_DOWN,
    ZI_SH_GATE, ZI_SH_UP, ZI_SH_DOWN,
    ZI_EMBED_Q, ZI_UNEMBED_OUT /* the split pair's halves (mla.c); listed as ZI_KV_B */
} zinfo_part;

typedef struct zinfo_mat {
    int layer; /* -1: embedding, lm_head */
    zinfo_part part;
    char module[128];
    int64_t rows, cols, count, active;
    bool linear; /* false: the embedding (and a tied lm_head) */
} zinfo_mat;

/* Bytes of one matrix of kind m. */
typedef int64_t (*zinfo_bytes_fn)(void *ctx, const zinfo_mat *m);

/* The figures of zmlx_model_info from the config, with each matrix's bytes from `bytes`,
   norm vectors at vec_elem bytes, and `format` as the weight format. */
void zinfo_fill(const zmlx_config *c, zinfo_bytes_fn bytes, void *ctx, int vec_elem,
                const char *format, int kv_elem_bytes, zmlx_model_info *info);
/* ... of a loaded model (its weights' zweight_bytes). */
void zinfo_model(const zmlx_model *m, int kv_elem_bytes, zmlx_model_info *info);
/* How a checkpoint's MLA kv_b is held (mla.c). */
typedef enum zinfo_mla {
    ZINFO_MLA_KV_B,    /* kv_b_proj, as stored */
    ZINFO_MLA_SPLIT,   /* mlx-lm's embed_q + unembed_out, as stored (host backends) */
    ZINFO_MLA_REBUILT, /* the split pair rebuilt into one kv_b (device backends): float32,
                          or a copy when both are dense */
} zinfo_mla;
/* ... predicted from a config and its quantization block (NULL: dense `dense` weights),
   with the MLA weights held as `mla` says. */
struct zqcfg;
void zinfo_config(const zmlx_config *c, const struct zqcfg *q, zdtype dense, zinfo_mla mla,
                  int kv_elem_bytes, zmlx_model_info *info);

/* Does this backend run the split MLA weights (embed_q / unembed_out) itself?  Host
   backends do; a device backend (model_init set) uploads kv_b, so it gets it rebuilt. */
bool zmla_split_native(const zbackend_ops *be);
/* Layer L's kv_b rebuilt from its split pair (float32, or a copy in their dtype when both
   are dense of one dtype; model-owned memory, exact), the pair then dropped.  False when
   out of memory.  zmodel_mla_rebuild does it for every split layer of a loaded host-backend
   model (the reference path of the tests). */
bool zmla_rebuild_kv_b(zmlx_model *m, zlayer *L);
zmlx_status zmodel_mla_rebuild(zmlx_model *m, zerr *e);

/* ... of a builtin's format (what builtin.c generates for q). */
void zinfo_builtin(const zmlx_config *c, const zbuiltin_quant *q, int kv_elem_bytes,
                   zmlx_model_info *info);
/* "affine4 g64", "mxfp4", "bf16": a builtin's weight format for `zmlx info`. */
void zbuiltin_quant_describe(const zbuiltin_quant *q, char *buf, size_t n);

/* A model's config without its weights (config.json or a builtin spec), the dtype of its
   dense tensors (bf16 when unknown) and, when bq is not NULL, a builtin's weight format
   (bits 16 for a directory). */
zmlx_status zmodel_read_config(const char *path, zmlx_config *c, zdtype *wdt, zbuiltin_quant *bq,
                               zerr *e);

/* An anonymous, 2 MiB-aligned mapping of `bytes` with transparent huge pages requested
   (a fifth of the page faults of 4 KiB pages when filling gigabytes); NULL on failure. */
void *zarena_map(size_t bytes, void **map, size_t *map_bytes);
void zarena_unmap(void *map, size_t map_bytes);

/* Bytes of memory this machine has available (MemAvailable), or -1 if unknown. */
int64_t zmem_available(void);

#endif
