/*
 * session.c — session lifetime, the planned scratch buffers, cache growth with its
 * limits (max positions, available memory), and zmlx_session_eval's chunking.
 */
#include "model/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

zmlx_session_params zmlx_session_default_params(void) {
    return (zmlx_session_params){.max_positions = 0, .attn_path = ZMLX_ATTN_AUTO};
}

static void *track(zmlx_session *s, size_t n, bool *ok) {
    void *p = calloc(1, n ? n : 1);
    if (!p) *ok = false;
    s->bytes += (int64_t)n;
    return p;
}

/* The DSA indexer's chunk buffers (deepseek_v32); one element each for other families. */
static void alloc_index_scratch(zmlx_session *s, bool *ok) {
    const zmlx_config *c = &s->m->cfg;
    const bool on = c->family == ZFAM_DEEPSEEK_V32;
    const int64_t C = ZSESSION_CHUNK, nI = on ? c->index_n_heads : 1;
    const int64_t dI = on ? c->index_head_dim : 1;
    zscratch *z = &s->s;
    z->sel_cap = on ? (c->index_topk < s->max_pos ? c->index_topk : s->max_pos) : 1;
    z->iq = track(s, (size_t)(C * nI * dI) * sizeof(float), ok);
    z->ik = track(s, (size_t)(C * dI) * sizeof(float), ok);
    z->iw = track(s, (size_t)(C * nI) * sizeof(float), ok);
    z->sel = track(s, (size_t)(C * z->sel_cap) * sizeof(int32_t), ok);
    z->sel_n = track(s, (size_t)C * sizeof(int32_t), ok);
    s->kidx = track(s, (size_t)c->n_layers * sizeof(void *), ok);
}

static zmlx_status alloc_scratch(zmlx_session *s) {
    const zmlx_config *c = &s->m->cfg;
    const int64_t C = ZSESSION_CHUNK, d = c->hidden_size, H = c->n_heads;
    const int64_t qk = c->qk_nope_dim + c->qk_rope_dim, K = c->experts_per_tok;
    const int64_t E = c->n_routed_experts > 0 ? c->n_routed_experts : 1;
    const int64_t mI = c->moe_intermediate_size, ns = c->n_shared_experts > 0 ? c->n_shared_experts : 1;
    const size_t f = sizeof(float);
    zscratch *z = &s->s;
    bool ok = true;
    z->x = track(s, C * d * f, &ok);
    z->xn = track(s, C * d * f, &ok);
    z->f = track(s, C * d * f, &ok);
    z->qa = track(s, C * (c->q_lora_rank > 0 ? c->q_lora_rank : 1) * f, &ok);
    z->q = track(s, C * H * qk * f, &ok);
    z->kv = track(s, C * (c->kv_lora_rank + c->qk_rope_dim) * f, &ok);
    z->q_nope = track(s, C * H * c->qk_nope_dim * f, &ok);
    z->q_pe = track(s, C * H * c->qk_rope_dim * f, &ok);
    z->q_lat = track(s, C * H * c->kv_lora_rank * f, &ok);
    z->o_lat = track(s, C * H * c->kv_lora_rank * f, &ok);
    z->attn = track(s, C * H * c->v_head_dim * f, &ok);
    z->logits_row = track(s, C * d * f, &ok);
    z->router_logits = track(s, C * E * f, &ok);
    z->route_work = track(s, 2 * E * f, &ok);
    z->route_idx = track(s, C * K * sizeof(int32_t), &ok);
    z->route_w = track(s, C * K * f, &ok);
    z->slot = track(s, C * K * sizeof(int32_t), &ok);
    z->count = track(s, E * sizeof(int32_t), &ok);
    z->offset = track(s, (E + 1) * sizeof(int32_t), &ok);
    z->xe = track(s, C * K * d * f, &ok);
    z->de = track(s, C * K * d * f, &ok);
    z->ge = track(s, C * K * mI * f, &ok);
    z->ue = track(s, C * K * mI * f, &ok);
    z->sg = track(s, C * mI * ns * f, &ok);
    z->su = track(s, C * mI * ns * f, &ok);
    z->sd = track(s, C * d * f, &ok);
    z->dg = track(s, C * c->intermediate_size * f, &ok);
    z->du = track(s, C * c->intermediate_size * f, &ok);
    z->n_jobs_cap = 2 * E + 4 > C * H ? 2 * E + 4 : C * H;
    z->jobs = track(s, (size_t)z->n_jobs_cap * sizeof(zmm_job), &ok);
    z->glu_jobs = track(s, (size_t)(E + 1) * sizeof(zglu_job), &ok);
    s->cos_t = track(s, C * (c->qk_rope_dim / 2) * f, &ok);
    s->sin_t = track(s, C * (c->qk_rope_dim / 2) * f, &ok);
    s->lat = track(s, (size_t)c->n_layers * sizeof(void *), &ok);
    s->kpe = track(s, (size_t)c->n_layers * sizeof(void *), &ok);
    alloc_index_scratch(s, &ok);
    return ok ? ZMLX_OK : ZMLX_ERR_NOMEM;
}

