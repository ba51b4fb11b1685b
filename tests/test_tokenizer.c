/*
 * test_tokenizer.c — the tokenizer module against Hugging Face tokenizers 0.23.2:
 * golden ids and decoded text for the glm-bpe and dsv3-bpe fixtures (400 strings each,
 * add_special_tokens=False), plus invalid UTF-8 round trips, streaming decode, the
 * byte-level fallback, parse_special, buffer-size contracts, the pre-tokenizer and
 * added-token options on a small hand-made tokenizer, and load errors.
 */
#include "tcheck.h"
#include "tokenizer/tok_internal.h"
#include "zmlx.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------ helpers */

static int32_t *enc(const zmlx_tokenizer *t, const char *s, size_t len, int special, size_t *n) {
    size_t cap = zmlx_tokenizer_encode_bound(len);
    int32_t *ids = malloc(cap * sizeof *ids);
    zmlx_status st = zmlx_tokenizer_encode(t, s, len, special, ids, cap, n);
    if (st != ZMLX_OK) {
        fprintf(stderr, "encode failed: %s\n", zmlx_status_str(st));
        *n = 0;
    }
    return ids;
}

static char *dec(const zmlx_tokenizer *t, const int32_t *ids, size_t n, size_t *len) {
    size_t need = 0;
    zmlx_tokenizer_decode(t, ids, n, NULL, 0, &need);
    char *out = malloc(need + 1);
    if (zmlx_tokenizer_decode(t, ids, n, out, need + 1, len) != ZMLX_OK) *len = 0;
    return out;
}

static void print_ids(const char *label, const int32_t *ids, size_t n) {
    fprintf(stderr, "  %s (%zu):", label, n);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %d", (int)ids[i]);
    fputc('\n', stderr);
}

static void print_tokens(const zmlx_tokenizer *t, const char *label, const int32_t *ids, size_t n,
                         size_t from) {
    fprintf(stderr, "  %s tokens from %zu:", label, from);
    for (size_t i = from; i < n && i < from + 8; i++) {
        size_t len;
        char *s = dec(t, ids + i, 1, &len);
        fprintf(stderr, " [%d %.*s]", (int)ids[i], (int)len, s);
        free(s);
    }
    fputc('\n', stderr);
}

/* ------------------------------------------------------------ golden fixtures */

static void test_golden(const char *name) {
    char path[512], rel[128];
    snprintf(rel, sizeof rel, "fixtures/tokenizers/%s", name);
    tc_shared(path, sizeof path, rel);
    char err[ZMLX_ERR_MAX];
    zmlx_tokenizer *t = NULL;
    zmlx_status st = zmlx_tokenizer_load(path, &t, err, sizeof err);
    CHECKF(st == ZMLX_OK, "%s: %s", path, err);
    if (st) return;
    snprintf(rel, sizeof rel, "fixtures/tokenizers/%s/golden.json", name);
    tc_shared(path, sizeof path, rel);
    json_error_t jerr;
    json_t *g = json_load_file(path, 0, &jerr);
    CHECKF(g != NULL, "%s: %s", path, jerr.text);
    json_t *cases = json_object_get(g, "cases");
    size_t n_cases = json_array_size(cases), ok_ids = 0, ok_text = 0, reported = 0;
    double secs = 0;
    for (size_t c = 0; c < n_cases; c++) {
        json_t *cs = json_array_get(cases, c);
        const char *text = json_string_value(json_object_get(cs, "text"));
        size_t text_len = json_string_length(json_object_get(cs, "text"));
        json_t *want = json_object_get(cs, "ids");
        const char *want_dec = json_string_value(json_object_get(cs, "decoded"));
        size_t want_dec_len = json_string_length(json_object_get(cs, "decoded"));
        size_t n, n_want = json_array_size(want);
        clock_t t0 = clock();
        int32_t *ids = enc(t, text, text_len, 1, &n);
        secs += (double)(clock() - t0) / CLOCKS_PER_SEC;
        int32_t *w = malloc((n_want + 1) * sizeof *w);
        for (size_t i = 0; i < n_want; i++)
            w[i] = (int32_t)json_integer_value(json_array_get(want, i));
        int same = n == n_want && memcmp(ids, w, n * sizeof *ids) == 0;
        ok_ids += same;
        size_t dlen;
        char *d = dec(t, w, n_want, &dlen);
        int same_dec = dlen == want_dec_len && memcmp(d, want_dec, dlen) == 0;
        ok_text += same_dec;
        if ((!same || !same_dec) && reported++ == 0) {
            size_t k = 0;
            while (k < n && k < n_want && ids[k] == w[k])
                k++;
            fprintf(stderr, "%s case %zu mismatch (ids %s, decode %s); text (%zu bytes):\n%s\n",
                    name, c, same ? "ok" : "DIFFER", same_dec ? "ok" : "DIFFER", text_len, text);
            print_ids("expected", w, n_want);
            print_ids("got     ", ids, n);
            fprintf(stderr, "  first difference at index %zu\n", k);
            print_tokens(t, "expected", w, n_want, k);
            print_tokens(t, "got     ", ids, n, k);
            if (!same_dec) fprintf(stderr, "  decoded: %.*s\n", (int)dlen, d);
        }
        free(d);
        free(ids);
        free(w);
    }
    printf("%s: ids %zu/%zu, decoded %zu/%zu (encode %.1f ms total)\n", name, ok_ids, n_cases,
           ok_text, n_cases, secs * 1e3);
    CHECKF(n_cases == 400, "%s: %zu cases", name, n_cases);
    CHECKF(ok_ids == n_cases, "%s: %zu/%zu ids match", name, ok_ids, n_cases);
    CHECKF(ok_text == n_cases, "%s: %zu/%zu decoded match", name, ok_text, n_cases);
    json_decref(g);
    zmlx_tokenizer_free(t);
}

