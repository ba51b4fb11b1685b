/*
 * test_tiktoken.c — the tiktoken (Kimi-K2.5) tokenizer against tiktoken itself: the
 * synthetic kimi-tiny fixture (tests/fixtures/kimi-tiny, made by tests/kimi_fixture.py)
 * must give the golden ids of tiktoken + tokenization_kimi.py for every case, with and
 * without special-token parsing, including the 25,000-char run cutting; the PCRE2 rewrite
 * of Kimi's pattern (&& intersections, \p{Han}, Unicode 16) must split the golden strings
 * into exactly tiktoken's pieces.  Also: decoding, streaming, invalid UTF-8, lookups and
 * one clear error for each kind of broken file.
 */
#include "tcheck.h"
#include "tokenizer/tok_internal.h"
#include "zmlx.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *fixture_dir(char *buf, size_t n) {
    const char *src = getenv("ZMLX_SRC");
    snprintf(buf, n, "%s/tests/fixtures/kimi-tiny", src ? src : ".");
    return buf;
}

static int32_t *enc(const zmlx_tokenizer *t, const char *s, size_t len, int special, size_t *n) {
    size_t cap = zmlx_tokenizer_encode_bound(len);
    int32_t *ids = malloc((cap + 1) * sizeof *ids);
    if (zmlx_tokenizer_encode(t, s, len, special, ids, cap, n) != ZMLX_OK) *n = (size_t)-1;
    return ids;
}

static char *dec(const zmlx_tokenizer *t, const int32_t *ids, size_t n, size_t *len) {
    size_t need = 0;
    zmlx_tokenizer_decode(t, ids, n, NULL, 0, &need);
    char *out = malloc(need + 1);
    if (zmlx_tokenizer_decode(t, ids, n, out, need + 1, len) != ZMLX_OK) *len = (size_t)-1;
    return out;
}

static int ids_equal(const int32_t *a, size_t n, json_t *arr) {
    if (!json_is_array(arr) || json_array_size(arr) != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (json_integer_value(json_array_get(arr, i)) != a[i]) return 0;
    return 1;
}

static void print_diff(const char *what, const char *text, const int32_t *ids, size_t n,
                       json_t *want) {
    fprintf(stderr, "  %s mismatch on \"%.60s\": got %zu ids, want %zu\n   got:", what, text, n,
            json_array_size(want));
    for (size_t i = 0; i < n && i < 24; i++)
        fprintf(stderr, " %d", (int)ids[i]);
    fprintf(stderr, "\n  want:");
    for (size_t i = 0; i < json_array_size(want) && i < 24; i++)
        fprintf(stderr, " %d", (int)json_integer_value(json_array_get(want, i)));
    fputc('\n', stderr);
}

static uint64_t fnv64(const int32_t *ids, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 4; k++) {
            h ^= ((uint32_t)ids[i] >> (8 * k)) & 0xFF;
            h *= 0x100000001b3ull;
        }
    return h;
}

/* ------------------------------------------------------------ golden ids */

static void check_text_case(const zmlx_tokenizer *t, json_t *c, size_t *ok) {
    const char *text = json_string_value(json_object_get(c, "text"));
    size_t len = json_string_length(json_object_get(c, "text")), n, dn;
    int good = 1;
    for (int special = 1; special >= 0; special--) {
        json_t *want = json_object_get(c, special ? "ids" : "ids_nospecial");
        int32_t *ids = enc(t, text, len, special, &n);
        if (!ids_equal(ids, n, want)) {
            print_diff(special ? "ids" : "ids_nospecial", text, ids, n, want);
            good = 0;
        }
        char *back = dec(t, ids, n, &dn);
        if (dn != len || memcmp(back, text, len) != 0) good = 0;
        free(back);
        free(ids);
    }
    *ok += good;
}

