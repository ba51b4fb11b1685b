/*
 * fused.c — the `cpu` backend's pattern kernels.  Each computes exactly the values of
 * the unfused chain (same per-row dot products from the same ISA kernel, the same
 * elementwise expressions in the same order) in fewer parallel regions and passes:
 *   glu      gate + up + SiLU*up of many MLPs in one region (swiglu_mlp, moe_mlp)
 *   route    router logits in row blocks; the task that finishes the last block runs
 *            the selection, inside the same region (deepseek_router)
 *   combine  K down projections + weighted sum (+ shared) (+ residual) in one region,
 *            without a (K, d) buffer (downproj_combine, moe_combine)
 * Tasks are blocks of output rows; each thread works in its own scratch tiles.
 */
#include "backend/cpu/cpu_internal.h"
#include "ops/ops.h"

#include <stdatomic.h>

#define MAX_GLU_JOBS 512
#define GLU_TALL 256 /* rows of a decode glu task */

typedef struct glu_region {
    const cpu_ctx *ctx;
    const zglu_job *jobs;
    int64_t first_task[MAX_GLU_JOBS + 1];
    int64_t tile_rows[MAX_GLU_JOBS]; /* rows per task; the tile holds ZCPU_TILE^2 / them tokens */
} glu_region;

/* Rows per glu task: few tokens (decode) take taller tiles, so that each kernel call
 * streams longer runs of the weights; the scratch tile is ZCPU_TILE^2 values either way. */
static int64_t glu_tile_rows(int64_t n) {
    return n <= ZCPU_TILE * ZCPU_TILE / GLU_TALL ? GLU_TALL : ZCPU_TILE;
}

static void glu_task(void *arg, int64_t task, int thread) {
    const glu_region *r = arg;
    int j = 0;
    while (r->first_task[j + 1] <= task) j++;
    const zglu_job *jb = &r->jobs[j];
    const int64_t tr = r->tile_rows[j], tt = ZCPU_TILE * ZCPU_TILE / tr;
    const int64_t r0 = (task - r->first_task[j]) * tr;
    const int64_t m = jb->gate.rows - r0 < tr ? jb->gate.rows - r0 : tr;
    float *g = r->ctx->scratch + (int64_t)thread * ZCPU_SCRATCH_FLOATS, *u = g + ZCPU_TILE * ZCPU_TILE;
    zweight gw = zweight_rows(&jb->gate, r0, m), uw = zweight_rows(&jb->up, r0, m);
    for (int64_t t0 = 0; t0 < jb->n; t0 += tt) {
        int64_t nt = jb->n - t0 < tt ? jb->n - t0 : tt;
        const float *x = jb->x + t0 * jb->gate.cols;
        zk_rows_for(&r->ctx->k, &gw)(&gw, x, nt, g, 0, m); /* g[t][i] = gate row r0+i · x_t */
        zk_rows_for(&r->ctx->k, &uw)(&uw, x, nt, u, 0, m);
        for (int64_t t = 0; t < nt; t++)
            zop_silu_mul(g + t * m, u + t * m, m, jb->h + (t0 + t) * jb->gate.rows + r0);
    }
}

void zcpu_glu(void *vc, const zglu_job *jobs, int n_jobs) {
    cpu_ctx *c = vc;
    for (int base = 0; base < n_jobs; base += MAX_GLU_JOBS) {
        int n = n_jobs - base < MAX_GLU_JOBS ? n_jobs - base : MAX_GLU_JOBS;
        glu_region r = {.ctx = c, .jobs = jobs + base};
        for (int j = 0; j < n; j++) {
            r.tile_rows[j] = glu_tile_rows(jobs[base + j].n);
            r.first_task[j + 1] =
                r.first_task[j] + (jobs[base + j].gate.rows + r.tile_rows[j] - 1) / r.tile_rows[j];
        }
        zpool_run(c->pool, glu_task, &r, r.first_task[n]);
    }
}

typedef struct combine_region {
    const cpu_ctx *ctx;
    const zcombine_job *job;
} combine_region;

#define COMBINE_ROWS 256 /* (ZCOMBINE_MAX_K + 1) tiles of this fit the scratch */
_Static_assert((ZCOMBINE_MAX_K + 1) * COMBINE_ROWS <= ZCPU_SCRATCH_FLOATS, "combine scratch");

static void combine_task(void *arg, int64_t task, int thread) {
    const combine_region *r = arg;
    const zcombine_job *j = r->job;
    const int64_t d = j->down[0].rows, r0 = task * COMBINE_ROWS;
    const int64_t m = d - r0 < COMBINE_ROWS ? d - r0 : COMBINE_ROWS;
    float *tile = r->ctx->scratch + (int64_t)thread * ZCPU_SCRATCH_FLOATS;
    for (int k = 0; k < j->k; k++) {
        zweight w = zweight_rows(&j->down[k], r0, m);
        zk_rows_for(&r->ctx->k, &w)(&w, j->h[k], 1, tile + k * m, 0, m);
    }
    float *sh = tile + j->k * m;
    if (j->sh_h) {
        zweight w = zweight_rows(&j->sh_down, r0, m);
        zk_rows_for(&r->ctx->k, &w)(&w, j->sh_h, 1, sh, 0, m);
    } else if (j->sh_out) {
        for (int64_t i = 0; i < m; i++) sh[i] = j->sh_out[r0 + i];
    }
    const bool has_shared = j->sh_h || j->sh_out;
    for (int64_t i = 0; i < m; i++) {
        float acc = 0.0f;
        for (int k = 0; k < j->k; k++) acc += j->w[k] * tile[k * m + i];
        if (has_shared) acc += sh[i];
        j->out[r0 + i] = j->residual ? j->out[r0 + i] + acc : acc;
    }
}

void zcpu_combine(void *vc, const zcombine_job *j) {
    cpu_ctx *c = vc;
    combine_region r = {.ctx = c, .job = j};
    const int64_t d = j->down[0].rows;
    zpool_run(c->pool, combine_task, &r, (d + COMBINE_ROWS - 1) / COMBINE_ROWS);
}

#define ROUTE_ROWS 8

typedef struct route_region {
    const cpu_ctx *ctx;
    const zroute_job *job;
    int64_t n_tasks;
    atomic_int_fast64_t done;
} route_region;

static void route_task(void *arg, int64_t task, int thread) {
    route_region *r = arg;
    const zroute_job *j = r->job;
    const int64_t E = j->router.rows, r0 = task * ROUTE_ROWS;
    const int64_t r1 = r0 + ROUTE_ROWS < E ? r0 + ROUTE_ROWS : E;
    zk_rows_for(&r->ctx->k, &j->router)(&j->router, j->x, j->n, j->logits, r0, r1);
    /* acq_rel: the last finisher sees every other task's logits */
    if (atomic_fetch_add_explicit(&r->done, 1, memory_order_acq_rel) + 1 != r->n_tasks) return;
    for (int64_t t = 0; t < j->n; t++)
        zop_route(&j->cfg, j->logits + t * E, j->bias, j->work, j->idx + t * j->cfg.k,
                  j->w + t * j->cfg.k);
}

void zcpu_route(void *vc, const zroute_job *j) {
    cpu_ctx *c = vc;
    route_region r = {.ctx = c, .job = j, .n_tasks = (j->router.rows + ROUTE_ROWS - 1) / ROUTE_ROWS};
    atomic_init(&r.done, 0);
    zpool_run(c->pool, route_task, &r, r.n_tasks);
}