/* ------------------------------------------------------------ fixture behaviours */

static zmlx_tokenizer *load_fixture(const char *name) {
    char path[512], rel[128], err[ZMLX_ERR_MAX];
    snprintf(rel, sizeof rel, "fixtures/tokenizers/%s/tokenizer.json", name);
    tc_shared(path, sizeof path, rel);
    zmlx_tokenizer *t = NULL;
    zmlx_status st = zmlx_tokenizer_load(path, &t, err, sizeof err);
    CHECKF(st == ZMLX_OK, "%s: %s", path, err);
    return t;
}

static void test_roundtrip(const zmlx_tokenizer *t, const char *s, size_t len, const char *what) {
    size_t n, dlen;
    int32_t *ids = enc(t, s, len, 1, &n);
    char *d = dec(t, ids, n, &dlen);
    CHECKF(dlen == len && memcmp(d, s, len) == 0, "%s: round trip changed the bytes", what);
    CHECKF(n <= zmlx_tokenizer_encode_bound(len), "%s: %zu ids over the bound", what, n);
    free(ids);
    free(d);
}

static void test_invalid_utf8(const zmlx_tokenizer *t) {
    static const char cases[][40] = {
        "\xff\xfe abc \xe4\xbd", "caf\xc3",
        "\x80\x80\x80",          "<|user|>\xed\xa0\x80[gMASK]\xc0\xaf",
        "x\xf0\x9f\x98 y",       "\xf4\x90\x80\x80 12345",
        "  \xe2\x82  \n\n\xc2",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        test_roundtrip(t, cases[i], strlen(cases[i]), "invalid utf-8");
    test_roundtrip(t, "a\0b", 3, "embedded NUL");
    char big[5000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)(i * 131 + (i >> 3));
    test_roundtrip(t, big, sizeof big, "random bytes");
    memset(big, ' ', sizeof big);
    test_roundtrip(t, big, sizeof big, "long whitespace run");
}

static void test_stream(const zmlx_tokenizer *t) {
    /* U+1F600 is F0 9F 98 80: four byte-level tokens, one byte each */
    int32_t ids[6];
    const unsigned char bytes[] = {0xF0, 0x9F, 0x98, 0x80, 'A', 0xC3};
    for (int i = 0; i < 6; i++) {
        char u[4];
        size_t l = tok_utf8_enc(tok_byte_to_cp(bytes[i]), u);
        u[l] = '\0';
        ids[i] = zmlx_tokenizer_token_id(t, u);
        CHECKF(ids[i] >= 0, "byte token %02x missing", bytes[i]);
    }
    zmlx_detok_stream *s;
    CHECK(zmlx_detok_stream_init(t, &s) == ZMLX_OK);
    const char *p;
    size_t len;
    for (int i = 0; i < 3; i++) {
        CHECK(zmlx_detok_stream_push(s, ids[i], &p, &len) == ZMLX_OK);
        CHECKF(len == 0, "push %d of a split char emitted %zu bytes", i, len);
    }
    CHECK(zmlx_detok_stream_push(s, ids[3], &p, &len) == ZMLX_OK);
    CHECK(len == 4 && memcmp(p, "\xF0\x9F\x98\x80", 4) == 0);
    CHECK(zmlx_detok_stream_push(s, ids[5], &p, &len) == ZMLX_OK && len == 0); /* C3 held */
    CHECK(zmlx_detok_stream_flush(s, &p, &len) == ZMLX_OK && len == 1 &&
          (unsigned char)p[0] == 0xC3);
    CHECK(zmlx_detok_stream_flush(s, &p, &len) == ZMLX_OK && len == 0);
    /* a lead byte followed by ASCII can never complete: both go out at once */
    CHECK(zmlx_detok_stream_push(s, ids[0], &p, &len) == ZMLX_OK && len == 0);
    CHECK(zmlx_detok_stream_push(s, ids[4], &p, &len) == ZMLX_OK && len == 2 &&
          memcmp(p,
                 "\xF0"
                 "A",
                 2) == 0);

    /* a real text: every chunk is whole UTF-8 and the chunks add up to decode() */
    const char *text = "你好，世界！ 😀 é ñ — «ok» 大規模言語モデル\n\tend";
    size_t n, dlen, acc = 0, bad = 0;
    int32_t *tid = enc(t, text, strlen(text), 1, &n);
    char *whole = dec(t, tid, n, &dlen);
    char *cat = malloc(dlen + 1);
    for (size_t i = 0; i < n; i++) {
        CHECK(zmlx_detok_stream_push(s, tid[i], &p, &len) == ZMLX_OK);
        for (size_t k = 0; k < len;) {
            uint32_t cp;
            size_t l = tok_utf8_dec(p + k, len - k, &cp);
            if (!l) {
                bad++;
                break;
            }
            k += l;
        }
        memcpy(cat + acc, p, len);
        acc += len;
    }
    CHECK(zmlx_detok_stream_flush(s, &p, &len) == ZMLX_OK);
    memcpy(cat + acc, p, len);
    acc += len;
    CHECKF(bad == 0, "%zu stream chunks split a UTF-8 character", bad);
    CHECK(acc == dlen && memcmp(cat, whole, dlen) == 0);
    CHECK(acc == strlen(text) && memcmp(cat, text, acc) == 0);
    free(cat);
    free(whole);
    free(tid);
    zmlx_detok_stream_free(s);
}

static int contains(const int32_t *ids, size_t n, int32_t id) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id) return 1;
    return 0;
}

