/*
 * test_st_write.c — the safetensors writer (io/st_write.h) and the Python-style JSON
 * text (io/pyjson.h): files written in pieces and out of order read back through the
 * reader (io/safetensors.h) byte for byte; the header is mlx's sorted compact JSON,
 * space-padded to 8 bytes; an incomplete or aborted file leaves nothing behind;
 * mlx-lm's shard rule and names; an index + two shards open as one checkpoint; the
 * index text and float reprs are the bytes CPython's json.dump writes.
 */
#include "io/pyjson.h"
#include "io/safetensors.h"
#include "io/st_write.h"
#include "tcheck.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

static int count_files(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (de->d_name[0] != '.') n++;
    if (d) closedir(d);
    return n;
}

static void rm_dir_files(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *de;
    char p[512];
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        unlink(p);
    }
    if (d) closedir(d);
}

static uint8_t *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)len + 1);
    *n = fread(p, 1, (size_t)len, f);
    p[*n] = 0;
    fclose(f);
    return p;
}

static void test_float_repr(void) {
    static const struct {
        double x;
        const char *want;
    } cases[] = {
        {1e-05, "1e-05"}, {0.0001, "0.0001"}, {1e16, "1e+16"}, {1.5e16, "1.5e+16"},
        {1e15, "1000000000000000.0"}, {1000000.0, "1000000.0"}, {0.1, "0.1"}, {1.8, "1.8"},
        {1.0 / 3.0, "0.3333333333333333"}, {-0.0, "-0.0"}, {0.0, "0.0"}, {123.456, "123.456"},
        {5e-324, "5e-324"}, {1.7976931348623157e308, "1.7976931348623157e+308"},
        {1e-7, "1e-07"}, {0.001, "0.001"}, {12345678901234567.0, "1.2345678901234568e+16"},
        {100.0, "100.0"}, {-2.5e-10, "-2.5e-10"},
    };
    char buf[48];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        zpyjson_float_repr(cases[i].x, buf, sizeof buf);
        CHECKF(!strcmp(buf, cases[i].want), "repr(%.17g) = %s, want %s", cases[i].x, buf,
               cases[i].want);
    }
}

static void test_dumps(void) {
    json_error_t je;
    json_t *v = json_loads("{\"b\":[1,2.0,{\"x\":null,\"y\":true}],"
                           "\"a\":\"h\\u00e9\\ud83d\\ude00\\n\\\"\\\\\\u0001\",\"c\":[],\"d\":{}}",
                           0, &je);
    CHECK(v != NULL);
    char *s = zpyjson_dumps(v, 4, false);
    const char *want = "{\n    \"b\": [\n        1,\n        2.0,\n        {\n            \"x\": null,\n"
                       "            \"y\": true\n        }\n    ],\n"
                       "    \"a\": \"h\\u00e9\\ud83d\\ude00\\n\\\"\\\\\\u0001\",\n"
                       "    \"c\": [],\n    \"d\": {}\n}";
    CHECKF(s && !strcmp(s, want), "pyjson text:\n%s", s ? s : "(null)");
    free(s);
    s = zpyjson_dumps(v, 4, true); /* sorted: a, b, c, d at the top level only */
    CHECK(s && strncmp(s, "{\n    \"a\": ", 11) == 0 && strstr(s, "\"x\": null,\n"));
    free(s);
    json_object_set_new(v, "nan", json_real(0.0));
    s = zpyjson_dumps(v, 0, false);
    CHECK(s && strstr(s, "\"c\": [], \"d\": {}, \"nan\": 0.0}"));
    free(s);
    json_decref(v);
}

