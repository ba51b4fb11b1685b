/*
 * kernels.h — the CUDA kernels of the `cuda` backend, as plain C launchers (callable from
 * the C orchestration in step.c, from tests/test_cuda.c and bench/).  Every launcher
 * enqueues on `st` and returns cudaGetLastError() of its launch; it never synchronises.
 * Pointers are device pointers unless a comment says otherwise; activations are float32.
 *
 * What each computes is the op of ops/ops.h (or backend/backend.h) it names; the
 * conformance test (tests/test_cuda.c) holds every kernel to that reference.
 *
 * Not for: planning buffers or deciding what runs when (step.c), weights upload (upload.c).
 */
#ifndef ZMLX_BACKEND_CUDA_KERNELS_H
#define ZMLX_BACKEND_CUDA_KERNELS_H

#include <cuda_runtime_api.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * One matrix on the device: [rows, cols] row-major, `ld` elements between rows.  `kind`
 * is the zwkind of model/weight.h (row of zwfmt_table); the dense kinds F32, F16, BF16
 * run today.  Quantized kinds will add their packed words, scales and biases here, with
 * one entry per kind in the kernels' dispatch (the backend's format table, upload.c).
 * Stacked matrices (the routed experts of a layer) are `stride` elements apart.
 */
typedef struct cuw {
    const void *data;   /* dense: elements of `kind` */
    const void *scales; /* quantized layouts (not yet): [rows, cols / group] */
    const void *biases;
    int32_t kind;       /* zwkind */
    int32_t group, bits;
    int64_t rows, cols, ld;
    int64_t stride;     /* elements between stacked matrices, 0 for one */
} cuw;

/* Is `kind` a layout these kernels run? */
bool cuk_kind_ok(int32_t kind);
/* Bytes per element of a dense kind (0 if not dense). */
int cuk_kind_size(int32_t kind);

/* What the device step reads each token: chunk start position and ids (device memory,
   so a captured graph replays with new values). */
#define ZCU_CHUNK 128 /* tokens per prefill chunk */
typedef struct cu_step {
    int32_t pos;             /* context length before the chunk */
    int32_t n;               /* tokens in the chunk */
    int32_t ids[ZCU_CHUNK];
} cu_step;

/* Once per process and device: kernel attributes (large dynamic shared memory). */
cudaError_t cuk_init(void);

/* ---------------------------------------------------------------- matvec (decode) */

/*
 * Grouped matrix-vector products, one warp per output row (float32 accumulation):
 *   for g < groups, r < rpg:
 *     W_g = w.data + (idx ? idx[g] : 0) * w.stride + (row0 + (g % gmod) * grs) * w.ld
 *     y[g * ys + r] = W_g[r] · x[g * xs .. g * xs + w.cols)
 * Plain y = W x: groups = 1, rpg = w.rows.  Per head (absorbed MLA W_UV): gmod = H.
 * Routed experts: idx = the route's expert ids (device); a group whose id is < 0 reads no
 * weights and writes +0.0 (SwiGLU: silu(0) * 0 = +0.0), an expert another GPU holds (ep.h).
 * SwiGLU (swiglu_mlp / moe_mlp) when up.data is set: up has w's layout and shape and the
 * same row mapping, and y = silu(W_g[r] · x) * (U_g[r] · x) (zop_silu_mul's roundings);
 * the two rows are read together.
 */
typedef struct cu_mv {
    cuw w;
    cuw up;             /* SwiGLU's up matrix, or data NULL */
    const int32_t *idx;
    int64_t groups, rpg, row0, grs, gmod;
    const float *x; int64_t xs;
    float *y; int64_t ys;
} cu_mv;

/* Up to ZCU_MV_JOBS independent products in one launch (one per run of jobs sharing a
   weight kind and alignment). */
#define ZCU_MV_JOBS 4
cudaError_t cuk_matvec(const cu_mv *jobs, int n_jobs, cudaStream_t st);