static void test_parse_special(const zmlx_tokenizer *t) {
    int32_t gmask = zmlx_tokenizer_token_id(t, "[gMASK]"),
            sop = zmlx_tokenizer_token_id(t, "<sop>");
    CHECK(gmask == 2 && sop == 4);
    CHECK(zmlx_tokenizer_token_id(t, "no such token") == -1);
    CHECK(zmlx_tokenizer_vocab_size(t) == 6000);
    const char *text = "[gMASK]<sop><|user|>hello<|assistant|></think>";
    size_t n, n0, dlen;
    int32_t *on = enc(t, text, strlen(text), 1, &n);
    int32_t *off = enc(t, text, strlen(text), 0, &n0);
    /* "hello" is 3 tokens in the trimmed fixture vocab */
    CHECK(n == 8 && on[0] == gmask && on[1] == sop && on[2] == 7 && on[6] == 8 && on[7] == 13);
    CHECK(n0 > n && !contains(off, n0, gmask) && !contains(off, n0, sop) && !contains(off, n0, 7));
    char *d = dec(t, off, n0, &dlen);
    CHECK(dlen == strlen(text) && memcmp(d, text, dlen) == 0);
    free(d);
    /* buffer contracts */
    size_t need;
    int32_t small[2];
    CHECK(zmlx_tokenizer_encode(t, text, strlen(text), 1, small, 2, &need) == ZMLX_ERR_LIMIT &&
          need == 8 && small[0] == gmask && small[1] == sop);
    CHECK(zmlx_tokenizer_encode(t, text, strlen(text), 1, NULL, 0, &need) == ZMLX_ERR_LIMIT &&
          need == 8);
    CHECK(zmlx_tokenizer_encode(t, "", 0, 1, NULL, 0, &need) == ZMLX_OK && need == 0);
    char out[8];
    CHECK(zmlx_tokenizer_decode(t, on, n, out, sizeof out, &need) == ZMLX_ERR_LIMIT &&
          need == strlen(text));
    int32_t neg = -1, unknown = 999999;
    CHECK(zmlx_tokenizer_decode(t, &neg, 1, out, sizeof out, &need) == ZMLX_ERR_INVALID_ARG);
    CHECK(zmlx_tokenizer_decode(t, &unknown, 1, out, sizeof out, &need) == ZMLX_OK && need == 0 &&
          out[0] == '\0');
    free(on);
    free(off);
}