/* Inputs past the 25,000-char run limit: length, hash and both ends of the ids. */
static void check_repeat_case(const zmlx_tokenizer *t, json_t *c) {
    const char *unit = json_string_value(json_object_get(c, "repeat"));
    const char *suffix = json_string_value(json_object_get(c, "suffix"));
    size_t times = (size_t)json_integer_value(json_object_get(c, "times"));
    size_t ul = strlen(unit), sl = strlen(suffix), len = ul * times + sl, n;
    char *text = malloc(len + 1);
    for (size_t i = 0; i < times; i++)
        memcpy(text + i * ul, unit, ul);
    memcpy(text + ul * times, suffix, sl + 1);
    int32_t *ids = enc(t, text, len, 1, &n);
    char want_hash[24];
    snprintf(want_hash, sizeof want_hash, "%016llx", (unsigned long long)fnv64(ids, n));
    CHECKF(n == (size_t)json_integer_value(json_object_get(c, "n")), "\"%s\" x %zu: %zu ids", unit,
           times, n);
    CHECKF(!strcmp(want_hash, json_string_value(json_object_get(c, "fnv64"))),
           "\"%s\" x %zu: ids hash %s", unit, times, want_hash);
    json_t *head = json_object_get(c, "head"), *tail = json_object_get(c, "tail");
    size_t nt = json_array_size(tail);
    CHECK(n >= nt && ids_equal(ids, json_array_size(head), head) &&
          ids_equal(ids + n - nt, nt, tail));
    free(ids);
    free(text);
}

static void test_golden(const zmlx_tokenizer *t, json_t *g) {
    json_t *cases = json_object_get(g, "cases");
    size_t n_text = 0, ok = 0;
    for (size_t i = 0; i < json_array_size(cases); i++) {
        json_t *c = json_array_get(cases, i);
        if (json_object_get(c, "repeat")) {
            check_repeat_case(t, c);
        } else {
            n_text++;
            check_text_case(t, c, &ok);
        }
    }
    CHECKF(n_text > 150 && ok == n_text, "%zu of %zu golden cases match tiktoken", ok, n_text);
    printf("golden: %zu of %zu cases identical to tiktoken (both parse_special values)\n", ok,
           n_text);
}

/* ------------------------------------------------------------ the pattern */

/* Every golden string splits into tiktoken's pieces (&&, Han, case and contraction cases). */
static void test_splits(const zmlx_tokenizer *t, json_t *g) {
    json_t *splits = json_object_get(g, "splits");
    tok_scratch sc;
    CHECK(tok_scratch_init(&sc) == ZMLX_OK);
    size_t ok = 0, total = json_array_size(splits);
    for (size_t i = 0; i < total; i++) {
        json_t *c = json_array_get(splits, i), *want = json_object_get(c, "pieces");
        const char *s = json_string_value(json_object_get(c, "text"));
        size_t n = json_string_length(json_object_get(c, "text")), k = 0, ms, me;
        tok_regex_iter it = {0, 0};
        int good = 1;
        while (good && tok_regex_next(t->tk->re, s, n, &it, &sc, &ms, &me) == 1) {
            json_t *p = json_array_get(want, k++);
            good = p && json_string_length(p) == me - ms &&
                   !memcmp(json_string_value(p), s + ms, me - ms);
        }
        good = good && k == json_array_size(want);
        if (!good) fprintf(stderr, "  split of \"%s\" differs from tiktoken's\n", s);
        ok += good;
    }
    tok_scratch_free(&sc);
    CHECKF(total > 100 && ok == total, "%zu of %zu splits match", ok, total);
    printf("pattern: %zu of %zu strings split into tiktoken's pieces\n", ok, total);
}

/* The PCRE2 text keeps the three rewrites: lookahead for &&, sc:Han, no bare \s. */
static void test_pattern_text(void) {
    pcre2_code *re = NULL;
    char *text = NULL;
    zerr e;
    CHECK(tok_kimi_regex(&re, &text, &e) == ZMLX_OK && text);
    if (!text) return;
    CHECK(strstr(text, "(?:(?![\\p{sc:Han}") != NULL);
    CHECK(strstr(text, "&&") == NULL && strstr(text, "\\p{Han}") == NULL);
    CHECK(strstr(text, "\\s") == NULL && strstr(text, "\\S") == NULL);
    CHECK(strstr(text, "\\x{31350}-\\x{323AF}") != NULL);
    pcre2_code_free(re);
    free(text);
}

