/*
 * test_convert.c — `zmlx convert` against mlx-lm's own output, without Python.
 *
 * tests/fixtures/mlx/<case>/ holds what mlx_lm.convert (mlx-lm 0.32.2, mlx 0.32.4)
 * wrote for a shared fixture (config.json, model.safetensors, index) and expected.json
 * (the source, the matching `zmlx convert` options, mlx-lm's greedy tokens), made by
 * tools/mlx_crosscheck.py --write-fixtures.  For each case the CLI ($ZMLX_BIN) converts
 * the source and every tensor (name, dtype, shape, bytes), config.json and the index
 * must equal mlx-lm's byte for byte, and zmlx decoding mlx-lm's checkpoint greedily
 * (--precision exact, cpu and cpu-ref backends) must give mlx-lm's tokens.  The builtin
 * export is checked for the layout invariants (stacked experts, embed_q / unembed_out,
 * router and norms dense).
 */
#include "io/safetensors.h"
#include "tcheck.h"

#include <dirent.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[256];

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)len + 1);
    *n = fread(p, 1, (size_t)len, f);
    p[*n] = 0;
    fclose(f);
    return p;
}

static bool same_file(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    bool same = x && y && na == nb && !memcmp(x, y, na);
    free(x);
    free(y);
    return same;
}

/* Every tensor of `want` in `got` with the same dtype, shape and bytes, and no others. */
static void same_tensors(const char *want_dir, const char *got_dir, const char *what) {
    zst_archive *a, *b;
    zerr e = {{0}};
    if (zst_open(want_dir, &a, &e) != ZMLX_OK) {
        CHECKF(false, "%s: %s", what, e.msg);
        return;
    }
    if (zst_open(got_dir, &b, &e) != ZMLX_OK) {
        CHECKF(false, "%s: %s", what, e.msg);
        zst_close(a);
        return;
    }
    size_t bad = 0;
    for (size_t i = 0; i < zst_count(a); i++) {
        const zst_tensor *t = zst_at(a, i), *u = zst_find(b, t->name);
        bool ok = u && u->dtype == t->dtype && u->ndim == t->ndim && u->nbytes == t->nbytes &&
                  !memcmp(u->shape, t->shape, sizeof t->shape) &&
                  !memcmp(u->data, t->data, t->nbytes);
        if (!ok && bad++ < 4) fprintf(stderr, "%s: tensor %s differs from mlx-lm's\n", what, t->name);
    }
    CHECKF(bad == 0 && zst_count(a) == zst_count(b), "%s: %zu of %zu tensors differ (%zu vs %zu)",
           what, bad, zst_count(a), zst_count(a), zst_count(b));
    zst_close(a);
    zst_close(b);
}

