/* fused_ref.h — the scalar reference of the fused pattern ops (see fused_ref.c). */
#ifndef ZMLX_BACKEND_CPU_FUSED_REF_H
#define ZMLX_BACKEND_CPU_FUSED_REF_H

#include "backend/backend.h"

void zref_glu(void *ctx, const zglu_job *jobs, int n_jobs);
void zref_combine(void *ctx, const zcombine_job *job);
void zref_route(void *ctx, const zroute_job *job);

#endif
