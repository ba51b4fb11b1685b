/*
 * test_patterns.c — the pattern registry and every `exact` pattern against its unfused
 * span, bit for bit:
 *   - registry: presets, parsing, unknown names, composition (refinement allowed,
 *     overlap without refinement refused naming both);
 *   - backend fused ops (glu, combine, route) on the cpu backend (1 and 2 threads) and
 *     cpu-ref against the unfused chain of the same backend, on random inputs of several
 *     shapes including GLM-4.7-Flash's real ones;
 *   - zop_add_rmsnorm against zop_add + zop_rmsnorm;
 *   - whole-model logits with each pattern alone and with the preset, bit-identical to
 *     the baseline over a prompt and decode steps (builtin glm47-tiny and glm47-mini).
 */
#include "backend/backend.h"
#include "ops/ops.h"
#include "patch/patch.h"
#include "tcheck.h"
#include "zmlx.h"

#include <stdint.h>
#include <string.h>

static uint64_t rng = 0x1234567887654321ULL;

static float frand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0) * 2.0f - 1.0f;
}

static zweight rand_weight(int64_t rows, int64_t cols, uint16_t **buf) {
    *buf = malloc((size_t)(rows * cols) * 2);
    for (int64_t i = 0; i < rows * cols; i++) (*buf)[i] = zf32_to_bf16(frand() * 0.05f);
    return (zweight){.dtype = ZDT_BF16, .rows = rows, .cols = cols, .data = *buf};
}

static float *rand_vec(int64_t n) {
    float *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++) v[i] = frand();
    return v;
}

static void test_registry(void) {
    zerr e;
    zpatch_set s;
    CHECK(zpatch_parse("none", ZFAM_GLM4_MOE_LITE, &s, &e) == ZMLX_OK && s == 0);
    CHECK(zpatch_parse("default", ZFAM_GLM4_MOE_LITE, &s, &e) == ZMLX_OK && s == zpatch_preset(ZFAM_GLM4_MOE_LITE));
    CHECK(zpatch_parse(NULL, ZFAM_GLM4_MOE_LITE, &s, &e) == ZMLX_OK && s == zpatch_preset(ZFAM_GLM4_MOE_LITE));
    /* the preset holds only stable patterns */
    for (int i = 0; i < ZPAT_COUNT; i++)
        if (zpatch_preset(ZFAM_GLM4_MOE_LITE) & (1u << i)) CHECK(zpattern_table[i].status == ZPS_STABLE);
    CHECK(zpatch_parse("moe_mlp,swiglu_mlp,glm47_rope,moe_combine,downproj_combine", ZFAM_GLM4_MOE_LITE, &s, &e) == ZMLX_OK);
    CHECK(zpatch_parse("moe_mlp+deepseek_router", ZFAM_DEEPSEEK_V3, &s, &e) == ZMLX_OK);
    CHECK(zpatch_parse("moe_mlp,bogus", ZFAM_GLM4_MOE_LITE, &s, &e) == ZMLX_ERR_INVALID_ARG);
    CHECKF(strstr(e.msg, "bogus") != NULL, "%s", e.msg);
    CHECK(zpatch_parse("moe_mlp,,swiglu_mlp", ZFAM_GLM4_MOE_LITE, &s, &e) == ZMLX_ERR_INVALID_ARG);
    char buf[256];
    zpatch_format((1u << ZPAT_MOE_MLP) | (1u << ZPAT_SWIGLU_MLP), buf, sizeof buf);
    CHECKF(!strcmp(buf, "moe_mlp,swiglu_mlp"), "%s", buf);
    zpatch_format(0, buf, sizeof buf);
    CHECK(!strcmp(buf, "none"));
    /* composition: a table where two patterns share a stage without refinement */
    zpattern t[3] = {zpattern_table[ZPAT_MOE_MLP], zpattern_table[ZPAT_RESIDUAL_NORM],
                     zpattern_table[ZPAT_MOE_COMBINE]};
    t[2].refines = 1u << 0; /* moe_combine no longer refines residual_norm */
    CHECK(zpatch_check_compose(t, 3, 0x1 | 0x4, &e) == ZMLX_OK);
    CHECK(zpatch_check_compose(t, 3, 0x2 | 0x4, &e) == ZMLX_ERR_INVALID_ARG);
    CHECKF(strstr(e.msg, "residual_norm") && strstr(e.msg, "moe_combine"), "%s", e.msg);
    /* every registered overlap is a declared refinement */
    CHECK(zpatch_check_compose(zpattern_table, ZPAT_COUNT, (1u << ZPAT_COUNT) - 1, &e) == ZMLX_OK);
}

typedef struct be {
    const zbackend_ops *ops;
    void *ctx;
    const char *name;
} be;