/*
 * Transposed grouped products (absorbed MLA: q_lat_h = W_UK[h]^T q_nope_h):
 *   y[g * ys + c] = sum_{i < nr} W[row0 + (g % gmod) * grs + i][c] * x[g * xs + i],  c < w.cols
 * in float32, rows summed in order per slice (zop_matmul_t_ref up to summation order).
 * With cs set, also the interleaved rope of x[g * xs + nr .. + rope) with the cos | sin
 * row g / gmod of cs into y[g * ys + w.cols ..) (q_pe next to q_lat; zop_rope_interleaved's
 * roundings).
 */
typedef struct cu_mvt {
    cuw w;
    int64_t nr, row0, grs, gmod, groups;
    const float *x; int64_t xs;
    float *y; int64_t ys;
    const float *cs; int64_t rope;
} cu_mvt;
cudaError_t cuk_matvec_t(const cu_mvt *p, cudaStream_t st);

/* ---------------------------------------------------------------- GEMM (prefill) */

/*
 * Y[j, r] = W[r] · X[xrow(j)]  for r < w.rows, j < n (tiled, float32 accumulation).
 *   xrow(j) = xrows ? xrows[base + j] : base + j,  output row base + j.
 * Grouped (goff != NULL, the routed experts, grid over E = `groups`): group e covers rows
 * base = goff[e] .. goff[e+1] of X/Y and uses matrix e (w.data + e * w.stride); n bounds
 * each group's size.
 */
cudaError_t cuk_gemm(cuw w, const float *x, int64_t ldx, const int32_t *xrows, float *y,
                     int64_t ldy, int64_t n, const int32_t *goff, int64_t groups,
                     cudaStream_t st);

/* ---------------------------------------------------------------- elementwise */

/* x[t, :] = embedding row ids[t] as float, t < n (ids from the step). */
cudaError_t cuk_embed(cuw w, const cu_step *step, int64_t n, float *x, cudaStream_t st);

/* y[t] = rmsnorm(x[t]) (zop_rmsnorm) for n rows of d; rows xs / ys apart; y may alias x. */
cudaError_t cuk_rmsnorm(const float *x, int64_t xs, const float *w, int64_t d, float eps,
                        float *y, int64_t ys, int64_t n, cudaStream_t st);

/*
 * x[t] += f[t], then (if w) xn[t] = rmsnorm(x[t]) — forward.c's add_norm, n rows of d.
 */
cudaError_t cuk_add_rmsnorm(float *x, const float *f, const float *w, int64_t d, float eps,
                            float *xn, int64_t n, cudaStream_t st);

/*
 * MLA projections' epilogue for token t < n at position step->pos + t:
 *   cs[t] = [cos | sin] of the position (zop_rope_table, rope/2 each)
 *   qa[t] = rmsnorm(qa[t]) (q_a_norm; skipped when qa is NULL)
 *   kv[t] = [rmsnorm(latent) | rope_interleaved(k_pe)], stored into cache row pos + t
 *           (row width R + rope, float32 or bf16)
 */
typedef struct cu_prep {
    float *kv; int64_t R, rope;   /* [n, R + rope] */
    float *qa; int64_t ql;        /* [n, ql] or NULL */
    const float *kv_norm, *q_norm;
    float eps;                    /* attn_norm_eps */
    const float *inv_freq; float mscale;
    void *cache; bool cache_bf16; /* [cap, R + rope] of this layer */
    float *cs;                    /* [n, rope] */
    const cu_step *step;
    int64_t n;
} cu_prep;
cudaError_t cuk_attn_prep(const cu_prep *p, cudaStream_t st);

/*
 * Rope of every head's q_pe in place (q: [n, H, nope + rope], cs from cuk_attn_prep);
 * when qabs is not NULL also copies the rotated q_pe to qabs[(t*H + h), R .. R + rope)
 * (rows of R + rope: the absorbed path's query rows).
 */
cudaError_t cuk_q_rope(float *q, int64_t n, int64_t H, int64_t nope, int64_t rope,
                       const float *cs, float *qabs, int64_t R, cudaStream_t st);

/* h[i] = silu(g[i]) * u[i] (zop_silu_mul), i < n. */
cudaError_t cuk_silu_mul(const float *g, const float *u, int64_t n, float *h, cudaStream_t st);

