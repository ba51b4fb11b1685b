/*
 * cpu_internal.h — the `cpu` backend's context, shared by its files (cpu.c: products
 * and attention; fused.c: the pattern kernels).  Not part of any public interface.
 */
#ifndef ZMLX_BACKEND_CPU_INTERNAL_H
#define ZMLX_BACKEND_CPU_INTERNAL_H

#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "backend/pool.h"

/* Per-thread scratch of the fused kernels: tiles of ZCPU_TILE^2 values (rows x tokens,
   gate and up), or (ZCOMBINE_MAX_K + 1) x 256 rows (combine). */
#define ZCPU_TILE 64
#define ZCPU_SCRATCH_FLOATS (2 * ZCPU_TILE * ZCPU_TILE)

typedef struct cpu_ctx {
    zpool *pool;
    zk_isa isa;  /* ZMLX_CPU_ISA or the best level of this CPU */
    zk_table k;  /* its kernels for the precision mode */
    float *scratch; /* [threads][ZCPU_SCRATCH_FLOATS] */
} cpu_ctx;

void zcpu_glu(void *ctx, const zglu_job *jobs, int n_jobs);
void zcpu_combine(void *ctx, const zcombine_job *job);
void zcpu_route(void *ctx, const zroute_job *job);

#endif