static void free_scratch(zmlx_session *s) {
    zscratch *z = &s->s;
    float *fl[] = {z->x, z->xn, z->f, z->qa, z->q, z->kv, z->q_nope, z->q_pe, z->q_lat,
                   z->o_lat, z->attn, z->attn_scores, z->kvb, z->lat_f32, z->logits_row,
                   z->router_logits, z->route_work, z->route_w, z->xe, z->de, z->ge, z->ue,
                   z->sg, z->su, z->sd, z->dg, z->du, s->cos_t, s->sin_t};
    for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++) free(fl[i]);
    free(z->route_idx);
    free(z->slot);
    free(z->count);
    free(z->iq);
    free(z->ik);
    free(z->iw);
    free(z->sel);
    free(z->sel_n);
    free(z->i_heads);
    free(z->i_score);
    free(z->i_work);
    free(z->offset);
    free(s->rope_cos);
    free(s->rope_sin);
    free(z->jobs);
    free(z->glu_jobs);
}

zmlx_status zmlx_session_init(zmlx_model *m, const zmlx_session_params *params,
                              zmlx_session **out, char *err, size_t err_size) {
    zerr e = {{0}};
    *out = NULL;
    zmlx_session *s = calloc(1, sizeof *s);
    if (!s) return ZMLX_ERR_NOMEM;
    s->m = m;
    s->p = params ? *params : zmlx_session_default_params();
    s->max_pos = m->cfg.max_position_embeddings;
    if (s->p.max_positions < 0) {
        zerr_set(&e, ZMLX_ERR_INVALID_ARG, "max_positions %lld is negative",
                 (long long)s->p.max_positions);
        free(s);
        zerr_copy(&e, err, err_size);
        return ZMLX_ERR_INVALID_ARG;
    }
    if (s->p.max_positions > 0 && s->p.max_positions < s->max_pos) s->max_pos = s->p.max_positions;
    s->kv_elem = m->kv_dtype == ZMLX_KV_BF16 ? 2 : 4;
    if (m->be->session_init) { /* a device backend keeps the cache and buffers itself */
        zmlx_status st = m->be->session_init(m->be_ctx, s->max_pos, &s->dev, &s->bytes, &e);
        if (st != ZMLX_OK) {
            zerr_copy(&e, err, err_size);
            free(s);
            return st;
        }
        s->peak = s->bytes;
        *out = s;
        return ZMLX_OK;
    }
    zmlx_status st = alloc_scratch(s);
    if (st == ZMLX_OK) st = zsession_reserve(s, s->max_pos < 256 ? s->max_pos : 256, &e);
    else zerr_set(&e, st, "out of memory allocating the session's scratch buffers");
    if (st != ZMLX_OK) {
        zerr_copy(&e, err, err_size);
        zmlx_session_free(s);
        return st;
    }
    s->peak = s->bytes;
    *out = s;
    return ZMLX_OK;
}

