/*
 * nccl.c — NCCL loaded at run time: the few calls expert parallelism uses, resolved
 * from libnccl.so.2 into a table each context owns (no process-wide state).  A zmlx
 * built with CUDA runs without NCCL installed; only asking for several GPUs needs it.
 * The signatures are NCCL's since 2.x (ncclResult_t, ncclDataType_t and ncclRedOp_t
 * are C enums, passed as int; ncclUniqueId is 128 bytes passed by value).
 */
#include "backend/cuda/ep.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NCCL_FLOAT32 = 7, NCCL_SUM = 0 }; /* ncclFloat32, ncclSum */

zmlx_status zcu_nccl_open(zcu_nccl *n, zerr *e) {
    memset(n, 0, sizeof *n);
    /* NVLink multicast can take a shared host's GPUs out of service; connections are
       made at init, never inside a graph capture.  The environment decides when set. */
    setenv("NCCL_NVLS_ENABLE", "0", 0);
    setenv("NCCL_RUNTIME_CONNECT", "0", 0);
    n->lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!n->lib)
        return zerr_set(e, ZMLX_ERR_BACKEND,
                        "several GPUs need NCCL: %s (install libnccl2, or add its folder to "
                        "LD_LIBRARY_PATH)", dlerror());
    static const struct {
        const char *name;
        size_t off;
    } syms[] = {
        {"ncclGetErrorString", offsetof(zcu_nccl, error_string)},
        {"ncclGetLastError", offsetof(zcu_nccl, last_error)},
        {"ncclGetVersion", offsetof(zcu_nccl, get_version)},
        {"ncclGetUniqueId", offsetof(zcu_nccl, get_unique_id)},
        {"ncclCommInitRank", offsetof(zcu_nccl, comm_init_rank)},
        {"ncclCommInitAll", offsetof(zcu_nccl, comm_init_all)},
        {"ncclAllReduce", offsetof(zcu_nccl, all_reduce)},
        {"ncclGroupStart", offsetof(zcu_nccl, group_start)},
        {"ncclGroupEnd", offsetof(zcu_nccl, group_end)},
        {"ncclCommDestroy", offsetof(zcu_nccl, comm_destroy)},
        {"ncclCommAbort", offsetof(zcu_nccl, comm_abort)},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void *f = dlsym(n->lib, syms[i].name);
        if (!f) {
            zmlx_status st = zerr_set(e, ZMLX_ERR_BACKEND,
                                      "libnccl.so.2 has no %s (NCCL 2.13 or newer is needed)",
                                      syms[i].name);
            zcu_nccl_close(n);
            return st;
        }
        memcpy((char *)n + syms[i].off, &f, sizeof f); /* object -> function pointer */
    }
    n->get_version(&n->version);
    return ZMLX_OK;
}

/* The library stays mapped (its handle is dropped, never dlclose'd): NCCL's threads can
   outlive the calls that made them, e.g. the bootstrap root that ncclGetUniqueId starts
   serves the ranks' connections after it returns. */
void zcu_nccl_close(zcu_nccl *n) {
    memset(n, 0, sizeof *n);
}

zmlx_status zcu_nccl_fail(const zcu_nccl *n, zcu_comm comm, int rc, const char *what,
                          const char *file, int line, zerr *e) {
    const char *base = strrchr(file, '/');
    const char *detail = comm && n->last_error ? n->last_error(comm) : NULL;
    return zerr_set(e, ZMLX_ERR_BACKEND, "NCCL error (%s:%d): %s: %s%s%s", base ? base + 1 : file,
                    line, what, n->error_string ? n->error_string(rc) : "unknown",
                    detail && *detail ? ": " : "", detail ? detail : "");
}

zmlx_status zcu_nccl_sum(const zcu_nccl *n, zcu_comm comm, float *buf, size_t count,
                         cudaStream_t st, zerr *e) {
    NCCL_TRY(n, comm, e, n->all_reduce(buf, buf, count, NCCL_FLOAT32, NCCL_SUM, comm, st));
    return ZMLX_OK;
}