/* Three tensors written in pieces, out of order, then read back. */
static void test_roundtrip(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", tmpdir);
    float a[6] = {1, 2, 3, 4, 5, -6};
    uint16_t b[5] = {0x3f80, 0x4000, 0x8000, 0x7fc0, 1};
    uint32_t c[2 * 3 * 4];
    for (int i = 0; i < 24; i++) c[i] = 0x01020304u * (uint32_t)i;
    zst_wspec t[3] = {
        {.name = "z.weight", .dtype = ZDT_U32, .ndim = 3, .shape = {2, 3, 4}},
        {.name = "a.norm", .dtype = ZDT_F32, .ndim = 2, .shape = {2, 3}},
        {.name = "m.bias", .dtype = ZDT_BF16, .ndim = 1, .shape = {5}},
    };
    zst_writer *w;
    zerr e = {{0}};
    CHECK(zst_writer_open(path, t, 3, &w, &e) == ZMLX_OK);
    CHECK(zst_writer_put(w, 0, 48, (uint8_t *)c + 48, 48, &e) == ZMLX_OK);
    CHECK(zst_writer_put(w, 2, 0, b, sizeof b, &e) == ZMLX_OK);
    CHECK(zst_writer_put(w, 1, 0, a, sizeof a, &e) == ZMLX_OK);
    CHECK(zst_writer_put(w, 0, 0, c, 48, &e) == ZMLX_OK);
    CHECK(zst_writer_put(w, 0, 90, c, 7, &e) == ZMLX_ERR_INVALID_ARG); /* past the end */
    CHECK(count_files(tmpdir) == 1);                                       /* only the temp */
    CHECK(access(path, F_OK) != 0);
    CHECKF(zst_writer_finish(w, &e) == ZMLX_OK, "%s", e.msg);
    CHECK(count_files(tmpdir) == 1 && access(path, F_OK) == 0);

    size_t n;
    uint8_t *img = read_file(path, &n);
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)img[i] << (8 * i);
    const char *hdr = "{\"__metadata__\":{\"format\":\"mlx\"},"
                      "\"a.norm\":{\"data_offsets\":[0,24],\"dtype\":\"F32\",\"shape\":[2,3]},"
                      "\"m.bias\":{\"data_offsets\":[24,34],\"dtype\":\"BF16\",\"shape\":[5]},"
                      "\"z.weight\":{\"data_offsets\":[34,130],\"dtype\":\"U32\",\"shape\":[2,3,4]}}";
    size_t want_hl = (strlen(hdr) + 8 + 7) / 8 * 8 - 8;
    CHECKF(hl == want_hl && (8 + hl) % 8 == 0, "header length %llu", (unsigned long long)hl);
    CHECK(!memcmp(img + 8, hdr, strlen(hdr)));
    for (size_t i = strlen(hdr); i < hl; i++) CHECK(img[8 + i] == ' ');
    CHECK(n == 8 + hl + 130);
    free(img);

    zst_archive *ar;
    CHECKF(zst_open(tmpdir, &ar, &e) == ZMLX_OK, "%s", e.msg);
    const zst_tensor *ta = zst_find(ar, "a.norm"), *tb = zst_find(ar, "m.bias"),
                     *tc = zst_find(ar, "z.weight");
    CHECK(ta && tb && tc && zst_count(ar) == 3);
    if (ta && tb && tc) {
        CHECK(ta->dtype == ZDT_F32 && ta->ndim == 2 && ta->shape[1] == 3 && !memcmp(ta->data, a, 24));
        CHECK(tb->dtype == ZDT_BF16 && tb->ndim == 1 && !memcmp(tb->data, b, 10));
        CHECK(tc->dtype == ZDT_U32 && tc->ndim == 3 && tc->shape[2] == 4 && !memcmp(tc->data, c, 96));
    }
    zst_close(ar);
    rm_dir_files(tmpdir);
}

static void test_incomplete(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", tmpdir);
    zst_wspec t[2] = {{.name = "x", .dtype = ZDT_F32, .ndim = 1, .shape = {4}},
                      {.name = "x", .dtype = ZDT_F32, .ndim = 1, .shape = {4}}};
    zst_writer *w;
    zerr e = {{0}};
    CHECK(zst_writer_open(path, t, 2, &w, &e) == ZMLX_ERR_INVALID_ARG && strstr(e.msg, "\"x\""));
    CHECK(count_files(tmpdir) == 0);
    float v[4] = {0};
    CHECK(zst_writer_open(path, t, 1, &w, &e) == ZMLX_OK);
    CHECK(zst_writer_put(w, 0, 0, v, 8, &e) == ZMLX_OK);
    CHECK(zst_writer_finish(w, &e) == ZMLX_ERR_INVALID_ARG && strstr(e.msg, "8 of its 16 bytes"));
    CHECK(count_files(tmpdir) == 0);
    CHECK(zst_writer_open(path, t, 1, &w, &e) == ZMLX_OK);
    zst_writer_abort(w);
    CHECK(count_files(tmpdir) == 0);
}