static void test_bytes(void) {
    zmlx_tokenizer *t;
    CHECK(zmlx_tokenizer_load_bytes(&t, 100) == ZMLX_ERR_INVALID_ARG && t == NULL);
    CHECK(zmlx_tokenizer_load_bytes(&t, 300) == ZMLX_OK);
    CHECK(zmlx_tokenizer_vocab_size(t) == 300);
    size_t n, dlen;
    int32_t *ids = enc(t, "hi\xff", 3, 1, &n);
    CHECK(n == 3 && ids[0] == 'h' && ids[1] == 'i' && ids[2] == 255);
    int32_t mixed[] = {'h', 300, 256, 0};
    char *d = dec(t, mixed, 4, &dlen);
    CHECK(dlen == 12 && memcmp(d, "h<300><256>\0", 12) == 0);
    CHECK(zmlx_tokenizer_token_id(t, "A") == 'A' && zmlx_tokenizer_token_id(t, "AB") == -1);
    zmlx_detok_stream *s;
    const char *p;
    size_t len;
    CHECK(zmlx_detok_stream_init(t, &s) == ZMLX_OK);
    CHECK(zmlx_detok_stream_push(s, 0xE4, &p, &len) == ZMLX_OK && len == 0);
    CHECK(zmlx_detok_stream_push(s, 0xBD, &p, &len) == ZMLX_OK && len == 0);
    CHECK(zmlx_detok_stream_push(s, 0xA0, &p, &len) == ZMLX_OK && len == 3);
    CHECK(zmlx_detok_stream_push(s, 257, &p, &len) == ZMLX_OK && len == 5 &&
          !memcmp(p, "<257>", 5));
    zmlx_detok_stream_free(s);
    free(ids);
    free(d);
    zmlx_tokenizer_free(t);
}

/* Cases found by differential testing against HF tokenizers 0.23.2 (ids from HF):
 * characters new in Unicode 15/16 (HF's Oniguruma knows them, PCRE2 10.42 does not) and
 * U+180E (in PCRE2's \s, not in Oniguruma's). */