/* Single chars at the Han boundary: which alternative takes them decides the split. */
static void test_han_boundary(const zmlx_tokenizer *t) {
    static const struct {
        const char *text;
        int pieces;
    } cases[] = {
        {"\xe4\xbd\xa0\xe5\xa5\xbd", 1},             /* 你好: one Han run */
        {"\xe4\xbd\xa0\xe5\xa5\xbd\xe3\x80\x82", 2}, /* 你好。: U+3002 is Han only by scx */
        {"a\xe3\x80\x81"
         "b",
         2},                             /* a、b -> a | 、b */
        {"\xe3\x80\x85\xe3\x80\x87", 1}, /* 々〇: Lm and Nl, both script Han */
        {"ab\xe4\xbd\xa0", 2},           /* ab你 */
        {"\xe4\xbd\xa0"
         "ab",
         2},                             /* 你ab */
        {"\xf0\xb1\x8d\x90x", 2},        /* U+31350 (Ext H, Unicode 15) x */
        {"\xf0\xae\xaf\xb0x", 2},        /* U+2EBF0 (Ext I, Unicode 15.1) x */
        {"\xe3\x81\x8b\xe3\x81\xaa", 1}, /* かな: Hiragana, a non-Han letter run */
    };
    tok_scratch sc;
    tok_scratch_init(&sc);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *s = cases[i].text;
        tok_regex_iter it = {0, 0};
        size_t ms, me, k = 0;
        while (tok_regex_next(t->tk->re, s, strlen(s), &it, &sc, &ms, &me) == 1)
            k++;
        CHECKF(k == (size_t)cases[i].pieces, "\"%s\": %zu pieces, want %d", s, k, cases[i].pieces);
    }
    tok_scratch_free(&sc);
}

/* ------------------------------------------------------------ API contracts */

static void test_api(const zmlx_tokenizer *t, int32_t n_base) {
    char name[48];
    CHECK(zmlx_tokenizer_vocab_size(t) == n_base + 256);
    CHECK(zmlx_tokenizer_token_id(t, "[BOS]") == n_base);
    CHECK(zmlx_tokenizer_token_id(t, "<|im_end|>") == n_base + 2);
    CHECK(zmlx_tokenizer_token_id(t, "</think>") == n_base + 23);
    snprintf(name, sizeof name, "<|reserved_token_%d|>", (int)(n_base + 5));
    CHECK(zmlx_tokenizer_token_id(t, name) == n_base + 5);
    CHECK(zmlx_tokenizer_token_id(t, "<|reserved_token_5|>") == -1);
    CHECK(zmlx_tokenizer_token_id(t, "a") >= 0 && zmlx_tokenizer_token_id(t, "a") < 256);
    int32_t ids[] = {n_base + 2, n_base + 300, zmlx_tokenizer_token_id(t, "a")};
    size_t len;
    char *s = dec(t, ids, 3, &len); /* an unknown id decodes to nothing */
    CHECK(len == 11 && !memcmp(s, "<|im_end|>a", 11));
    free(s);
    /* invalid UTF-8 goes through byte-wise and comes back unchanged, streamed or not */
    static const char bad[] = "ok \xff\xfe\xe4\xbd bytes\x80 \xf0\x9f\x98\x80!";
    size_t n;
    int32_t *bi = enc(t, bad, sizeof bad - 1, 1, &n);
    s = dec(t, bi, n, &len);
    CHECK(len == sizeof bad - 1 && !memcmp(s, bad, len));
    zmlx_detok_stream *ds = NULL;
    CHECK(zmlx_detok_stream_init(t, &ds) == ZMLX_OK);
    size_t acc = 0;
    for (size_t i = 0; i <= n; i++) {
        const char *p;
        size_t pl;
        if (i < n)
            zmlx_detok_stream_push(ds, bi[i], &p, &pl);
        else
            zmlx_detok_stream_flush(ds, &p, &pl);
        CHECK(acc + pl <= len && !memcmp(s + acc, p, pl));
        acc += pl;
    }
    CHECK(acc == len);
    zmlx_detok_stream_free(ds);
    free(s);
    /* the size contract: a too-small buffer reports the count needed */
    size_t need;
    CHECK(n > 1 &&
          zmlx_tokenizer_encode(t, bad, sizeof bad - 1, 1, bi, n - 1, &need) == ZMLX_ERR_LIMIT &&
          need == n);
    free(bi);
}

