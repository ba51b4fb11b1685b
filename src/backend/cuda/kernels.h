/*
 * kernels.h — the CUDA kernels of the `cuda` backend, as plain C launchers (callable from
 * the C orchestration in step.c / stage.c, from tests/test_cuda*.c and bench/).  Every
 * launcher enqueues on q.st and returns cudaGetLastError() of its launch; it never
 * synchronises.  Pointers are device pointers unless a comment says otherwise;
 * activations are float32.
 *
 * What each computes is the op of ops/ops.h (or backend/backend.h) it names; the
 * conformance test (tests/test_cuda_kernels.c) holds every kernel to that reference.
 *
 * Every kernel is built with --fmad=false and writes each fused multiply-add explicitly
 * (fmaf), so a fused kernel (a pattern) and the unfused chain it replaces share one
 * arithmetic: the same device functions (common.cuh, dot.cuh) give the same bits.
 *
 * Programmatic dependent launch (Hopper): with q.pdl set, a kernel may start while the
 * previous one on the stream finishes; it prefetches its weights into L2 and waits
 * (griddepcontrol.wait) before it reads anything an earlier kernel wrote.
 *
 * Not for: planning buffers or deciding what runs when (step.c, stage.c), weights upload
 * (upload.c).
 */
#ifndef ZMLX_BACKEND_CUDA_KERNELS_H
#define ZMLX_BACKEND_CUDA_KERNELS_H

#include <cuda_runtime_api.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* How a launch runs: its stream, whether it may overlap its predecessor (PDL), and the
   precision mode (SYSTEM.md section 1): with `fast`, the decode products of MLX affine 4-
   and 8-bit weights (cuk_matvec, cuk_combine) take int8 activations (q8.cuh, the CPU's
   xq.h quantization), and the prefill GEMMs and dense expanded attention run on the
   tensor cores with bf16 operands (kernels_gemm_tc.cu, kernels_attn_tc.cu); every other
   kernel and layout computes as in exact mode.  Fused and unfused launches of one mode
   share one arithmetic (the patterns stay bit-exact). */
typedef struct cu_q {
    cudaStream_t st;
    bool pdl;
    bool fast;
} cu_q;

/* Element type of the scales / biases of a quantized weight. */
enum { CU_SDT_BF16 = 0, CU_SDT_F16, CU_SDT_F32, CU_SDT_E8M0 };

/*
 * One matrix on the device in its stored layout (zwkind of model/weight.h): [rows, cols]
 * row-major, `ld` BYTES between rows of `data`.  Dense kinds (F32, F16, BF16): elements.
 * Quantized kinds (affine 2-8 bit, mxfp4): packed codes (the little-endian bit stream of
 * weight.h), scales (and, affine, biases) [rows, cols / group] of `sdt`.  Stacked matrices
 * (a layer's routed experts) are `stride` bytes (data) and `sstride` elements (scales and
 * biases) apart.  cols is a multiple of 32 for every kind (checked at upload).
 */
typedef struct cuw {
    const void *data;
    const void *scales, *biases;
    int32_t kind;       /* zwkind */
    int32_t group;      /* quantized: elements per scale */
    int32_t sdt;        /* CU_SDT_* */
    int64_t rows, cols;
    int64_t ld;         /* bytes between rows of data */
    int64_t stride;     /* bytes between stacked matrices' data, 0 for one */
    int64_t sstride;    /* scale / bias elements between stacked matrices */
} cuw;

/* Is `kind` a layout these kernels run? */
bool cuk_kind_ok(int32_t kind);
/* Does fast mode give `kind` int8 activations (cu_q.fast)? */
bool cuk_q8_kind(int32_t kind);
/* Bytes of one row of `cols` elements of `kind` (packed data only). */
int64_t cuk_row_bytes(int32_t kind, int64_t cols);

/* What the device step reads each token: chunk start position and ids (device memory,
   so a captured graph replays with new values). */
#define ZCU_CHUNK 1024 /* most tokens per prefill chunk (a session's: cu_sess.chunk) */
typedef struct cu_step {
    int32_t pos;             /* context length before the chunk */
    int32_t n;               /* tokens in the chunk */
    int32_t ids[ZCU_CHUNK];
} cu_step;

/* Once per process and device: kernel attributes (large dynamic shared memory). */
cudaError_t cuk_init(void);

/* Do this build's kernels carry Hopper's instructions on the current device: compute
   capability 9 or later AND device code compiled for sm_90 or later (a binary built only
   for older targets runs here through their PTX, compiled at load with those
   instructions left out)?  Programmatic dependent launch (the kernels' griddepcontrol)
   and the spread (thread-block clusters, distributed shared memory) need both. */