static int run(const char *cmd) {
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* zmlx generate on mlx-lm's checkpoint `dir`: greedy tokens == expected.json's (mlx-lm's). */
static void decode_case(const char *dir, const json_t *exp, const char *bin, const char *backend) {
    const json_t *ids = json_object_get(exp, "prompt_ids"), *want = json_object_get(exp, "tokens");
    char cmd[4096], out[600];
    snprintf(out, sizeof out, "%s/gen.json", tmpdir);
    int o = snprintf(cmd, sizeof cmd, "%s generate %s --backend %s --precision exact --patterns none "
                     "--ignore-eos --json --max-tokens %zu --prompt-ids ", bin, dir, backend,
                     json_array_size(want));
    for (size_t i = 0; i < json_array_size(ids); i++)
        o += snprintf(cmd + o, sizeof cmd - (size_t)o, "%s%lld", i ? "," : "",
                      (long long)json_integer_value(json_array_get(ids, i)));
    snprintf(cmd + o, sizeof cmd - (size_t)o, " >%s 2>/dev/null", out);
    CHECKF(run(cmd) == 0, "%s failed", cmd);
    json_error_t je;
    json_t *got = json_load_file(out, 0, &je);
    const json_t *toks = json_object_get(got, "tokens");
    size_t same = 0, n = json_array_size(want);
    while (same < n && same < json_array_size(toks) &&
           json_integer_value(json_array_get(toks, same)) == json_integer_value(json_array_get(want, same)))
        same++;
    CHECKF(toks && same == n && json_array_size(toks) == n,
           "%s on %s: %zu of %zu tokens agree with mlx-lm's", backend, dir, same, n);
    json_decref(got);
    unlink(out);
}

static void check_case(const char *fixdir, const char *name, const char *bin) {
    char path[1600], cmd[4096], out[512];
    snprintf(path, sizeof path, "%s/%s/expected.json", fixdir, name);
    json_error_t je;
    json_t *exp = json_load_file(path, 0, &je);
    CHECKF(exp != NULL, "%s: %s", path, je.text);
    if (!exp) return;
    const char *src = json_string_value(json_object_get(exp, "source"));
    const json_t *args = json_object_get(exp, "zmlx_convert_args");
    char srcpath[1024];
    snprintf(srcpath, sizeof srcpath, "%s", src ? src : "");
    if (!strncmp(srcpath, "shared/", 7)) tc_shared(srcpath, sizeof srcpath, src + 7);
    snprintf(out, sizeof out, "%s/%s", tmpdir, name);
    int o = snprintf(cmd, sizeof cmd, "%s convert %s %s", bin, srcpath, out);
    for (size_t i = 0; i < json_array_size(args); i++)
        o += snprintf(cmd + o, sizeof cmd - (size_t)o, " %s",
                      json_string_value(json_array_get(args, i)));
    snprintf(cmd + o, sizeof cmd - (size_t)o, " 2>/dev/null");
    CHECKF(run(cmd) == 0, "%s failed", cmd);
    char want[1600];
    snprintf(want, sizeof want, "%s/%s", fixdir, name);
    same_tensors(want, out, name);
    static const char *const files[] = {"config.json", "model.safetensors.index.json"};
    for (int i = 0; i < 2; i++) {
        char a[1800], b[1800];
        snprintf(a, sizeof a, "%s/%s", want, files[i]);
        snprintf(b, sizeof b, "%s/%s", out, files[i]);
        CHECKF(same_file(a, b), "%s: %s differs from mlx-lm's", name, files[i]);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", out);
    run(cmd);
    decode_case(want, exp, bin, "cpu");
    decode_case(want, exp, bin, "cpu-ref");
    json_decref(exp);
}

/* builtin:dsv32-tiny exported with 4-bit g32: the MLX layout's invariants. */
static void check_builtin(const char *bin) {
    char cmd[2048], out[512];
    snprintf(out, sizeof out, "%s/builtin", tmpdir);
    snprintf(cmd, sizeof cmd, "%s convert builtin:dsv32-tiny:layers=2 %s --q-bits 4 --q-group-size 32 "
             "2>/dev/null", bin, out);
    CHECK(run(cmd) == 0);
    zst_archive *a;
    zerr e = {{0}};
    if (zst_open(out, &a, &e) != ZMLX_OK) {
        CHECKF(false, "%s", e.msg);
        return;
    }
    const zst_tensor *t = zst_find(a, "model.layers.1.mlp.switch_mlp.gate_proj.weight");
    CHECK(t && t->dtype == ZDT_U32 && t->ndim == 3 && t->shape[0] == 16 && t->shape[1] == 64 &&
          t->shape[2] == 128 * 4 / 32);
    t = zst_find(a, "model.layers.1.self_attn.embed_q.scales"); /* [H, kv_lora, nope/32] */
    CHECK(t && t->dtype == ZDT_BF16 && t->ndim == 3 && t->shape[0] == 4 && t->shape[1] == 64 &&
          t->shape[2] == 1);
    t = zst_find(a, "model.layers.1.mlp.gate.weight");
    CHECK(t && t->dtype == ZDT_BF16 && t->ndim == 2);
    t = zst_find(a, "model.layers.1.mlp.gate.e_score_correction_bias");
    CHECK(t && t->dtype == ZDT_F32);
    t = zst_find(a, "model.layers.0.self_attn.indexer.k_norm.bias");
    CHECK(t && t->dtype == ZDT_BF16 && t->ndim == 1);
    CHECK(zst_find(a, "model.layers.1.mlp.experts.0.gate_proj.weight") == NULL);
    CHECK(zst_find(a, "model.layers.0.self_attn.kv_b_proj.weight") == NULL);
    CHECK(zst_find(a, "model.layers.1.self_attn.indexer.wq_b.scales") != NULL);
    zst_close(a);
    char cfg[600];
    snprintf(cfg, sizeof cfg, "%s/config.json", out);
    json_error_t je;
    json_t *c = json_load_file(cfg, 0, &je);
    const json_t *q = json_object_get(c, "quantization");
    CHECK(q && json_integer_value(json_object_get(q, "bits")) == 4 &&
          json_integer_value(json_object_get(q, "group_size")) == 32 &&
          json_equal(q, json_object_get(c, "quantization_config")));
    CHECK(!strcmp(json_string_value(json_object_get(c, "model_type")) ? json_string_value(json_object_get(c, "model_type")) : "", "deepseek_v32"));
    json_decref(c);
    snprintf(cmd, sizeof cmd, "rm -rf %s", out);
    run(cmd);
}

int main(void) {
    const char *bin = getenv("ZMLX_BIN"), *src = getenv("ZMLX_SRC");
    if (!bin || !src) {
        CHECKF(false, "ZMLX_BIN and ZMLX_SRC must be set (ctest sets them)");
        return tc_done();
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/zmlx-cvt-XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    char fixdir[1024];
    snprintf(fixdir, sizeof fixdir, "%s/tests/fixtures/mlx", src);
    DIR *d = opendir(fixdir);
    int cases = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char p[1400];
        snprintf(p, sizeof p, "%s/%s/expected.json", fixdir, de->d_name);
        if (de->d_name[0] == '.' || access(p, F_OK) != 0) continue;
        check_case(fixdir, de->d_name, bin);
        cases++;
    }
    if (d) closedir(d);
    CHECKF(cases >= 2, "expected the mlx-lm fixtures in %s (found %d)", fixdir, cases);
    check_builtin(bin);
    rmdir(tmpdir);
    return tc_done();
}
