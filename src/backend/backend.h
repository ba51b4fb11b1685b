/*
 * backend.h — the backend table: a const table of function pointers plus an opaque
 * context, one per backend (ggml-backend style).  The model's forward pass calls
 * only these entries for the heavy work, so a backend is swapped without touching
 * the model code.
 *
 * Today's backends work on host memory: `cpu-ref` (the scalar reference of
 * ops/ops.h, one thread) and `cpu` (threaded, SIMD by CPU feature).  A device
 * backend (`cuda`) fills the whole-step entries at the end of the table instead (weights
 * upload, device sessions); `supports_weight` lets the loader refuse a weight format a
 * backend cannot run.
 */
#ifndef ZMLX_BACKEND_BACKEND_H
#define ZMLX_BACKEND_BACKEND_H

#include "core/err.h"
#include "model/weight.h"
#include "ops/ops.h"
#include "zmlx.h"

#include <stdbool.h>
#include <stdint.h>

/* One product Y[n, rows] = X[n, cols] @ W^T (or, transposed, Y[n, cols] = X[n, rows] @ W). */
typedef struct zmm_job {
    zweight w;
    const float *x;
    float *y;
    int64_t n;
} zmm_job;

/*
 * One head-parallel attention problem over a cache of T positions
 * (MQA: every head reads the same key/value rows).
 *   score_h(t) = scale * (q_h · k_t  +  qr_h · kr_t)      for t < T - n + i + 1 (causal)
 *   out_h      = sum_t softmax(score_h)(t) * v_t
 * Rows are float32 or bf16 (kv_dtype).  `k` and `v` may point at the same rows
 * (absorbed MLA: both are the latent); `kv_head_stride` is 0 when all heads share
 * the rows (absorbed) or the per-head offset of the expanded layout.
 *
 * Sparse attention (DeepSeek-V3.2 DSA): when `idx` is not NULL and idx_n[i] >= 0, query
 * i attends only to the positions idx[i * idx_stride + 0 .. idx_n[i] - 1] (ascending,
 * all causal), in that order; idx_n[i] < 0 (or idx NULL) is the dense causal case.
 * A list of every causal position gives the dense result bit for bit.
 */
typedef struct zattn_job {
    int64_t n_heads, n_q;                 /* heads, query positions (last n_q of T) */
    int64_t T;                            /* positions in the cache, queries included */
    int64_t dk, dr, dv;                   /* key, rope-key and value widths */
    const float *q;                       /* [n_q, n_heads, dk] */
    const float *qr;                      /* [n_q, n_heads, dr] */
    const void *k; int64_t k_stride;      /* row t of head h at k + (t*k_stride + h*k_head) */
    int64_t k_head;
    const void *kr; int64_t kr_stride;    /* rope keys, shared by heads, in kr_dtype */
    zdtype kr_dtype;
    const void *v; int64_t v_stride;
    int64_t v_head;
    zdtype kv_dtype;                      /* ZDT_F32 or ZDT_BF16 for k and v */
    float scale;
    float *out;                           /* [n_q, n_heads, dv] */
    float *scratch;                       /* n_threads * T floats */
    const int32_t *idx;                   /* NULL, or [n_q, idx_stride] selected positions */
    const int32_t *idx_n;                 /* [n_q] entries of idx per query; < 0 = dense */
    int64_t idx_stride;
} zattn_job;

/* h[n, rows] = silu(X W_gate^T) * (X W_up^T): the SwiGLU of one MLP (swiglu_mlp, moe_mlp). */
typedef struct zglu_job {
    zweight gate, up; /* [rows, cols] each */
    const float *x;   /* [n, cols] */
    float *h;         /* [n, rows] */
    int64_t n;
} zglu_job;

#define ZCOMBINE_MAX_K 16 /* experts per token a combine job holds (checked at load) */

/*
 * One token's MoE output with the down projections streamed into the weighted sum
 * (downproj_combine), never materialising the K expert outputs:
 *   acc  = sum_k w[k] * (down[k] · h[k])      in k order, float32, no FMA
 *   acc += shared                              (sh_h: computed here as sh_down · sh_h;
 *                                               else sh_out if not NULL)
 *   out  = residual ? out + acc : acc
 */
typedef struct zcombine_job {
    int k;
    zweight down[ZCOMBINE_MAX_K]; /* [d, mI] each */
    const float *h[ZCOMBINE_MAX_K];
    float w[ZCOMBINE_MAX_K];
    zweight sh_down;              /* [d, sI], used when sh_h != NULL */
    const float *sh_h;
    const float *sh_out;          /* [d] or NULL */
    float *out;                   /* [d] */
    bool residual;
} zcombine_job;

/*
 * Router logits + selection in one region (deepseek_router): logits[n, E] = X R^T,
 * then zop_route per token into idx[n, k] / w[n, k] (work: 2E floats).
 */
typedef struct zroute_job {
    zweight router; /* [E, d] */
    const float *x; /* [n, d] */
    int64_t n;
    float *logits;  /* [n, E] */
    zrouter_cfg cfg;
    const float *bias;
    float *work;
    int32_t *idx;
    float *w;
} zroute_job;

