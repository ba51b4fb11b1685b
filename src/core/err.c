/* err.c — status strings and the error-message helper (see err.h). */
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *zmlx_status_str(zmlx_status status) {
    switch (status) {
    case ZMLX_OK: return "ok";
    case ZMLX_ERR_INVALID_ARG: return "invalid argument";
    case ZMLX_ERR_IO: return "i/o error";
    case ZMLX_ERR_FORMAT: return "format error";
    case ZMLX_ERR_UNSUPPORTED: return "unsupported";
    case ZMLX_ERR_NOT_FOUND: return "not found";
    case ZMLX_ERR_NOMEM: return "out of memory";
    case ZMLX_ERR_LIMIT: return "limit reached";
    case ZMLX_ERR_BACKEND: return "backend error";
    }
    return "unknown status";
}

zmlx_status zerr_set(zerr *e, zmlx_status st, const char *fmt, ...) {
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return st;
}

void zerr_copy(const zerr *e, char *buf, size_t size) {
    if (!buf || size == 0) return;
    snprintf(buf, size, "%s", e ? e->msg : "");
}