/* ------------------------------------------------------------ broken files */

static void expect_parse_error(const char *model, const char *config, zmlx_status want,
                               const char *needle) {
    zmlx_tokenizer *t = NULL;
    zerr e = {{0}};
    zmlx_status st =
        tok_tk_parse(model, strlen(model), config, config ? strlen(config) : 0, "dir", &t, &e);
    CHECKF(st == want && (st == ZMLX_OK) == (t != NULL) && strstr(e.msg, needle),
           "want %s /%s/, got %s: %s", zmlx_status_str(want), needle, zmlx_status_str(st), e.msg);
    zmlx_tokenizer_free(t);
}

/* A complete model (the 256 bytes) plus `extra` lines. */
static char *byte_model(const char *extra) {
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t cap = 256 * 16 + strlen(extra) + 1, o = 0;
    char *m = malloc(cap);
    for (int b = 0; b < 256; b++)
        o += (size_t)snprintf(m + o, cap - o, "%c%c== %d\n", b64[b >> 2], b64[(b & 3) << 4], b);
    snprintf(m + o, cap - o, "%s", extra);
    return m;
}

static void test_errors(void) {
    char *m = byte_model("");
    zmlx_tokenizer *t = NULL;
    zerr e;
    CHECK(tok_tk_parse(m, strlen(m), NULL, 0, "dir", &t, &e) == ZMLX_OK && t);
    CHECK(t && zmlx_tokenizer_vocab_size(t) == 512 && zmlx_tokenizer_token_id(t, "[BOS]") < 0);
    zmlx_tokenizer_free(t);
    free(m);
    m = byte_model("YWI= 256\r\nYWJj 257\n\n");
    expect_parse_error(m, "{\"added_tokens_decoder\": {\"258\": {\"content\": \"<s>\"}}}", ZMLX_OK,
                       "");
    free(m);
    struct {
        const char *extra, *config, *needle;
        zmlx_status st;
    } bad[] = {
        {"YWI 256\n", NULL, "line 257: the token is not canonical base64", ZMLX_ERR_FORMAT},
        {"YWI=\n", NULL, "line 257: expected", ZMLX_ERR_FORMAT},
        {"YWI= 256 7\n", NULL, "line 257: expected", ZMLX_ERR_FORMAT},
        {"YWI= -1\n", NULL, "line 257: expected", ZMLX_ERR_FORMAT},
        {"YWJ= 256\n", NULL, "canonical", ZMLX_ERR_FORMAT},
        {"AA== 256\n", NULL, "line 257: the token is listed twice", ZMLX_ERR_FORMAT},
        {"YWI= 300\n", NULL, "ranks must be 0 .. 256", ZMLX_ERR_FORMAT},
        {"YWI= 255\n", NULL, "ranks must be 0 .. 256", ZMLX_ERR_FORMAT},
        {"YWI= 99999999\n", NULL, "too large", ZMLX_ERR_UNSUPPORTED},
        {"", "{", "tokenizer_config.json: invalid JSON", ZMLX_ERR_FORMAT},
        {"", "{\"added_tokens_decoder\": []}", "must be an object", ZMLX_ERR_FORMAT},
        {"", "{\"added_tokens_decoder\": {\"256\": {\"content\": 3}}}",
         "content: expected a string", ZMLX_ERR_FORMAT},
        {"", "{\"added_tokens_decoder\": {\"256\": {\"content\": \"\"}}}", "empty",
         ZMLX_ERR_FORMAT},
        {"",
         "{\"added_tokens_decoder\": {\"256\": {\"content\": \"<a>\"}, \"257\": {\"content\": "
         "\"<a>\"}}}",
         "is given to two ids", ZMLX_ERR_FORMAT},
        {"",
         "{\"added_tokens_decoder\": {\"256\": {\"content\": \"<a>\"}, \"257\": {\"content\": "
         "\"<a>b\"}}}",
         "is a prefix of", ZMLX_ERR_UNSUPPORTED},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        m = byte_model(bad[i].extra);
        expect_parse_error(m, bad[i].config, bad[i].st, bad[i].needle);
        free(m);
    }
    expect_parse_error("QQ== 0\n", NULL, ZMLX_ERR_FORMAT, "byte 0x00 has no token");
    expect_parse_error("", NULL, ZMLX_ERR_FORMAT, "no tokens");
}