bool cuk_hopper_code(void);

/* ---------------------------------------------------------------- router */

#define ZCU_ROUTE_MAX_E 1024
/* A router logit not yet written (all ones: a NaN the device's arithmetic never makes,
   its NaNs being 0x7fffffff), where the experts' launch computes the logits itself
   (cuk_glu_router). */
#define ZCU_LOGIT_UNSET 0xffffffffu
#define ZCU_ROUTE_MAX_K 16
typedef struct cu_route_cfg {
    int32_t n_experts, k, n_group, topk_group;
    bool norm_topk_prob, softmax_scoring;
    float scale;
} cu_route_cfg;

/*
 * zop_route for n tokens, one warp each: logits [n, E] -> idx [n, k], w [n, k], with its
 * ordering contract (selection score descending, ties to the lower expert index) and its
 * group limit.  E <= ZCU_ROUTE_MAX_E, k <= ZCU_ROUTE_MAX_K.
 */
cudaError_t cuk_route(cu_route_cfg cfg, const float *logits, const float *bias, int64_t n,
                      int32_t *idx, float *w, cu_q q);

/*
 * Group the n tokens' K choices by expert, as moe.c's route() does:
 *   goff[E + 1]: expert e's rows are goff[e] .. goff[e+1) (in token, then k, order)
 *   list[slot] = token of that row;  slot[t * K + k] = its row.
 */
cudaError_t cuk_moe_group(const int32_t *idx, int64_t n, int64_t K, int64_t E, int32_t *goff,
                          int32_t *list, int32_t *slot, cu_q q);

/* ---------------------------------------------------------------- matvec (decode) */

/* Epilogue of a matvec job. */
enum {
    CU_EPI_STORE = 0, /* y = W x */
    CU_EPI_SWIGLU,    /* y = silu(W x) * (U x), zop_silu_mul's roundings */
    CU_EPI_ADD,       /* y = y + W x (the residual add folded into the projection) */
};

/*
 * Grouped matrix-vector products of one token, one warp per output row (rows summed in
 * one fixed order whatever the kernel: dot.cuh):
 *   for g < groups, r < rpg:
 *     W_g = (the expert idx[g], or the route's g-th choice, of a stack; else the matrix)
 *           rows row0 + (g % gmod) * grs + r
 *     y[g * ys + r] = epi(W_g[r] · x_g),   x_g = x + g * xs
 * Plain y = W x: groups = 1, rpg = w.rows.  Per head (absorbed MLA W_UV): gmod = H.
 * `norm` (only with xs = 0): x is the residual stream and the product reads
 * rmsnorm(x) * norm (zop_rmsnorm, the order of cuk_rmsnorm) computed on load.
 * `route` (moe_mlp): the expert of group g is the g-th choice of zop_route over
 * route.logits (one token), computed in each block as cuk_route does; block 0 also writes
 * the choices to route.idx / route.w.
 * Expert slice (several GPUs, ep.h; ne > 0 with idx or route): the stack holds experts
 * [e0, e0 + ne) as matrices 0 .. ne - 1; a group whose expert lies outside reads no
 * weights and writes epi(+0.0) (SwiGLU: silu(0) * 0 = +0.0), another GPU's expert.
 */
typedef struct cu_mv_route {
    const float *logits, *bias;
    cu_route_cfg cfg;
    int32_t *idx;
    float *w;
    /* cuk_glu_router only, the certified route (optional, part NULL: off): the router's
       logits estimated from the previous launch's partial sums (cu_mv.rp: nparts rows of
       cfg.n_experts partial logits, then the partial sum of squares), with a bound on
       their distance from the exact logits (bound[e] = sqrt(d) * ||router row e * norm
       weights||_2, from the stored weights at upload); a route whose picks and their order that bound
       cannot change runs at once, any other waits for the exact logits as without it.
       stat (tests; NULL in a decode): int32 [3] — routes certified, routes that waited,
       and the largest |estimate - exact| / bound seen, as float bits. */
    const float *part, *bound;
    int32_t nparts;
    int32_t *stat;
} cu_mv_route;

/* The next MoE router's partial logits in the blocks of a plain affine 4-bit projection
   (o_proj: cuk_matvec, one job; cuk_rpart_blocks says whether it can and in how many
   blocks).  Block b of the launch writes out[b * (E + 1) + e] = sum over its outputs i
   (y_i after the epilogue, in order) of (w[e][i] * g[i]) * y_i, and out[b * (E + 1) + E]
   = the sum of their squares.  w: bf16 [E, rows of the job]; g: the router's RMSNorm
   weights. */
