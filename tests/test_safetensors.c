/*
 * test_safetensors.c — the safetensors reader (io/safetensors.h): zst_parse() on
 * synthetic file images built in memory (a valid round trip and every class of
 * malformed header, each checked for its status and for a one-line message naming
 * the field and value at fault), then zst_open() on directories written to a
 * mkdtemp folder (single file, index + shards, bad indexes, no files) and on the
 * glm47-tiny fixture.
 */
#include "io/safetensors.h"
#include "tcheck.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------ image helpers */

/* A file image: u64 LE header length, the JSON text, then `data_len` pattern bytes.
 * Allocated to the exact size so ASan catches any read past the end. */
typedef struct img {
    uint8_t *p;
    size_t n;
} img;

static img mk_img(const char *json, size_t data_len) {
    size_t hl = strlen(json);
    img m = {malloc(8 + hl + data_len + 1), 8 + hl + data_len};
    for (int i = 0; i < 8; i++)
        m.p[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(m.p + 8, json, hl);
    for (size_t i = 0; i < data_len; i++)
        m.p[8 + hl + i] = (uint8_t)(i * 7 + 1);
    return m;
}

static void set_len(img *m, uint64_t v) {
    for (int i = 0; i < 8; i++)
        m->p[i] = (uint8_t)(v >> (8 * i));
}

/* One line, no control bytes: what every message must be. */
static bool one_line(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return false;
    return true;
}

/* Parse `json` + data_len bytes; expect status `want` and a message that starts with
 * the file name and holds n1 and n2 (either may be NULL). */
static void expect_err(int line, const char *json, size_t data_len, zmlx_status want,
                       const char *n1, const char *n2) {
    img m = mk_img(json, data_len);
    zst_header h;
    zerr e = {{0}};
    zmlx_status st = zst_parse(m.p, m.n, "model.safetensors", &h, &e);
    CHECKF(st == want, "line %d: status %d, want %d (%s)", line, st, want, e.msg);
    CHECKF(h.tensors == NULL && h.n_tensors == 0, "line %d: header not cleared", line);
    CHECKF(strncmp(e.msg, "model.safetensors: ", 19) == 0, "line %d: %s", line, e.msg);
    CHECKF(!n1 || strstr(e.msg, n1), "line %d: \"%s\" not in: %s", line, n1, e.msg);
    CHECKF(!n2 || strstr(e.msg, n2), "line %d: \"%s\" not in: %s", line, n2, e.msg);
    CHECKF(one_line(e.msg), "line %d: not one line: %s", line, e.msg);
    free(m.p);
}

#define BAD(json, dlen, n1, n2) expect_err(__LINE__, json, dlen, ZMLX_ERR_FORMAT, n1, n2)

/* ------------------------------------------------------------ parse: valid */

static void test_round_trip(void) {
    const char *json = "{\"__metadata__\":{\"format\":\"pt\"},"
                       "\"b.weight\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
                       "\"a.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[12,24]},"
                       "\"s\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[24,32]},"
                       "\"z\":{\"dtype\":\"F16\",\"shape\":[0,4],\"data_offsets\":[4,4]},"
                       "\"caf\xc3\xa9\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[32,33]}}"
                       "    ";
    img m = mk_img(json, 40);
    zst_header h;
    zerr e = {{0}};
    CHECKF(zst_parse(m.p, m.n, "rt.safetensors", &h, &e) == ZMLX_OK, "%s", e.msg);
    const uint8_t *base = m.p + 8 + strlen(json);
    CHECK(h.data_start == 8 + strlen(json));
    CHECK(h.n_tensors == 5);
    if (h.n_tensors == 5) {
        const zst_tensor *t = h.tensors;
        CHECK(strcmp(t[0].name, "a.bias") == 0 && t[0].dtype == ZDT_F32 && t[0].ndim == 1);
        CHECK(t[0].shape[0] == 3 && t[0].nbytes == 12 && t[0].data == base + 12);
        CHECK(strcmp(t[1].name, "b.weight") == 0 && t[1].dtype == ZDT_BF16 && t[1].ndim == 2);
        CHECK(t[1].shape[0] == 2 && t[1].shape[1] == 3 && t[1].data == base);
        CHECK(t[1].nbytes == 12 && t[1].data[0] == 1 && t[1].data[1] == 8);
        CHECK(strcmp(t[2].name, "caf\xc3\xa9") == 0 && t[2].data == base + 32);
        CHECK(strcmp(t[3].name, "s") == 0 && t[3].ndim == 0 && t[3].nbytes == 8);
        CHECK(strcmp(t[4].name, "z") == 0 && t[4].nbytes == 0 && t[4].shape[0] == 0);
        CHECK(t[4].shape[1] == 4 && t[4].dtype == ZDT_F16 && t[4].shard == 0);
    }
    zst_header_free(&h);
    CHECK(h.tensors == NULL && h.n_tensors == 0);
    zst_header_free(&h); /* twice is harmless */
    free(m.p);

    /* An empty header and a file with no data section are valid. */
    m = mk_img("{}", 0);
    CHECK(zst_parse(m.p, m.n, "empty", &h, &e) == ZMLX_OK && h.n_tensors == 0);
    zst_header_free(&h);
    free(m.p);
    /* Tensors may touch; extra keys in an entry are ignored. */
    m = mk_img("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4],\"x\":1},"
               "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}}",
               8);
    CHECKF(zst_parse(m.p, m.n, NULL, &h, &e) == ZMLX_OK, "%s", e.msg);
    CHECK(h.n_tensors == 2);
    zst_header_free(&h);
    free(m.p);
    /* "__metadata__": null is no metadata (mlx.save_safetensors without metadata writes
       it; the reference reads it as None) */
    m = mk_img("{\"__metadata__\":null,\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
               "\"data_offsets\":[0,8]}}",
               8);
    CHECKF(zst_parse(m.p, m.n, NULL, &h, &e) == ZMLX_OK, "%s", e.msg);
    CHECK(h.n_tensors == 1 && strcmp(h.tensors[0].name, "a") == 0);
    zst_header_free(&h);
    free(m.p);
}

/* ------------------------------------------------------------ parse: errors */

static void test_length_errors(void) {
    zst_header h;
    zerr e = {{0}};
    static const uint8_t tiny[7] = {2, 0, 0, 0, 0, 0, 0};
    CHECK(zst_parse(tiny, sizeof tiny, "t.safetensors", &h, &e) == ZMLX_ERR_FORMAT);
    CHECKF(strstr(e.msg, "t.safetensors: file is 7 bytes"), "%s", e.msg);
    CHECK(zst_parse(tiny, 0, "t.safetensors", &h, &e) == ZMLX_ERR_FORMAT);
    CHECKF(strstr(e.msg, "file is 0 bytes"), "%s", e.msg);

    img m = mk_img("{}", 0);
    set_len(&m, 3); /* header cut: "{}" needs 2 bytes but the file stops earlier */
    CHECK(zst_parse(m.p, m.n - 1, "t", &h, &e) == ZMLX_ERR_FORMAT);
    CHECKF(strstr(e.msg, "header length 3 runs past the end of the file (9 bytes)"), "%s", e.msg);
    set_len(&m, UINT64_MAX);
    CHECK(zst_parse(m.p, m.n, "t", &h, &e) == ZMLX_ERR_FORMAT);
    CHECKF(strstr(e.msg, "header length 18446744073709551615 exceeds"), "%s", e.msg);
    set_len(&m, (uint64_t)ZST_MAX_HEADER + 1);
    CHECK(zst_parse(m.p, m.n, "t", &h, &e) == ZMLX_ERR_FORMAT);
    CHECKF(strstr(e.msg, "header length 104857601 exceeds the 104857600-byte limit"), "%s", e.msg);
    set_len(&m, 1); /* "{" alone */
    CHECK(zst_parse(m.p, m.n, "t", &h, &e) == ZMLX_ERR_FORMAT);
    CHECKF(strstr(e.msg, "not valid JSON"), "%s", e.msg);
    set_len(&m, 0);
    CHECK(zst_parse(m.p, m.n, "t", &h, &e) == ZMLX_ERR_FORMAT);
    free(m.p);
}

static void test_json_errors(void) {
    BAD("{\"a\":", 0, "header (5 bytes) is not valid JSON", NULL);
    BAD("{\"a\":{}} trailing", 0, "not valid JSON", NULL);
    BAD("[1,2]", 0, "header is [1,2], expected a JSON object", NULL);
    BAD("\"str\"", 0, "is not valid JSON at byte 5: '[' or '{' expected near '\"str\"'", NULL);
    /* Non-UTF-8 bytes in a name, a value, a lone surrogate, a NUL in a key. */
    BAD("{\"x\xff\xfey\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4,
        "not valid JSON", "0xff");
    BAD("{\"\xc3\":{}}", 0, "not valid JSON", NULL);
    BAD("{\"a\":{\"dtype\":\"F3\xe2\x82\",\"shape\":[],\"data_offsets\":[0,4]}}", 4,
        "not valid JSON", NULL);
    BAD("{\"\\ud800\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4,
        "not valid JSON", NULL);
    BAD("{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4,
        "not valid JSON", NULL);
    BAD("{\"x\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
        "\"x\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[4,8]}}",
        8, "duplicate", NULL);
    BAD("{\"__metadata__\":{\"a\":\"b\",\"n\":1}}", 0, "\"__metadata__\" key \"n\" is 1", NULL);
    BAD("{\"__metadata__\":[\"a\"]}", 0, "\"__metadata__\" is [\"a\"], expected an object", NULL);
}

static void test_entry_errors(void) {
    BAD("{\"x\":5}", 0, "tensor \"x\": entry is 5", NULL);
    BAD("{\"x\":{\"shape\":[],\"data_offsets\":[0,0]}}", 0, "tensor \"x\": missing \"dtype\"",
        NULL);
    BAD("{\"x\":{\"dtype\":\"F32\",\"data_offsets\":[0,0]}}", 0, "missing \"shape\"", NULL);
    BAD("{\"x\":{\"dtype\":\"F32\",\"shape\":[]}}", 0, "missing \"data_offsets\"", NULL);
    BAD("{\"x.w\":{\"dtype\":\"Q4_K\",\"shape\":[],\"data_offsets\":[0,1]}}", 1,
        "tensor \"x.w\": unknown dtype \"Q4_K\"", "BF16");
    BAD("{\"x\":{\"dtype\":7,\"shape\":[],\"data_offsets\":[0,1]}}", 1, "dtype is 7", NULL);
    BAD("{\"x\":{\"dtype\":\"F32\",\"shape\":[2,-3],\"data_offsets\":[0,1]}}", 1,
        "tensor \"x\": shape[1] is -3", NULL);
    BAD("{\"x\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,1]}}", 1, "shape[0] is 2.5",
        NULL);
    BAD("{\"x\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,1]}}", 1,
        "shape[0] is \"2\"", NULL);
    BAD("{\"x\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,1]}}", 1, "shape is 4", NULL);
    BAD("{\"x\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1,
        "shape has 9 dims, at most 8", NULL);
    BAD("{\"x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0]}}", 1, "data_offsets is [0]",
        NULL);
    BAD("{\"x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[-1,0]}}", 1,
        "data_offsets is [-1,0]", NULL);
    BAD("{\"x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1.0]}}", 1, "data_offsets is",
        NULL);
}

/* Long names and values are cut (at a UTF-8 boundary) so a message stays one line. */
static void test_long_text(void) {
    char json[2048], name[700];
    for (int i = 0; i < 300; i++)
        memcpy(name + 2 * i, "\xc3\xa9", 2);
    name[600] = '\0';
    snprintf(json, sizeof json, "{\"%s\":{\"dtype\":\"%s\",\"shape\":[],\"data_offsets\":[0,0]}}",
             name, name);
    img m = mk_img(json, 0);
    zst_header h;
    zerr e = {{0}};
    CHECK(zst_parse(m.p, m.n, "long", &h, &e) == ZMLX_ERR_FORMAT);
    CHECKF(strstr(e.msg, "long: tensor \"\xc3\xa9\xc3\xa9") && strstr(e.msg, "\xc3\xa9...\""), "%s",
           e.msg);
    CHECKF(strstr(e.msg, "unknown dtype") && strlen(e.msg) < 400, "%s", e.msg);
    CHECK(one_line(e.msg));
    free(m.p);
    snprintf(json, sizeof json,
             "{\"x\":{\"dtype\":\"F32\",\"shape\":\"%s\",\"data_offsets\":[0,0]}}", name);
    m = mk_img(json, 0);
    CHECK(zst_parse(m.p, m.n, "long", &h, &e) == ZMLX_ERR_FORMAT);
    CHECKF(strstr(e.msg, "shape is \"\\u00E9\\u00E9") && strstr(e.msg, "..., expected an array"),
           "%s", e.msg);
    free(m.p);
}

static void test_range_errors(void) {
    BAD("{\"x\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}", 3,
        "data_offsets [0, 4] past the end of the data section (3 bytes)", NULL);
    BAD("{\"x\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[9,9]}}", 3, "[9, 9] past the end",
        NULL);
    BAD("{\"x\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[8,4]}}", 16,
        "tensor \"x\": data_offsets [8, 4] end before begin", NULL);
    BAD("{\"x.weight\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[10,20]}}", 32,
        "model.safetensors: tensor \"x.weight\": data_offsets [10, 20] hold 10 bytes but shape "
        "[2, 3] x BF16 needs 12",
        NULL);
    BAD("{\"x\":{\"dtype\":\"BF16\",\"shape\":[4294967296,4294967296,4294967296],"
        "\"data_offsets\":[0,0]}}",
        0, "shape [4294967296, 4294967296, 4294967296] x BF16 overflows 64 bits", NULL);
    BAD("{\"x\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,0]}}", 0,
        "overflows", NULL);
    BAD("{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
        "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[6,10]}}",
        16, "tensor \"b\": data_offsets [6, 10] overlap tensor \"a\" data_offsets [0, 8]", NULL);
    /* a long tensor swallowing a later short one, with a short one in between */
    BAD("{\"a\":{\"dtype\":\"U8\",\"shape\":[16],\"data_offsets\":[0,16]},"
        "\"b\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[2,2]},"
        "\"c\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[12,14]}}",
        16, "\"c\": data_offsets [12, 14] overlap tensor \"a\"", NULL);
    BAD("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]},"
        "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}}",
        8, "overlap", NULL);
    /* Control bytes in a name are escaped so the message stays one line. */
    BAD("{\"a\\nb\":{\"dtype\":\"Q\",\"shape\":[],\"data_offsets\":[0,0]}}", 0,
        "tensor \"a\\x0ab\"", NULL);
}

/* ------------------------------------------------------------ on-disk archives */

static void write_file(const char *dir, const char *name, const void *p, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    CHECKF(f != NULL, "cannot write %s", path);
    if (!f) return;
    CHECK(fwrite(p, 1, n, f) == n);
    fclose(f);
}

static void write_img(const char *dir, const char *name, const char *json, size_t data_len) {
    img m = mk_img(json, data_len);
    write_file(dir, name, m.p, m.n);
    free(m.p);
}

static void write_text(const char *dir, const char *name, const char *text) {
    write_file(dir, name, text, strlen(text));
}

/* Remove every file in dir (tests create no subfolders), then dir. */
static void rm_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    char path[512];
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        unlink(path);
    }
    closedir(d);
    CHECK(rmdir(dir) == 0);
}

