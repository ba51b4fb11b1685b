/*
 * test_golden.c — the model against the Hugging Face transformers reference
 * (fixtures/models/<name>/golden.json, float32 from the stored bf16 weights):
 * all 40 greedy tokens identical, logits of the first and last step within
 * 1e-4 * max|ref|, prefill argmax identical at every prompt position — on the
 * cpu and cpu-ref backends, with --precision exact, and for the absorbed and
 * expanded attention paths.  --precision fast kernels (the cpu backend's level) with an
 * f32 KV cache, teacher-forced on the reference tokens: logits of the first and last step
 * within 2e-2 * max|ref| (SYSTEM.md section 1; not token identity).  (The bf16 cache alone
 * moves dsv32-tiny's last step by ~0.25 * max|ref|: its indexer picks other keys.)
 * Kimi-K2.5's checkpoint layout: dsv3-tiny's weights and config rewritten the way
 * Kimi-K2.5 ships them (every tensor name prefixed `language_model.`, two vision tensors
 * beside them, the text config nested in `text_config` with model_type kimi_k2 under a
 * kimi_k25 top level that keeps the released vision_config and top-level keys) must
 * load as family kimi_k25 and reproduce dsv3-tiny's golden exactly as dsv3-tiny does.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkdtemp */
#endif
#include "tcheck.h"
#include "tgolden.h"
#include "zmlx.h"

#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

/* max|a-b| <= 1e-4 * max|ref| */
static bool close_to(const float *a, const float *ref, size_t n, double *rel) {
    double mx = 0, md = 0;
    for (size_t i = 0; i < n; i++) {
        mx = fmax(mx, fabs(ref[i]));
        md = fmax(md, fabs((double)a[i] - ref[i]));
    }
    *rel = md / mx;
    return md <= 1e-4 * mx && !isnan(md);
}

/* The model in `dir` against the golden of fixtures/models/<gname>; `name` labels it. */
static void run_dir(const char *name, const char *dir, const char *gname, zmlx_backend_kind be,
                    zmlx_attn_path path, int threads) {
    char gdir[1024];
    tc_model_fixture(gdir, sizeof gdir, gname);
    golden g = {0};
    CHECKF(load_golden(gdir, &g), "%s golden", gname);
    if (!g.vocab) return;
    zmlx_model_params mp = zmlx_model_default_params();
    mp.backend = be;
    mp.precision = ZMLX_PRECISION_EXACT;
    mp.patterns = "none";
    mp.threads = threads;
    zmlx_model *m = NULL;
    char err[ZMLX_ERR_MAX];
    zmlx_status st = zmlx_model_load(dir, &mp, &m, err, sizeof err);
    CHECKF(st == ZMLX_OK, "load %s: %s", name, err);
    if (st != ZMLX_OK) return;
    CHECK((size_t)zmlx_model_vocab_size(m) == g.vocab);
    zmlx_session_params sp = zmlx_session_default_params();
    sp.attn_path = path;
    zmlx_session *s = NULL;
    CHECK(zmlx_session_init(m, &sp, &s, err, sizeof err) == ZMLX_OK);

    float *all = malloc(g.n_prompt * g.vocab * sizeof(float));
    CHECKF(zmlx_session_eval(s, g.prompt, g.n_prompt, all, 1) == ZMLX_OK, "%s",
           zmlx_session_error(s));
    size_t argmax_ok = 0;
    for (size_t t = 0; t < g.n_prompt; t++)
        argmax_ok += argmax(all + t * g.vocab, g.vocab) == g.prefill_argmax[t];
    CHECKF(argmax_ok == g.n_prompt, "%s: prefill argmax %zu/%zu", name, argmax_ok, g.n_prompt);
    float *logits = all + (g.n_prompt - 1) * g.vocab;
    double rel;
    CHECKF(close_to(logits, g.step0, g.vocab, &rel), "%s step0 rel err %.3g", name, rel);
    const char *bn = be == ZMLX_BACKEND_CPU ? "cpu" : "cpu-ref";
    printf("%s %s path=%d threads=%d: step0 rel err %.3g\n", name, bn, path, threads, rel);

    int32_t toks[64];
    size_t same = 0;
    for (size_t i = 0; i < g.n_tokens; i++) {
        toks[i] = argmax(logits, g.vocab);
        same += toks[i] == g.tokens[i];
        if (i + 1 == g.n_tokens) break;
        /* feed the reference token so one early flip cannot hide later agreement */
        CHECK(zmlx_session_eval(s, &g.tokens[i], 1, logits, 0) == ZMLX_OK);
    }
    CHECKF(same == g.n_tokens, "%s %s: greedy tokens %zu/%zu identical", name, bn, same, g.n_tokens);
    CHECKF(close_to(logits, g.last, g.vocab, &rel), "%s last-step rel err %.3g", name, rel);
    printf("%s %s path=%d: %zu/%zu tokens, last rel err %.3g\n", name, bn, path, same,
           g.n_tokens, rel);
    free(all);
    free(g.step0);
    free(g.last);
    zmlx_session_free(s);
    zmlx_model_free(m);
}

