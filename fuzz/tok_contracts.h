/*
 * tok_contracts.h — what the tokenizer fuzz targets (fuzz_tokenizer.c: tokenizer.json,
 * fuzz_tiktoken.c: tiktoken) check on every tokenizer that loads: encode stays within
 * zmlx_tokenizer_encode_bound and the vocabulary, a one-short buffer gives
 * ZMLX_ERR_LIMIT with the needed count, decode sizes and NUL-terminates its output,
 * optionally round-trips the text, and the streamed pieces add up to the whole.
 * A broken contract aborts (libFuzzer reports it as a crash).
 */
#ifndef ZMLX_FUZZ_TOK_CONTRACTS_H
#define ZMLX_FUZZ_TOK_CONTRACTS_H

#include "zmlx.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline void check(int ok) {
    if (!ok) abort();
}

/* Encode + decode contracts that hold for every tokenizer that loads. */
static inline void exercise(const zmlx_tokenizer *t, const char *text, size_t len, int roundtrip) {
    size_t cap = zmlx_tokenizer_encode_bound(len), n, dn, need;
    int32_t *ids = malloc((cap + 1) * sizeof *ids);
    int32_t vs = zmlx_tokenizer_vocab_size(t);
    for (int special = 0; special < 2; special++) {
        zmlx_status st = zmlx_tokenizer_encode(t, text, len, special, ids, cap, &n);
        if (st == ZMLX_ERR_UNSUPPORTED) continue; /* a pathological regex hit PCRE2's limits */
        check(st == ZMLX_OK && n <= cap);
        for (size_t i = 0; i < n; i++)
            check(ids[i] >= 0 && ids[i] < vs);
        if (n)
            check(zmlx_tokenizer_encode(t, text, len, special, ids, n - 1, &need) ==
                      ZMLX_ERR_LIMIT &&
                  need == n);
        check(zmlx_tokenizer_decode(t, ids, n, NULL, 0, &dn) == (dn ? ZMLX_ERR_LIMIT : ZMLX_OK));
        char *out = malloc(dn + 1);
        check(zmlx_tokenizer_decode(t, ids, n, out, dn + 1, &need) == ZMLX_OK && need == dn &&
              out[dn] == '\0');
        if (roundtrip) check(dn == len && memcmp(out, text, len) == 0);
        /* streamed pieces add up to the whole */
        zmlx_detok_stream *s;
        check(zmlx_detok_stream_init(t, &s) == ZMLX_OK);
        size_t acc = 0, pl;
        const char *p;
        for (size_t i = 0; i <= n; i++) {
            check((i < n ? zmlx_detok_stream_push(s, ids[i], &p, &pl)
                         : zmlx_detok_stream_flush(s, &p, &pl)) == ZMLX_OK);
            check(acc + pl <= dn && memcmp(out + acc, p, pl) == 0);
            acc += pl;
        }
        check(acc == dn);
        zmlx_detok_stream_free(s);
        free(out);
    }
    free(ids);
}

#endif
