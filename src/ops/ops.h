/*
 * ops.h — the scalar C reference of every op of the forward pass.  These are the
 * obviously-right versions: float32 inputs, float32 accumulation in index order,
 * no FMA contraction.  Fast paths (SIMD, threaded, fused, CUDA) are tested against
 * them; the `cpu-ref` backend runs them directly.
 */
#ifndef ZMLX_OPS_OPS_H
#define ZMLX_OPS_OPS_H

#include "model/weight.h"

#include <stdbool.h>
#include <stdint.h>

#define ZOP_MAX_GROUPS 256 /* zop_route's n_group limit, checked at load */

/* Row r of w · x[w.cols], float32 in column order. */
float zop_dot_row_ref(const zweight *w, int64_t r, const float *x);
/* y[n, w.rows] = x[n, w.cols] @ w^T, rows [r0, r1) of y only. */
void zop_matmul_ref(const zweight *w, const float *x, int64_t n, float *y, int64_t r0,
                    int64_t r1);
/* y[n, w.cols] = x[n, w.rows] @ w, columns [c0, c1) of y only (sum over rows in order). */
void zop_matmul_t_ref(const zweight *w, const float *x, int64_t n, float *y, int64_t c0,
                      int64_t c1);

/* y = w * (x * 1/sqrt(mean(x^2) + eps)), as transformers' RMSNorm. y may alias x. */
void zop_rmsnorm(const float *x, const float *w, int64_t d, float eps, float *y);
/* y = (x - mean) / sqrt(var + eps) * w + b (biased variance), as torch's LayerNorm.
   y may alias x. */
void zop_layernorm(const float *x, const float *w, const float *b, int64_t d, float eps,
                   float *y);

/* x += f, then y = rmsnorm(x): the same values as zop_add then zop_rmsnorm, in one pass
   (residual_norm). */
void zop_add_rmsnorm(float *x, const float *f, const float *w, int64_t d, float eps, float *y);

/* In place: rotate pairs (x[2i], x[2i+1]) by pos * inv_freq[i] (interleaved RoPE). */
void zop_rope_interleaved(float *x, int64_t d, const float *cos_t, const float *sin_t);
/* x += f, then y = rmsnorm(x): the same values as zop_add then zop_rmsnorm, in one pass
   (residual_norm). */
void zop_add_rmsnorm(float *x, const float *f, const float *w, int64_t d, float eps, float *y);

/* In place: rotate pairs (x[i], x[i + d/2]) by pos * inv_freq[i] (non-interleaved,
   "rotate-half" RoPE: the DeepSeek-V3.2 indexer). */
void zop_rope_half(float *x, int64_t d, const float *cos_t, const float *sin_t);
/* cos/sin of pos * inv_freq[i] for i < d/2, scaled by mscale (YaRN attention factor). */
void zop_rope_table(int64_t pos, const float *inv_freq, int64_t half, float mscale,
                    float *cos_t, float *sin_t);

/* In place softmax over x[n] (max-subtracted, float32). */
void zop_softmax(float *x, int64_t n);

/* h[i] = silu(g[i]) * u[i], silu(z) = z * sigmoid(z). */
void zop_silu_mul(const float *g, const float *u, int64_t n, float *h);

/* y[i] += x[i] */
void zop_add(float *y, const float *x, int64_t n);

/* Embedding row `id` of w ([vocab, d]) into out[d] as float. */
void zop_embed(const zweight *w, int32_t id, float *out);

/*
 * The DeepSeek/GLM router after the logits: p = sigmoid(logits); sel = p + bias
 * (selection only); with n_group > 1 keep the topk_group groups whose two best
 * `sel` sum highest (others -inf); take the k best `sel`.  Ordering contract
 * (SYSTEM.md section 1): the chosen experts come out sorted by `sel` descending,
 * ties to the lower expert index, and the caller sums their outputs in that order.
 * weights = p at the chosen experts, divided by (sum + 1e-20) when norm_topk_prob,
 * times `scale`.  `work` needs room for 2 * n_experts floats.
 */
typedef struct zrouter_cfg {
    int32_t n_experts, k, n_group, topk_group;
    bool norm_topk_prob;
    float scale;
    bool softmax_scoring; /* scoring_func "softmax" instead of sigmoid */
} zrouter_cfg;

void zop_route(const zrouter_cfg *cfg, const float *logits, const float *bias, float *work,
               int32_t *idx, float *weights);

#endif