static void run(const char *name, zmlx_backend_kind be, zmlx_attn_path path, int threads) {
    char dir[1024];
    tc_model_fixture(dir, sizeof dir, name);
    run_dir(name, dir, name, be, path, threads);
}

/* ---------------------------------------------------------------- Kimi-K2.5 layout */

/* src's safetensors with every name prefixed "language_model." and two bf16 vision
   tensors (4 bytes each) appended after the data: the names Kimi-K2.5 ships. */
static bool write_kimi_safetensors(const char *src, const char *dst) {
    FILE *in = fopen(src, "rb"), *f = fopen(dst, "wb");
    uint8_t len8[8];
    bool ok = in && f && fread(len8, 1, 8, in) == 8;
    uint64_t hl = 0;
    for (int i = 7; ok && i >= 0; i--) hl = hl << 8 | len8[i];
    char *htext = ok && hl < (1u << 24) ? malloc((size_t)hl) : NULL;
    ok = htext && fread(htext, 1, (size_t)hl, in) == hl;
    json_error_t je;
    json_t *h = ok ? json_loadb(htext, (size_t)hl, 0, &je) : NULL, *out = json_object();
    const char *k;
    json_t *v;
    size_t data = 0; /* bytes of tensor data: the largest end offset */
    json_object_foreach(h, k, v) {
        char name[512];
        snprintf(name, sizeof name, "%s%s", strcmp(k, "__metadata__") ? "language_model." : "", k);
        json_object_set(out, name, v);
        json_t *end = json_array_get(json_object_get(v, "data_offsets"), 1);
        if (end && (size_t)json_integer_value(end) > data) data = (size_t)json_integer_value(end);
    }
    const char *vision[2] = {"vision_tower.blocks.0.norm0.weight", "mm_projector.proj.0.weight"};
    for (int i = 0; i < 2; i++)
        json_object_set_new(out, vision[i],
                            json_pack("{s:s, s:[i], s:[I, I]}", "dtype", "BF16", "shape", 2,
                                      "data_offsets", (json_int_t)(data + 4 * (size_t)i),
                                      (json_int_t)(data + 4 * (size_t)i + 4)));
    char *text = h ? json_dumps(out, JSON_COMPACT) : NULL;
    size_t tl = text ? strlen(text) : 0, padded = (tl + 7) / 8 * 8, copied = 0, got;
    ok = text != NULL;
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    ok = ok && fwrite(len8, 1, 8, f) == 8 && fwrite(text, 1, tl, f) == tl;
    for (size_t i = tl; ok && i < padded; i++) ok = fputc(' ', f) == ' ';
    char buf[65536];
    while (ok && (got = fread(buf, 1, sizeof buf, in)) > 0) {
        ok = fwrite(buf, 1, got, f) == got;
        copied += got;
    }
    const uint8_t extra[8] = {0x80, 0x3f, 0, 0x40, 0x40, 0x40, 0x80, 0x40}; /* 1 2 3 4 */
    ok = ok && copied == data && fwrite(extra, 1, 8, f) == 8;
    if (f) ok &= fclose(f) == 0;
    if (in) fclose(in);
    free(text);
    free(htext);
    json_decref(out);
    json_decref(h);
    return ok;
}

/* Kimi-K2.5's released config with text_config replaced by dsv3-tiny's (model_type
   kimi_k2), its top-level token ids set to the tiny vocabulary's and its int4
   quantization_config dropped (these weights are bf16). */
static bool write_kimi_config(const char *kimi_cfg, const char *tiny_cfg, const char *dst) {
    json_error_t je;
    json_t *top = json_load_file(kimi_cfg, 0, &je), *text = json_load_file(tiny_cfg, 0, &je);
    bool ok = top && text;
    if (ok) {
        json_object_set_new(text, "model_type", json_string("kimi_k2"));
        json_object_set_new(top, "text_config", text);
        json_object_set_new(top, "bos_token_id", json_integer(0));
        json_object_set_new(top, "eos_token_id", json_integer(1));
        json_object_set_new(top, "pad_token_id", json_null());
        json_object_del(top, "quantization_config");
        ok = json_dump_file(top, dst, JSON_INDENT(1)) == 0;
    } else {
        json_decref(text);
    }
    json_decref(top);
    return ok;
}

