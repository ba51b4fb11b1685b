/*
 * stream.c — streaming detokenization: ids arrive one at a time (generation), text goes
 * out as soon as it is complete UTF-8.  An incomplete UTF-8 sequence at the end (at most
 * 3 bytes that could still become a valid char) is held back; bytes that can never
 * become valid are passed through as they are.  The concatenation of all outputs plus
 * the flush equals zmlx_tokenizer_decode of the same ids.
 */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

struct zmlx_detok_stream {
    const zmlx_tokenizer *t;
    char *buf; /* returned text, then the held-back tail */
    size_t cap;
    size_t shown; /* bytes returned by the last call */
    size_t held;  /* bytes after them still waiting */
};

zmlx_status zmlx_detok_stream_init(const zmlx_tokenizer *t, zmlx_detok_stream **out) {
    if (!out) return ZMLX_ERR_INVALID_ARG;
    *out = NULL;
    if (!t) return ZMLX_ERR_INVALID_ARG;
    zmlx_detok_stream *s = calloc(1, sizeof *s);
    if (!s) return ZMLX_ERR_NOMEM;
    s->t = t;
    *out = s;
    return ZMLX_OK;
}

void zmlx_detok_stream_free(zmlx_detok_stream *s) {
    if (!s) return;
    free(s->buf);
    free(s);
}

/* Length of the tail of b[0..n) that is a proper prefix of a valid UTF-8 char. */
static size_t tok_incomplete_tail(const unsigned char *b, size_t n) {
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        unsigned c = b[n - k];
        if ((c & 0xC0) == 0x80) continue; /* continuation: keep looking for the lead */
        size_t need = c >= 0xC2 && c <= 0xDF   ? 2
                      : c >= 0xE0 && c <= 0xEF ? 3
                      : c >= 0xF0 && c <= 0xF4 ? 4
                                               : 0;
        if (need <= k) return 0; /* ASCII, invalid lead, or already complete */
        if (k >= 2) {            /* the second byte's range depends on the lead */
            unsigned lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
            unsigned hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
            if (b[n - k + 1] < lo || b[n - k + 1] > hi) return 0;
        }
        return k;
    }
    return 0;
}

zmlx_status zmlx_detok_stream_push(zmlx_detok_stream *s, int32_t id, const char **text,
                                   size_t *len) {
    if (!s || !text || !len) return ZMLX_ERR_INVALID_ARG;
    *text = "";
    *len = 0;
    char tmp[16];
    const char *p;
    size_t n;
    zmlx_status st = tok_decode_id(s->t, id, tmp, &p, &n);
    if (st) return st;
    if (s->held) memmove(s->buf, s->buf + s->shown, s->held);
    if (tok_grow((void **)&s->buf, &s->cap, s->held + n + 1, 1)) return ZMLX_ERR_NOMEM;
    memcpy(s->buf + s->held, p, n);
    size_t total = s->held + n;
    s->held = tok_incomplete_tail((const unsigned char *)s->buf, total);
    s->shown = total - s->held;
    *text = s->buf;
    *len = s->shown;
    return ZMLX_OK;
}

zmlx_status zmlx_detok_stream_flush(zmlx_detok_stream *s, const char **text, size_t *len) {
    if (!s || !text || !len) return ZMLX_ERR_INVALID_ARG;
    *text = "";
    *len = 0;
    if (s->held) {
        memmove(s->buf, s->buf + s->shown, s->held);
        *text = s->buf;
        *len = s->held;
    }
    s->shown = s->held; /* the next push starts empty */
    s->held = 0;
    return ZMLX_OK;
}