static void test_hf_regressions(const zmlx_tokenizer *glm, const zmlx_tokenizer *dsv3) {
    static const char uni16[] = "\xf0\x9f\xab\xa8!? \xf0\xb1\x8d\x90'vEL' "
                                "\xf0\x90\xb5\x80\xf0\x90\xb5\x81\xf0\x90\xb5\x82 x";
    static const char mvs[] = "a\xe1\xa0\x8e"
                              "b \xe1\xa0\x8e\n";
    static const int32_t glm_uni16[] = {2498, 126, 123, 22,  52,  242, 194, 131, 257, 260,
                                        28,   107, 58,  65,  28,  242, 194, 260, 135, 244,
                                        194,  260, 135, 245, 194, 260, 135, 246, 969, -1};
    static const int32_t dsv3_uni16[] = {2485, 116, 113,  12,  42,  232, 184, 121, 247, 250,
                                         18,   97,  1913, 18,  232, 184, 250, 125, 234, 184,
                                         250,  125, 235,  184, 250, 125, 236, 959, -1};
    static const int32_t glm_mvs[] = {86, 179, 276, 258, 87, 242, 179, 276, 258, 220, -1};
    static const int32_t dsv3_mvs[] = {76, 169, 266, 248, 77, 232, 169, 266, 248, 210, -1};
    const struct {
        const zmlx_tokenizer *t;
        const char *text;
        const int32_t *want;
        const char *what;
    } cases[] = {
        {glm, uni16, glm_uni16, "glm unicode 16"},
        {dsv3, uni16, dsv3_uni16, "dsv3 unicode 16"},
        {glm, mvs, glm_mvs, "glm U+180E"},
        {dsv3, mvs, dsv3_mvs, "dsv3 U+180E"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t n, n_want = 0;
        while (cases[c].want[n_want] >= 0)
            n_want++;
        int32_t *ids = enc(cases[c].t, cases[c].text, strlen(cases[c].text), 1, &n);
        int same = n == n_want && memcmp(ids, cases[c].want, n * sizeof *ids) == 0;
        CHECKF(same, "%s", cases[c].what);
        if (!same) {
            print_ids("expected", cases[c].want, n_want);
            print_ids("got     ", ids, n);
        }
        free(ids);
    }
}

/* ------------------------------------------------------------ a small hand-made tokenizer */

#define MINI_FMT                                                                                   \
    "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":[%s],"             \
    "\"normalizer\":null,\"pre_tokenizer\":%s,\"post_processor\":null,"                            \
    "\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,"         \
    "\"use_regex\":true},\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,"         \
    "\"continuing_subword_prefix\":null,\"end_of_word_suffix\":null,\"fuse_unk\":false,"           \
    "\"byte_fallback\":false,\"ignore_merges\":false%s,\"vocab\":%s,\"merges\":[\"h e\","          \
    "\"l l\",\"he ll\",\"hell o\",\"\xc4\xa0 h\",\"1 2\"]}}"

/* vocab: the 256 byte chars (id = byte) + merges h e, l l, he ll, hell o, Ġ h, 1 2;
 * `pre`, the added tokens and extra model fields vary per test. */
static char *mini_json(const char *pre, const char *added, const char *model_extra) {
    json_t *vocab = json_object();
    for (int b = 0; b < 256; b++) {
        char u[4];
        size_t l = tok_utf8_enc(tok_byte_to_cp((unsigned char)b), u);
        json_object_setn_new(vocab, u, l, json_integer(b));
    }
    static const char *const extra[] = {"he", "ll", "hell", "hello", "\xc4\xa0h", "12"};
    for (int i = 0; i < 6; i++)
        json_object_set_new(vocab, extra[i], json_integer(256 + i));
    char *v = json_dumps(vocab, JSON_COMPACT);
    json_decref(vocab);
    size_t size = sizeof MINI_FMT + strlen(v) + strlen(pre) + strlen(added) + strlen(model_extra);
    char *out = malloc(size);
    snprintf(out, size, MINI_FMT, added, pre, model_extra, v);
    free(v);
    return out;
}

#define MINI_ADDED                                                                                 \
    "{\"id\":262,\"content\":\"<s>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,"     \
    "\"normalized\":false,\"special\":true},{\"id\":263,\"content\":\"[X]\",\"single_word\":"      \
    "false,\"lstrip\":false,\"rstrip\":false,\"normalized\":true,\"special\":false}"
#define BL(prefix, regex)                                                                          \
    "{\"type\":\"ByteLevel\",\"add_prefix_space\":" prefix ",\"trim_offsets\":true,"               \
    "\"use_regex\":" regex "}"

static zmlx_status mini_load(const char *pre, const char *added, const char *model_extra,
                             zmlx_tokenizer **t, char *err) {
    char *js = mini_json(pre, added, model_extra);
    zerr e = {{0}};
    zmlx_status st = tok_load_json(js, strlen(js), "mini.json", t, &e);
    snprintf(err, ZMLX_ERR_MAX, "%s", e.msg);
    free(js);
    return st;
}

/* Encode with a mini tokenizer and compare against the expected ids (-1 terminated). */
static void mini_case(const char *pre, const char *added, const char *text, int special,
                      const int32_t *want, const char *what) {
    zmlx_tokenizer *t = NULL;
    char err[ZMLX_ERR_MAX];
    zmlx_status st = mini_load(pre, added, "", &t, err);
    CHECKF(st == ZMLX_OK, "%s: %s", what, err);
    if (st) return;
    size_t n, n_want = 0, dlen;
    while (want[n_want] >= 0)
        n_want++;
    int32_t *ids = enc(t, text, strlen(text), special, &n);
    int same = n == n_want && memcmp(ids, want, n * sizeof *ids) == 0;
    CHECKF(same, "%s", what);
    if (!same) {
        print_ids("expected", want, n_want);
        print_ids("got     ", ids, n);
    }
    char *d = dec(t, ids, n, &dlen);
    free(d);
    free(ids);
    zmlx_tokenizer_free(t);
}

#define SEQ_SPLIT                                                                                  \
    "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"String\":"       \
    "\"%s\"},\"behavior\":\"%s\",\"invert\":%s}," BL("false", "false") "]}"

/* The expected ids below were confirmed with HF tokenizers 0.23.2 on the same JSON. */
static void test_mini(void) {
    char pre[512];
    /* merges never cross pieces, so the ids show where each behaviour cut */
    static const struct {
        const char *pat, *beh, *inv, *text;
        int32_t want[8];
    } splits[] = {
        {"l", "Removed", "false", "hello", {256, 'o', -1}},
        {"l", "Isolated", "false", "hello", {256, 'l', 'l', 'o', -1}},
        {"l", "Contiguous", "false", "hello", {256, 257, 'o', -1}},
        {"l", "Removed", "true", "hello", {'l', 'l', -1}},
        {"e", "MergedWithPrevious", "false", "hehe", {256, 256, -1}},
        {"e", "MergedWithNext", "false", "hehe", {'h', 'e', 'h', 'e', -1}},
        {"h", "MergedWithNext", "false", "hehe", {256, 256, -1}},
        {"h", "MergedWithPrevious", "false", "hehe", {'h', 'e', 'h', 'e', -1}},
        {"-", "Isolated", "false", "a-b--c", {'a', '-', 'b', '-', '-', 'c', -1}},
    };
    for (size_t i = 0; i < sizeof splits / sizeof splits[0]; i++) {
        snprintf(pre, sizeof pre, SEQ_SPLIT, splits[i].pat, splits[i].beh, splits[i].inv);
        mini_case(pre, "", splits[i].text, 1, splits[i].want, splits[i].beh);
    }
    /* merges only happen inside a piece: "hello" merges, "hel-lo" cut by MergedWithNext */
    snprintf(pre, sizeof pre, SEQ_SPLIT, "-", "MergedWithNext", "false");
    mini_case(pre, "", "hello", 1, (const int32_t[]){259, -1}, "merge to hello");
    mini_case(pre, "", "hel-lo", 1, (const int32_t[]){256, 'l', '-', 'l', 'o', -1}, "cut merge");
    mini_case(BL("true", "true"), "", "hello hello", 1, (const int32_t[]){' ', 259, ' ', 259, -1},
              "add_prefix_space");
    mini_case(BL("false", "true"), "", "12 123", 1, (const int32_t[]){261, ' ', 261, '3', -1},
              "gpt2 regex digits");
    mini_case(
        "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Digits\",\"individual_digits\":"
        "true}," BL("false", "false") "]}",
        "", "123", 1, (const int32_t[]){'1', '2', '3', -1}, "individual digits");
    mini_case(
        "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Digits\",\"individual_digits\":"
        "false}," BL("false", "false") "]}",
        "", "a123", 1, (const int32_t[]){'a', 261, '3', -1}, "contiguous digits");
    /* added tokens: special only with parse_special; non-special always */
    mini_case(BL("false", "false"), MINI_ADDED, "<s>he[X]", 1, (const int32_t[]){262, 256, 263, -1},
              "added tokens");
    mini_case(BL("false", "false"), MINI_ADDED, "<s>he[X]", 0,
              (const int32_t[]){'<', 's', '>', 256, 263, -1}, "parse_special=0");
    mini_case(BL("false", "false"),
              "{\"id\":262,\"content\":\"<s>\",\"single_word\":false,\"lstrip\":true,\"rstrip\":"
              "true,\"normalized\":false,\"special\":true}",
              "a  <s>  b", 1, (const int32_t[]){'a', 262, 'b', -1}, "lstrip rstrip");
    mini_case(BL("false", "false"),
              "{\"id\":262,\"content\":\"he\",\"single_word\":true,\"lstrip\":false,\"rstrip\":"
              "false,\"normalized\":false,\"special\":false}",
              "he hex", 1, (const int32_t[]){256, ' ', 256, 'x', -1}, "single_word");
    /* Oniguruma's bare \w takes ² and ½ but not U+200C (ZWNJ) */
    mini_case(
        "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":"
        "\"\\\\w+\"},\"behavior\":\"Removed\",\"invert\":false}," BL("false", "false") "]}",
        "",
        "a\xc2\xb2"
        "b\xe2\x80\x8c"
        "c\xc2\xbd",
        1, (const int32_t[]){226, 128, 140, -1}, "onig word chars");
    /* HF resumes matching after the token, not after what its rstrip took: " " matches too */
    mini_case(BL("false", "false"),
              "{\"id\":262,\"content\":\"<s>\",\"rstrip\":true,\"normalized\":false,\"special\":"
              "true},{\"id\":263,\"content\":\" \",\"normalized\":false}",
              "a<s> b", 1, (const int32_t[]){'a', 262, 263, 'b', -1}, "rstrip then space token");
    /* leftmost-longest: "<s>" beats "<" and wins over a later "s>" */
    mini_case(BL("false", "false"),
              "{\"id\":264,\"content\":\"<\",\"special\":true},{\"id\":265,\"content\":\"<s>\","
              "\"special\":true},{\"id\":266,\"content\":\"s>x\",\"special\":true}",
              "<s>x", 1, (const int32_t[]){262, 'x', -1}, "leftmost longest");
}

static void expect_error(const char *json, zmlx_status want, const char *needle, const char *what) {
    zmlx_tokenizer *t = NULL;
    zerr e = {{0}};
    zmlx_status st = tok_load_json(json, strlen(json), "bad.json", &t, &e);
    CHECKF(st == want && t == NULL, "%s: got %s (%s)", what, zmlx_status_str(st), e.msg);
    CHECKF(strstr(e.msg, needle) != NULL, "%s: message \"%s\" lacks \"%s\"", what, e.msg, needle);
    zmlx_tokenizer_free(t);
}

static void expect_mini_error(const char *pre, const char *added, const char *model_extra,
                              zmlx_status want, const char *needle, const char *what) {
    char *js = mini_json(pre, added, model_extra);
    expect_error(js, want, needle, what);
    free(js);
}

static void test_errors(void) {
    char err[ZMLX_ERR_MAX];
    zmlx_tokenizer *t = (zmlx_tokenizer *)1;
    CHECK(zmlx_tokenizer_load("/nonexistent/tokenizer.json", &t, err, sizeof err) == ZMLX_ERR_IO &&
          t == NULL && strstr(err, "/nonexistent/tokenizer.json"));
    expect_error("{\"model\": ", ZMLX_ERR_FORMAT, "invalid JSON", "truncated JSON");
    expect_error("[1,2]", ZMLX_ERR_FORMAT, "object", "not an object");
    expect_error("{\"model\":{\"type\":\"WordPiece\",\"vocab\":{}},\"decoder\":null}",
                 ZMLX_ERR_UNSUPPORTED, "model.type: \"WordPiece\"", "WordPiece");
    expect_error("{\"model\":{\"type\":\"Unigram\",\"vocab\":[]}}", ZMLX_ERR_UNSUPPORTED,
                 "model.type: \"Unigram\"", "Unigram");
    expect_mini_error("{\"type\":\"Metaspace\",\"replacement\":\"_\"}", "", "",
                      ZMLX_ERR_UNSUPPORTED, "pre_tokenizer.type: pre-tokenizer \"Metaspace\"",
                      "Metaspace");
    expect_mini_error("{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Whitespace\"}]}", "",
                      "", ZMLX_ERR_UNSUPPORTED, "pre_tokenizer.pretokenizers[0].type",
                      "nested unsupported");
    expect_mini_error("{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\s+\"},\"behavior\":"
                      "\"Isolated\",\"invert\":false}",
                      "", "", ZMLX_ERR_UNSUPPORTED, "no ByteLevel", "no ByteLevel");
    expect_mini_error("{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":"
                      "{\"Regex\":\"[\\\\p{L}&&[^a]]+\"},\"behavior\":\"Isolated\",\"invert\":"
                      "false}]}",
                      "", "", ZMLX_ERR_UNSUPPORTED, "pre_tokenizer.pretokenizers[0].pattern.Regex",
                      "class intersection");
    expect_mini_error(BL("false", "false"), "", ",\"byte_fallback\":true", ZMLX_ERR_UNSUPPORTED,
                      "model.byte_fallback", "byte_fallback");
    /* merges naming unknown tokens */
    expect_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":"
                 "[\"a b\",\"a zz\"]},\"pre_tokenizer\":{\"type\":\"ByteLevel\"},\"decoder\":{"
                 "\"type\":\"ByteLevel\"}}",
                 ZMLX_ERR_FORMAT, "model.merges[1]: token \"zz\" is not in model.vocab",
                 "merge of unknown token");
    expect_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[[\"a\","
                 "\"b\"]]},\"pre_tokenizer\":{\"type\":\"ByteLevel\"},\"decoder\":{\"type\":"
                 "\"ByteLevel\"}}",
                 ZMLX_ERR_FORMAT, "merged token \"ab\" is not in model.vocab", "merge result");
    expect_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"normalizer\":"
                 "{\"type\":\"NFC\"},\"pre_tokenizer\":{\"type\":\"ByteLevel\"},\"decoder\":{"
                 "\"type\":\"ByteLevel\"}}",
                 ZMLX_ERR_UNSUPPORTED, "normalizer.type: normalizer \"NFC\"", "NFC");
    expect_error(
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"pre_tokenizer\":"
        "{\"type\":\"ByteLevel\"},\"decoder\":{\"type\":\"Metaspace\"}}",
        ZMLX_ERR_UNSUPPORTED, "decoder.type: decoder \"Metaspace\"", "decoder");
    expect_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-3},\"merges\":[]},\"decoder\":"
                 "{\"type\":\"ByteLevel\"}}",
                 ZMLX_ERR_FORMAT, "model.vocab[\"a\"]", "negative id");
    expect_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":0},\"merges\":[]},"
                 "\"decoder\":{\"type\":\"ByteLevel\"}}",
                 ZMLX_ERR_FORMAT, "id 0 is used by both", "duplicate id");
    expect_error("{\"truncation\":{\"max_length\":5},\"model\":{\"type\":\"BPE\"}}",
                 ZMLX_ERR_UNSUPPORTED, "truncation", "truncation");
    expect_mini_error(BL("false", "false"), "", ",\"dropout\":0.1", ZMLX_ERR_UNSUPPORTED,
                      "model.dropout", "dropout");
    expect_mini_error(BL("false", "false"), "", ",\"continuing\":1", ZMLX_ERR_UNSUPPORTED,
                      "model.\"continuing\": unknown field", "unknown model field");
}

int main(void) {
    test_golden("glm-bpe");
    test_golden("dsv3-bpe");
    zmlx_tokenizer *glm = load_fixture("glm-bpe");
    zmlx_tokenizer *dsv3 = load_fixture("dsv3-bpe");
    if (glm && dsv3) {
        test_invalid_utf8(glm);
        test_invalid_utf8(dsv3);
        test_stream(glm);
        test_stream(dsv3);
        test_parse_special(glm);
        test_hf_regressions(glm, dsv3);
    }
    zmlx_tokenizer_free(glm);
    zmlx_tokenizer_free(dsv3);
    test_bytes();
    test_mini();
    test_errors();
    return tc_done();
}
