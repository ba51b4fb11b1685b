/*
 * test_mla_split.c — mlx-lm's split MLA weights (embed_q / unembed_out) run as stored
 * (src/model/mla.c, attention.c) against the float32 kv_b rebuilt from them
 * (zmodel_mla_rebuild, what a device backend gets).  The dequantized values are the same,
 * so the two may differ only by summation order:
 *   - every committed MLX fixture (tests/fixtures/mlx/, tests/fixtures/quant/glm-mlx-affine4
 *     and -mxfp4: embed_q dense or mxfp4, unembed_out affine4 or mxfp4) and builtin:dsv32-tiny
 * converted here to affine4 g32 (both halves affine, DSA sparse attention), on cpu and cpu-ref,
 *     --precision exact, the absorbed and the expanded path forced: a 10-token prefill and
 *     12 greedy steps give identical tokens and every step's logits within 1e-5 of the
 *     largest; on cpu-ref (the same products in the same order) bit for bit;
 *   - the split model really holds the split pair (no kv_b) and the rebuilt one a kv_b;
 *   - zmlx info: bytes predicted from the headers equal the loaded ones, for the split
 *     layout (zmlx_model_probe) and for the rebuilt kv_b (zinfo_config ZINFO_MLA_REBUILT,
 *     what `zmlx info --backend cuda` predicts), and the split layout reads fewer bytes per
 *     token than the rebuilt float32 kv_b.
 */
#include "io/qconfig.h"
#include "model/model.h"
#include "tcheck.h"
#include "tools/convert.h"
#include "zmlx.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

enum { STEPS = 12, NPROMPT = 10 };

static zmlx_model *load(const char *dir, zmlx_backend_kind be) {
    zmlx_model_params mp = zmlx_model_default_params();
    mp.backend = be;
    mp.precision = ZMLX_PRECISION_EXACT;
    mp.threads = be == ZMLX_BACKEND_CPU ? 2 : 1;
    mp.patterns = "none";
    zmlx_model *m = NULL;
    char err[ZMLX_ERR_MAX];
    zmlx_status st = zmlx_model_load(dir, &mp, &m, err, sizeof err);
    CHECKF(st == ZMLX_OK, "load %s: %s", dir, err);
    return st == ZMLX_OK ? m : NULL;
}

/* Layers holding the split pair (and no kv_b), and layers holding kv_b only. */
static void count_layouts(const zmlx_model *m, int *split, int *kv_b) {
    *split = *kv_b = 0;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const zlayer *L = &m->layers[l];
        *split += L->embed_q.data && L->unembed_out.data && !L->kv_b.data;
        *kv_b += L->kv_b.data && !L->embed_q.data && !L->unembed_out.data;
    }
}

/* Prefill NPROMPT tokens, then STEPS greedy tokens; every step's logits into lg[STEPS, V]. */
static bool decode(zmlx_model *m, zmlx_attn_path path, int32_t *toks, float *lg) {
    static const int32_t prompt[NPROMPT] = {0, 5, 17, 99, 40, 3, 25, 81, 42, 7};
    const size_t V = (size_t)zmlx_model_vocab_size(m);
    zmlx_session_params sp = zmlx_session_default_params();
    sp.attn_path = path;
    zmlx_session *s = NULL;
    char err[ZMLX_ERR_MAX];
    bool ok = zmlx_session_init(m, &sp, &s, err, sizeof err) == ZMLX_OK &&
              zmlx_session_eval(s, prompt, NPROMPT, lg, 0) == ZMLX_OK;
    for (int i = 0; ok && i < STEPS; i++) {
        const float *row = lg + (size_t)i * V;
        int32_t best = 0;
        for (size_t v = 1; v < V; v++)
            if (row[v] > row[best]) best = (int32_t)v;
        toks[i] = best;
        if (i + 1 < STEPS)
            ok = zmlx_session_eval(s, &toks[i], 1, lg + (size_t)(i + 1) * V, 0) == ZMLX_OK;
    }
    CHECKF(ok, "decode: %s", s ? zmlx_session_error(s) : err);
    zmlx_session_free(s);
    return ok;
}

/* max|a - b| / max|b| over one row */
static double rel_err(const float *a, const float *b, size_t n) {
    double mx = 0, md = 0;
    for (size_t i = 0; i < n; i++) {
        mx = fmax(mx, fabs(b[i]));
        md = fmax(md, fabs((double)a[i] - b[i]));
    }
    return isnan(md) ? INFINITY : md / mx;
}

static void check_paths(const char *name, zmlx_model *ms, zmlx_model *mr, bool ref) {
    static const zmlx_attn_path paths[2] = {ZMLX_ATTN_ABSORBED, ZMLX_ATTN_EXPANDED};
    const size_t V = (size_t)zmlx_model_vocab_size(ms);
    float *ls = malloc(STEPS * V * sizeof(float)), *lr = malloc(STEPS * V * sizeof(float));
    for (int p = 0; p < 2; p++) {
        int32_t ts[STEPS], tr[STEPS];
        if (!decode(ms, paths[p], ts, ls) || !decode(mr, paths[p], tr, lr)) continue;
        int same = 0;
        double worst = 0;
        for (int i = 0; i < STEPS; i++) {
            same += ts[i] == tr[i];
            worst = fmax(worst, rel_err(ls + i * V, lr + i * V, V));
        }
        const bool bits = !memcmp(ls, lr, STEPS * V * sizeof(float));
        const char *bn = ref ? "cpu-ref" : "cpu", *pn = p ? "expanded" : "absorbed";
        printf("%s %s %s: %d/%d tokens as the rebuilt kv_b, logits rel err <= %.2g%s\n", name, bn,
               pn, same, STEPS, worst, bits ? " (bit-identical)" : "");
        CHECKF(same == STEPS && worst <= 1e-5, "%s %s %s: %d/%d tokens, rel err %.3g", name, bn, pn,
               same, STEPS, worst);
        if (ref) CHECKF(bits, "%s cpu-ref %s: not bit-identical to the rebuilt kv_b", name, pn);
    }
    free(ls);
    free(lr);
}

