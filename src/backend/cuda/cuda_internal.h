/*
 * cuda_internal.h — the `cuda` backend's context, shared by its C files:
 *   cuda.c    the backend table, context, device probe, error reporting
 *   upload.c  the weights on the device (one arena, stored formats)
 *   step.c    device sessions: planned buffers, the latent cache, the forward pass,
 *             and the CUDA graph of the decode step
 * Not part of any public interface.
 */
#ifndef ZMLX_BACKEND_CUDA_INTERNAL_H
#define ZMLX_BACKEND_CUDA_INTERNAL_H

#include "backend/backend.h"
#include "backend/cuda/kernels.h"
#include "model/model.h"

#include <cuda_runtime_api.h>

/* Every CUDA call and launch is checked; the message names the call site. */
zmlx_status zcu_fail(zerr *e, cudaError_t err, const char *what, const char *file, int line,
                     const char *func);
#define CU_TRY(e, call)                                                                   \
    do {                                                                                  \
        cudaError_t cu_err_ = (call);                                                     \
        if (cu_err_ != cudaSuccess)                                                       \
            return zcu_fail((e), cu_err_, #call, __FILE__, __LINE__, __func__);           \
    } while (0)

/* One layer's weights on the device (shapes as in model.h's zlayer). */
typedef struct cu_layer {
    bool moe;
    const float *attn_norm, *ffn_norm, *q_a_norm, *kv_a_norm; /* [d], [d], [q_lora], [kv_lora] */
    cuw q_a, q_b, kv_a, kv_b, o;
    cuw gate, up, down;                 /* dense MLP */
    cuw router;                         /* [E, d] */
    const float *router_bias;           /* [E] or NULL */
    cuw exp_gate, exp_up, exp_down;     /* E stacked matrices, `stride` apart */
    cuw sh_gate, sh_up, sh_down;        /* rows 0 when the model has no shared expert */
} cu_layer;

typedef struct cu_ctx {
    int device;
    char name[256];                     /* the GPU's name */
    int sms;                            /* multiprocessors */
    cudaStream_t stream;
    const zmlx_model *m;                /* host model: config, rope, scales */
    void *warena;                       /* every weight, one allocation */
    size_t wbytes;
    cu_layer *layers;                   /* [n_layers] */
    cuw embed, lm_head;
    const float *final_norm, *inv_freq;
    struct cu_ep *ep;                   /* this context's rank of several GPUs, or NULL */
    struct cu_group *group;             /* the GPUs this process drives, or NULL (ep.c) */
} cu_ctx;

/* Open `device` (-1: the current one) for c: properties, stream, kernel attributes. */
zmlx_status zcu_ctx_open(cu_ctx *c, int device, const zmlx_model *m, zerr *e);

zmlx_status zcu_upload(cu_ctx *c, const zmlx_model *m, zerr *e);
void zcu_upload_free(cu_ctx *c);

zmlx_status zcu_session_init(void *ctx, int64_t max_pos, void **dev, int64_t *bytes, zerr *e);
void zcu_session_free(void *ctx, void *dev);
zmlx_status zcu_session_eval(void *ctx, void *dev, const zdev_eval *ev, int64_t *bytes, zerr *e);

#endif