void zmlx_session_free(zmlx_session *s) {
    if (!s) return;
    if (s->dev) s->m->be->session_free(s->m->be_ctx, s->dev);
    for (int l = 0; l < s->m->cfg.n_layers && s->lat; l++) {
        free(s->lat[l]);
        free(s->kpe[l]);
        if (s->kidx) free(s->kidx[l]);
    }
    free(s->lat);
    free(s->kpe);
    free(s->kidx);
    free(s->greedy_logits);
    free_scratch(s);
    free(s);
}

void zmlx_session_reset(zmlx_session *s) {
    s->n_past = 0;
    s->err[0] = '\0';
}

int64_t zmlx_session_n_past(const zmlx_session *s) {
    return s->n_past;
}

const char *zmlx_session_error(const zmlx_session *s) {
    return s->err;
}

int64_t zmlx_session_peak_bytes(const zmlx_session *s) {
    return s->peak;
}

static bool grow(void **p, size_t bytes) {
    void *q = realloc(*p, bytes);
    if (!q) return false;
    *p = q;
    return true;
}

/* Bytes per position of the DSA indexer: every layer's keys plus the scoring buffers. */
static int64_t index_bytes_per_pos(const zmlx_session *s) {
    const zmlx_config *c = &s->m->cfg;
    if (c->family != ZFAM_DEEPSEEK_V32) return 0;
    return (int64_t)c->n_layers * c->index_head_dim * (int64_t)s->kv_elem +
           (int64_t)sizeof(float) * (c->index_n_heads + 2);
}

static bool grow_index(zmlx_session *s, int64_t cap) {
    const zmlx_config *c = &s->m->cfg;
    if (c->family != ZFAM_DEEPSEEK_V32) return true;
    zscratch *z = &s->s;
    bool ok = true;
    for (int l = 0; l < c->n_layers; l++)
        ok = ok && grow(&s->kidx[l], (size_t)(cap * c->index_head_dim) * s->kv_elem);
    ok = ok && grow((void **)&z->i_heads, (size_t)(cap * c->index_n_heads) * sizeof(float));
    ok = ok && grow((void **)&z->i_score, (size_t)cap * sizeof(float));
    return ok && grow((void **)&z->i_work, (size_t)cap * sizeof(float));
}

zmlx_status zsession_reserve(zmlx_session *s, int64_t want, zerr *e) {
    const zmlx_config *c = &s->m->cfg;
    if (want <= s->cap) return ZMLX_OK;
    int64_t cap = s->cap ? s->cap : 256;
    while (cap < want) cap *= 2;
    if (cap > s->max_pos) cap = s->max_pos;
    const int64_t row = c->kv_lora_rank + c->qk_rope_dim;
    const int64_t H = c->n_heads, T = s->m->be->threads(s->m->be_ctx);
    const int64_t per_pos = c->n_layers * row * (int64_t)s->kv_elem +
                            (int64_t)sizeof(float) * (H * (c->qk_nope_dim + c->v_head_dim) +
                                                      c->kv_lora_rank + T) +
                            index_bytes_per_pos(s);
    const int64_t need = (cap - s->cap) * per_pos;
    const int64_t avail = zmem_available();
    if (avail >= 0 && need > avail - (avail / 16)) {
        return zerr_set(e, ZMLX_ERR_LIMIT,
                        "context of %lld positions needs %.1f MiB more for the KV cache and "
                        "attention buffers, but only %.1f MiB of memory is available; use a "
                        "shorter prompt/--max-tokens or --kv-dtype bf16",
                        (long long)want, (double)need / 1048576.0, (double)avail / 1048576.0);
    }
    bool ok = true;
    for (int l = 0; l < c->n_layers; l++) {
        ok = ok && grow(&s->lat[l], (size_t)(cap * c->kv_lora_rank) * s->kv_elem);
        ok = ok && grow(&s->kpe[l], (size_t)(cap * c->qk_rope_dim) * s->kv_elem);
    }
    zscratch *z = &s->s;
    ok = ok && grow((void **)&z->attn_scores, (size_t)(T * cap) * sizeof(float));
    ok = ok && grow((void **)&z->kvb, (size_t)(cap * H * (c->qk_nope_dim + c->v_head_dim)) * sizeof(float));
    ok = ok && grow((void **)&z->lat_f32, (size_t)(cap * c->kv_lora_rank) * sizeof(float));
    ok = ok && grow_index(s, cap);
    if (!ok)
        return zerr_set(e, ZMLX_ERR_LIMIT, "out of memory growing the KV cache to %lld positions",
                        (long long)cap);
    s->bytes += need;
    if (s->bytes > s->peak) s->peak = s->bytes;
    s->cap = cap;
    z->grown_cap = cap;
    return ZMLX_OK;
}