/* The prediction for a device backend (kv_b rebuilt) from config.json + headers. */
static bool predict_rebuilt(const char *dir, zmlx_model_info *info) {
    char path[1200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    zmlx_config c;
    zdtype wdt;
    zqcfg *q = NULL;
    zerr e = {{0}};
    bool ok = zmodel_read_config(dir, &c, &wdt, NULL, &e) == ZMLX_OK &&
              zcfg_load_quant(path, &c, &q, &e) == ZMLX_OK;
    CHECKF(ok, "%s: %s", dir, e.msg);
    if (ok) zinfo_config(&c, q, wdt, ZINFO_MLA_REBUILT, 4, info);
    zqcfg_free(q);
    return ok;
}

/* One checkpoint `dir` holding the split pair; `quantized`: at least one half is. */
static void check_dir(const char *name, const char *dir, bool quantized) {
    for (int b = 0; b < 2; b++) {
        const zmlx_backend_kind be = b ? ZMLX_BACKEND_CPU_REF : ZMLX_BACKEND_CPU;
        zmlx_model *ms = load(dir, be), *mr = load(dir, be);
        zerr e = {{0}};
        if (ms && mr) {
            const int n = ms->cfg.n_layers;
            int split, kv_b;
            count_layouts(ms, &split, &kv_b);
            CHECKF(split == n && kv_b == 0, "%s: %d of %d layers split as loaded", name, split, n);
            CHECKF(zmodel_mla_rebuild(mr, &e) == ZMLX_OK, "%s: %s", name, e.msg);
            count_layouts(mr, &split, &kv_b);
            CHECKF(kv_b == n && split == 0, "%s: %d of %d layers rebuilt", name, kv_b, n);
            zmlx_model_info is, ir, ip;
            zmlx_model_get_info(ms, &is);
            zmlx_model_get_info(mr, &ir);
            char err[ZMLX_ERR_MAX];
            CHECK(zmlx_model_probe(dir, NULL, &ip, err, sizeof err) == ZMLX_OK);
            if (!b)
                printf("%s: %lld bytes, %lld bytes/token split (predicted %lld, %lld); rebuilt "
                       "kv_b %lld, %lld\n",
                       name, (long long)is.weight_bytes_total, (long long)is.bytes_per_token,
                       (long long)ip.weight_bytes_total, (long long)ip.bytes_per_token,
                       (long long)ir.weight_bytes_total, (long long)ir.bytes_per_token);
            CHECKF(ip.weight_bytes_total == is.weight_bytes_total &&
                       ip.bytes_per_token == is.bytes_per_token &&
                       ip.params_total == is.params_total,
                   "%s: probe and loaded info differ", name);
            CHECK(is.params_total == ir.params_total);
            zmlx_model_info id;
            if (predict_rebuilt(dir, &id))
                CHECKF(id.weight_bytes_total == ir.weight_bytes_total &&
                           id.bytes_per_token == ir.bytes_per_token,
                       "%s: rebuilt kv_b predicted %lld bytes, %lld per token; loaded %lld, %lld",
                       name, (long long)id.weight_bytes_total, (long long)id.bytes_per_token,
                       (long long)ir.weight_bytes_total, (long long)ir.bytes_per_token);
            if (quantized)
                CHECKF(is.bytes_per_token < ir.bytes_per_token,
                       "%s: split reads %lld bytes/token, "
                       "rebuilt %lld",
                       name, (long long)is.bytes_per_token, (long long)ir.bytes_per_token);
            check_paths(name, ms, mr, b == 1);
        }
        zmlx_model_free(ms);
        zmlx_model_free(mr);
    }
}

static void check_fixture(const char *rel, bool quantized) {
    const char *src = getenv("ZMLX_SRC");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/%s", src ? src : "..", rel);
    check_dir(rel, dir, quantized);
}

/* builtin:dsv32-tiny converted to MLX affine4 g32: embed_q and unembed_out both affine. */
static void check_converted(void) {
    char tmp[] = "/tmp/zmlx-mla-XXXXXX", dst[64], cmd[128];
    if (!mkdtemp(tmp)) {
        CHECKF(false, "mkdtemp");
        return;
    }
    snprintf(dst, sizeof dst, "%s/m", tmp);
    zcv_params p = zcv_default_params();
    p.mode = ZCV_Q_AFFINE, p.bits = 4, p.group = 32, p.threads = 2;
    zerr e = {{0}};
    zmlx_status st = zcv_convert("builtin:dsv32-tiny:layers=2", dst, &p, NULL, &e);
    CHECKF(st == ZMLX_OK, "convert: %s", e.msg);
    if (st == ZMLX_OK) check_dir("builtin:dsv32-tiny affine4 g32", dst, true);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CHECK(system(cmd) == 0);
}

int main(void) {
    check_fixture("mlx/glm47-tiny-affine4-g64-f32", true);
    check_fixture("mlx/dsv3-tiny-mxfp4-f32", true);
    check_fixture("quant/glm-mlx-affine4", true);
    check_fixture("quant/glm-mlx-mxfp4", true);
    check_converted();
    return tc_done();
}