typedef struct cu_rpart {
    cuw w;
    const float *g;
    float *out;
} cu_rpart;

typedef struct cu_mv {
    cuw w;
    cuw up;                     /* SwiGLU's up matrix (CU_EPI_SWIGLU), same layout and shape */
    const int32_t *idx;         /* expert of each group, or NULL */
    bool routed;                /* experts from `route` (idx unused) */
    cu_mv_route route;
    int64_t groups, rpg, row0, grs, gmod;
    const float *x; int64_t xs;
    const float *norm; float eps;
    float *y; int64_t ys;
    int32_t epi;
    int32_t e0, ne;             /* expert slice (ne 0: every expert of the stack) */
    float *yq; int32_t yq_group; /* cuk_glu_router only (cuk_glu_router_yq_ok): also y's rows
                                   staged as k_combine stages them for affine 4-bit rows in
                                   groups of yq_group (fast mode's int8 form, dot.cuh's layout,
                                   row g at yq + g * stage_floats(rpg, true)) — its hq */
    cu_rpart rp;                /* rp.out non-NULL: also the router's partial logits (cu_rpart) */
    const void *l2; int64_t l2_bytes; /* the rows-early lean launches: bytes the launch's blocks
                                   ask L2 for before the wait, a slice each (the next launch's
                                   constants), or NULL */
} cu_mv;

/* Up to ZCU_MV_JOBS independent products in one launch (one per run of jobs sharing a
   weight kind). */
#define ZCU_MV_JOBS 4
cudaError_t cuk_matvec(const cu_mv *jobs, int n_jobs, cu_q q);

/*
 * The router's logits and the routed experts' SwiGLU in one launch (moe_mlp): `router`
 * (bf16 rows, normalised on load, y = the experts' route.logits) runs in the launch's
 * first blocks, the experts' blocks (jobs: the routed experts, then optionally the shared
 * expert) route once those logits are all written.  The logits buffer must hold
 * ZCU_LOGIT_UNSET (all ones) before the launch and is set back by the next cuk_combine
 * (cu_combine.reset), so no other kernel may use it.  The same bits as cuk_matvec of the
 * router, then of the jobs.  cuk_glu_router_ok: can it run these (else two launches).
 */
bool cuk_glu_router_ok(const cu_mv *router, const cu_mv *jobs, int n, cu_q q);
bool cuk_glu_router_yq_ok(const cu_mv *router, const cu_mv *jobs, int n, cu_q q);
int64_t cuk_stage_floats(int64_t cols); /* a staged row's floats in fast mode (dot.cuh) */
cudaError_t cuk_glu_router(const cu_mv *router, const cu_mv *jobs, int n, cu_q q);

/* Blocks in which cuk_matvec runs the one job p with its router partials (p->rp), 0 where
   it cannot (then cuk_matvec of it fails); cuk_rpart_floats: the floats p->rp.out needs
   for a job of `rows` outputs and E experts. */
int32_t cuk_rpart_blocks(const cu_mv *p, cu_q q);
int64_t cuk_rpart_floats(int64_t rows, int32_t E);

/* A staged row's layout (dot.cuh's stage_store, xstage_at; q8.cuh), in slices of nup
   floats, nup the row's 32-column units rounded up to a multiple of 32: the floats
   (permuted float4s, 32 slices), each unit's sum, then in fast mode each unit's int8
   codes (8 slices), its scale and its codes' sum.  A row is ZCU_STG_EXACT or
   ZCU_STG_FAST slices (stage_floats). */
enum {
    ZCU_STG_SUM = 32,   /* float: the unit's sum (affine layouts) */
    ZCU_STG_Q = 33,     /* int8 x 32 a unit (fast) */
    ZCU_STG_D = 41,     /* float: the unit's int8 scale (fast) */
    ZCU_STG_QS = 42,    /* int: the sum of the unit's codes (fast) */
    ZCU_STG_EXACT = 33, /* slices of an exact row */
    ZCU_STG_FAST = 43   /* slices of a fast row */
};
/* A slice's floats for a row of nu units (nup; the argument's integer type kept) */
#define ZCU_STG_NUP(nu) (((nu) + 31) / 32 * 32)

