/* prompt.c — turning the CLI's prompt options into token ids (see cli.h). */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

zmlx_tokenizer *cli_load_tokenizer(const cli_common *c, const zmlx_model *m, bool needed) {
    const char *path = c->model ? c->model : ZMLX_DEFAULT_MODEL;
    zmlx_tokenizer *t = NULL;
    char err[ZMLX_ERR_MAX];
    if (!strncmp(path, "builtin:", 8))
        return zmlx_tokenizer_load_bytes(&t, zmlx_model_vocab_size(m)) == ZMLX_OK ? t : NULL;
    if (zmlx_tokenizer_load(path, &t, err, sizeof err) != ZMLX_OK) {
        if (needed) cli_error("--prompt needs a tokenizer: %s (or pass --prompt-ids)", err);
        return NULL;
    }
    return t;
}

/* "1,2,3" -> ids; prints the error. */
static int32_t *parse_ids(const char *s, int32_t vocab, size_t *n) {
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) return NULL;
    *n = 0;
    for (const char *p = s;;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || (*end && *end != ',') || v < 0 || v >= vocab) {
            cli_error("--prompt-ids \"%s\": item %zu is not a token id in [0, %d)", s, *n + 1, vocab);
            free(ids);
            return NULL;
        }
        ids[(*n)++] = (int32_t)v;
        if (!*end) break;
        p = end + 1;
    }
    return ids;
}

int32_t *cli_prompt_ids(const char *text, const char *ids_opt, const zmlx_tokenizer *tok,
                        const zmlx_model *m, size_t *n) {
    int32_t vocab = zmlx_model_vocab_size(m);
    if (ids_opt) return parse_ids(ids_opt, vocab, n);
    if (!tok) {
        if (!text) cli_error("this model has no tokenizer.json: give --prompt-ids 1,2,3");
        return NULL; /* with --prompt, cli_load_tokenizer printed why */
    }
    if (!text) text = ZMLX_DEFAULT_PROMPT;
    size_t cap = zmlx_tokenizer_encode_bound(strlen(text));
    int32_t *ids = malloc((cap ? cap : 1) * sizeof *ids);
    if (!ids || zmlx_tokenizer_encode(tok, text, strlen(text), 1, ids, cap, n) != ZMLX_OK) {
        cli_error("could not tokenize the prompt");
        free(ids);
        return NULL;
    }
    for (size_t i = 0; i < *n; i++)
        if (ids[i] < 0 || ids[i] >= vocab) {
            cli_error("the tokenizer produced id %d, outside the model's vocabulary of %d", ids[i],
                      vocab);
            free(ids);
            return NULL;
        }
    if (*n == 0) {
        cli_error("the prompt is empty after tokenization");
        free(ids);
        return NULL;
    }
    return ids;
}