static void test_glu(be *b, int64_t rows, int64_t cols, int64_t n) {
    uint16_t *gb, *ub;
    zweight g = rand_weight(rows, cols, &gb), u = rand_weight(rows, cols, &ub);
    float *x = rand_vec(n * cols), *yg = malloc((size_t)(n * rows) * 4), *yu = malloc((size_t)(n * rows) * 4);
    float *h = malloc((size_t)(n * rows + 1) * 4);
    zmm_job jg = {.w = g, .x = x, .y = yg, .n = n}, ju = {.w = u, .x = x, .y = yu, .n = n};
    b->ops->matmul(b->ctx, &jg, 1);
    b->ops->matmul(b->ctx, &ju, 1);
    zop_silu_mul(yg, yu, n * rows, yg);
    h[n * rows] = 12345.0f; /* guard */
    zglu_job j = {.gate = g, .up = u, .x = x, .h = h, .n = n};
    b->ops->glu(b->ctx, &j, 1);
    CHECKF(!memcmp(h, yg, (size_t)(n * rows) * 4), "%s glu [%lld,%lld] n=%lld not bit-identical", b->name,
           (long long)rows, (long long)cols, (long long)n);
    CHECK(h[n * rows] == 12345.0f);
    free(gb), free(ub), free(x), free(yg), free(yu), free(h);
}

static void test_combine(be *b, int64_t d, int64_t mI, int k, bool shared_here, bool residual) {
    uint16_t *bufs[17];
    zcombine_job j = {.k = k, .residual = residual};
    float *hs[17];
    for (int i = 0; i < k; i++) {
        j.down[i] = rand_weight(d, mI, &bufs[i]);
        j.h[i] = hs[i] = rand_vec(mI);
        j.w[i] = frand();
    }
    j.sh_down = rand_weight(d, mI, &bufs[k]);
    hs[k] = rand_vec(mI);
    float *x = rand_vec(d), *out = malloc((size_t)d * 4), *want = malloc((size_t)d * 4);
    float *y = malloc((size_t)(k + 1) * (size_t)d * 4);
    /* the unfused chain: K down products, shared down, then sum in order */
    for (int i = 0; i <= k; i++) {
        zmm_job m = {.w = i < k ? j.down[i] : j.sh_down, .x = hs[i], .y = y + i * d, .n = 1};
        b->ops->matmul(b->ctx, &m, 1);
    }
    for (int64_t r = 0; r < d; r++) {
        float acc = 0.0f;
        for (int i = 0; i < k; i++) acc += j.w[i] * y[i * d + r];
        acc += y[k * d + r];
        want[r] = residual ? x[r] + acc : acc;
    }
    memcpy(out, x, (size_t)d * 4);
    if (shared_here) {
        j.sh_h = hs[k];
    } else {
        j.sh_out = y + k * d;
    }
    j.out = out;
    b->ops->combine(b->ctx, &j);
    CHECKF(!memcmp(out, want, (size_t)d * 4), "%s combine d=%lld mI=%lld k=%d shared_here=%d residual=%d",
           b->name, (long long)d, (long long)mI, k, shared_here, residual);
    for (int i = 0; i <= k; i++) free(bufs[i]), free(hs[i]);
    free(x), free(out), free(want), free(y);
}

static void test_route(be *b, int32_t E, int32_t K, int32_t G, int32_t TG, int64_t d, int64_t n) {
    uint16_t *rb;
    zweight r = rand_weight(E, d, &rb);
    float *x = rand_vec(n * d), *bias = rand_vec(E), *lg = malloc((size_t)(n * E) * 4);
    float work[2 * 512], w1[64 * 16], w2[64 * 16];
    int32_t i1[64 * 16], i2[64 * 16];
    zrouter_cfg cfg = {.n_experts = E, .k = K, .n_group = G, .topk_group = TG, .norm_topk_prob = true, .scale = 2.5f};
    zmm_job mj = {.w = r, .x = x, .y = lg, .n = n};
    b->ops->matmul(b->ctx, &mj, 1);
    for (int64_t t = 0; t < n; t++) zop_route(&cfg, lg + t * E, bias, work, i1 + t * K, w1 + t * K);
    float *lg2 = malloc((size_t)(n * E) * 4);
    zroute_job rj = {.router = r, .x = x, .n = n, .logits = lg2, .cfg = cfg, .bias = bias, .work = work, .idx = i2, .w = w2};
    b->ops->route(b->ctx, &rj);
    CHECKF(!memcmp(i1, i2, (size_t)(n * K) * 4) && !memcmp(w1, w2, (size_t)(n * K) * 4) &&
           !memcmp(lg, lg2, (size_t)(n * E) * 4), "%s route E=%d K=%d G=%d n=%lld", b->name, E, K, G, (long long)n);
    free(rb), free(x), free(bias), free(lg), free(lg2);
}

