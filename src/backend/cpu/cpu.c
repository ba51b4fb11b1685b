/*
 * cpu.c — the `cpu` backend: the ISA kernels of kernels.h spread over a thread pool.
 *
 * Work is split by output rows (matmul) or output columns (transposed matmul) and by
 * (query, head) for attention — never inside a dot product — so every output value is
 * computed by one thread in a fixed order: results do not depend on the thread count.
 * The kernels are those of the ISA level zk_isa_choose picks (ZMLX_CPU_ISA or the best
 * this CPU runs), for the model's precision mode.
 */
#include "backend/cpu/cpu_internal.h"

#include <stdlib.h>

#define MAX_JOBS 512
#define TARGET_TASK_BYTES (96 * 1024) /* weight bytes per task: enough to amortise a grab */
#define TASKS_PER_THREAD 8            /* a large product: this many tasks per thread (balance),
                                         as long sequential streams as that allows */

typedef struct mm_region {
    const cpu_ctx *ctx;
    const zmm_job *jobs;
    int64_t first_task[MAX_JOBS + 1]; /* prefix sums of tasks per job */
    int64_t span[MAX_JOBS];           /* rows (or columns) per task of each job */
    zwkind kind[MAX_JOBS];            /* each job's weight layout: its kernel-table entry */
    int n_jobs;
    bool transposed;
} mm_region;

/* Every layout zweight_check admits has a kernel in every zk_table (the portable
 * ones at least), so a valid weight is a supported one. */
static bool cpu_supports_weight(const zweight *w) {
    return zweight_check(w, NULL, 0);
}

static bool cpu_supports(zdtype dt) {
    return cpu_supports_weight(&(zweight){.dtype = dt});
}

static void cpu_free(void *vc);

/* A forced ISA level this CPU lacks (ZMLX_CPU_ISA) fails here, before any weight. */
static zmlx_status cpu_probe(zerr *e) {
    zk_isa isa;
    char why[320];
    if (!zk_isa_choose(&isa, why, sizeof why)) return zerr_set(e, ZMLX_ERR_BACKEND, "%s", why);
    return ZMLX_OK;
}

static zmlx_status cpu_init(int threads, void **out) {
    zk_isa isa;
    if (!zk_isa_choose(&isa, NULL, 0)) return ZMLX_ERR_BACKEND;
    cpu_ctx *c = calloc(1, sizeof *c);
    if (!c) return ZMLX_ERR_NOMEM;
    zmlx_status st = zpool_init(threads > 0 ? threads : zpool_online_cores(), &c->pool);
    if (st != ZMLX_OK) {
        free(c);
        return st;
    }
    c->isa = isa;
    c->k = zk_table_get(isa, false);
    c->scratch = malloc((size_t)zpool_threads(c->pool) * ZCPU_SCRATCH_FLOATS * sizeof(float));
    if (!c->scratch) {
        cpu_free(c);
        return ZMLX_ERR_NOMEM;
    }
    *out = c;
    return ZMLX_OK;
}

static void cpu_set_precision(void *vc, zmlx_precision p) {
    cpu_ctx *c = vc;
    c->k = zk_table_get(c->isa, p == ZMLX_PRECISION_FAST);
}

static void cpu_free(void *vc) {
    cpu_ctx *c = vc;
    if (!c) return;
    zpool_free(c->pool);
    free(c->scratch);
    free(c);
}

static int cpu_threads(const void *vc) {
    return zpool_threads(((const cpu_ctx *)vc)->pool);
}

static void mm_task(void *arg, int64_t task, int thread) {
    const mm_region *r = arg;
    int j = 0;
    while (r->first_task[j + 1] <= task) j++; /* few jobs: linear scan */
    const zmm_job *jb = &r->jobs[j];
    int64_t lo = (task - r->first_task[j]) * r->span[j];
    int64_t total = r->transposed ? jb->w.cols : jb->w.rows;
    int64_t hi = lo + r->span[j] < total ? lo + r->span[j] : total;
    if (r->transposed)
        r->ctx->k.cols[r->kind[j]](&jb->w, jb->x, jb->n, jb->y, lo, hi);
    else
        r->ctx->k.rows[r->kind[j]](&jb->w, jb->x, jb->n, jb->y, lo, hi);
}

static void run_jobs(cpu_ctx *c, const zmm_job *jobs, int n_jobs, bool transposed) {
    for (int base = 0; base < n_jobs; base += MAX_JOBS) {
        int m = n_jobs - base < MAX_JOBS ? n_jobs - base : MAX_JOBS;
        mm_region r = {.ctx = c, .jobs = jobs + base, .n_jobs = m, .transposed = transposed};
        r.first_task[0] = 0;
        for (int j = 0; j < m; j++) {
            const zmm_job *jb = &jobs[base + j];
            int64_t total = transposed ? jb->w.cols : jb->w.rows;
            int64_t other = transposed ? jb->w.rows : jb->w.cols;
            r.kind[j] = zweight_kind(&jb->w); /* the loader admitted only valid layouts */
            /* weight bytes per output row (or column): packed data, scales and biases */
            int64_t unit = zweight_row_bytes(&jb->w);
            if (transposed) unit = jb->w.cols > 0 ? (unit * other + total - 1) / total : 0;
            int64_t bytes = unit * total / (zpool_threads(c->pool) * TASKS_PER_THREAD);
            if (bytes < TARGET_TASK_BYTES) bytes = TARGET_TASK_BYTES;
            int64_t span = unit > 0 ? bytes / unit : total;
            span = span < 8 ? 8 : (span + 7) & ~(int64_t)7; /* whole SIMD groups */
            if (span > total) span = total > 0 ? total : 1;
            r.span[j] = span;
            r.first_task[j + 1] = r.first_task[j] + (total + span - 1) / span;
        }
        zpool_run(c->pool, mm_task, &r, r.first_task[m]);
    }
}

static void cpu_matmul(void *vc, const zmm_job *jobs, int n_jobs) {
    run_jobs(vc, jobs, n_jobs, false);
}

static void cpu_matmul_t(void *vc, const zmm_job *jobs, int n_jobs) {
    run_jobs(vc, jobs, n_jobs, true);
}

typedef struct attn_region {
    const zattn_job *job;
} attn_region;

static void attn_task(void *arg, int64_t task, int thread) {
    const zattn_job *j = ((const attn_region *)arg)->job;
    zattn_head_ref(j, task / j->n_heads, task % j->n_heads, j->scratch + (int64_t)thread * j->T);
}

static void cpu_attention(void *vc, const zattn_job *j) {
    cpu_ctx *c = vc;
    attn_region r = {j};
    zpool_run(c->pool, attn_task, &r, j->n_q * j->n_heads);
}

const zbackend_ops zbackend_cpu = {
    .name = "cpu",
    .probe = cpu_probe,
    .supports = cpu_supports,
    .supports_weight = cpu_supports_weight,
    .init = cpu_init,
    .set_precision = cpu_set_precision,
    .free = cpu_free,
    .threads = cpu_threads,
    .matmul = cpu_matmul,
    .matmul_t = cpu_matmul_t,
    .attention = cpu_attention,
    .glu = zcpu_glu,
    .combine = zcpu_combine,
    .route = zcpu_route,
};
