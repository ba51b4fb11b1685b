/* backend.c — the backend registry: which table serves which --backend kind; the device
   description's driver version. */
#include "backend/backend.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

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

bool zdev_driver_version(const char *text, char *out, size_t n) {
    const char *line_end = text ? strchr(text, '\n') : NULL;
    const char *end = line_end ? line_end : text ? text + strlen(text) : NULL;
    for (const char *p = text; p && p < end;) {
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        const char *q = p;
        while (q < end && *q != ' ' && *q != '\t') q++;
        bool digits = q > p && *p >= '0' && *p <= '9', dot = false;
        for (const char *c = p; c < q && digits; c++) {
            if (*c == '.') dot = true;
            else if (*c < '0' || *c > '9') digits = false;
        }
        if (digits && dot && q[-1] != '.') {
            snprintf(out, n, "%.*s", (int)(q - p), p);
            return true;
        }
        p = q;
    }
    return false;
}