/*
 * The MoE output of one token with the down projections streamed into the weighted sum
 * (downproj_combine):
 *   acc = sum_k w[k] * (down_{idx[k]}[r] · h_k)   in k order (route order), no FMA
 *   acc = acc + sh_down[r] · sh_h   (sh_h set)   or   acc + sh_out[r]   (sh_out set)
 *   residual ? x[r] = x[r] + acc : out[r] = acc
 * h_k = h + k * hs.  The dot products are those of cuk_matvec (bit for bit).
 * hq (optional): h's K rows, then sh_h, as cuk_glu_router's yq wrote them (their staged
 * int8 form, cuk_stage_floats(down.cols) floats a row); where the kernel stages h itself
 * in fast mode (affine 4-bit rows in registers, K <= 4) it copies those instead of reading
 * and quantizing h in every block — the same values, so the same bits.  h stays required.
 */
typedef struct cu_combine {
    cuw down;
    const int32_t *idx;
    const float *w;
    int64_t K;
    const float *h; int64_t hs;
    cuw sh_down;                /* rows 0 when unused */
    const float *sh_h;
    const float *sh_out;
    float *x;                   /* residual: updated in place */
    float *out;                 /* !residual */
    bool residual;
    float *reset; int32_t nreset; /* set to ZCU_LOGIT_UNSET after the wait (cuk_glu_router's logits) */
    const float *hq;            /* h (+ sh_h) already staged, or NULL (above) */
} cu_combine;
cudaError_t cuk_combine(const cu_combine *p, cu_q q);

/*
 * Transposed grouped products (absorbed MLA: q_lat_h = W_UK[h]^T q_nope_h):
 *   y[g * ys + c] = sum_{i < nr} W[row0 + (g % gmod) * grs + i][c] * x[g * xs + i],  c < w.cols
 * in float32, the weight dequantized as the reference does (s * q + b), rows summed in
 * order per slice.  With rope > 0, also the interleaved rope of x[g * xs + nr .. + rope)
 * into y[g * ys + w.cols ..) (q_pe next to q_lat; zop_rope_interleaved's roundings) at
 * position step->pos + g / gmod: cos | sin from `table` (glm47_rope) or computed as
 * zop_rope_table does (the same values).
 * With `prep` set, the launch also runs cuk_attn_prep's work for that (one-token) step in
 * extra blocks (the latent's norm, k_pe's rope, the cache write): one launch fewer.
 */
typedef struct cu_prep cu_prep;
typedef struct cu_mvt {
    cuw w;
    int64_t nr, row0, grs, gmod, groups;
    const float *x; int64_t xs;
    float *y; int64_t ys;
    int64_t rope;
    const float *inv_freq; float mscale;
    const float *table;
    const cu_step *step;
    const cu_prep *prep;  /* host pointer, copied into the launch; or NULL */
    void *y16;            /* or NULL: y's rows also as bf16 (round to nearest even), same layout */
} cu_mvt;
cudaError_t cuk_matvec_t(const cu_mvt *p, cu_q q);

/* ---------------------------------------------------------------- GEMM (prefill) */

/*
 * Y[j, r] = W[r] · X[xrow(j)]  for r < w.rows, j < n (tiled, float32, the weight
 * dequantized on the fly as the reference does).
 *   xrow(j) = xrows ? xrows[base + j] : base + j,  output row base + j.
 * Grouped (goff != NULL, the routed experts, grid over E = `groups`): group e covers rows
 * base = goff[e] .. goff[e+1] of X/Y and uses matrix e of the stack; n bounds each
 * group's size.
 */
cudaError_t cuk_gemm(cuw w, const float *x, int64_t ldx, const int32_t *xrows, float *y,
                     int64_t ldy, int64_t n, const int32_t *goff, int64_t groups, cu_q q);
/* Fast mode's tensor-core form (bf16 operands, float32 sums; cuk_gemm takes it when
   q.fast and cuk_gemm_tc_ok: x 16-byte aligned, ldx a multiple of 4). */
bool cuk_gemm_tc_ok(cuw w, const float *x, int64_t ldx);
cudaError_t cuk_gemm_tc(cuw w, const float *x, int64_t ldx, const int32_t *xrows, float *y,
                        int64_t ldy, int64_t n, const int32_t *goff, int64_t groups, cu_q q);

/* Fast mode's form for affine 4-bit weights with bf16 or f16 scales (kernels_gemm_q4.cu):
   cuk_gemm's contract with X already rounded to bf16 (x [.., ldx] bf16, 16-byte aligned,
   ldx % 8 == 0; cuk_to_bf16), the same values as cuk_gemm_tc's bit for bit; for the
   layouts cuk_gemm_q4_ok accepts (groups of 32 or more, cols a multiple of 64, at most 64
   groups a row, 16-byte aligned rows, scales and biases).  Grouped, `tot` bounds the rows
   of all groups together (goff[groups] - goff[0]; 0: unknown) and sizes the grid. */
