/*
 * ep.h — several GPUs in the `cuda` backend (expert parallelism, dist/dist.h):
 *   nccl.c  NCCL loaded at run time (dlopen libnccl.so.2: a binary without NCCL still
 *           runs, and says so only when several GPUs are asked for): unique id,
 *           communicators, the float all-reduce, errors as text
 *   ep.c    the ranks: one process driving several GPUs (a context, a worker thread and
 *           a communicator per GPU, ncclCommInitAll) or one rank of a multi-process run
 *           (ncclCommInitRank with the launcher's id); the fit check of each slice, the
 *           expert slice each rank uploads, and the sessions of every rank run together
 * What a rank does differently in the step (decode.c, chunk.c): it holds experts
 * [e0, e0 + ne) of every MoE layer; the expert products map the route's ids to local ones
 * (cu_mv.e0 / ne: an expert held elsewhere reads nothing and its output row is +0.0; a
 * prefill chunk runs only the rank's expert groups over a zeroed buffer), and one
 * all-reduce (sum) of the [n, K, d] expert-output buffer runs before the combine: the
 * exact slot scheme of dist.h.  The fused down projection + combine (downproj_combine,
 * moe_combine) has no such buffer: with several GPUs that stage runs unfused (the same
 * bits: the patterns are exact), every other pattern as the plan says.  NCCL's NVLink multicast (NVLS)
 * and lazy connection are off unless the environment sets them (NCCL_NVLS_ENABLE=0,
 * NCCL_RUNTIME_CONNECT=0), so nothing is set up inside a graph capture.
 */
#ifndef ZMLX_BACKEND_CUDA_EP_H
#define ZMLX_BACKEND_CUDA_EP_H

#include "backend/backend.h"

#include <cuda_runtime_api.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- NCCL (nccl.c) */

/* NCCL's types as its ABI has them since 2.x (nccl.h need not be installed to build). */
typedef struct zcu_nccl_comm *zcu_comm;          /* ncclComm_t */
typedef struct { char internal[ZMLX_DIST_ID_BYTES]; } zcu_nccl_id; /* ncclUniqueId */

typedef struct zcu_nccl {
    void *lib; /* dlopen handle */
    int version;
    const char *(*error_string)(int);
    const char *(*last_error)(zcu_comm);
    int (*get_version)(int *);
    int (*get_unique_id)(zcu_nccl_id *);
    int (*comm_init_rank)(zcu_comm *, int, zcu_nccl_id, int);
    int (*comm_init_all)(zcu_comm *, int, const int *);
    int (*all_reduce)(const void *, void *, size_t, int, int, zcu_comm, cudaStream_t);
    int (*group_start)(void);
    int (*group_end)(void);
    int (*comm_destroy)(zcu_comm);
    int (*comm_abort)(zcu_comm);
} zcu_nccl;

/* Load libnccl.so.2 (ZMLX_ERR_BACKEND naming what is missing) and turn off NVLink
   multicast and lazy connection unless the environment already decided. */
zmlx_status zcu_nccl_open(zcu_nccl *n, zerr *e);
void zcu_nccl_close(zcu_nccl *n); /* forgets the table; the library stays loaded */
/* A failed NCCL call as a message: the call, file:line, NCCL's text. */
zmlx_status zcu_nccl_fail(const zcu_nccl *n, zcu_comm comm, int rc, const char *what,
                          const char *file, int line, zerr *e);
#define NCCL_TRY(n, comm, e, call)                                                     \
    do {                                                                               \
        int nccl_rc_ = (call);                                                         \
        if (nccl_rc_ != 0) return zcu_nccl_fail((n), (comm), nccl_rc_, #call, __FILE__, \
                                                __LINE__, (e));                        \
    } while (0)
/* In-place float32 sum of buf[count] over the communicator, enqueued on st. */
zmlx_status zcu_nccl_sum(const zcu_nccl *n, zcu_comm comm, float *buf, size_t count,
                         cudaStream_t st, zerr *e);

/* ---------------------------------------------------------------- ranks (ep.c) */

/* What one rank's step needs (cu_ctx.ep; NULL with one GPU). */
typedef struct cu_ep {
    int32_t rank, n_ranks;  /* in the whole run */
    int32_t e0, ne;         /* routed experts held: [e0, e0 + ne) of every MoE layer */
    zcu_comm comm;
    const zcu_nccl *nccl;
} cu_ep;

struct cu_ctx;
/* The backend's model_init: one GPU (the current one or --gpus N), several, or a rank;
   the fit of each GPU's share is checked before anything is uploaded. */
zmlx_status zcu_ep_model_init(struct cu_ctx *c, const zmlx_model *m, zerr *e);
/* Whole-step entries for a context driving several local GPUs (c->group set). */
zmlx_status zcu_group_session_init(struct cu_ctx *c, int64_t max_pos, void **dev,
                                   int64_t *bytes, zerr *e);
void zcu_group_session_free(struct cu_ctx *c, void *dev);
zmlx_status zcu_group_session_eval(struct cu_ctx *c, void *dev, const zdev_eval *ev,
                                   int64_t *bytes, zerr *e);
void zcu_ep_free(struct cu_ctx *c);

#ifdef __cplusplus
}
#endif
#endif
