/*
 * test_load_quant.c — loading quantized checkpoints (model/load_weight.c, io/qconfig.c)
 * from the fixtures of tests/fixtures/quant (made by tests/make_quant_fixtures.py):
 *   - MLX: a tiny GLM converted by mlx-lm's own `mlx_lm.convert -q` (affine 4-bit g64
 *     with float32 scales, and mxfp4) loads (stacked switch_mlp experts, split MLA
 *     embed_q / unembed_out, quantized embedding and lm_head) and decodes the greedy
 *     tokens mlx-lm decoded from the same files in float32 (golden.json there), logits
 *     within 1e-5 of the largest, on cpu and cpu-ref.
 */
#include "tcheck.h"
#include "tgolden.h"
#include "zmlx.h"

#include <math.h>
#include <stdbool.h>

static const char *fixture(char *buf, size_t n, const char *name) {
    const char *src = getenv("ZMLX_SRC");
    snprintf(buf, n, "%s/tests/fixtures/quant/%s", src ? src : ".", name);
    return buf;
}

/* max|a - ref| / max|ref| */
static double rel_err(const float *a, const float *ref, size_t n) {
    double mx = 0, md = 0;
    for (size_t i = 0; i < n; i++) {
        mx = fmax(mx, fabs(ref[i]));
        md = fmax(md, fabs((double)a[i] - ref[i]));
    }
    return isnan(md) ? INFINITY : md / mx;
}

static zmlx_model *load(const char *dir, zmlx_backend_kind be) {
    zmlx_model_params mp = zmlx_model_default_params();
    mp.backend = be;
    mp.precision = ZMLX_PRECISION_EXACT;
    mp.threads = be == ZMLX_BACKEND_CPU ? 2 : 1;
    zmlx_model *m = NULL;
    char err[ZMLX_ERR_MAX];
    zmlx_status st = zmlx_model_load(dir, &mp, &m, err, sizeof err);
    CHECKF(st == ZMLX_OK, "load %s: %s", dir, err);
    return st == ZMLX_OK ? m : NULL;
}

/* The model of `name` against its golden.json (greedy tokens fed back as in the golden). */
static void check_golden(const char *name, zmlx_backend_kind be) {
    char dir[1024];
    fixture(dir, sizeof dir, name);
    golden g = {0};
    CHECKF(load_golden(dir, &g), "%s golden", name);
    zmlx_model *m = g.vocab ? load(dir, be) : NULL;
    if (!m) return;
    zmlx_session *s = NULL;
    char err[ZMLX_ERR_MAX];
    CHECK(zmlx_session_init(m, NULL, &s, err, sizeof err) == ZMLX_OK);
    float *all = malloc(g.n_prompt * g.vocab * sizeof(float));
    CHECK(zmlx_session_eval(s, g.prompt, g.n_prompt, all, 1) == ZMLX_OK);
    size_t am = 0, same = 0;
    for (size_t t = 0; t < g.n_prompt; t++) am += argmax(all + t * g.vocab, g.vocab) == g.prefill_argmax[t];
    float *logits = all + (g.n_prompt - 1) * g.vocab;
    double e0 = rel_err(logits, g.step0, g.vocab);
    for (size_t i = 0; i < g.n_tokens; i++) {
        same += argmax(logits, g.vocab) == g.tokens[i];
        if (i + 1 < g.n_tokens) CHECK(zmlx_session_eval(s, &g.tokens[i], 1, logits, 0) == ZMLX_OK);
    }
    double e1 = rel_err(logits, g.last, g.vocab);
    const char *bn = be == ZMLX_BACKEND_CPU ? "cpu" : "cpu-ref";
    printf("%s %s: prefill argmax %zu/%zu, tokens %zu/%zu, logits rel err %.2g / %.2g\n", name, bn,
           am, g.n_prompt, same, g.n_tokens, e0, e1);
    CHECKF(am == g.n_prompt && same == g.n_tokens, "%s %s: argmax %zu/%zu tokens %zu/%zu", name, bn,
           am, g.n_prompt, same, g.n_tokens);
    CHECKF(e0 <= 1e-5 && e1 <= 1e-5, "%s %s: logits rel err %.3g / %.3g", name, bn, e0, e1);
    free(all);
    free(g.step0);
    free(g.last);
    zmlx_session_free(s);
    zmlx_model_free(m);
}

int main(void) {
    const char *mlx[] = {"glm-mlx-affine4", "glm-mlx-mxfp4"};
    for (int i = 0; i < 2; i++) {
        check_golden(mlx[i], ZMLX_BACKEND_CPU);
        check_golden(mlx[i], ZMLX_BACKEND_CPU_REF);
    }
    return tc_done();
}