bool cuk_gemm_q4_ok(cuw w);
cudaError_t cuk_gemm_q4(cuw w, const void *x, int64_t ldx, const int32_t *xrows, float *y,
                        int64_t ldy, int64_t n, const int32_t *goff, int64_t groups, int64_t tot, cu_q q);
/* Two such products of one shape over the same x (the experts' gate and up) in one
   launch, each tile 64 rows of both: y = x W^T, y2 = x W2^T, the same values; for w and
   w2 that cuk_gemm_q4_pair_ok accepts (both cuk_gemm_q4_ok, one kind, shape, group and
   scale type). */
bool cuk_gemm_q4_pair_ok(cuw w, cuw w2);
cudaError_t cuk_gemm_q4_pair(cuw w, cuw w2, const void *x, int64_t ldx, const int32_t *xrows, float *y,
                             float *y2, int64_t ldy, int64_t n, const int32_t *goff, int64_t groups,
                             int64_t tot, cu_q q);

/* The bf16 operands of the cuBLAS form of a dense GEMM (blas.c): matrix e of w
   dequantized (deq8's values rounded to nearest even: the tile kernel's) into dst [rows,
   cols], and x [n, cols] (rows ldx floats apart, 16-byte aligned, ldx % 4 == 0) rounded
   into dst [n, cols]; dst 16-byte aligned. */
cudaError_t cuk_deq_bf16(cuw w, int64_t e, void *dst, cu_q q);
cudaError_t cuk_to_bf16(const float *x, int64_t ldx, int64_t n, int64_t cols, void *dst, cu_q q);

/* ---------------------------------------------------------------- elementwise */

/* x[t, :] = embedding row ids[t] dequantized (the reference's values), t < n. */
cudaError_t cuk_embed(cuw w, const cu_step *step, int64_t n, float *x, cu_q q);

/* out = the first index of the largest of x[0 .. n) (zmlx_logits_argmax: NaN never wins,
   x[0] NaN gives 0).  work: cuk_argmax_work_bytes() of device memory, 8-byte aligned,
   zero before the first launch (each launch leaves it so); one launch at a time. */
size_t cuk_argmax_work_bytes(void);
cudaError_t cuk_argmax(const float *x, int64_t n, int32_t *work, int32_t *out, cu_q q);

/* y[t] = rmsnorm(x[t]) * w (zop_rmsnorm; canonical order of common.cuh) for n rows of d;
   rows xs / ys apart; y may alias x. */
cudaError_t cuk_rmsnorm(const float *x, int64_t xs, const float *w, int64_t d, float eps,
                        float *y, int64_t ys, int64_t n, cu_q q);

/* x[t] = x[t] + f[t], then (if w) xn[t] = rmsnorm(x[t]) * w — n rows of d. */
cudaError_t cuk_add_rmsnorm(float *x, const float *f, const float *w, int64_t d, float eps,
                            float *xn, int64_t n, cu_q q);

/*
 * The rope cos | sin table rows [p0, p1) (zop_rope_table's values: cos / sin of
 * pos * inv_freq[i] in double, times mscale, rounded to float), rows of `rope` floats.
 */
cudaError_t cuk_rope_table(float *table, int64_t p0, int64_t p1, const float *inv_freq,
                           float mscale, int64_t rope, cu_q q);

/*
 * MLA projections' epilogue for token t < n at position step->pos + t:
 *   cs[t] = [cos | sin] of the position (zop_rope_table, rope/2 each), or row pos + t of
 *           `table` when it is set (glm47_rope: the same values)
 *   qa[t] = rmsnorm(qa[t]) (q_a_norm; skipped when qa is NULL)
 *   kv[t] = [rmsnorm(latent) | rope_interleaved(k_pe)], stored into cache row pos + t
 *           (row width R + rope, float32 or bf16)
 */
struct cu_prep {
    float *kv; int64_t R, rope;   /* [n, R + rope] */
    float *qa; int64_t ql;        /* [n, ql] or NULL */
    const float *kv_norm, *q_norm;
    float eps;                    /* attn_norm_eps */
    const float *inv_freq; float mscale;
    const float *table;           /* NULL: cos/sin computed here */
    void *cache; bool cache_bf16; /* [cap, R + rope] of this layer */
    float *cs;                    /* [n, rope] */
    const cu_step *step;
    int64_t n;
};
cudaError_t cuk_attn_prep(const cu_prep *p, cu_q q);

