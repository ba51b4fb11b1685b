/*
 * ep.c — the ranks of a run over several GPUs (ep.h), the host side:
 *
 *   one GPU chosen     (--gpus 3)            that device, nothing else changes
 *   one process, R GPUs (--gpus 0,1,..)      a context per GPU (rank = place in the list),
 *                                            each driven by its own worker thread; one
 *                                            ncclCommInitAll; every session call runs on
 *                                            all ranks at once (NCCL calls of different
 *                                            GPUs must be in flight together, and each
 *                                            thread captures its own decode graph)
 *   one rank of W processes (ZMLX_DIST_*)   this process's GPU, ncclCommInitRank with the
 *                                            launcher's id
 *
 * Each rank holds a contiguous slice of the routed experts (dist/part.c) and a copy of
 * everything else.  Before any weight is copied, every rank checks that its slice fits
 * the memory its GPU has free (zdist_fit: the numbers when not), and the ranks agree on
 * the outcome (an all-reduce of the failure flags, which also warms the communicator),
 * so no rank is left waiting for one that gave up.  Logits come from rank 0; every rank
 * computes the same ones (identical inputs, identical kernels), so the others write them
 * to scratch rows that nobody reads.
 */
#include "backend/cuda/cuda_internal.h"
#include "backend/cuda/ep.h"
#include "dist/dist.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef zmlx_status (*rank_fn)(cu_ctx *c, int r, void *arg, zerr *e);

typedef struct cu_group {
    int n;                              /* GPUs of this process = ranks */
    cu_ctx *ctx[ZMLX_MAX_GPUS];
    cu_ep ep[ZMLX_MAX_GPUS];
    zcu_nccl nccl;
    zcu_comm comm[ZMLX_MAX_GPUS];
    /* worker threads: one per rank, each bound to its GPU */
    pthread_t th[ZMLX_MAX_GPUS];
    int started;
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    uint64_t gen;                       /* job generation */
    int pending;
    bool quit;
    rank_fn fn;
    void *arg;
    zmlx_status st[ZMLX_MAX_GPUS];
    zerr err[ZMLX_MAX_GPUS];
} cu_group;

/* A rank of a multi-process run owns its library table next to its ep. */
typedef struct cu_solo {
    cu_ep ep; /* first: c->ep points here */
    zcu_nccl nccl;
} cu_solo;

typedef struct worker_arg {
    cu_group *g;
    int r;
} worker_arg;

