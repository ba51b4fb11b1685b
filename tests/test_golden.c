/*
 * test_golden.c — the model against the Hugging Face transformers reference
 * (fixtures/models/<name>/golden.json, float32 from the stored bf16 weights):
 * all 40 greedy tokens identical, logits of the first and last step within
 * 1e-4 * max|ref|, prefill argmax identical at every prompt position — on the
 * cpu and cpu-ref backends, with --precision exact, and for the absorbed and
 * expanded attention paths.
 */
#include "tcheck.h"
#include "tgolden.h"
#include "zmlx.h"

#include <jansson.h>
#include <math.h>
#include <stdbool.h>

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

static void run(const char *name, zmlx_backend_kind be, zmlx_attn_path path, int threads) {
    char dir[1024];
    tc_shared(dir, sizeof dir, "fixtures/models/");
    strncat(dir, name, sizeof dir - strlen(dir) - 1);
    golden g = {0};
    CHECKF(load_golden(dir, &g), "%s golden", name);
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

int main(void) {
    const char *names[] = {"glm47-tiny", "glm47-tiny-v5", "dsv3-tiny", "dsv32-tiny"};
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
    return tc_done();
}
