/*
 * fuzz_tiktoken.c — libFuzzer target for the tiktoken (Kimi) tokenizer.  The first byte
 * picks a mode:
 *   even: the rest is "tiktoken.model bytes [\0 tokenizer_config.json bytes]"; whatever
 *         loads must encode and decode a fixed text within the API contracts, whatever
 *         does not must be refused with one printable line;
 *   odd:  the rest is text, encoded by the kimi-tiny fixture (or, when it cannot be found,
 *         a small in-memory tokenizer): both parse_special values must decode back to the
 *         same bytes, streamed or not, within zmlx_tokenizer_encode_bound, and the regex
 *         pieces plus the bytes between them must cover the text in order.
 * The fixture is looked up in $ZMLX_SRC/tests/fixtures/kimi-tiny, then beside this file.
 * Seeds: fuzz/corpus/tiktoken (fuzz/make_tiktoken_seeds.py).
 */
#include "tok_contracts.h"
#include "tokenizer/tok_internal.h"
#include "zmlx.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The harness's own state (the library has none): the text-mode tokenizer. */
static zmlx_tokenizer *text_tok;

static const char fixed_text[] = "<|im_user|>user<|im_middle|>Hello, world! don't 123 "
                                 "\xe4\xbd\xa0\xe5\xa5\xbd\xe3\x80\x82 \xf0\x9f\x98\x80 "
                                 "\xff\xfe<|im_end|>\n\n\t x";

/* The 256 bytes (rank = byte) and a few merges, with two named specials. */
static zmlx_tokenizer *mini_tokenizer(void) {
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char model[256 * 12 + 64];
    size_t o = 0;
    for (int b = 0; b < 256; b++)
        o += (size_t)snprintf(model + o, sizeof model - o, "%c%c== %d\n", b64[b >> 2],
                              b64[(b & 3) << 4], b);
    snprintf(model + o, sizeof model - o, "aGU= 256\ndGg= 257\ndGhl 258\n"); /* he th the */
    static const char cfg[] = "{\"added_tokens_decoder\": {\"259\": {\"content\": \"<|im_end|>\"},"
                              " \"260\": {\"content\": \"<|im_user|>\"}}}";
    zmlx_tokenizer *t = NULL;
    zerr e;
    if (tok_tk_parse(model, strlen(model), cfg, strlen(cfg), "mini", &t, &e)) abort();
    return t;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    char dir[1024], err[ZMLX_ERR_MAX];
    const char *src = getenv("ZMLX_SRC");
    if (src) {
        snprintf(dir, sizeof dir, "%s/tests/fixtures/kimi-tiny", src);
    } else { /* __FILE__ is .../fuzz/fuzz_tiktoken.c */
        snprintf(dir, sizeof dir, "%s", __FILE__);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0';
        size_t len = strlen(dir);
        snprintf(dir + len, sizeof dir - len, "%s../tests/fixtures/kimi-tiny", slash ? "/" : "");
    }
    if (zmlx_tokenizer_load(dir, &text_tok, err, sizeof err)) {
        fprintf(stderr, "fuzz_tiktoken: %s; text mode uses a built-in tokenizer\n", err);
        text_tok = mini_tokenizer();
    }
    return 0;
}

/* The pattern's matches are in order, non-empty and inside the text. */
static void check_pieces(const zmlx_tokenizer *t, const char *s, size_t n) {
    tok_scratch sc;
    check(tok_scratch_init(&sc) == ZMLX_OK);
    tok_regex_iter it = {0, 0};
    size_t done = 0, ms, me;
    int rc;
    while ((rc = tok_regex_next(t->tk->re, s, n, &it, &sc, &ms, &me)) == 1) {
        check(ms >= done && me > ms && me <= n);
        done = me;
    }
    check(rc == 0 || rc < 0);
    tok_scratch_free(&sc);
}

static void load_and_exercise(const char *data, size_t n) {
    const char *nul = memchr(data, '\0', n);
    size_t model_len = nul ? (size_t)(nul - data) : n;
    const char *cfg = nul ? nul + 1 : NULL;
    size_t cfg_len = nul ? n - model_len - 1 : 0;
    zmlx_tokenizer *t = NULL;
    zerr e;
    memset(&e, 0, sizeof e);
    if (tok_tk_parse(data, model_len, cfg, cfg_len, "fuzz", &t, &e) != ZMLX_OK) {
        check(t == NULL && e.msg[0] && memchr(e.msg, '\0', sizeof e.msg));
        for (const char *c = e.msg; *c; c++)
            check((unsigned char)*c >= 0x20 && *c != 0x7F);
        return;
    }
    exercise(t, fixed_text, sizeof fixed_text - 1, 0);
    zmlx_tokenizer_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const char *rest = (const char *)data + 1;
    size_t n = size - 1;
    if (data[0] % 2 == 0) {
        load_and_exercise(rest, n);
    } else {
        exercise(text_tok, rest, n, 1);
        check_pieces(text_tok, rest, n);
    }
    return 0;
}