static void test_add_rmsnorm(void) {
    for (int64_t d = 1; d < 3000; d = d * 3 + 1) {
        float *x1 = rand_vec(d), *f = rand_vec(d), *w = rand_vec(d), *x2 = malloc((size_t)d * 4);
        float *y1 = malloc((size_t)d * 4), *y2 = malloc((size_t)d * 4);
        memcpy(x2, x1, (size_t)d * 4);
        zop_add(x1, f, d);
        zop_rmsnorm(x1, w, d, 1e-5f, y1);
        zop_add_rmsnorm(x2, f, w, d, 1e-5f, y2);
        CHECKF(!memcmp(x1, x2, (size_t)d * 4) && !memcmp(y1, y2, (size_t)d * 4), "add_rmsnorm d=%lld", (long long)d);
        free(x1), free(x2), free(f), free(w), free(y1), free(y2);
    }
}

static void test_backend_ops(void) {
    be bs[3] = {{&zbackend_cpu, NULL, "cpu/1"}, {&zbackend_cpu, NULL, "cpu/2"}, {&zbackend_cpu_ref, NULL, "cpu-ref"}};
    bs[0].ops->init(1, &bs[0].ctx);
    bs[1].ops->init(2, &bs[1].ctx);
    bs[2].ops->init(1, &bs[2].ctx);
    for (int i = 0; i < 3; i++) {
        be *b = &bs[i];
        bool ref = i == 2; /* the scalar reference is slow: smaller shapes there */
        test_glu(b, 37, 65, 5);
        test_glu(b, 64, 128, 1);
        test_glu(b, 130, 96, 70); /* more tokens than one tile */
        if (!ref) {
            test_glu(b, 1536, 2048, 1); /* GLM-4.7-Flash expert / shared */
            test_glu(b, 1536, 2048, 3);
        }
        test_combine(b, 128, 64, 4, false, false);
        test_combine(b, 131, 33, 8, true, true);
        test_combine(b, 200, 64, 16, true, false);
        if (!ref) {
            test_combine(b, 2048, 1536, 4, true, true); /* GLM-4.7-Flash */
            test_combine(b, 2048, 1536, 4, false, false);
        }
        test_route(b, 8, 4, 1, 1, 128, 3);
        test_route(b, 64, 4, 1, 1, ref ? 256 : 2048, 1); /* GLM-4.7-Flash */
        test_route(b, 256, 8, 8, 4, 256, 2);               /* DeepSeek-V3.x groups */
        test_route(b, 384, 8, 1, 1, 256, 1);               /* Kimi-K2.5 */
    }
    for (int i = 0; i < 3; i++) bs[i].ops->free(bs[i].ctx);
}

/* Whole model: logits bit-identical with each pattern set. */
static void run_logits(const char *model, const char *patterns, int threads, float *out, int steps) {
    zmlx_model_params mp = zmlx_model_default_params();
    mp.precision = ZMLX_PRECISION_EXACT;
    mp.patterns = patterns;
    mp.threads = threads;
    zmlx_model *m = NULL;
    char err[ZMLX_ERR_MAX];
    CHECKF(zmlx_model_load(model, &mp, &m, err, sizeof err) == ZMLX_OK, "%s %s: %s", model, patterns, err);
    if (!m) return;
    zmlx_session *s = NULL;
    zmlx_session_init(m, NULL, &s, err, sizeof err);
    const int32_t V = zmlx_model_vocab_size(m);
    int32_t prompt[9] = {1, 7, 42, 99, 3, 250, 11, 64, 5};
    zmlx_session_eval(s, prompt, 9, out, 0);
    for (int i = 1; i < steps; i++) {
        int32_t t = (int32_t)((i * 37) % V);
        zmlx_session_eval(s, &t, 1, out + (size_t)i * (size_t)V, 0);
    }
    zmlx_session_free(s);
    zmlx_model_free(m);
}

static void test_model(const char *model, int32_t V) {
    const int steps = 8;
    float *base = malloc((size_t)steps * (size_t)V * 4), *got = malloc((size_t)steps * (size_t)V * 4);
    run_logits(model, "none", 2, base, steps);
    for (int i = 0; i <= ZPAT_COUNT; i++) {
        const char *p = i < ZPAT_COUNT ? zpattern_table[i].name : "default";
        run_logits(model, p, 2, got, steps);
        CHECKF(!memcmp(base, got, (size_t)steps * (size_t)V * 4), "%s: logits with %s differ from the baseline", model, p);
    }
    free(base);
    free(got);
}

int main(void) {
    test_registry();
    test_add_rmsnorm();
    test_backend_ops();
    test_model("builtin:glm47-tiny", 1024);
    test_model("builtin:glm47-mini", 4096);
    return tc_done();
}
