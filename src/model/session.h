/*
 * session.h — a conversation's state: the MLA latent cache and the scratch buffers
 * of one forward chunk, planned once at session init (the cache grows by doubling up
 * to its limit; nothing else is allocated per token).
 *
 * Cache layout per layer (row t = position t), dtype f32 or bf16:
 *   lat[l]: [cap, kv_lora]   the kv_a_layernorm'd latent c_t
 *   kpe[l]: [cap, rope]      the rotated shared rope key k_pe_t
 *   kidx[l]: [cap, dI]       deepseek_v32 only: the indexer key (LayerNorm'd, rotated)
 */
#ifndef ZMLX_MODEL_SESSION_H
#define ZMLX_MODEL_SESSION_H

#include "model/model.h"

#define ZSESSION_CHUNK 128 /* prompt tokens per forward chunk */

typedef struct zscratch {
    float *x, *xn, *f;       /* [C, d] residual stream, normed input, block output */
    float *qa;               /* [C, q_lora] */
    float *q;                /* [C, H*(nope+rope)] */
    float *kv;               /* [C, kv_lora+rope] */
    float *q_nope, *q_pe;    /* [C, H, nope], [C, H, rope] */
    float *q_lat, *o_lat;    /* [C, H, kv_lora] absorbed path */
    float *attn;             /* [C, H*v] */
    float *attn_scores;      /* [threads, cap] grows with the cache */
    float *kvb;              /* [cap, H*(nope+v)] expanded path, grows with the cache */
    float *lat_f32;          /* [cap, kv_lora] expanded path input, grows with the cache */
    /* DSA indexer (deepseek_v32; one element each otherwise), see indexer.h */
    float *iq;               /* [C, nI, dI] indexer queries */
    float *ik;               /* [C, dI] indexer keys of the chunk */
    float *iw;               /* [C, nI] per-head weights */
    int32_t *sel;            /* [C, sel_cap] positions each query attends to, ascending */
    int32_t *sel_n;          /* [C] entries of sel; -1 = dense (no more than index_topk keys) */
    int64_t sel_cap;         /* min(index_topk, max positions) */
    float *i_heads;          /* [nI, cap] per-head q·k, grows with the cache */
    float *i_score, *i_work; /* [cap] index scores and the top-k work copy, grow with the cache */
    int64_t grown_cap;       /* capacity the growing buffers above hold */
    float *logits_row;       /* [C, d] normed rows for lm_head */
    /* MoE */
    float *router_logits;    /* [C, E] */
    float *route_work;       /* [2E] */
    int32_t *route_idx;      /* [C, K] */
    float *route_w;          /* [C, K] */
    int32_t *slot;           /* [C, K] row of (t, k) in the expert buffers */
    int32_t *count;          /* [E] tokens per expert, then prefix offsets */
    int32_t *offset;         /* [E+1] */
    float *xe, *de;          /* [C*K, d] gathered inputs, expert outputs */
    float *ge, *ue;          /* [C*K, mI] */
    float *sg, *su, *sd;     /* [C, mI*ns], [C, mI*ns], [C, d] shared expert */
    float *dg, *du;          /* [C, I] dense MLP */
    zmm_job *jobs;           /* room for 2E + 4 jobs, or C*H for per-head products */
    zglu_job *glu_jobs;      /* room for E + 1 fused gate/up jobs */
    int64_t n_jobs_cap;
} zscratch;

struct zmlx_session {
    zmlx_model *m;
    zmlx_session_params p;
    int64_t n_past, cap, max_pos;
    void **lat, **kpe, **kidx; /* per layer, see above */
    size_t kv_elem;          /* bytes per cache element */
    zscratch s;
    float *cos_t, *sin_t;    /* [C, rope/2] for the current chunk */
    float *rope_cos, *rope_sin; /* glm47_rope: [rope_cap, rope/2] shared table, grown x2 */
    int64_t rope_cap;
    int64_t bytes, peak;
    float *greedy_logits;    /* [vocab] zmlx_session_eval_greedy on the host, or NULL */
    char err[ZMLX_ERR_MAX];
    void *dev; /* a device backend's session (its cache and buffers), or NULL: then
                  none of the host buffers above is allocated */
};

/* Row `pos` of a per-layer cache of `n`-wide rows gets src[n] in the cache's dtype. */
static inline void zcache_store(void *cache, int64_t pos, const float *src, int64_t n,
                                size_t elem) {
    if (elem == 2) {
        uint16_t *d = (uint16_t *)cache + pos * n;
        for (int64_t i = 0; i < n; i++) d[i] = zf32_to_bf16(src[i]);
    } else {
        float *d = (float *)cache + pos * n;
        for (int64_t i = 0; i < n; i++) d[i] = src[i];
    }
}

/* One chunk through all layers; positions n_past .. n_past+n-1 already fit the cache. */
zmlx_status zforward_chunk(zmlx_session *s, const int32_t *ids, int64_t n, float *logits,
                           bool all_logits, zerr *e);
/* The attention block of layer l on s->s.xn rows -> s->s.f rows. */
void zattn_forward(zmlx_session *s, int l, int64_t n, bool absorbed);
/* The FFN (dense or MoE) of layer l on s->s.xn rows -> s->s.f rows; returns true when
   it added the residual into s->s.x itself (moe_combine). */
bool zffn_forward(zmlx_session *s, int l, int64_t n);
/* Make sure the growing buffers hold `cap` positions. */
zmlx_status zsession_reserve(zmlx_session *s, int64_t cap, zerr *e);

#endif
