/*
 * indexer.h — the DeepSeek-V3.2 DSA "lightning indexer": for each query of a chunk,
 * which cached positions the MLA attention reads (index_topk of them once there are
 * more keys than that; all of them before).  Not for the attention itself (attention.c
 * passes the selection to the backend's attention kernel) and not for other families.
 *
 * Per layer, with x the normed layer input and cq the q_a_layernorm output:
 *   k_t   = rope_half(LayerNorm(wk x_t))                   [dI], cached per position
 *   q_t,h = rope_half(wq_b cq_t)_h                          [nI heads of dI]
 *   w_t,h = weights_proj(x_t)_h * nI^-0.5
 *   score_t(u) = sum_h w_t,h * relu(q_t,h · k_u * dI^-0.5)  for causal u <= t
 * rope_half rotates the first qk_rope_head_dim dims of each row, non-interleaved, with
 * the MLA's (YaRN) frequencies and attention factor.  The positions kept are the
 * index_topk best scores, ties to the lower position, listed in ascending order.  This
 * is transformers 5.17 DeepseekV32Indexer (no Hadamard rotation, no fp8); see
 * docs/deepseek_v32.md for where mlx-lm and DeepSeek's reference differ.
 */
#ifndef ZMLX_MODEL_INDEXER_H
#define ZMLX_MODEL_INDEXER_H

#include "model/session.h"

#define ZIDX_NORM_EPS 1e-6f /* k_norm eps: transformers 5.17 and DeepSeek's reference */

/*
 * Layer l's indexer on the chunk's rows (s->s.xn = x, s->s.qa = cq, s->cos_t/sin_t):
 * appends the chunk's keys to s->kidx[l] at n_past.., then fills s->s.sel / sel_n for
 * every query (sel_n[t] = -1 when position n_past+t sees no more than index_topk keys).
 */
void zidx_forward(zmlx_session *s, int l, int64_t n);

/* score[u] = sum_h w[h] * relu(heads[h * T + u] * scale) for u < T, summed in h order. */
void zidx_combine(const float *heads, int64_t n_heads, int64_t T, const float *w, float scale,
                  float *score);

/*
 * The k best of score[0..T) (higher first, ties to the lower position) as ascending
 * positions in out[]; all T when k >= T.  work needs T floats.  Returns the count
 * (k, or T; fewer only if scores hold NaN, which no finite input produces).
 */
int64_t zidx_topk(const float *score, int64_t T, int64_t k, float *work, int32_t *out);

#endif