static void *worker(void *p) {
    worker_arg a = *(worker_arg *)p;
    free(p);
    cu_group *g = a.g;
    uint64_t seen = 0;
    pthread_mutex_lock(&g->mu);
    for (;;) {
        while (g->gen == seen && !g->quit) pthread_cond_wait(&g->go, &g->mu);
        if (g->quit) break;
        seen = g->gen;
        rank_fn fn = g->fn;
        void *arg = g->arg;
        pthread_mutex_unlock(&g->mu);
        zmlx_status st = fn(g->ctx[a.r], a.r, arg, &g->err[a.r]);
        pthread_mutex_lock(&g->mu);
        g->st[a.r] = st;
        if (--g->pending == 0) pthread_cond_signal(&g->done);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

/* fn on every rank at once, each on its own thread; the first failure (by rank) is
   returned, its message prefixed with the GPU.  (A spinning hand-off instead of the
   condition variables was tried on 2 x H100: no change in decode tok/s.) */
static zmlx_status run_all(cu_group *g, rank_fn fn, void *arg, zerr *e) {
    pthread_mutex_lock(&g->mu);
    g->fn = fn;
    g->arg = arg;
    g->pending = g->n;
    g->gen++;
    pthread_cond_broadcast(&g->go);
    while (g->pending > 0) pthread_cond_wait(&g->done, &g->mu);
    pthread_mutex_unlock(&g->mu);
    for (int r = 0; r < g->n; r++)
        if (g->st[r] != ZMLX_OK)
            return zerr_set(e, g->st[r], "GPU %d (rank %d of %d): %s", g->ctx[r]->device, r,
                            g->n, g->err[r].msg);
    return ZMLX_OK;
}

static zmlx_status start_workers(cu_group *g, zerr *e) {
    if (pthread_mutex_init(&g->mu, NULL) || pthread_cond_init(&g->go, NULL) ||
        pthread_cond_init(&g->done, NULL))
        return zerr_set(e, ZMLX_ERR_NOMEM, "cannot make the GPU worker threads' locks");
    for (int r = 0; r < g->n; r++) {
        worker_arg *a = malloc(sizeof *a);
        if (!a) return zerr_set(e, ZMLX_ERR_NOMEM, "out of memory (GPU workers)");
        *a = (worker_arg){g, r};
        if (pthread_create(&g->th[r], NULL, worker, a)) {
            free(a);
            return zerr_set(e, ZMLX_ERR_NOMEM, "cannot start a worker thread for GPU %d", r);
        }
        g->started++;
    }
    return ZMLX_OK;
}

/* ---------------------------------------------------------------- rank steps */

/* The fit of this rank's slice (the whole model with one GPU) on its device
   (dist/part.c's account), before any upload. */
static zmlx_status fit(cu_ctx *c, const zmlx_model *m, zerr *e) {
    const zmlx_config *cf = &m->cfg;
    int l0 = 0;
    while (l0 < cf->n_layers && !m->layers[l0].moe) l0++;
    if (l0 == cf->n_layers) return ZMLX_OK; /* no routed experts: one rank (part_init) */
    size_t free_b = 0, total_b = 0;
    CU_TRY(e, cudaMemGetInfo(&free_b, &total_b));
    const int32_t rank = c->ep ? c->ep->rank : 0, n_ranks = c->ep ? c->ep->n_ranks : 1;
    zdist_part p = {.n_experts = cf->n_routed_experts, .n_ranks = n_ranks,
                    .scheme = ZDIST_CONTIGUOUS};
    zdist_where w = {.rank = rank, .n_ranks = n_ranks, .gpu = c->device, .gpu_name = c->name};
    const int64_t ctx = cf->max_position_embeddings < 4096 ? cf->max_position_embeddings : 4096;
    return zdist_fit(cf, &m->layers[l0].exp_gate[0], &m->layers[0].q_a,
                     m->kv_dtype == ZMLX_KV_BF16 ? 2 : 4, ctx, &p, &w, (int64_t)free_b, e);
}

/* Every rank learns whether any failed (sum of flags); warms the communicator too. */
static zmlx_status agree(cu_ctx *c, bool ok, bool *all_ok, zerr *e) {
    float *d = NULL;
    float h = ok ? 0.0f : 1.0f;
    CU_TRY(e, cudaMalloc((void **)&d, sizeof(float)));
    cudaError_t err = cudaMemcpyAsync(d, &h, sizeof h, cudaMemcpyHostToDevice, c->stream);
    zmlx_status st = err == cudaSuccess ? zcu_nccl_sum(c->ep->nccl, c->ep->comm, d, 1, c->stream, e)
                                        : zcu_fail(e, err, "cudaMemcpyAsync", __FILE__, __LINE__, __func__);
    if (st == ZMLX_OK) {
        err = cudaMemcpyAsync(&h, d, sizeof h, cudaMemcpyDeviceToHost, c->stream);
        if (err == cudaSuccess) err = cudaStreamSynchronize(c->stream);
        if (err != cudaSuccess) st = zcu_fail(e, err, "agreement copy", __FILE__, __LINE__, __func__);
    }
    cudaFree(d);
    *all_ok = h == 0.0f;
    return st;
}

typedef struct init_arg {
    cu_group *g;
    const zmlx_model *m;
    const int32_t *gpus;
    zerr fit_err[ZMLX_MAX_GPUS];
    bool fits[ZMLX_MAX_GPUS];
} init_arg;

static zmlx_status rank_open(cu_ctx *c, int r, void *arg, zerr *e) {
    init_arg *a = arg;
    zmlx_status st = zcu_ctx_open(c, a->gpus[r], a->m, e);
    if (st == ZMLX_OK) {
        zerr fe = {{0}};
        a->fits[r] = fit(c, a->m, &fe) == ZMLX_OK;
        a->fit_err[r] = fe;
    }
    return st;
}

/* (the group checked the fits on the host: this warms the communicators) */
static zmlx_status rank_agree(cu_ctx *c, int r, void *arg, zerr *e) {
    bool all;
    return agree(c, ((init_arg *)arg)->fits[r], &all, e);
}

static zmlx_status rank_upload(cu_ctx *c, int r, void *arg, zerr *e) {
    return zcu_upload(c, ((init_arg *)arg)->m, e);
}

/* ---------------------------------------------------------------- model init */

static zmlx_status slice(cu_ep *ep, const zmlx_model *m, int32_t rank, int32_t n_ranks, zerr *e) {
    zdist_part p;
    zmlx_status st = zdist_part_init(&p, m->cfg.n_routed_experts, n_ranks, ZDIST_CONTIGUOUS, e);
    if (st != ZMLX_OK) return st;
    ep->rank = rank;
    ep->n_ranks = n_ranks;
    ep->e0 = zdist_first(&p, rank);
    ep->ne = zdist_count(&p, rank);
    return ZMLX_OK;
}

static zmlx_status group_init(cu_ctx *c, const zmlx_model *m, zerr *e) {
    const zmlx_dist_params *d = &m->params.dist;
    cu_group *g = calloc(1, sizeof *g);
    if (!g) return zerr_set(e, ZMLX_ERR_NOMEM, "out of memory (GPU group)");
    c->group = g;
    g->n = d->n_gpus;
    int32_t count = 0;
    CU_TRY(e, cudaGetDeviceCount(&count));
    zmlx_status st = zdist_check_devices(d, count, e);
    if (st == ZMLX_OK) st = zcu_nccl_open(&g->nccl, e);
    for (int r = 0; r < g->n && st == ZMLX_OK; r++) {
        if (!(g->ctx[r] = calloc(1, sizeof(cu_ctx)))) return zerr_set(e, ZMLX_ERR_NOMEM, "out of memory");
        g->ctx[r]->device = -1;
        g->ctx[r]->ep = &g->ep[r];
        g->ep[r].nccl = &g->nccl;
        st = slice(&g->ep[r], m, r, g->n, e);
    }
    if (st == ZMLX_OK) st = start_workers(g, e);
    init_arg *a = calloc(1, sizeof *a);
    if (!a) return zerr_set(e, ZMLX_ERR_NOMEM, "out of memory");
    a->g = g, a->m = m, a->gpus = d->gpus;
    if (st == ZMLX_OK) st = run_all(g, rank_open, a, e);
    for (int r = 0; r < g->n && st == ZMLX_OK; r++)
        if (!a->fits[r]) st = zerr_set(e, ZMLX_ERR_LIMIT, "%s", a->fit_err[r].msg);
    if (st == ZMLX_OK) {
        int rc = g->nccl.comm_init_all(g->comm, g->n, d->gpus);
        if (rc) st = zcu_nccl_fail(&g->nccl, NULL, rc, "ncclCommInitAll", __FILE__, __LINE__, e);
        for (int r = 0; r < g->n && st == ZMLX_OK; r++) g->ep[r].comm = g->comm[r];
    }
    if (st == ZMLX_OK) st = run_all(g, rank_agree, a, e);
    if (st == ZMLX_OK) st = run_all(g, rank_upload, a, e);
    free(a);
    c->m = m;
    if (st == ZMLX_OK) snprintf(c->name, sizeof c->name, "%d x %.200s", g->n, g->ctx[0]->name);
    return st;
}

static zmlx_status solo_init(cu_ctx *c, const zmlx_model *m, zerr *e) {
    const zmlx_dist_params *d = &m->params.dist;
    cu_solo *o = calloc(1, sizeof *o);
    if (!o) return zerr_set(e, ZMLX_ERR_NOMEM, "out of memory (rank)");
    c->ep = &o->ep;
    o->ep.nccl = &o->nccl;
    zmlx_status st = slice(&o->ep, m, d->rank, d->world, e);
    int32_t count = 0;
    if (st == ZMLX_OK) CU_TRY(e, cudaGetDeviceCount(&count));
    if (st == ZMLX_OK) st = zdist_check_devices(d, count, e);
    if (st == ZMLX_OK) st = zcu_nccl_open(&o->nccl, e);
    if (st == ZMLX_OK) st = zcu_ctx_open(c, d->gpus[0], m, e);
    if (st != ZMLX_OK) return st;
    zcu_nccl_id id;
    memcpy(id.internal, d->id, sizeof id.internal);
    /* every rank waits here for the others (the launcher started them together) */
    NCCL_TRY(&o->nccl, NULL, e, o->nccl.comm_init_rank(&o->ep.comm, d->world, id, d->rank));
    zerr fe = {{0}};
    const bool fits = fit(c, m, &fe) == ZMLX_OK;
    bool all = false;
    st = agree(c, fits, &all, e);
    if (st != ZMLX_OK) return st;
    if (!fits) return zerr_set(e, ZMLX_ERR_LIMIT, "%s", fe.msg);
    if (!all)
        return zerr_set(e, ZMLX_ERR_LIMIT,
                        "rank %d of %d: another rank's slice does not fit its GPU (its message "
                        "says why); nothing was loaded", d->rank, d->world);
    return zcu_upload(c, m, e);
}

zmlx_status zcu_ep_model_init(cu_ctx *c, const zmlx_model *m, zerr *e) {
    const zmlx_dist_params *d = &m->params.dist;
    if (d->world > 0) return solo_init(c, m, e);
    if (d->n_gpus > 1) return group_init(c, m, e);
    int device = -1; /* one GPU: the current one, or the one --gpus names */
    if (d->n_gpus == 1) {
        int32_t count = 0;
        CU_TRY(e, cudaGetDeviceCount(&count));
        zmlx_status st = zdist_check_devices(d, count, e);
        if (st != ZMLX_OK) return st;
        device = d->gpus[0];
    }
    zmlx_status st = zcu_ctx_open(c, device, m, e);
    if (st == ZMLX_OK) st = fit(c, m, e);
    return st != ZMLX_OK ? st : zcu_upload(c, m, e);
}

/* ---------------------------------------------------------------- sessions */

typedef struct grp_sess {
    void *s[ZMLX_MAX_GPUS];
    float *logits[ZMLX_MAX_GPUS]; /* ranks > 0: rows nobody reads */
    size_t cap[ZMLX_MAX_GPUS];    /* floats */
    int64_t bytes[ZMLX_MAX_GPUS];
    int32_t amax[ZMLX_MAX_GPUS];  /* ranks > 0: greedy tokens nobody reads */
} grp_sess;

typedef struct sess_arg {
    grp_sess *gs;
    int64_t max_pos;
    const zdev_eval *ev;
} sess_arg;

static zmlx_status rank_sess_init(cu_ctx *c, int r, void *arg, zerr *e) {
    sess_arg *a = arg;
    return zcu_session_init(c, a->max_pos, &a->gs->s[r], &a->gs->bytes[r], e);
}

static zmlx_status rank_sess_free(cu_ctx *c, int r, void *arg, zerr *e) {
    sess_arg *a = arg;
    zcu_session_free(c, a->gs->s[r]);
    a->gs->s[r] = NULL;
    return ZMLX_OK;
}

static zmlx_status rank_sess_eval(cu_ctx *c, int r, void *arg, zerr *e) {
    sess_arg *a = arg;
    zdev_eval ev = *a->ev;
    if (r > 0 && ev.logits) ev.logits = a->gs->logits[r];
    if (r > 0 && ev.argmax) ev.argmax = &a->gs->amax[r];
    return zcu_session_eval(c, a->gs->s[r], &ev, &a->gs->bytes[r], e);
}

static int64_t sum_bytes(const cu_group *g, const grp_sess *gs) {
    int64_t b = 0;
    for (int r = 0; r < g->n; r++) b += gs->bytes[r];
    return b;
}

zmlx_status zcu_group_session_init(cu_ctx *c, int64_t max_pos, void **dev, int64_t *bytes,
                                   zerr *e) {
    cu_group *g = c->group;
    grp_sess *gs = calloc(1, sizeof *gs);
    if (!gs) return zerr_set(e, ZMLX_ERR_NOMEM, "out of memory (sessions)");
    sess_arg a = {.gs = gs, .max_pos = max_pos};
    zmlx_status st = run_all(g, rank_sess_init, &a, e);
    if (st != ZMLX_OK) {
        zcu_group_session_free(c, gs);
        *dev = NULL;
        return st;
    }
    *bytes = sum_bytes(g, gs);
    *dev = gs;
    return ZMLX_OK;
}

void zcu_group_session_free(cu_ctx *c, void *dev) {
    grp_sess *gs = dev;
    if (!gs) return;
    sess_arg a = {.gs = gs};
    zerr ignore;
    run_all(c->group, rank_sess_free, &a, &ignore);
    for (int r = 0; r < ZMLX_MAX_GPUS; r++) free(gs->logits[r]);
    free(gs);
}

zmlx_status zcu_group_session_eval(cu_ctx *c, void *dev, const zdev_eval *ev, int64_t *bytes,
                                   zerr *e) {
    cu_group *g = c->group;
    grp_sess *gs = dev;
    const size_t need = ev->logits ? (size_t)(ev->all_logits ? ev->n : 1) *
                                         (size_t)c->m->cfg.vocab_size : 0;
    for (int r = 1; r < g->n; r++)
        if (need > gs->cap[r]) {
            float *p = realloc(gs->logits[r], need * sizeof(float));
            if (!p) return zerr_set(e, ZMLX_ERR_NOMEM, "out of memory (logits of GPU rank %d)", r);
            gs->logits[r] = p;
            gs->cap[r] = need;
        }
    sess_arg a = {.gs = gs, .ev = ev};
    zmlx_status st = run_all(g, rank_sess_eval, &a, e);
    *bytes = sum_bytes(g, gs);
    return st;
}

/* ---------------------------------------------------------------- teardown */

static zmlx_status rank_teardown(cu_ctx *c, int r, void *arg, zerr *e) {
    cu_group *g = arg;
    if (g->comm[r]) g->nccl.comm_destroy(g->comm[r]);
    g->comm[r] = NULL;
    if (c->device >= 0) {
        zcu_upload_free(c);
        if (c->stream) cudaStreamDestroy(c->stream);
    }
    return ZMLX_OK;
}

void zcu_ep_free(cu_ctx *c) {
    cu_group *g = c->group;
    if (g) {
        zerr ignore;
        if (g->started == g->n) run_all(g, rank_teardown, g, &ignore);
        pthread_mutex_lock(&g->mu);
        g->quit = true;
        pthread_cond_broadcast(&g->go);
        pthread_mutex_unlock(&g->mu);
        for (int r = 0; r < g->started; r++) pthread_join(g->th[r], NULL);
        if (g->started) {
            pthread_mutex_destroy(&g->mu);
            pthread_cond_destroy(&g->go);
            pthread_cond_destroy(&g->done);
        }
        for (int r = 0; r < g->n; r++) free(g->ctx[r]);
        zcu_nccl_close(&g->nccl);
        free(g);
        c->group = NULL;
        return;
    }
    if (c->ep) { /* one rank of several processes */
        cu_solo *o = (cu_solo *)c->ep;
        if (o->ep.comm) o->nccl.comm_destroy(o->ep.comm);
        zcu_nccl_close(&o->nccl);
        free(o);
        c->ep = NULL;
    }
}