/* Loading from a directory: tiktoken.model is found when tokenizer.json is absent, and a
 * missing tokenizer_config.json is one clear error. */
static void test_load_dir(void) {
    char dir[] = "/tmp/zmlx-tiktoken-XXXXXX", path[128], err[ZMLX_ERR_MAX];
    if (!mkdtemp(dir)) return;
    snprintf(path, sizeof path, "%s/tiktoken.model", dir);
    char *m = byte_model("");
    FILE *f = fopen(path, "w");
    fputs(m, f);
    fclose(f);
    free(m);
    zmlx_tokenizer *t = NULL;
    CHECK(zmlx_tokenizer_load(dir, &t, err, sizeof err) == ZMLX_ERR_IO && !t);
    CHECKF(strstr(err, "tokenizer_config.json") && strstr(err, "special tokens"), "%s", err);
    char cpath[128];
    snprintf(cpath, sizeof cpath, "%s/tokenizer_config.json", dir);
    f = fopen(cpath, "w");
    fputs("{\"added_tokens_decoder\": {\"256\": {\"content\": \"[BOS]\"}}}", f);
    fclose(f);
    CHECKF(zmlx_tokenizer_load(dir, &t, err, sizeof err) == ZMLX_OK, "%s", err);
    CHECK(zmlx_tokenizer_token_id(t, "[BOS]") == 256);
    zmlx_tokenizer_free(t);
    t = NULL; /* the file's own path loads the same */
    CHECKF(zmlx_tokenizer_load(path, &t, err, sizeof err) == ZMLX_OK, "%s", err);
    CHECK(t && zmlx_tokenizer_token_id(t, "[BOS]") == 256);
    zmlx_tokenizer_free(t);
    unlink(cpath);
    unlink(path);
    rmdir(dir);
}

int main(void) {
    char dir[512], path[600], err[ZMLX_ERR_MAX];
    fixture_dir(dir, sizeof dir);
    zmlx_tokenizer *t = NULL;
    zmlx_status st = zmlx_tokenizer_load(dir, &t, err, sizeof err);
    CHECKF(st == ZMLX_OK && t && t->tk, "%s: %s", dir, err);
    snprintf(path, sizeof path, "%s/golden.json", dir);
    json_error_t jerr;
    json_t *g = json_load_file(path, JSON_ALLOW_NUL, &jerr);
    CHECKF(g != NULL, "%s: %s", path, jerr.text);
    if (t && g) {
        int32_t n_base = (int32_t)json_integer_value(json_object_get(g, "n_base"));
        CHECK(t->tk->n_base == n_base);
        test_golden(t, g);
        test_splits(t, g);
        test_han_boundary(t);
        test_api(t, n_base);
    }
    json_decref(g);
    zmlx_tokenizer_free(t);
    test_pattern_text();
    test_errors();
    test_load_dir();
    return tc_done();
}
