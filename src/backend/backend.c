/* backend.c — the backend registry: which table serves which --backend kind. */
#include "backend/backend.h"

#include <stddef.h>

const zbackend_ops *zbackend_get(zmlx_backend_kind kind) {
    switch (kind) {
    case ZMLX_BACKEND_CPU: return &zbackend_cpu;
    case ZMLX_BACKEND_CPU_REF: return &zbackend_cpu_ref;
#ifdef ZMLX_HAVE_CUDA
    case ZMLX_BACKEND_CUDA: return &zbackend_cuda;
#else
    case ZMLX_BACKEND_CUDA: return NULL; /* not in this build */
#endif
    }
    return NULL;
}
