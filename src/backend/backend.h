/*
 * backend.h — the backend table: a const table of function pointers plus an opaque
 * context, one per backend (ggml-backend style).  The model's forward pass calls
 * only these entries for the heavy work, so a backend is swapped without touching
 * the model code.
 *
 * Today's backends work on host memory: `cpu-ref` (the scalar reference of
 * ops/ops.h, one thread) and `cpu` (threaded, SIMD by CPU feature).  A device
 * backend (CUDA) adds its weights-upload and buffer entries here; `supports` lets the
 * loader refuse a weight format a backend cannot run.
 */
#ifndef ZMLX_BACKEND_BACKEND_H
#define ZMLX_BACKEND_BACKEND_H

#include "model/weight.h"
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
} zattn_job;

typedef struct zbackend_ops {
    const char *name;
    bool (*supports)(zdtype weight_dtype);
    zmlx_status (*init)(int threads, void **ctx);
    void (*free)(void *ctx);
    int (*threads)(const void *ctx);
    /* Run independent products, Y = X W^T each (may run in parallel). */
    void (*matmul)(void *ctx, const zmm_job *jobs, int n_jobs);
    /* Run independent transposed products, Y = X W each. */
    void (*matmul_t)(void *ctx, const zmm_job *jobs, int n_jobs);
    void (*attention)(void *ctx, const zattn_job *job);
} zbackend_ops;

extern const zbackend_ops zbackend_cpu_ref;
extern const zbackend_ops zbackend_cpu;

/* The table for a kind; NULL when this build lacks it (CUDA without nvcc). */
const zbackend_ops *zbackend_get(zmlx_backend_kind kind);

/* The per-head attention kernel every CPU backend shares (identical results). */
void zattn_head_ref(const zattn_job *j, int64_t qi, int64_t h, float *scores);

#endif