/*
 * Rope of every head's q_pe in place (q: [n, H, nope + rope], cs from cuk_attn_prep);
 * when qabs is not NULL also copies the rotated q_pe to qabs[(t*H + h), R .. R + rope).
 */
cudaError_t cuk_q_rope(float *q, int64_t n, int64_t H, int64_t nope, int64_t rope,
                       const float *cs, float *qabs, int64_t R, cu_q q_);

/* h[i] = silu(g[i]) * u[i] (zop_silu_mul), i < n. */
cudaError_t cuk_silu_mul(const float *g, const float *u, int64_t n, float *h, cu_q q);

/*
 * The MoE combine in route order, float32 without contraction (moe.c):
 *   acc = sum_k w[t, k] * de[slot(t, k)]  (k ascending),  acc += sd[t] (when sd)
 *   x ? (x[t] += acc, then when norm_w xn[t] = rmsnorm(x[t])) : out[t] = acc
 * slot(t, k) = slot ? slot[t * K + k] : t * K + k;  K <= ZCU_COMBINE_MAX_K.
 */
#define ZCU_COMBINE_MAX_K 16
cudaError_t cuk_moe_combine(const float *w, const int32_t *slot, int64_t K, const float *de,
                            const float *sd, float *x, float *out, const float *norm_w,
                            float eps, float *xn, int64_t d, int64_t n, cu_q q);

/* n elements (f32 or bf16) of pseudo-random values in [-1, 1) from `seed` (benchmarks:
   a synthetic context). */
cudaError_t cuk_fill_random(void *p, int64_t n, bool bf16, uint32_t seed, cu_q q);

/* out[t, c] = float(cache[t, c]) for t < T, c < R (rows of width W in the cache). */
cudaError_t cuk_cache_to_f32(const void *cache, bool bf16, int64_t W, int64_t R, int64_t T,
                             float *out, cu_q q);

/* ---------------------------------------------------------------- attention */

/*
 * Absorbed MLA attention (zattn_job with k = v = the latent rows), split over the context
 * (flash-decoding): queries q [n_q, H, W] (W = R + rope: [q_lat | q_pe]) against cache
 * rows [lat | k_pe] of width W; query i sees positions 0 .. step->pos + i.  A block takes
 * up to 32 heads (all of GLM's 20) and one span of positions, so the cache is streamed
 * once per head block; the context T = step->pos + n_q is cut into `nsplit` spans; split
 * s writes, per (query, head), its running max and sum (ml) and unnormalised sum of
 * p_t * lat_t (o), and a merge kernel combines them into out [n_q, H, R].  nsplit is
 * fixed when a graph is captured; the spans follow the position read on the device.
 */
#define ZCU_ATTN_MAX_R 512 /* kv_lora_rank the absorbed kernel holds */
#define ZCU_ATTN_MAX_SPLIT 256
#define ZCU_ATTN_SHORT 160 /* entries up to which a query takes the short path (attn.cuh; on an
                              H100 the splits win beyond about 170) */
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
    int32_t hb;     /* heads per block: 0 = as many as fit (the cache read once per token);
                       8 = more, smaller blocks (the float32 splits; a measuring knob) */
    int32_t short_max; /* set by cuk_attn_absorbed: queries of at most this many entries
                          take the short path (attn.cuh; 0 = none) */
    bool spread;       /* one dense query on the spread (cuk_attn_spread; Hopper) instead
                          of the splits and the merge */
    int64_t cap;       /* positions the cache holds (the decode graph's capacity; 0 = not
                          known): the tensor-core splits take 64-row tiles where it gives
                          every split two of them */
    const void *q16;   /* or NULL: q as bf16 (cu_mvt.y16 of the same rows); the tensor-core
                          splits copy it instead of converting q */
    bool early;        /* the decode step (decode.c): every cache row but the step's own
                          was written before its first launch, and the step too, so the
                          tensor-core splits read the step and ask for a first tile
                          without the step's row, and the short path and the spread
                          (cuk_attn_uv, cuk_attn_spread) read the step, before they wait
                          for their predecessor (dense only) */
    /* DeepSeek-V3.2 sparse attention (zattn_job's idx): when idx is set and idx_n[i] >= 0,
       query i reads only the idx_n[i] positions idx[i * idx_stride ..] (ascending), cut
       into the splits as a context of that length; idx_n[i] < 0 is the dense case. */
    const int32_t *idx, *idx_n;
    int64_t idx_stride;
} cu_attn;
cudaError_t cuk_attn_absorbed(const cu_attn *p, cu_q q);
/* Fast mode's split kernel on the tensor cores (cuk_attn_absorbed takes it when q.fast,
   hb != 8 and cuk_attn_dec_tc_ok: a bf16 cache, R and W multiples of 16, R <= 512, W <=
   640, tiles that fit the device's shared memory): bf16 queries and probabilities,
   float32 scores and sums; the same splits and merge. */
