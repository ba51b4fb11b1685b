/*
 * convert_int.h — the pieces of `zmlx convert` shared by its files (not a public API):
 *   convert_src.c     the source tensors under their Hugging Face names, from a
 *                     checkpoint directory or a builtin model, read as float rows
 *   convert_plan.c    mlx-lm's model walked in module order: the output units
 *                     (sanitize: stacking, kv_b split, fp8; cast; quantize predicate)
 *   convert_config.c  config.json (pass-through or synthesized) and copied files
 *   convert.c         running a plan into shards in a temporary directory
 */
#ifndef ZMLX_TOOLS_CONVERT_INT_H
#define ZMLX_TOOLS_CONVERT_INT_H

#include "io/config.h"
#include "io/safetensors.h"
#include "io/st_write.h"
#include "model/weight.h"
#include "tools/convert.h"
#include "zmlx.h"

#include <jansson.h>

/* One source tensor as a matrix [rows, cols] (1-D tensors are [1, n]). */
typedef struct zcv_src {
    char *name;               /* full name in the checkpoint (with any family prefix) */
    int ndim;                 /* as stored: 1 or 2 (others cannot be used) */
    int64_t shape[2];
    zweight w;                /* dense F32/F16/BF16 or MLX-quantized; F8_E4M3: see fp8 */
    const uint8_t *fp8_scale; /* F8_E4M3 only: weight_scale_inv [ceil(r/128), ceil(c/128)] */
    zdtype fp8_sdtype;
    zdtype dtype;             /* the dtype mlx-lm holds after sanitize (fp8 -> BF16) */
    /* compressed-tensors int4 (Kimi's routed experts), listed under <base>.weight: */
    const uint8_t *i4_packed; /* <base>.weight_packed I32 [rows, cols / 8], q + 8 nibbles */
    const uint8_t *i4_scale;  /* <base>.weight_scale [rows, cols / 32] */
    zdtype i4_sdtype;
    bool used;                /* bound by the plan, or deliberately dropped */
} zcv_src;

typedef struct zcv_srcset {
    zmlx_config cfg;
    json_t *config;     /* config.json to write (before the quantization blocks) */
    zcv_src *v;         /* sorted by name */
    size_t n;
    zst_archive *ar;    /* directory sources */
    zmlx_model *model;  /* builtin sources */
    char dir[4096];     /* SRC directory ("" for builtin) */
    bool builtin;
} zcv_srcset;

/* Open SRC (directory or builtin:...) and list its tensors; config parsed.  threads:
   for generating builtin weights (0 = all cores). */
zmlx_status zcv_src_open(const char *src, int threads, zcv_srcset *s, zerr *e);
void zcv_src_close(zcv_srcset *s);
/* The source named `name` (exact), or NULL. */
zcv_src *zcv_src_find(zcv_srcset *s, const char *name);
/* Row r as float32, values exactly as mlx-lm holds them after sanitize (fp8 dequantized
   and rounded to bf16). */
void zcv_src_row(const zcv_src *t, int64_t r, float *out);
/* Element (r, c), the same values. */
float zcv_src_at(const zcv_src *t, int64_t r, int64_t c);

typedef enum zcv_op {
    ZCV_OP_COPY = 0, /* one source tensor */
    ZCV_OP_STACK,    /* n_src experts stacked along a new leading axis */
    ZCV_OP_EMBED_Q,  /* kv_b_proj -> [H, kv_lora, nope]: W_UK transposed per head */
    ZCV_OP_UNEMBED,  /* kv_b_proj -> [H, v, kv_lora]: W_UV */
} zcv_op;

/* One parameter of mlx-lm's model: a module weight (maybe quantized) or a plain array. */
typedef struct zcv_unit {
    char name[256]; /* module path ("model.layers.0.self_attn.q_a_proj") or full name */
    bool module;    /* has to_quantized in mlx-lm: outputs name.weight[, .scales, .biases] */
    zcv_op op;
    zcv_src **src;  /* n_src sources (STACK: the experts in order) */
    int n_src;
    int ndim;       /* logical (dense) shape */
    int64_t shape[3];
    int64_t rows, cols; /* prod(shape[:-1]), shape[-1] */
    zdtype dt;      /* value dtype after sanitize and cast: BF16, F16 or F32 */
    bool quant;
    bool raw_int4;  /* compressed-tensors int4 kept as MLX affine 4-bit g32 (mlx-lm's remap:
                       weight = the packed words, scales = weight_scale, biases = -8 * scale) */
    int out0, n_out; /* output tensors [out0, out0 + n_out) */
} zcv_unit;

typedef struct zcv_plan {
    zcv_unit *u;
    size_t n_units, cap_units;
    zst_wspec *out;     /* output tensors in module order (names owned) */
    size_t n_out, cap_out;
    uint64_t total_params;
    size_t n_quantized; /* modules this conversion quantizes */
    size_t n_raw_int4;  /* modules kept from compressed-tensors int4 */
} zcv_plan;

/* Walk mlx-lm's model for s->cfg: bind sources, apply the cast and the quantization
   predicate, list the outputs.  Fails naming a missing tensor, a wrong shape or an
   unused source tensor. */
zmlx_status zcv_plan_build(zcv_srcset *s, const zcv_params *p, zdtype cast, zcv_plan *plan,
                           zerr *e);
void zcv_plan_free(zcv_plan *plan);

/* Rows [r0, r0 + n) of a unit as float32 (rounded to u->dt), into out[n * cols]. */
void zcv_unit_rows(const zcv_unit *u, int64_t r0, int64_t n, float *out);

/* mlx-lm's default cast: config torch_dtype (or text_config.dtype) when it is bfloat16,
   float16 or float32, else ZDT_COUNT (keep the stored dtypes). */
zdtype zcv_config_cast(const json_t *config);
/* The config.json mlx-lm writes (sorted keys, indent 4) into dir; with int4 sources, the
   per-module entries of the modules `plan` quantizes. */
zmlx_status zcv_config_write(const zcv_srcset *s, const zcv_params *p, const zcv_plan *plan,
                             const char *dir, zerr *e);
/* Copy the tokenizer / template / generation_config / *.py files of s->dir into dir
   (builtin models: a byte-level tokenizer.json matching zmlx's fallback). */
zmlx_status zcv_copy_files(const zcv_srcset *s, const char *dir, zerr *e);
/* config.json for a builtin model, in the released checkpoints' dialect. */
json_t *zcv_builtin_config(const zmlx_config *c);

#endif