/*
 * Whole-step entries of a device backend (calm style: the backend runs the entire forward
 * pass on its own memory; the host-buffer entries above are then unused).  All NULL for
 * host backends, whose steps src/model/forward.c drives op by op.  When session_init is
 * set, src/model/session.c hands every session to these entries instead of allocating a
 * host cache.
 */
typedef struct zdev_eval {
    const int32_t *ids;   /* [n] token ids, already checked against the vocabulary */
    int64_t n;            /* tokens, at positions pos .. pos + n - 1 */
    int64_t pos;          /* context length before this call */
    float *logits;        /* host; NULL, [vocab] (last position) or [n, vocab] (all_logits) */
    int32_t *argmax;      /* host; set (logits NULL): the last position's greedy token
                             (zmlx_logits_argmax of its logits), computed where they are */
    bool all_logits;
    zmlx_attn_path path;  /* absorbed / expanded MLA, as the session asked */
} zdev_eval;

/* A device as capsules name it. */
typedef struct zdev_desc {
    char name[128];        /* "NVIDIA H200" */
    int64_t memory_bytes;  /* its memory */
    char driver[48];       /* the kernel driver's version ("580.159.04"), else "CUDA 13.0" */
    int32_t count;         /* devices the run uses (--gpus), 1 without */
} zdev_desc;

typedef struct zbackend_ops {
    const char *name;
    /* Can this backend run on this machine (a device and its driver present)?  NULL =
     * always.  Asked before any weight is loaded, so a missing GPU fails fast. */
    zmlx_status (*probe)(zerr *e);
    bool (*supports)(zdtype weight_dtype); /* dense weights of this dtype */
    /* Can this backend run w (any layout of model/weight.h: dense, affine, mxfp4, fp8
     * block)?  Implies zweight_check(w).  The loader asks this of every weight it binds;
     * `supports` (dense dtypes only) is no longer used by it. */
    bool (*supports_weight)(const zweight *w);
    zmlx_status (*init)(int threads, void **ctx);
    /* The model's precision mode (SYSTEM.md section 1), set after init and before any
     * product; NULL = the backend has one mode.  A fresh context runs exact. */
    void (*set_precision)(void *ctx, zmlx_precision p);
    void (*free)(void *ctx);
    int (*threads)(const void *ctx);
    /* Run independent products, Y = X W^T each (may run in parallel). */
    void (*matmul)(void *ctx, const zmm_job *jobs, int n_jobs);
    /* Run independent transposed products, Y = X W each. */
    void (*matmul_t)(void *ctx, const zmm_job *jobs, int n_jobs);
    void (*attention)(void *ctx, const zattn_job *job);
    /* Fused stages (patterns); every value equals the unfused chain's bit for bit. */
    void (*glu)(void *ctx, const zglu_job *jobs, int n_jobs);
    void (*combine)(void *ctx, const zcombine_job *job);
    void (*route)(void *ctx, const zroute_job *job);

    /* Device backends (see zdev_eval above); NULL elsewhere. */
    /* After loading: copy the weights (in their stored formats) to the device. */
    zmlx_status (*model_init)(void *ctx, const zmlx_model *m, zerr *e);
    /* A session's device state (latent cache, planned buffers) for up to max_pos
     * positions; *bytes = device memory it holds. */
    zmlx_status (*session_init)(void *ctx, int64_t max_pos, void **dev, int64_t *bytes,
                                zerr *e);
    void (*session_free)(void *ctx, void *dev);
    /* Run the model over ev->n tokens (the cache grows as needed; *bytes is updated). */
    zmlx_status (*session_eval)(void *ctx, void *dev, const zdev_eval *ev, int64_t *bytes,
                                zerr *e);

    /* Several GPUs (dist/dist.h); NULL where the backend has none. */
    /* The machine's devices (after probe succeeded). */
    zmlx_status (*device_count)(int32_t *n, zerr *e);
    /* A fresh NCCL unique id of ZMLX_DIST_ID_BYTES. */
    zmlx_status (*dist_id)(uint8_t *id, zerr *e);

    /* What capsules record of the device (the first of `gpus`, or the current device
       when n_gpus is 0); NULL for host backends. */
    zmlx_status (*describe)(const int32_t *gpus, int32_t n_gpus, zdev_desc *d, zerr *e);
} zbackend_ops;

extern const zbackend_ops zbackend_cpu_ref;
extern const zbackend_ops zbackend_cpu;
#ifdef ZMLX_HAVE_CUDA
extern const zbackend_ops zbackend_cuda; /* src/backend/cuda/cuda.c */
#endif

/* The NVIDIA driver's version ("580.159.04") from the text of /proc/driver/nvidia/version
   (its first token of digits and dots with a dot), into out; false if there is none. */
bool zdev_driver_version(const char *proc_text, char *out, size_t n);

/* The table for a kind; NULL when this build lacks it (CUDA without nvcc). */
const zbackend_ops *zbackend_get(zmlx_backend_kind kind);

/* The per-head attention kernel every CPU backend shares (identical results). */
void zattn_head_ref(const zattn_job *j, int64_t qi, int64_t h, float *scores);

#endif
