/* backend.c — the backend registry: which table serves which --backend kind. */
#include "backend/backend.h"

#include <stddef.h>

const zbackend_ops *zbackend_get(zmlx_backend_kind kind) {
    switch (kind) {
    case ZMLX_BACKEND_CPU: return &zbackend_cpu;
    case ZMLX_BACKEND_CPU_REF: return &zbackend_cpu_ref;
    case ZMLX_BACKEND_CUDA: return NULL; /* not in this build */
    }
    return NULL;
}
