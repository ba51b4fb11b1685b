/*
 * err.h — how library code reports failures: a status code plus one line of text
 * in a caller-owned buffer.  Only the CLI prints; nothing here exits.
 */
#ifndef ZMLX_CORE_ERR_H
#define ZMLX_CORE_ERR_H

#include "zmlx.h"

#include <stddef.h>

typedef struct zerr {
    char msg[ZMLX_ERR_MAX];
} zerr;

/* Format a message into e (if not NULL) and return st.  printf-style. */
zmlx_status zerr_set(zerr *e, zmlx_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Copy a message into a public (buf, size) pair; safe with buf == NULL. */
void zerr_copy(const zerr *e, char *buf, size_t size);

#endif
