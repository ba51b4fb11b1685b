/*
 * tgolden.h — reading a model fixture's golden.json (made by transformers, see
 * ../shared/fixtures/README.md) for the tests that compare a backend with it.
 */
#ifndef ZMLX_TGOLDEN_H
#define ZMLX_TGOLDEN_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct golden {
    int32_t prompt[64], tokens[64], prefill_argmax[64];
    size_t n_prompt, n_tokens, vocab;
    float *step0, *last; /* [vocab] logits that chose the first / last greedy token */
} golden;

static inline void tg_read_ints(json_t *a, int32_t *out, size_t *n) {
    *n = json_array_size(a) < 64 ? json_array_size(a) : 64;
    for (size_t i = 0; i < *n; i++) out[i] = (int32_t)json_integer_value(json_array_get(a, i));
}

static inline float *tg_read_floats(json_t *a, size_t *n) {
    *n = json_array_size(a);
    float *v = malloc(*n * sizeof *v + 1);
    for (size_t i = 0; i < *n; i++) v[i] = (float)json_number_value(json_array_get(a, i));
    return v;
}

/* dir/golden.json into g (free g->step0 and g->last); false with a message on failure. */
static inline bool load_golden(const char *dir, golden *g) {
    char path[1100];
    snprintf(path, sizeof path, "%s/golden.json", dir);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) {
        fprintf(stderr, "cannot read %s: %s\n", path, je.text);
        return false;
    }
    size_t n;
    tg_read_ints(json_object_get(j, "prompt_ids"), g->prompt, &g->n_prompt);
    tg_read_ints(json_object_get(j, "greedy_tokens"), g->tokens, &g->n_tokens);
    tg_read_ints(json_object_get(j, "prefill_logits_argmax"), g->prefill_argmax, &n);
    g->step0 = tg_read_floats(json_object_get(j, "logits_step0"), &g->vocab);
    g->last = tg_read_floats(json_object_get(j, "logits_last"), &n);
    json_decref(j);
    return g->vocab > 0 && n == g->vocab;
}

/* Index of the largest value, the lowest index on ties (greedy). */
static inline int32_t argmax(const float *x, size_t n) {
    size_t b = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return (int32_t)b;
}

#endif