static void new_dir(char *buf, size_t n) {
    snprintf(buf, n, "%s/zst_test_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    CHECK(mkdtemp(buf) != NULL);
}

/* zst_open(dir) must fail with `want` and a message holding n1 and n2. */
static void expect_open_err(int line, const char *dir, zmlx_status want, const char *n1,
                            const char *n2) {
    zst_archive *a = (zst_archive *)&a; /* any non-NULL value: zst_open must clear it */
    zerr e = {{0}};
    zmlx_status st = zst_open(dir, &a, &e);
    CHECKF(st == want, "line %d: status %d, want %d (%s)", line, st, want, e.msg);
    CHECKF(a == NULL, "line %d: archive not NULL", line);
    CHECKF(!n1 || strstr(e.msg, n1), "line %d: \"%s\" not in: %s", line, n1, e.msg);
    CHECKF(!n2 || strstr(e.msg, n2), "line %d: \"%s\" not in: %s", line, n2, e.msg);
    CHECKF(one_line(e.msg), "line %d: not one line: %s", line, e.msg);
    if (st == ZMLX_OK) zst_close(a);
}

#define T1                                                                                         \
    "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"                             \
    "\"b\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[8,11]}}"
#define T2 "{\"c\":{\"dtype\":\"I32\",\"shape\":[1,1],\"data_offsets\":[0,4]}}"
#define S1 "model-00001-of-00002.safetensors"
#define S2 "model-00002-of-00002.safetensors"

static void test_open_single(void) {
    char dir[256];
    new_dir(dir, sizeof dir);
    write_img(dir, "model.safetensors", T1, 11);
    write_img(dir, "other.safetensors", T2, 4); /* ignored: model.safetensors wins */
    zst_archive *a = NULL;
    zerr e = {{0}};
    CHECKF(zst_open(dir, &a, &e) == ZMLX_OK, "%s", e.msg);
    if (a) {
        CHECK(zst_count(a) == 2);
        const zst_tensor *t = zst_find(a, "b");
        CHECK(t && t->dtype == ZDT_U8 && t->nbytes == 3 && t->data[0] == 8 * 7 + 1);
        CHECK(zst_find(a, "c") == NULL && zst_find(a, "") == NULL && zst_find(a, "zz") == NULL);
        CHECK(zst_at(a, 0) == zst_find(a, "a") && zst_at(a, 2) == NULL);
        CHECK(strstr(zst_shard_path(a, 0), "/model.safetensors") != NULL);
        CHECK(zst_shard_path(a, 1) == NULL && zst_shard_path(a, -1) == NULL);
        zst_close(a);
    }
    write_text(dir, "model.safetensors", "");
    expect_open_err(__LINE__, dir, ZMLX_ERR_FORMAT, "model.safetensors: file is empty", NULL);
    write_text(dir, "model.safetensors", "abc");
    expect_open_err(__LINE__, dir, ZMLX_ERR_FORMAT, "file is 3 bytes", NULL);
    write_img(dir, "model.safetensors", "{\"q\":{\"dtype\":\"F4\"", 0);
    expect_open_err(__LINE__, dir, ZMLX_ERR_FORMAT,
                    "/model.safetensors: header (18 bytes) is not valid JSON", NULL);
    rm_dir(dir);
}

static void test_open_listed(void) {
    char dir[256];
    new_dir(dir, sizeof dir);
    expect_open_err(__LINE__, dir, ZMLX_ERR_NOT_FOUND, dir, "no model.safetensors");
    write_text(dir, "config.json", "{}");
    write_img(dir, "._hidden.safetensors", T1, 11);
    expect_open_err(__LINE__, dir, ZMLX_ERR_NOT_FOUND, "no model.safetensors", NULL);
    write_img(dir, "b.safetensors", T2, 4);
    write_img(dir, "a.safetensors", T1, 11);
    zst_archive *a = NULL;
    zerr e = {{0}};
    CHECKF(zst_open(dir, &a, &e) == ZMLX_OK, "%s", e.msg);
    if (a) {
        CHECK(zst_count(a) == 3);
        CHECK(zst_find(a, "a") && zst_find(a, "a")->shard == 0);
        CHECK(zst_find(a, "c") && zst_find(a, "c")->shard == 1);
        CHECK(strstr(zst_shard_path(a, 1), "/b.safetensors") != NULL);
        zst_close(a);
    }
    write_img(dir, "c.safetensors", T2, 4); /* "c" again */
    expect_open_err(__LINE__, dir, ZMLX_ERR_FORMAT,
                    "tensor \"c\" appears in both b.safetensors "
                    "and c.safetensors",
                    NULL);
    rm_dir(dir);
    char missing[300];
    snprintf(missing, sizeof missing, "%s/nope", dir);
    expect_open_err(__LINE__, missing, ZMLX_ERR_NOT_FOUND, missing, NULL);
}

static void test_open_indexed(void) {
    char dir[256];
    new_dir(dir, sizeof dir);
    write_img(dir, S1, T1, 11);
    write_img(dir, S2, T2, 4);
    write_img(dir, "model.safetensors", T2, 4); /* ignored: the index wins */
    const char *idx = "model.safetensors.index.json";
    write_text(dir, idx,
               "{\"metadata\":{\"total_size\":15},\"weight_map\":{\"a\":\"" S1 "\",\"c\":\"" S2
               "\",\"b\":\"" S1 "\"}}");
    zst_archive *a = NULL;
    zerr e = {{0}};
    CHECKF(zst_open(dir, &a, &e) == ZMLX_OK, "%s", e.msg);
    if (a) {
        CHECK(zst_count(a) == 3);
        const zst_tensor *c = zst_find(a, "c");
        CHECK(c && c->shard == 1 && c->ndim == 2 && c->dtype == ZDT_I32 && c->data[3] == 22);
        CHECK(c && strstr(zst_shard_path(a, c->shard), "/" S2) != NULL);
        CHECK(zst_find(a, "a") && zst_find(a, "a")->shard == 0);
        CHECK(zst_shard_path(a, 2) == NULL);
        zst_close(a);
    }
    write_text(dir, idx, "{\"weight_map\":{\"a\":\"" S1 "\",\"x\":\"gone.safetensors\"}}");
    expect_open_err(__LINE__, dir, ZMLX_ERR_NOT_FOUND,
                    "weight_map \"x\" names shard "
                    "\"gone.safetensors\", which does not exist",
                    NULL);
    write_text(dir, idx, "{\"weight_map\":{\"a\":\"" S1 "\",\"zz\":\"" S2 "\"}}");
    expect_open_err(__LINE__, dir, ZMLX_ERR_FORMAT, "weight_map puts tensor \"zz\" in " S2,
                    "no shard holds it");
    write_text(dir, idx, "{\"weight_map\":{\"b\":\"" S1 "\",\"a\":\"" S2 "\",\"c\":\"" S2 "\"}}");
    expect_open_err(__LINE__, dir, ZMLX_ERR_FORMAT, "tensor \"a\" in " S2 ", but it is in " S1,
                    NULL);
    write_text(dir, idx, "{\"weight_map\":{\"a\":\"../x.safetensors\"}}");
    expect_open_err(__LINE__, dir, ZMLX_ERR_FORMAT,
                    "weight_map \"a\" names shard "
                    "\"../x.safetensors\", expected a file name inside",
                    NULL);
    write_text(dir, idx, "{\"weight_map\":{\"a\":\"..\"}}");
    expect_open_err(__LINE__, dir, ZMLX_ERR_FORMAT, "names shard \"..\"", NULL);
    write_text(dir, idx, "{\"weight_map\":{\"a\":3}}");
    expect_open_err(__LINE__, dir, ZMLX_ERR_FORMAT, "names shard 3", NULL);
    write_text(dir, idx, "{\"weight_map\":[]}");
    expect_open_err(__LINE__, dir, ZMLX_ERR_FORMAT, "\"weight_map\" is [], expected", NULL);
    write_text(dir, idx, "{\"metadata\":{}}");
    expect_open_err(__LINE__, dir, ZMLX_ERR_FORMAT, "\"weight_map\" is missing", NULL);
    write_text(dir, idx, "{\"weight_map\":{\"a\":\"" S1 "\",\"a\":\"" S1 "\"}}");
    expect_open_err(__LINE__, dir, ZMLX_ERR_FORMAT, "model.safetensors.index.json: not valid JSON",
                    "duplicate");
    rm_dir(dir);
}

static void test_fixture(void) {
    char dir[512];
    tc_shared(dir, sizeof dir, "fixtures/models/glm47-tiny");
    zst_archive *a = NULL;
    zerr e = {{0}};
    CHECKF(zst_open(dir, &a, &e) == ZMLX_OK, "%s", e.msg);
    if (!a) return;
    CHECK(zst_count(a) > 10);
    const zst_tensor *t = zst_find(a, "model.layers.1.mlp.gate.e_score_correction_bias");
    CHECK(t && t->dtype == ZDT_F32 && t->ndim == 1 && t->shape[0] == 8 && t->nbytes == 32);
    t = zst_find(a, "lm_head.weight");
    CHECK(t && t->dtype == ZDT_BF16 && t->ndim == 2 && t->shape[0] == 1024 && t->shape[1] == 128);
    CHECK(t && t->nbytes == 1024 * 128 * 2);
    for (size_t i = 1; i < zst_count(a); i++)
        CHECK(strcmp(zst_at(a, i - 1)->name, zst_at(a, i)->name) < 0);
    zst_close(a);
}

int main(void) {
    test_round_trip();
    test_length_errors();
    test_json_errors();
    test_entry_errors();
    test_long_text();
    test_range_errors();
    test_open_single();
    test_open_listed();
    test_open_indexed();
    test_fixture();
    return tc_done();
}