bool cuk_attn_dec_tc_ok(const cu_attn *p);
cudaError_t cuk_attn_dec_tc(const cu_attn *p, cu_q q);

/* Entries up to which a decode query takes the short path (ZCU_ATTN_SHORT, or lower
   with ZMLX_CUDA_ATTN_SHORT; 0 = never): where cuk_attn_uv may run. */
int32_t cuk_attn_short_max(void);

/*
 * The absorbed attention of one token at a short or middle context with its W_UV product
 * in one launch (glm47_rope's decode): y_h = W_UV[h] o_lat_h for every head, what
 *   cuk_attn_absorbed(at)  o_lat_h over positions 0 .. step->pos
 *   cuk_matvec(uv)         y_h = W_UV[h] o_lat_h
 * compute, bit for bit, except that at.out and the splits' buffers are neither read nor
 * written (o_lat stays on chip).  One query (at.n_q == 1), dense (at.idx NULL), fast
 * mode, W_UV affine 4- or 8-bit with bf16 scales (MLX's), R <= 512; `split` blocks per
 * head, each computing 1/split of W_UV's rows.  Without at.spread each block walks all
 * entries (the short path: step->pos + 1 <= cuk_attn_short_max(), the launch traps
 * otherwise); with it (split == ZCU_ATTN_SPREAD_N, Hopper) the blocks of a head share
 * them as cuk_attn_spread does.
 */
typedef struct cu_attn_uv {
    cu_attn at;
    cu_mv uv;
    int32_t split;
} cu_attn_uv;
bool cuk_attn_uv_ok(const cu_attn_uv *p, cu_q q);
cudaError_t cuk_attn_uv(const cu_attn_uv *p, cu_q q);

/*
 * The spread (cuk_attn_absorbed with at.spread; Hopper: thread-block clusters): one dense
 * query's heads, each on a cluster of ZCU_ATTN_SPREAD_N blocks that share its entries
 * (block b's warp w walks entries 8 b + w, 8 b + w + 64, ... as the short path's warps
 * do) and merge their states through distributed shared memory into o_lat_h in at.out
 * (kernels_attn_uv.cu).  Float32 throughout, tokens-class as the short path and the
 * splits (a third order of the same sums).  The decode takes it in its band (below), in
 * the baseline and the patterns alike (the same bits: cuk_attn_uv's spread is the same
 * walk and merge).
 */
#define ZCU_ATTN_SPREAD_N 8     /* blocks a head (a cluster) */
#define ZCU_ATTN_SPREAD_MAX 768 /* entries up to which the decode takes the spread (H100: +0.7%
                                  at 768-832, -1.2% at 1,024-1,088; docs/cuda.md) */
#define ZCU_ATTN_SPREAD_MIN 64  /* entries past which it does (below, where it can, the short
                                   path: faster at 16-80, slower at 64-160 on an H100) */
#define ZCU_ATTN_SPREAD_MAX_H 32 /* heads up to which the decode takes it (measured with
                                    GLM-4.7-Flash's 20; DeepSeek-V3's 128 and Kimi-K2.5's 64,
                                    whose splits share each cache row among 32 heads, keep
                                    the splits until measured) */
/* The decode's spread band: entries in (cuk_attn_spread_min(), cuk_attn_spread_max()]
   (ZMLX_CUDA_ATTN_SPREAD_MIN / _MAX; _MAX 0 = never). */
int32_t cuk_attn_spread_min(void);
int32_t cuk_attn_spread_max(void);
/* Does the spread take a latent of R columns with rope more (the kernel's shapes)? */
bool cuk_attn_spread_fits(int64_t R, int64_t rope);
cudaError_t cuk_attn_spread(const cu_attn *p, cu_q q);

/*
 * Expanded MLA attention: q [n, H, nope + rope] (q_pe rotated), per-position keys/values
 * kvb [T, H, nope + vd] (from kv_b), rope keys in the cache rows at offset R (width W);
 * query i sees positions 0 .. step->pos + i; out [n, H, vd].
 */