static void kimi_layout(void) {
    char tiny[1024], kimi[1024], src[1100], dir[] = "/tmp/zmlx_kimi_XXXXXX", cfg[64], st[64];
    tc_shared(tiny, sizeof tiny, "fixtures/models/dsv3-tiny");
    tc_shared(kimi, sizeof kimi, "fixtures/configs/kimi-k2.5.config.json");
    CHECK(mkdtemp(dir) != NULL);
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    snprintf(st, sizeof st, "%s/model.safetensors", dir);
    snprintf(src, sizeof src, "%s/config.json", tiny);
    CHECKF(write_kimi_config(kimi, src, cfg), "writing %s", cfg);
    snprintf(src, sizeof src, "%s/model.safetensors", tiny);
    CHECKF(write_kimi_safetensors(src, st), "writing %s", st);
    zmlx_model_info info;
    char err[ZMLX_ERR_MAX];
    CHECKF(zmlx_model_probe(dir, NULL, &info, err, sizeof err) == ZMLX_OK, "probe: %s", err);
    CHECKF(!strcmp(info.model_type, "kimi_k25") && info.n_routed_experts == 16 &&
               info.n_layers == 3 && info.n_dense_layers == 1,
           "kimi layout: %s, %d experts, %d layers", info.model_type, info.n_routed_experts,
           info.n_layers);
    run_dir("dsv3-tiny as kimi_k25", dir, "dsv3-tiny", ZMLX_BACKEND_CPU, ZMLX_ATTN_AUTO, 2);
    run_dir("dsv3-tiny as kimi_k25", dir, "dsv3-tiny", ZMLX_BACKEND_CPU_REF, ZMLX_ATTN_AUTO, 1);
    unlink(cfg);
    unlink(st);
    rmdir(dir);
}

/* max|a-b| / max|ref| */
static double rel_err(const float *a, const float *ref, size_t n) {
    double rel;
    close_to(a, ref, n, &rel);
    return isnan(rel) ? INFINITY : rel;
}

static void run_fast(const char *name) {
    char dir[1024];
    tc_model_fixture(dir, sizeof dir, name);
    golden g = {0};
    CHECKF(load_golden(dir, &g), "%s golden", name);
    if (!g.vocab) return;
    zmlx_model_params mp = zmlx_model_default_params(); /* fast */
    mp.kv_dtype = ZMLX_KV_F32;
    zmlx_model *m = NULL;
    zmlx_session *s = NULL;
    char err[ZMLX_ERR_MAX];
    CHECKF(zmlx_model_load(dir, &mp, &m, err, sizeof err) == ZMLX_OK, "load %s: %s", name, err);
    if (m) CHECK(zmlx_session_init(m, NULL, &s, err, sizeof err) == ZMLX_OK);
    float *logits = malloc(g.vocab * sizeof(float));
    if (s && zmlx_session_eval(s, g.prompt, g.n_prompt, logits, 0) == ZMLX_OK) {
        const double r0 = rel_err(logits, g.step0, g.vocab);
        for (size_t i = 0; i + 1 < g.n_tokens; i++)
            CHECK(zmlx_session_eval(s, &g.tokens[i], 1, logits, 0) == ZMLX_OK);
        const double r1 = rel_err(logits, g.last, g.vocab);
        CHECKF(r0 <= 2e-2 && r1 <= 2e-2, "%s fast: step0 rel err %.3g, last %.3g (limit 2e-2)", name,
               r0, r1);
        printf("%s cpu fast (f32 KV): step0 rel err %.3g, last (teacher-forced) %.3g\n", name, r0,
               r1);
    }
    free(logits);
    free(g.step0);
    free(g.last);
    zmlx_session_free(s);
    zmlx_model_free(m);
}

int main(void) {
    const char *names[] = {"glm47-tiny", "glm47-tiny-v5", "dsv3-tiny", "dsv32-tiny"};
    for (int i = 0; i < 4; i++) run_fast(names[i]);
    for (int i = 0; i < 4; i++) {
        run(names[i], ZMLX_BACKEND_CPU, ZMLX_ATTN_AUTO, 2);
        run(names[i], ZMLX_BACKEND_CPU_REF, ZMLX_ATTN_AUTO, 1);
    }
    run("glm47-tiny", ZMLX_BACKEND_CPU, ZMLX_ATTN_ABSORBED, 2);
    run("glm47-tiny", ZMLX_BACKEND_CPU, ZMLX_ATTN_EXPANDED, 1);
    /* sparse (DSA) attention through both MLA paths, on both backends */
    run("dsv32-tiny", ZMLX_BACKEND_CPU, ZMLX_ATTN_ABSORBED, 2);
    run("dsv32-tiny", ZMLX_BACKEND_CPU, ZMLX_ATTN_EXPANDED, 1);
    run("dsv32-tiny", ZMLX_BACKEND_CPU_REF, ZMLX_ATTN_ABSORBED, 1);
    run("dsv32-tiny", ZMLX_BACKEND_CPU_REF, ZMLX_ATTN_EXPANDED, 1);
    kimi_layout();
    return tc_done();
}
