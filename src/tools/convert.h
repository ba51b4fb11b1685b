/*
 * convert.h — `zmlx convert`: a Hugging Face checkpoint (or a builtin synthetic model)
 * written as the MLX checkpoint mlx-lm's `mlx_lm.convert` makes of it.
 *
 * What is written (docs/convert.md has the long form):
 *   - the tensors of mlx-lm's model after its `sanitize`: routed experts stacked into
 *     `mlp.switch_mlp.{gate,up,down}_proj` [E, out, in], kv_b_proj split into
 *     `self_attn.embed_q` [H, kv_lora, nope] and `self_attn.unembed_out` [H, v, kv_lora],
 *     DeepSeek fp8 blocks dequantized to bf16, the MTP layer and rotary tables dropped;
 *   - floating tensors cast to --dtype, or by default to config.json's torch_dtype when
 *     it names one (mlx-lm's rule), except the router's e_score_correction_bias;
 *   - quantized with mx.quantize's arithmetic (ops/quant.h) every module mlx-lm's
 *     nn.quantize picks: Linear / Embedding / SwitchLinear / MultiLinear weights whose
 *     last dimension is a multiple of the group size (the router gate and all norms stay
 *     dense);
 *   - mlx-lm's shards (5 GiB, module order) + index, config.json with the `quantization`
 *     and `quantization_config` blocks (keys sorted, json.dump indent 4), and the
 *     tokenizer, chat template, generation_config.json and *.py files of SRC copied.
 * Everything goes to DST.tmp-XXXXXX next to DST, renamed to DST at the end; on any
 * failure or cancellation the temporary directory is removed.
 */
#ifndef ZMLX_TOOLS_CONVERT_H
#define ZMLX_TOOLS_CONVERT_H

#include "core/dtype.h"
#include "core/err.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum zcv_qmode {
    ZCV_Q_NONE = 0, /* keep weights dense (mlx_lm.convert without -q) */
    ZCV_Q_AFFINE,   /* bits 2, 3, 4, 5, 6, 8; group 32, 64, 128 */
    ZCV_Q_MXFP4,    /* bits 4, group 32 */
} zcv_qmode;

typedef struct zcv_progress {
    size_t tensors_done, tensors_total; /* output tensors */
    uint64_t bytes_done, bytes_total;   /* output bytes */
    const char *current;                /* the module or tensor just written */
} zcv_progress;

typedef void (*zcv_progress_fn)(void *ctx, const zcv_progress *p);

typedef struct zcv_params {
    zcv_qmode mode;
    int bits, group;
    zdtype dtype;    /* cast of unquantized floating tensors: ZDT_BF16, ZDT_F32, or
                        ZDT_COUNT for mlx-lm's default (torch_dtype, else as stored) */
    bool force;      /* replace an existing DST */
    int threads;     /* 0 = all online cores */
    zcv_progress_fn progress; /* may be NULL; called from the calling thread */
    void *progress_ctx;
    volatile sig_atomic_t *cancel; /* may be NULL; non-zero stops the conversion */
} zcv_params;

typedef struct zcv_summary {
    size_t n_tensors, n_quantized; /* output tensors; modules quantized */
    size_t n_kept_int4;            /* modules kept from compressed-tensors int4 */
    int n_shards;
    uint64_t total_bytes;      /* tensor bytes (the index's total_size) */
    uint64_t total_parameters; /* the index's total_parameters */
    char model_type[32];
    bool writing; /* set once SRC and the plan were fine: a later failure is a write failure */
} zcv_summary;

zcv_params zcv_default_params(void);

/* Check the quantization arguments (bits/group/mode combination); false + message. */
bool zcv_params_check(const zcv_params *p, zerr *e);

/*
 * Convert SRC (a checkpoint directory or builtin:NAME[:k=v,...]) into DST.  Returns
 * ZMLX_ERR_INVALID_ARG when DST exists (and !force) or the parameters are bad, the
 * loader's status for a bad SRC, ZMLX_ERR_IO for write failures, ZMLX_ERR_LIMIT when
 * cancelled; out->writing tells a failure while writing from one before (out may be
 * NULL).
 */
zmlx_status zcv_convert(const char *src, const char *dst, const zcv_params *p, zcv_summary *out,
                        zerr *e);

#endif