static void test_shards(void) {
    /* make_shards: a new shard when adding would exceed the limit; big tensors alone */
    const uint64_t sz[6] = {4, 4, 3, 10, 1, 5};
    int of[6];
    CHECK(zst_plan_shards(sz, 6, 8, of) == 4);
    CHECK(of[0] == 0 && of[1] == 0 && of[2] == 1 && of[3] == 2 && of[4] == 3 && of[5] == 3);
    CHECK(zst_plan_shards(sz, 0, 8, of) == 0);
    char name[64];
    zst_shard_name(name, sizeof name, 0, 1);
    CHECK(!strcmp(name, "model.safetensors"));
    zst_shard_name(name, sizeof name, 1, 12);
    CHECK(!strcmp(name, "model-00002-of-00012.safetensors"));

    /* two shards + index, opened as one checkpoint */
    const char *names[3] = {"b.w", "a.w", "c.w"};
    const int shard_of[3] = {0, 0, 1};
    float v[3][2] = {{1, 2}, {3, 4}, {5, 6}};
    zerr e = {{0}};
    for (int s = 0; s < 2; s++) {
        zst_wspec t[2];
        int k = 0, idx[2];
        for (int i = 0; i < 3; i++)
            if (shard_of[i] == s) {
                t[k] = (zst_wspec){.name = names[i], .dtype = ZDT_F32, .ndim = 1, .shape = {2}};
                idx[k++] = i;
            }
        char path[512];
        zst_shard_name(name, sizeof name, s, 2);
        snprintf(path, sizeof path, "%s/%s", tmpdir, name);
        zst_writer *w;
        CHECK(zst_writer_open(path, t, (size_t)k, &w, &e) == ZMLX_OK);
        for (int j = 0; j < k; j++) CHECK(zst_writer_put(w, (size_t)j, 0, v[idx[j]], 8, &e) == ZMLX_OK);
        CHECK(zst_writer_finish(w, &e) == ZMLX_OK);
    }
    char ipath[512];
    snprintf(ipath, sizeof ipath, "%s/model.safetensors.index.json", tmpdir);
    CHECK(zst_write_index(ipath, names, shard_of, 3, 2, 24, 6, &e) == ZMLX_OK);
    size_t n;
    char *text = (char *)read_file(ipath, &n);
    const char *want = "{\n    \"metadata\": {\n        \"total_size\": 24,\n"
                       "        \"total_parameters\": 6\n    },\n    \"weight_map\": {\n"
                       "        \"a.w\": \"model-00001-of-00002.safetensors\",\n"
                       "        \"b.w\": \"model-00001-of-00002.safetensors\",\n"
                       "        \"c.w\": \"model-00002-of-00002.safetensors\"\n    }\n}";
    CHECKF(text && !strcmp(text, want), "index text:\n%s", text ? text : "(null)");
    free(text);
    zst_archive *ar;
    CHECKF(zst_open(tmpdir, &ar, &e) == ZMLX_OK, "%s", e.msg);
    for (int i = 0; i < 3; i++) {
        const zst_tensor *t = zst_find(ar, names[i]);
        CHECK(t && t->shard == shard_of[i] && !memcmp(t->data, v[i], 8));
    }
    zst_close(ar);
    rm_dir_files(tmpdir);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/zmlx-stw-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_float_repr();
    test_dumps();
    test_roundtrip();
    test_incomplete();
    test_shards();
    rm_dir_files(tmpdir);
    rmdir(tmpdir);
    return tc_done();
}