/* zmlx_session_eval, or (argmax set, logits NULL) its greedy form: a device backend takes
   the argmax where the logits are and returns one id. */
static zmlx_status session_eval(zmlx_session *s, const int32_t *ids, size_t n, float *logits,
                                int all_logits, int32_t *argmax) {
    zerr e = {{0}};
    zmlx_status st = ZMLX_OK;
    const zmlx_config *c = &s->m->cfg;
    s->err[0] = '\0';
    if (n == 0) {
        st = zerr_set(&e, ZMLX_ERR_INVALID_ARG, "no tokens to evaluate");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= c->vocab_size) {
            st = zerr_set(&e, ZMLX_ERR_INVALID_ARG,
                          "token id %d at position %zu is outside the vocabulary [0, %d)", ids[i],
                          i, c->vocab_size);
            goto out;
        }
    }
    if ((int64_t)n > s->max_pos - s->n_past) {
        st = zerr_set(&e, ZMLX_ERR_LIMIT,
                      "context would reach %lld tokens, past the limit of %lld positions "
                      "(max_position_embeddings or the session limit)",
                      (long long)(s->n_past + (int64_t)n), (long long)s->max_pos);
        goto out;
    }
    if (s->dev) { /* the whole step on the device */
        zdev_eval ev = {.ids = ids, .n = (int64_t)n, .pos = s->n_past, .logits = logits,
                        .all_logits = all_logits != 0, .argmax = argmax, .path = s->p.attn_path};
        st = s->m->be->session_eval(s->m->be_ctx, s->dev, &ev, &s->bytes, &e);
        if (st == ZMLX_OK) s->n_past += (int64_t)n;
        if (s->bytes > s->peak) s->peak = s->bytes;
        goto out;
    }
    st = zsession_reserve(s, s->n_past + (int64_t)n, &e);
    if (st != ZMLX_OK) goto out;
    for (size_t done = 0; done < n;) {
        int64_t m = (int64_t)(n - done) < ZSESSION_CHUNK ? (int64_t)(n - done) : ZSESSION_CHUNK;
        bool last = done + (size_t)m == n;
        float *dst = NULL;
        if (logits && all_logits) dst = logits + done * (size_t)c->vocab_size;
        else if (logits && last) dst = logits;
        st = zforward_chunk(s, ids + done, m, dst, all_logits != 0, &e);
        if (st != ZMLX_OK) goto out;
        done += (size_t)m;
    }
out:
    if (st != ZMLX_OK) snprintf(s->err, sizeof s->err, "%s", e.msg);
    return st;
}

zmlx_status zmlx_session_eval(zmlx_session *s, const int32_t *ids, size_t n, float *logits,
                              int all_logits) {
    return session_eval(s, ids, n, logits, all_logits, NULL);
}

zmlx_status zmlx_session_eval_greedy(zmlx_session *s, const int32_t *ids, size_t n, int32_t *next) {
    const int32_t V = s->m->cfg.vocab_size;
    if (s->dev) return session_eval(s, ids, n, NULL, 0, next);
    if (!s->greedy_logits && !(s->greedy_logits = malloc((size_t)V * sizeof(float)))) {
        snprintf(s->err, sizeof s->err, "out of memory (logits of %d tokens)", V);
        return ZMLX_ERR_NOMEM;
    }
    zmlx_status st = session_eval(s, ids, n, s->greedy_logits, 0, NULL);
    if (st == ZMLX_OK) *next = zmlx_logits_argmax(s->greedy_logits, V);
    return st;
}
