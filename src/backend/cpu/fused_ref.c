/*
 * fused_ref.c — the `cpu-ref` backend's pattern ops: the fused stages written as the
 * plain scalar chain they replace (reference products, then the elementwise steps), so
 * on cpu-ref a pattern changes the schedule, never a value.
 */
#include "backend/cpu/fused_ref.h"
#include "ops/ops.h"

void zref_glu(void *ctx, const zglu_job *jobs, int n_jobs) {
    for (int j = 0; j < n_jobs; j++) {
        const zglu_job *jb = &jobs[j];
        const int64_t rows = jb->gate.rows;
        for (int64_t t = 0; t < jb->n; t++) {
            const float *x = jb->x + t * jb->gate.cols;
            float *h = jb->h + t * rows;
            for (int64_t r = 0; r < rows; r++) {
                float g = zop_dot_row_ref(&jb->gate, r, x), u = zop_dot_row_ref(&jb->up, r, x);
                zop_silu_mul(&g, &u, 1, &h[r]);
            }
        }
    }
}

void zref_combine(void *ctx, const zcombine_job *j) {
    const int64_t d = j->down[0].rows;
    for (int64_t i = 0; i < d; i++) {
        float acc = 0.0f;
        for (int k = 0; k < j->k; k++) acc += j->w[k] * zop_dot_row_ref(&j->down[k], i, j->h[k]);
        if (j->sh_h) {
            acc += zop_dot_row_ref(&j->sh_down, i, j->sh_h);
        } else if (j->sh_out) {
            acc += j->sh_out[i];
        }
        j->out[i] = j->residual ? j->out[i] + acc : acc;
    }
}

void zref_route(void *ctx, const zroute_job *j) {
    const int64_t E = j->router.rows;
    zop_matmul_ref(&j->router, j->x, j->n, j->logits, 0, E);
    for (int64_t t = 0; t < j->n; t++)
        zop_route(&j->cfg, j->logits + t * E, j->bias, j->work, j->idx + t * j->cfg.k,
                  j->w + t * j->cfg.k);
}
