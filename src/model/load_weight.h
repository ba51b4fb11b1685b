/*
 * load_weight.h — resolving one logical weight matrix of a checkpoint directory in
 * whatever layout it is stored (model/load_weight.c), for the model binder (load.c).
 * Internal to src/model.
 *
 * Stored layouts of the module `<base>` (docs/formats.md):
 *   dense     <base>.weight                         F32 / F16 / BF16
 *   MLX       <base>.weight U32 + .scales + .biases   affine (scales BF16 / F16 / F32)
 *             <base>.weight U32 + .scales U8         mxfp4
 *   fp8       <base>.weight F8_E4M3 + .weight_scale_inv [ceil(rows/B), ceil(cols/B)]
 *   int       <base>.weight_packed I32 + .weight_scale + .weight_shape   (compressed-
 *             tensors symmetric; becomes MLX affine with biases -2^(bits-1) * scale made
 *             here, or float32 when cols is not a multiple of the group)
 * Each is checked against the declaration of io/qconfig.h for the module (a per-module
 * MLX entry included), the shapes the config implies, and the backend's supports_weight.
 */
#ifndef ZMLX_MODEL_LOAD_WEIGHT_H
#define ZMLX_MODEL_LOAD_WEIGHT_H

#include "io/qconfig.h"
#include "model/model.h"

typedef struct zloader {
    zmlx_model *m;
    const char *dir;
    const zqcfg *q; /* NULL: no quantization block */
    zerr *e;
    zmlx_status st; /* of the first failure */
} zloader;

/* What the config implies for one weight. */
typedef struct zwant {
    int64_t rows, cols; /* of one matrix */
    int64_t stack;      /* 0: stored [rows, cols]; E > 0: stored stacked [E, rows, cols] (MLX
                           switch_mlp, embed_q / unembed_out), returned as [E * rows, cols] */
    bool linear;        /* false for the token embedding (compressed-tensors "Linear") */
    bool dense_only;    /* the MoE router: never quantized, by every reference */
} zwant;

/* Module `fmt...` (tensor prefix added, no ".weight" suffix) into *w; false with ld->st
   and the message set.  *w points into the mapped checkpoint or model-owned memory. */
bool zload_weight(zloader *ld, const zwant *want, zweight *w, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A float vector [n] (norm weight, bias; F32 / F16 / BF16) `fmt...` (prefix added) into
   out[n] as float32. */
bool zload_vector(zloader *ld, float *out, int64_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Is any tensor of module `fmt...` (".weight", ".weight_packed") in the checkpoint? */
bool zload_has(const zloader *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
