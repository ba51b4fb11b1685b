/*
 * cuda_internal.h — the `cuda` backend's context and session state, shared by its C files:
 *   cuda.c    the backend table, context, device probe, error reporting
 *   upload.c  the weights on the device (one arena, stored formats)
 *   step.c    device sessions: planned buffers, the latent cache, the rope table, the
 *             eval loop and the CUDA graph of the decode step
 *   decode.c  the one-token step, stage by stage, as the layer's pattern plan says
 *   chunk.c   the prefill step of a chunk of tokens (GEMMs)
 *   indexer.c the DeepSeek-V3.2 indexer's steps (after decode.c / chunk.c's projections)
 *
 *   ep.c      several GPUs (ep.h): ranks, worker threads, NCCL; decode.c / chunk.c sum
 *             the expert outputs over the ranks inside their MoE stage
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
    const float *rbound;                /* [E] sqrt(d) ||router row e * ffn_norm||_2 (the
                                           certified route's cu_mv_route.bound), or NULL */
    cuw exp_gate, exp_up, exp_down;     /* E stacked matrices */
    cuw sh_gate, sh_up, sh_down;        /* rows 0 when the model has no shared expert */
    cuw idx_wq_b, idx_wk, idx_w;        /* DSA indexer (deepseek_v32; rows 0 otherwise) */
    const float *idx_knorm, *idx_kbias; /* [index_head_dim] */
} cu_layer;

typedef struct cu_ctx {
    int device;
    char name[256];                     /* the GPU's name */
    int sms;                            /* multiprocessors */
    bool hopper;                        /* Hopper's instructions run here (cuk_hopper_code) */
    bool pdl;                           /* programmatic dependent launch (hopper, ZMLX_CUDA_PDL != 0) */
    int attn_uv_split;                  /* cuk_attn_uv's blocks per head (ZMLX_CUDA_ATTN_UV; 0: off) */
    int attn_hb8;                       /* ZMLX_CUDA_ATTN_HB8 (cuda.c) */
    int dec_early;                      /* ZMLX_CUDA_DEC_EARLY (cuda.c; cu_attn.early) */
    int dec_q16;                        /* ZMLX_CUDA_DEC_Q16 (cuda.c; cu_attn.q16) */
    int route_cert;                     /* ZMLX_CUDA_ROUTE_CERT (cuda.c; decode.c's certified route) */
    int gemm_blas;                      /* ZMLX_CUDA_GEMM_BLAS (cuda.c; chunk.c's gemm) */
    int gemm_q4;                        /* ZMLX_CUDA_GEMM_Q4 (cuda.c; chunk.c's experts) */
    int dec_span, dec_splits;           /* decode attention: least positions a split, most splits
                                           (ZMLX_CUDA_DEC_SPAN / _SPLITS; 0: one per SM) */
    cudaStream_t stream;
    const zmlx_model *m;                /* host model: config, rope, scales, pattern plan */
    void *warena;                       /* every weight, one allocation */
    size_t wbytes;
    cu_layer *layers;                   /* [n_layers] */
    cuw embed, lm_head;
    const float *final_norm, *inv_freq;
    struct cu_ep *ep;                   /* this context's rank of several GPUs, or NULL */
    struct cu_group *group;             /* the GPUs this process drives, or NULL (ep.c) */
} cu_ctx;

/* The model's precision mode is fast: decode products of affine 4/8-bit weights take
   int8 activations (cu_q.fast). */
static inline bool zcu_fast(const cu_ctx *c) {
    return c->m && c->m->params.precision == ZMLX_PRECISION_FAST;
}

/* Open `device` (-1: the current one) for c: properties, stream, kernel attributes. */
zmlx_status zcu_ctx_open(cu_ctx *c, int device, const zmlx_model *m, zerr *e);

/* cuBLAS for the dense prefill products of fast mode (blas.c), loaded when first needed:
   the library, its handle, and the bf16 copies of a product's operands. */
typedef struct zcu_blas {
    void *handle;                       /* cublasHandle_t, NULL until zcu_blas_ready */
    struct zcu_blas_fns *fns;
    void *w16, *x16;                    /* bf16 weight [rows, cols], activations [n, cols] */
    size_t wcap, xcap;                  /* their bytes */
    bool tried;
} zcu_blas;

/* Is cuBLAS loaded and its handle made (tried once: false where libcublas is missing or
   makes no handle)?  The scratch's bytes (wcap + xcap) count in the session's. */
