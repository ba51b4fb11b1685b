/*
 * qconfig.h — the quantization a config.json declares, in the three dialects the
 * supported checkpoints use (MODELS.md 1.2, 1.3, 4.1):
 *
 *   MLX (mlx_lm.convert -q)     "quantization": {"group_size": G, "bits": B, "mode": M,
 *                                 "<module path>": false | true | {group_size, bits, mode}}
 *                               (the identical "quantization_config" copy is not read)
 *   fp8 (DeepSeek-V3 / V3.2)    "quantization_config": {"quant_method": "fp8", "fmt": "e4m3",
 *                                 "weight_block_size": [128, 128], ...}
 *   compressed-tensors (Kimi)   "quantization_config": {"quant_method": "compressed-tensors",
 *                                 "format": "pack-quantized", "config_groups": {...},
 *                                 "ignore": ["lm_head", "re:.*self_attn.*", ...]}
 *
 * Looked up in this order (the first present wins, as mlx-lm): top-level "quantization",
 * top-level "quantization_config", then the same two keys inside the text model's object
 * (Kimi's text_config).  Every field that changes how weights are read is validated;
 * errors name the file, the field and the value.
 *
 * What it is not for: reading tensors.  zqcfg_module() says what the config declares
 * for one module; the loader (model/load_weight.c) checks the stored tensors against it.
 */
#ifndef ZMLX_IO_QCONFIG_H
#define ZMLX_IO_QCONFIG_H

#include "core/err.h"

#include <jansson.h>
#include <stdbool.h>

typedef enum zqmethod {
    ZQM_NONE = 0,   /* no quantization block: every weight dense */
    ZQM_MLX,        /* "quantization": MLX affine / mxfp4 */
    ZQM_FP8,        /* quant_method fp8: e4m3 weights + weight_scale_inv per block */
    ZQM_COMPRESSED, /* quant_method compressed-tensors, pack-quantized symmetric ints */
} zqmethod;

typedef enum zqmode {
    ZQMODE_DENSE = 0,
    ZQMODE_AFFINE,    /* MLX affine: w = scale * q + bias */
    ZQMODE_MXFP4,     /* MLX mxfp4: E2M1 codes, E8M0 scale per 32 */
    ZQMODE_FP8_BLOCK, /* e4m3 * scale of the group x group block */
    ZQMODE_INT_SYM,   /* compressed-tensors: w = scale * (q - 2^(bits-1)), q unsigned */
} zqmode;

/* How one module is stored. */
typedef struct zqmod {
    zqmode mode;
    int bits;  /* AFFINE 2..8, MXFP4 4, FP8_BLOCK 8, INT_SYM 2..8 */
    int group; /* elements per scale along the input dim (FP8_BLOCK: the block side) */
} zqmod;

/* What the config declares for one module. */
typedef enum zqdecl {
    ZQDECL_DENSE = 0, /* must be stored dense */
    ZQDECL_QUANT,     /* must be stored quantized as *mod says */
    ZQDECL_IF_STORED, /* quantized as *mod says if its tensors say so, else dense
                         (MLX without a per-module entry: "<path>.scales" decides, as
                         mlx-lm; fp8: "<path>.weight_scale_inv" decides) */
} zqdecl;

typedef struct zqcfg zqcfg;

/*
 * Parse the quantization block of a config.json whose top level is `root` and whose
 * text model is `text` (== root except for Kimi's text_config).  `text_scope` prefixes
 * the text model's keys in messages ("" or "text_config.").  On success *out is NULL
 * when there is no quantization block (out may be NULL to validate only).
 */
zmlx_status zqcfg_parse(const json_t *root, const json_t *text, const char *text_scope,
                        const char *fname, zqcfg **out, zerr *e);
void zqcfg_free(zqcfg *q);

zqmethod zqcfg_method(const zqcfg *q);
const char *zqmethod_name(zqmethod m);
const char *zqmode_name(zqmode m);

/*
 * The declaration for module `path` (e.g. "model.layers.3.mlp.experts.7.gate_proj",
 * with the checkpoint's tensor prefix; `prefix` is that prefix, "" or "language_model.",
 * tried both with and without for compressed-tensors names).  `linear` is false for the
 * token embedding (compressed-tensors "Linear" targets do not match it).  A NULL q
 * declares every module dense.
 */
zqdecl zqcfg_module(const zqcfg *q, const char *path, const char *prefix, bool linear,
                    zqmod *mod);

/* A one-line rendering of a JSON value for error messages (config.c, shared). */
const char *zcfg_json_show(const json_t *v, char *buf, size_t n);

/* A short description for `zmlx info` ("fp8 e4m3 b128", "int4 g32", "affine4 g64"). */
void zqcfg_describe(const zqcfg *q, char *buf, size_t n);

#endif
