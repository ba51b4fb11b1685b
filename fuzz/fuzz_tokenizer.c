/*
 * fuzz_tokenizer.c — libFuzzer target for the tokenizer.  The first byte picks a mode:
 *   '0' (% 3 == 0): the rest is a tokenizer.json; if it loads, encode and decode a fixed
 *                   text (both parse_special values) and check the output contracts;
 *   '1' (% 3 == 1): the rest is text, encoded with the glm-bpe fixture (or, when the
 *                   fixture cannot be found, a small built-in byte-level BPE); it must
 *                   decode back to the same bytes, streamed or not;
 *   '2' (% 3 == 2): the second byte picks a Split behaviour, the rest is a regex put in a
 *                   small tokenizer.json (exercises the Oniguruma -> PCRE2 translation).
 * The glm-bpe fixture is looked up in $ZMLX_SHARED, then in the shared/ folder beside
 * this checkout.  Seeds: fuzz/corpus/tokenizer.
 */
#include "tok_contracts.h"
#include "tokenizer/tok_internal.h"
#include "zmlx.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The harness's own state (the library has none): the text-mode tokenizer and the two
 * halves of the mode-2 tokenizer.json around its pattern. */
static zmlx_tokenizer *text_tok;
static char *split_head, *split_tail;

static const char fixed_text[] = "[gMASK]<sop><|user|>Hello, world! 123 456 don't\n\n\tx  "
                                 "\xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80 \xff\xfe<s>";

/* The 256 byte-level chars as a vocab, plus a few merges: a complete byte-level BPE. */
static json_t *mini_model(void) {
    json_t *vocab = json_object(), *merges = json_array();
    for (int b = 0; b < 256; b++) {
        char u[4];
        size_t l = tok_utf8_enc(tok_byte_to_cp((unsigned char)b), u);
        json_object_setn_new(vocab, u, l, json_integer(b));
    }
    json_object_set_new(vocab, "he", json_integer(256));
    json_object_set_new(vocab, "\xc4\xa0w", json_integer(257));
    json_array_append_new(merges, json_string("h e"));
    json_array_append_new(merges, json_string("\xc4\xa0 w"));
    return json_pack("{s:s, s:o, s:o}", "type", "BPE", "vocab", vocab, "merges", merges);
}

static char *mini_json(json_t *pre) {
    json_t *root =
        json_pack("{s:s, s:o, s:o, s:{s:s}, s:[{s:i, s:s, s:b}]}", "version", "1.0", "model",
                  mini_model(), "pre_tokenizer", pre, "decoder", "type", "ByteLevel",
                  "added_tokens", "id", 258, "content", "<s>", "special", 1);
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}

static const char *shared_path(char *buf, size_t n) {
    const char *rel = "fixtures/tokenizers/glm-bpe/tokenizer.json";
    const char *root = getenv("ZMLX_SHARED");
    if (root) {
        snprintf(buf, n, "%s/%s", root, rel);
        return buf;
    }
    /* __FILE__ is .../<checkout>/fuzz/fuzz_tokenizer.c; shared/ sits beside the checkout */
    snprintf(buf, n, "%s", __FILE__);
    char *slash = strrchr(buf, '/');
    for (int up = 0; up < 2 && slash; up++) {
        *slash = '\0';
        slash = strrchr(buf, '/');
    }
    size_t len = slash ? (size_t)(slash - buf) : 0;
    snprintf(buf + len, n - len, "%sshared/%s", slash ? "/" : "../", rel);
    return buf;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    char path[1024], err[ZMLX_ERR_MAX];
    if (zmlx_tokenizer_load(shared_path(path, sizeof path), &text_tok, err, sizeof err)) {
        fprintf(stderr, "fuzz_tokenizer: %s; text mode uses a built-in tokenizer\n", err);
        char *js = mini_json(json_pack("{s:s, s:b, s:b}", "type", "ByteLevel", "add_prefix_space",
                                       0, "use_regex", 1));
        zerr e;
        if (tok_load_json(js, strlen(js), "builtin", &text_tok, &e)) abort();
        free(js);
    }
    /* mode 2: {"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":@}...},BL]} */
    char *js = mini_json(json_pack("{s:s, s:[{s:s, s:{s:s}, s:s, s:b}, {s:s, s:b}]}", "type",
                                   "Sequence", "pretokenizers", "type", "Split", "pattern", "Regex",
                                   "@PATTERN@", "behavior", "Isolated", "invert", 0, "type",
                                   "ByteLevel", "add_prefix_space", 0));
    char *at = strstr(js, "\"@PATTERN@\"");
    if (!at) abort();
    split_tail = strdup(at + strlen("\"@PATTERN@\""));
    *at = '\0';
    split_head = js;
    return 0;
}

static void load_and_exercise(const char *json, size_t len) {
    zmlx_tokenizer *t = NULL;
    zerr e;
    memset(&e, 0, sizeof e);
    if (tok_load_json(json, len, "fuzz", &t, &e) != ZMLX_OK) {
        /* a refusal is one line of printable text */
        check(t == NULL && e.msg[0] && memchr(e.msg, '\0', sizeof e.msg));
        for (const char *c = e.msg; *c; c++)
            check((unsigned char)*c >= 0x20);
        return;
    }
    exercise(t, fixed_text, sizeof fixed_text - 1, 0);
    zmlx_tokenizer_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const char *rest = (const char *)data + 1;
    size_t n = size - 1;
    switch (data[0] % 3) {
    case 0: load_and_exercise(rest, n); break;
    case 1: exercise(text_tok, rest, n, 1); break;
    case 2: {
        static const char *const behaviors[] = {"Removed", "Isolated", "MergedWithPrevious",
                                                "MergedWithNext", "Contiguous"};
        if (n < 1 || n > 512) return 0;
        json_t *pat = json_stringn(rest + 1, n - 1);
        if (!pat) return 0; /* not UTF-8: JSON cannot hold it */
        char *ps = json_dumps(pat, JSON_ENCODE_ANY);
        json_decref(pat);
        size_t len = strlen(split_head) + strlen(ps) + strlen(split_tail) + 1;
        char *js = malloc(len);
        snprintf(js, len, "%s%s%s", split_head, ps, split_tail);
        free(ps);
        /* the behaviour and invert come from the second byte */
        char *beh = strstr(js, "\"Isolated\"");
        char *inv = strstr(js, "\"invert\":false");
        unsigned sel = (unsigned char)rest[0];
        if (beh && inv) {
            size_t l2 = strlen(js) + 32;
            char *js2 = malloc(l2);
            *beh = '\0';
            *inv = '\0';
            snprintf(js2, l2, "%s\"%s\"%s\"invert\":%s%s", js, behaviors[sel % 5],
                     beh + strlen("\"Isolated\""), (sel / 5) % 2 ? "true" : "false",
                     inv + strlen("\"invert\":false"));
            load_and_exercise(js2, strlen(js2));
            free(js2);
        }
        free(js);
        break;
    }
    }
    return 0;
}