bool zcu_blas_ready(zcu_blas *b);
/* y[n, w.rows] (rows ldy floats apart) = x[n, w.cols] (ldx) W^T through cuBLAS on bf16
   copies of both (one matrix, no stack); after zcu_blas_ready. */
zmlx_status zcu_blas_gemm(zcu_blas *b, const cuw *w, const float *x, int64_t ldx, float *y, int64_t ldy,
                          int64_t n, cu_q q, zerr *e);
/* x [n, cols] (rows ldx floats apart) rounded to bf16 into the activation copy (grown to
   hold it; ZMLX_ERR_LIMIT where it cannot be), packed [n, cols]: *out.  x NULL: only
   grown. */
zmlx_status zcu_blas_x16(zcu_blas *b, const float *x, int64_t ldx, int64_t n, int64_t cols, cu_q q,
                         const void **out, zerr *e);
void zcu_blas_free(zcu_blas *b);

/* A captured decode step, valid for its cache capacity, pattern set and ending. */
typedef struct cu_graph {
    cudaGraphExec_t exec;
    int64_t cap;
    zpatch_set patterns;
    bool pdl;
    bool amax;                 /* ends with the argmax (one id out), not the logits */
} cu_graph;

/* The decode step's attention modes (zcu_att_mode), each captured in its own graph. */
enum { ZCU_ATT_SPLITS = 0, ZCU_ATT_SHORT = 1, ZCU_ATT_SPREAD = 2, ZCU_ATT_MODES = 3 };

/* A device session: the chunk buffers (one allocation), the cache, the decode graphs. */
typedef struct cu_sess {
    cu_ctx *c;
    int64_t max_pos, cap;
    int64_t chunk;            /* prefill tokens per chunk (<= ZCU_CHUNK; zcu_session_init) */
    bool kv_bf16;
    size_t kv_elem;
    int64_t W;                /* cache row: kv_lora + rope */
    void *cache;              /* [n_layers][cap][W] */
    float *rope_tab;          /* [cap, rope] cos | sin per position (glm47_rope) */
    void *arena;              /* the chunk buffers below, one allocation */
    float *x, *xn, *f, *xrow;  /* [C, d] residual, normed, block output, final-normed */
    float *qa;                 /* [C, q_lora] */
    float *q;                  /* [C, H, nope + rope] */
    float *kv;                 /* [C, W] */
    float *qabs;               /* [C, H, W] absorbed queries [q_lat | q_pe] */
    void *qabs16;              /* [H, W] bf16: a decode step's qabs for the tensor-core splits */
    float *olat;               /* [C, H, R] */
    float *attn;               /* [C, H * vd] */
    float *cs;                 /* [C, rope] cos | sin */
    float *part_o, *part_ml;   /* attention splits */
    float *logits;             /* [logit_rows, V]: the last row's (decode), or a group of a
                                  chunk's rows when every row's are asked for */
    int64_t logit_rows;
    float *rlog, *rw;          /* [C, E], [C, K] */
    float *rsig;               /* [E] decode's logits inside the experts' launch
                                  (cuk_glu_router; ZCU_LOGIT_UNSET between layers, set so
                                  at the start of every decode step) */
    int32_t *ridx, *goff, *glist, *gslot; /* [C, K], [E + 1], [C * K], [C, K] */
    float *ge, *ue, *de;       /* [C * K, mI], [C * K, mI], [C * K, d] */
    float *sg, *su, *sd;       /* [C, sI], [C, sI], [C, d] shared expert */
    float *hq;                 /* [K + 1] staged rows of a decode step's ge and sg (their int8
                                  form, written by the experts' launch for the combine) */
    float *rpart;              /* cuk_rpart_floats(d, E): o_proj's partials of the next
                                  router's logits (the certified route, decode.c) */
    float *dg, *du;            /* [C, I] dense MLP */
    float *ik, *iq, *iw;       /* DSA indexer: [C, dI], [C, nI, dI], [C, nI] */
    int32_t *sel, *sel_n;      /* [C, topk], [C] its selection (sel_n -1: dense) */
    int64_t sel_cap;           /* topk (1 without an indexer) */
    void *kidx;                /* [n_layers][cap][dI] indexer keys (kv dtype), or NULL */
    float *iscore;             /* [score_rows, cap] scores of score_rows queries at a time */
    int64_t score_rows;
    cu_step *d_step;
    cu_step *h_step;           /* pinned */
    float *h_logits;           /* pinned [V] */
    int32_t *d_amax, *h_amax;  /* the greedy token (zdev_eval.argmax): device, pinned */
    int32_t *d_amw;            /* cuk_argmax's work (zeroed with the arena) */
    float *lat_f32, *kvb;      /* expanded path: [xcap, R], [xcap, H * (nope + vd)] */
    void *kvb16;               /* kvb as bf16 (fast mode, bf16 cache: cuk_attn_tc16_ok) */
    float *fa_part;            /* with kvb16: its splits' partials [chunk, ZCU_FA_MAX_SPLIT, H,
                                  vd + 2] (part_o, then part_ml) */
    int64_t xcap;
    size_t xper;               /* their bytes a position */
    cu_graph graph[ZCU_ATT_MODES]; /* the decode step, one per attention mode (zcu_att_mode) */
    zcu_blas blas;             /* the chunk's dense products in fast mode (chunk.c) */
    int64_t bytes;
} cu_sess;