typedef struct cu_attn_x {
    const float *q;
    const float *kvb;
    const void *kvb16;            /* kvb rounded to bf16, or NULL (cuk_attn_tc16_ok) */
    int64_t nsplit, split_tiles;  /* kvb16 only: the keys cut into nsplit spans of split_tiles
                                     tiles of 64 (cuk_attn_tc16_split; <= 1: one span) ... */
    float *part_o, *part_ml;      /* ... whose partial sums [n, nsplit, H, vd] and (m, l)
                                     [n, nsplit, H, 2] a merge kernel combines */
    const void *cache; bool cache_bf16;
    int64_t n, H, nope, rope, vd, R;
    float scale;
    const cu_step *step;
    float *out;
    const int32_t *idx, *idx_n;   /* sparse attention, as cu_attn */
    int64_t idx_stride;
} cu_attn_x;
cudaError_t cuk_attn_expanded(const cu_attn_x *p, cu_q q);
/* Fast mode's tensor-core form (bf16 operands; cuk_attn_expanded takes it when q.fast and
   cuk_attn_tc_ok): dense attention, qk and vd multiples of 16 up to 256, tiles that fit
   the device's shared memory. */
bool cuk_attn_tc_ok(const cu_attn_x *p);
cudaError_t cuk_attn_tc(const cu_attn_x *p, cu_q q);
/* Would cuk_attn_tc read its tiles from kvb16 (its bf16 twin, cuk_to_bf16's rounding: the
   same bits) by cp.async?  A bf16 cache, 8-column alignment, Hopper's shared memory;
   ZMLX_CUDA_FA_ASYNC=0: never (for measuring).  kvb16 need not be set yet. */
bool cuk_attn_tc16_ok(const cu_attn_x *p);
/* Spans of the keys for cuk_attn_tc16 (p->n, p->H; T = the chunk's last position + 1; sms
   multiprocessors): blocks (head, 128 queries) are one per multiprocessor, so where they
   are fewer than two a multiprocessor (a short prompt, or a chunk of 1,024: 160 for GLM's
   20 heads, a wave and a fifth) the keys are cut in two (ZMLX_CUDA_FA_SPLITS=N: N spans,
   at most ZCU_FA_MAX_SPLIT; 1 = never, for measuring). */
#define ZCU_FA_MAX_SPLIT 4
void cuk_attn_tc16_split(cu_attn_x *p, int64_t T, int sms);

/* ---------------------------------------------------------------- DSA indexer */

/*
 * The DeepSeek-V3.2 lightning indexer (model/indexer.h) for the n tokens of a step at
 * positions step->pos + t:
 *   cuk_idx_prep:   k[t] = rope_half(LayerNorm_{1e-6}(k[t]) * knorm + kbias), stored into
 *                   cache row pos + t; every head of q[t] rope_half'd; w[t] *= nI^-0.5
 *                   (cos | sin from `table` row pos + t, or computed: the same values)
 *   cuk_idx_select: for rows t0 .. t0 + nt of the step (query t sees T = pos + t + 1
 *                   keys): T <= topk: sel_n[t] = -1 (dense); else
 *                   score(u) = sum_h w[t,h] relu((q[t,h] · k_u) dI^-0.5), u < T, into
 *                   score[(t - t0) * score_ld ..], and the topk best (ties to the lower
 *                   position) as ascending positions in sel[t * topk ..], sel_n[t] = topk.
 *                   Tmax bounds T over the launch (the cache capacity in a graph).
 * Everything float32 (keys cached in f32 or bf16).  nI <= ZCU_IDX_MAX_HEADS, dI a
 * multiple of 8 up to ZCU_IDX_MAX_DIM, rope even and <= dI.
 */
#define ZCU_IDX_MAX_HEADS 64
#define ZCU_IDX_MAX_DIM 128
typedef struct cu_idx {
    float *k, *q, *w;               /* [n, dI], [n, nI, dI], [n, nI] */
    const float *knorm, *kbias;     /* [dI] */
    int64_t nI, dI, rope;
    const float *table;             /* rope table [cap, rope] or NULL */
    const float *inv_freq; float mscale;
    void *cache; bool cache_bf16;   /* the layer's indexer keys [cap, dI] */
    float *score; int64_t score_ld; /* [rows, score_ld] */
    int32_t *sel, *sel_n;           /* [n, topk], [n] */
    int64_t topk;
    const cu_step *step;
    int64_t n;
} cu_idx;
cudaError_t cuk_idx_prep(const cu_idx *p, cu_q q);
cudaError_t cuk_idx_select(const cu_idx *p, int64_t t0, int64_t nt, int64_t Tmax, cu_q q);

#ifdef __cplusplus
}
#endif
#endif