/*
 * The MoE combine in route order, float32 without contraction (moe.c):
 *   acc = sum_k w[t, k] * de[slot(t, k)]  (k ascending),  acc += sd[t] (when sd)
 *   x[t] += acc;  then, when norm_w, xn[t] = rmsnorm(x[t])
 * slot(t, k) = slot ? slot[t * K + k] : t * K + k;  K <= ZCU_COMBINE_MAX_K.
 */
#define ZCU_COMBINE_MAX_K 16
cudaError_t cuk_moe_combine(const float *w, const int32_t *slot, int64_t K, const float *de,
                            const float *sd, float *x, const float *norm_w, float eps,
                            float *xn, int64_t d, int64_t n, cudaStream_t st);

/* out[t, c] = float(cache[t, c]) for t < T, c < R (rows of width W in the cache). */
cudaError_t cuk_cache_to_f32(const void *cache, bool bf16, int64_t W, int64_t R, int64_t T,
                             float *out, cudaStream_t st);

/* ---------------------------------------------------------------- router */

/*
 * zop_route for n tokens, one warp each: logits [n, E] -> idx [n, k], w [n, k], with its
 * ordering contract (selection score descending, ties to the lower expert index) and its
 * group limit.  E <= ZCU_ROUTE_MAX_E, k <= ZCU_ROUTE_MAX_K.
 */
#define ZCU_ROUTE_MAX_E 1024
#define ZCU_ROUTE_MAX_K 16
typedef struct cu_route_cfg {
    int32_t n_experts, k, n_group, topk_group;
    bool norm_topk_prob, softmax_scoring;
    float scale;
} cu_route_cfg;
cudaError_t cuk_route(cu_route_cfg cfg, const float *logits, const float *bias, int64_t n,
                      int32_t *idx, float *w, cudaStream_t st);

/*
 * Group the n tokens' K choices by expert, as moe.c's route() does:
 *   goff[E + 1]: expert e's rows are goff[e] .. goff[e+1) (in token, then k, order)
 *   list[slot] = token of that row;  slot[t * K + k] = its row.
 */
cudaError_t cuk_moe_group(const int32_t *idx, int64_t n, int64_t K, int64_t E, int32_t *goff,
                          int32_t *list, int32_t *slot, cudaStream_t st);

/* ---------------------------------------------------------------- attention */

/*
 * Absorbed MLA attention (zattn_job with k = v = the latent rows), split over the context
 * (flash-decoding): queries q [n_q, H, W] (W = R + rope: [q_lat | q_pe]) against cache
 * rows [lat | k_pe] of width W; query i sees positions 0 .. step->pos + i.  The context
 * T = step->pos + n_q is cut into `nsplit` spans; split s writes, per (query, head), its
 * running max and sum (ml) and unnormalised sum of p_t * lat_t (o), and cuk_attn_merge
 * combines them into out [n_q, H, R].  nsplit is fixed when a graph is captured; the
 * spans follow the position read on the device.
 */
#define ZCU_ATTN_MAX_R 512 /* kv_lora_rank the absorbed kernel holds */
#define ZCU_ATTN_MAX_SPLIT 256
typedef struct cu_attn {
    const float *q;
    const void *cache; bool cache_bf16;
    int64_t n_q, H, R, rope;
    float scale;
    const cu_step *step;
    int64_t nsplit;
    float *part_o;  /* [n_q, nsplit, H, R] */
    float *part_ml; /* [n_q, nsplit, H, 2] */
    float *out;     /* [n_q, H, R] */
} cu_attn;
cudaError_t cuk_attn_absorbed(const cu_attn *p, cudaStream_t st);

/*
 * Expanded MLA attention: q [n, H, nope + rope] (q_pe rotated), per-position keys/values
 * kvb [T, H, nope + vd] (from kv_b), rope keys in the cache rows at offset R (width W);
 * query i sees positions 0 .. step->pos + i; out [n, H, vd].
 */
typedef struct cu_attn_x {
    const float *q;
    const float *kvb;
    const void *cache; bool cache_bf16;
    int64_t n, H, nope, rope, vd, R;
    float scale;
    const cu_step *step;
    float *out;
} cu_attn_x;
cudaError_t cuk_attn_expanded(const cu_attn_x *p, cudaStream_t st);

#ifdef __cplusplus
}
#endif
#endif