zmlx_status zcu_upload(cu_ctx *c, const zmlx_model *m, zerr *e);
void zcu_upload_free(cu_ctx *c);

zmlx_status zcu_session_init(void *ctx, int64_t max_pos, void **dev, int64_t *bytes, zerr *e);
void zcu_session_free(void *ctx, void *dev);
zmlx_status zcu_session_eval(void *ctx, void *dev, const zdev_eval *ev, int64_t *bytes, zerr *e);

/* Splits of the decode attention for a cache of cap positions (fixed per graph). */
int64_t zcu_dec_nsplit(const cu_sess *s, int64_t cap);

/* decode.c: enqueue the one-token absorbed step (its cu_step already on the device):
   embedding, every layer, final norm and lm_head into s->logits; pdl as the launches may
   overlap (the first kernel never does).  `att`: the step's attention mode
   (zcu_att_mode). */
zmlx_status zcu_decode(cu_sess *s, bool pdl, int att, zerr *e);
/* The attention mode of the one-token step at position pos (each has its own graph):
   ZCU_ATT_SPREAD in the spread's band of entries (cuk_attn_spread_min() ..
   cuk_attn_spread_max()) on Hopper, at most ZCU_ATTN_SPREAD_MAX_H heads, a latent that
   cuk_attn_spread_fits, no DSA (the MLA layers' attention on cuk_attn_spread, fused with
   W_UV where glm47_rope runs: the baseline and the patterns take the same walk); else
   ZCU_ATT_SHORT where the position is within the short limit and the layers may run their
   attention and W_UV as one cuk_attn_uv launch (fast mode, glm47_rope on some layer);
   ZCU_ATT_SPLITS otherwise (the splits and the merge, whose launch hosts the short path: a
   baseline session at a short context keeps this graph). */
int zcu_att_mode(const cu_sess *s, int64_t pos);

/* chunk.c: enqueue a chunk of n tokens (its cu_step on the device); T = positions after
   it; with `logits`, those of the last row into s->logits, or (all: host memory of n x
   vocab floats) of every row copied into all, s->logit_rows rows at a time. */
zmlx_status zcu_chunk(cu_sess *s, int64_t n, int64_t T, bool absorbed, int64_t nsplit,
                      bool logits, float *all, zerr *e);
/* Benchmarks (bench/cuda_decode.c): make the cache hold T positions of pseudo-random
   latents, as if a prompt of T tokens had been evaluated (the caller sets the session's
   position); decode then reads a context of T without paying for its prefill. */
zmlx_status zcu_synthetic_context(void *dev, int64_t T, uint32_t seed, zerr *e);

/* indexer.c: does the session run the DeepSeek-V3.2 indexer (the model's family)?  Its steps for layer l after
   the projections into s->ik / s->iq / s->iw (n tokens; cos | sin from `table` or
   computed; Tmax >= every query's context, <= s->cap): keys into the cache, then
   s->sel / s->sel_n. */
bool zcu_dsa(const cu_sess *s);
zmlx_status zcu_indexer(cu_sess *s, int l, int64_t n, const float *table, int64_t Tmax, cu_q q,
                        zerr *e);

/* The expanded path's per-position buffers for T positions (chunk.c). */
zmlx_status zcu_reserve_expanded(cu_sess *s, int64_t T, zerr *e);

#endif
