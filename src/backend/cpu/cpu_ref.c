/* cpu_ref.c — the `cpu-ref` backend: the scalar reference ops, one thread, no context. */
#include "backend/backend.h"
#include "ops/ops.h"
#include "backend/cpu/fused_ref.h"

#include <stdlib.h>

/* The reference reads every layout of model/weight.h's table (zweight_get). */
static bool ref_supports_weight(const zweight *w) {
    return zweight_check(w, NULL, 0);
}

static bool ref_supports(zdtype dt) {
    return ref_supports_weight(&(zweight){.dtype = dt});
}

static zmlx_status ref_init(int threads, void **ctx) {
    *ctx = NULL;
    return ZMLX_OK;
}

static void ref_free(void *ctx) {}

static int ref_threads(const void *ctx) {
    return 1;
}

static void ref_matmul(void *ctx, const zmm_job *jobs, int n_jobs) {
    for (int i = 0; i < n_jobs; i++)
        zop_matmul_ref(&jobs[i].w, jobs[i].x, jobs[i].n, jobs[i].y, 0, jobs[i].w.rows);
}

static void ref_matmul_t(void *ctx, const zmm_job *jobs, int n_jobs) {
    for (int i = 0; i < n_jobs; i++)
        zop_matmul_t_ref(&jobs[i].w, jobs[i].x, jobs[i].n, jobs[i].y, 0, jobs[i].w.cols);
}

static void ref_attention(void *ctx, const zattn_job *j) {
    for (int64_t qi = 0; qi < j->n_q; qi++)
        for (int64_t h = 0; h < j->n_heads; h++) zattn_head_ref(j, qi, h, j->scratch);
}

const zbackend_ops zbackend_cpu_ref = {
    .name = "cpu-ref",
    .supports = ref_supports,
    .supports_weight = ref_supports_weight,
    .init = ref_init,
    .free = ref_free,
    .threads = ref_threads,
    .matmul = ref_matmul,
    .matmul_t = ref_matmul_t,
    .attention = ref_attention,
    .glu = zref_glu,
    .combine = zref_combine,
    .route = zref_route,
};
