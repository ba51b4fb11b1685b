/*
 * test_router.c — zop_route, the DeepSeek/GLM/Kimi MoE router after the logits
 * (MODELS.md 3.5 and the "where the references disagree" table, SYSTEM.md section 1):
 *   - sigmoid scoring; the correction bias only selects, the weights are the
 *     unbiased sigmoid; softmax scoring as the alternative;
 *   - norm_topk_prob divides by (sum + 1e-20) (visible when every chosen p is tiny),
 *     no k > 1 special case; norm_topk_prob false keeps p; times routed_scaling_factor;
 *   - order: biased score descending, exact ties to the lower expert index;
 *   - group-limited selection (n_group 8 / topk_group 4 on 256 experts, K 8): group
 *     score = sum of the two best biased scores, weakest groups masked to -inf; the case
 *     where mlx's 0.0 mask picks differently (fewer than K positive biased scores in the
 *     kept groups) must follow transformers;
 *   - GLM-4.7-Flash (64 experts, K 4, n_group 1), DeepSeek-V3 (256/8, 8 groups),
 *     Kimi-K2.5 (384 experts, K 8), random and tie-heavy inputs,
 * against a brute-force reference written here: mask, then sort all experts by
 * (score desc, index asc) and take the first K.  The reference uses the same float32
 * formulas for p and p + bias, so the chosen indices must agree exactly.
 */
#include "ops/ops.h"
#include "tcheck.h"
#include "trand.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static trng rng = {0x0123456789abcdefULL};

/* ------------------------------------------------------------------ the brute force */

typedef struct ranked {
    float v;
    int32_t i;
} ranked;

static int by_score_then_index(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

typedef enum mask_kind { MASK_NEG_INF, MASK_ZERO /* mlx */ } mask_kind;

/* The router by definition: full sorts, no early exits. */
static void brute_route(const zrouter_cfg *c, const float *logits, const float *bias,
                        mask_kind mask, int32_t *idx, float *w) {
    const int32_t E = c->n_experts;
    float *p = malloc((size_t)E * sizeof(float));
    ranked *r = malloc((size_t)E * sizeof(ranked));
    if (c->softmax_scoring) {
        memcpy(p, logits, (size_t)E * sizeof(float));
        zop_softmax(p, E); /* checked on its own in test_ops.c */
    } else {
        for (int32_t e = 0; e < E; e++) p[e] = 1.0f / (1.0f + expf(-logits[e]));
    }
    for (int32_t e = 0; e < E; e++) r[e] = (ranked){p[e] + (bias ? bias[e] : 0.0f), e};
    if (c->n_group > 1 && c->topk_group < c->n_group) {
        const int32_t G = c->n_group, per = E / G;
        ranked *gs = malloc((size_t)G * sizeof(ranked)), *tmp = malloc((size_t)per * sizeof(ranked));
        for (int32_t g = 0; g < G; g++) {
            memcpy(tmp, r + g * per, (size_t)per * sizeof(ranked));
            qsort(tmp, (size_t)per, sizeof(ranked), by_score_then_index);
            gs[g] = (ranked){per > 1 ? tmp[0].v + tmp[1].v : tmp[0].v, g};
        }
        qsort(gs, (size_t)G, sizeof(ranked), by_score_then_index);
        for (int32_t n = c->topk_group; n < G; n++)
            for (int32_t j = 0; j < per; j++)
                r[gs[n].i * per + j].v = mask == MASK_NEG_INF ? -INFINITY : 0.0f;
        free(gs);
        free(tmp);
    }
    qsort(r, (size_t)E, sizeof(ranked), by_score_then_index);
    float sum = 0.0f;
    for (int32_t k = 0; k < c->k; k++) {
        idx[k] = r[k].i;
        w[k] = p[r[k].i];
        sum += w[k];
    }
    for (int32_t k = 0; k < c->k; k++) {
        if (c->norm_topk_prob) w[k] /= (sum + 1e-20f);
        w[k] *= c->scale;
    }
    free(p);
    free(r);
}

/* zop_route with exactly sized buffers (ASan sees any overrun of work/idx/weights). */
static void run_route(const zrouter_cfg *c, const float *logits, const float *bias, int32_t *idx,
                      float *w) {
    float *work = malloc((size_t)(2 * c->n_experts) * sizeof(float));
    int32_t *i2 = malloc((size_t)c->k * sizeof(int32_t));
    float *w2 = malloc((size_t)c->k * sizeof(float));
    zop_route(c, logits, bias, work, i2, w2);
    memcpy(idx, i2, (size_t)c->k * sizeof(int32_t));
    memcpy(w, w2, (size_t)c->k * sizeof(float));
    free(work);
    free(i2);
    free(w2);
}

static bool weights_close(const float *a, const float *b, int32_t k) {
    for (int32_t i = 0; i < k; i++)
        if (!(fabsf(a[i] - b[i]) <= 4e-7f * fabsf(b[i]) + 1e-38f)) return false;
    return true;
}

/* zop_route == brute force (indices exactly, weights to a few ulp); false on mismatch. */
static bool check_case(const char *what, const zrouter_cfg *c, const float *logits,
                       const float *bias) {
    int32_t idx[64], bidx[64];
    float w[64], bw[64];
    run_route(c, logits, bias, idx, w);
    brute_route(c, logits, bias, MASK_NEG_INF, bidx, bw);
    bool same = !memcmp(idx, bidx, (size_t)c->k * sizeof(int32_t));
    bool close = weights_close(w, bw, c->k);
    if (!same || !close) {
        fprintf(stderr, "%s: E=%d K=%d groups %d/%d\n  zop_route:", what, c->n_experts, c->k,
                c->topk_group, c->n_group);
        for (int32_t k = 0; k < c->k; k++) fprintf(stderr, " %d:%.7g", idx[k], (double)w[k]);
        fprintf(stderr, "\n  expected: ");
        for (int32_t k = 0; k < c->k; k++) fprintf(stderr, " %d:%.7g", bidx[k], (double)bw[k]);
        fputc('\n', stderr);
    }
    CHECKF(same, "%s: chosen experts differ from the brute force", what);
    CHECKF(close, "%s: weights differ from the brute force", what);
    return same && close;
}

/* ------------------------------------------------------------------ cases */

static void test_semantics(void) {
    /* 8 experts, K 2: expert 1 has the highest p but a strongly negative bias */
    zrouter_cfg c = {.n_experts = 8, .k = 2, .n_group = 1, .topk_group = 1,
                     .norm_topk_prob = true, .scale = 1.8f};
    float logits[8] = {0.5f, 3.0f, -1.0f, 0.0f, 1.0f, -2.0f, 0.25f, 2.0f};
    float bias[8] = {0.0f, -0.9f, 0.8f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    int32_t idx[2];
    float w[2];
    run_route(&c, logits, bias, idx, w);
    /* sel: e2 = sig(-1) + 0.8 = 1.069, e7 = sig(2) = 0.881, e1 = 0.953 - 0.9 = 0.053 */
    CHECKF(idx[0] == 2 && idx[1] == 7, "bias selects: got %d, %d (want 2, 7)", idx[0], idx[1]);
    double p2 = 1 / (1 + exp(1.0)), p7 = 1 / (1 + exp(-2.0));
    CHECKF(fabs(w[0] - 1.8 * p2 / (p2 + p7)) < 1e-6 && fabs(w[1] - 1.8 * p7 / (p2 + p7)) < 1e-6,
           "weights are the unbiased sigmoid, normalised, scaled: got %g %g, want %g %g",
           (double)w[0], (double)w[1], 1.8 * p2 / (p2 + p7), 1.8 * p7 / (p2 + p7));
    check_case("semantics", &c, logits, bias);

    /* norm_topk_prob false: p times the scale */
    c.norm_topk_prob = false;
    run_route(&c, logits, bias, idx, w);
    CHECKF(fabs(w[0] - 1.8 * p2) < 1e-6 && fabs(w[1] - 1.8 * p7) < 1e-6,
           "norm_topk_prob false: got %g %g, want %g %g", (double)w[0], (double)w[1], 1.8 * p2,
           1.8 * p7);
    check_case("norm_topk_prob false", &c, logits, bias);

    /* no bias at all (NULL) ranks by p */
    c.norm_topk_prob = true;
    run_route(&c, logits, NULL, idx, w);
    CHECKF(idx[0] == 1 && idx[1] == 7, "bias NULL: got %d, %d (want 1, 7)", idx[0], idx[1]);
    check_case("bias NULL", &c, logits, NULL);

    /* k = 1 with normalisation: p / (p + 1e-20) = 1, times the scale (no k > 1 case) */
    c.k = 1;
    run_route(&c, logits, bias, idx, w);
    CHECKF(idx[0] == 2 && w[0] == 1.8f, "k=1: got %d %.9g (want 2, 1.8)", idx[0], (double)w[0]);
}

static void test_epsilon(void) {
    /* every p ~ 8.8e-27: with the 1e-20 of transformers the weights stay tiny,
       without it they would be 1/K */
    zrouter_cfg c = {.n_experts = 16, .k = 4, .n_group = 1, .topk_group = 1,
                     .norm_topk_prob = true, .scale = 1.0f};
    float logits[16], bias[16];
    for (int e = 0; e < 16; e++) logits[e] = -60.0f - 0.01f * (float)e, bias[e] = 0.0f;
    int32_t idx[4];
    float w[4];
    run_route(&c, logits, bias, idx, w);
    double sum = 0, p[4];
    for (int k = 0; k < 4; k++) sum += (p[k] = 1.0 / (1.0 + exp(-(double)logits[idx[k]])));
    bool ok = true;
    for (int k = 0; k < 4; k++) ok &= fabs(w[k] - p[k] / (sum + 1e-20)) <= 1e-5 * p[k] / (sum + 1e-20);
    CHECKF(ok && w[0] < 1e-5f, "sum + 1e-20: got w0 = %g, want %g (not %g)", (double)w[0],
           p[0] / (sum + 1e-20), 0.25);
    CHECK(idx[0] == 0 && idx[1] == 1 && idx[2] == 2 && idx[3] == 3);
    check_case("epsilon", &c, logits, bias);
}

static void test_ties(void) {
    zrouter_cfg c = {.n_experts = 16, .k = 4, .n_group = 1, .topk_group = 1,
                     .norm_topk_prob = true, .scale = 2.5f};
    float logits[16], bias[16];
    int32_t idx[8];
    float w[8];
    /* all equal: the lowest indices, in order, equal weights */
    for (int e = 0; e < 16; e++) logits[e] = 0.3f, bias[e] = 0.01f;
    run_route(&c, logits, bias, idx, w);
    CHECKF(idx[0] == 0 && idx[1] == 1 && idx[2] == 2 && idx[3] == 3,
           "all tied: got %d %d %d %d (want 0 1 2 3)", idx[0], idx[1], idx[2], idx[3]);
    CHECK(w[0] == w[1] && w[1] == w[2] && w[2] == w[3]);
    check_case("all tied", &c, logits, bias);

    /* experts 9, 2, 5 tie on top, 12 and 7 tie next: 2 5 9 7 */
    for (int e = 0; e < 16; e++) logits[e] = -1.0f + 0.01f * (float)e, bias[e] = 0.0f;
    logits[9] = logits[2] = logits[5] = 2.0f;
    logits[12] = logits[7] = 1.0f;
    run_route(&c, logits, bias, idx, w);
    CHECKF(idx[0] == 2 && idx[1] == 5 && idx[2] == 9 && idx[3] == 7,
           "ties: got %d %d %d %d (want 2 5 9 7)", idx[0], idx[1], idx[2], idx[3]);
    check_case("ties", &c, logits, bias);

    /* a tie of the biased score between different p: expert 3 (p 0.5) and expert 1
       (p = sigmoid(0.7)) both at sel 0.75 exactly; 1 comes first, each keeps its own p */
    for (int e = 0; e < 16; e++) logits[e] = -3.0f, bias[e] = 0.0f;
    logits[3] = 0.0f, bias[3] = 0.25f;
    logits[1] = 0.7f;
    float p1 = 1.0f / (1.0f + expf(-0.7f));
    bias[1] = 0.75f - p1; /* exact (Sterbenz): p1 + bias[1] == 0.75 */
    CHECK(p1 + bias[1] == 0.5f + bias[3]);
    c.k = 2;
    run_route(&c, logits, bias, idx, w);
    double s = 0.5 + (double)p1;
    CHECKF(idx[0] == 1 && idx[1] == 3, "score tie with different p: got %d %d (want 1 3)", idx[0],
           idx[1]);
    CHECKF(fabs(w[0] - 2.5 * p1 / s) < 1e-6 && fabs(w[1] - 2.5 * 0.5 / s) < 1e-6,
           "score tie: weights %g %g, want %g %g", (double)w[0], (double)w[1], 2.5 * p1 / s,
           2.5 * 0.5 / s);
    check_case("score tie, different p", &c, logits, bias);
}

/* DeepSeek-V3 shaped: 256 experts in 8 groups of 32, keep 4 groups, K 8 */
static zrouter_cfg ds_cfg(void) {
    return (zrouter_cfg){.n_experts = 256, .k = 8, .n_group = 8, .topk_group = 4,
                         .norm_topk_prob = true, .scale = 2.5f};
}

static bool in_kept(const int32_t *idx, int k, const bool *kept_group, int per) {
    for (int i = 0; i < k; i++)
        if (!kept_group[idx[i] / per]) return false;
    return true;
}

static void test_groups(void) {
    zrouter_cfg c = ds_cfg();
    float logits[256], bias[256];
    int32_t idx[8], bidx[8];
    float w[8], bw[8];

    /* the best single expert sits in a weak group: group scores use the top two, so
       group 1 (one star at 0.998, the rest poor) loses to groups 2..5 (two good
       experts each) and its star is never chosen */
    for (int e = 0; e < 256; e++) logits[e] = -4.0f, bias[e] = 0.0f;
    logits[32] = 6.0f; /* group 1: star + nothing -> score ~1.0 */
    for (int g = 2; g < 6; g++) logits[g * 32 + 3] = logits[g * 32 + 7] = 1.5f; /* ~1.64 each */
    logits[7 * 32 + 1] = 0.8f, logits[7 * 32 + 2] = 0.7f; /* group 7: ~1.36 */
    run_route(&c, logits, bias, idx, w);
    bool kept[8] = {false, false, true, true, true, true, false, false};
    CHECKF(in_kept(idx, 8, kept, 32), "groups: an expert outside groups 2..5 was chosen (first %d)",
           idx[0]);
    check_case("groups (star in a weak group)", &c, logits, bias);

    /* group score ties: groups 6 and 3 tie for the last kept slot -> 3 wins */
    for (int e = 0; e < 256; e++) logits[e] = -4.0f, bias[e] = 0.0f;
    for (int g = 0; g < 8; g++) logits[g * 32] = logits[g * 32 + 1] = -1.0f + 0.25f * (float)g;
    for (int j = 0; j < 2; j++) logits[3 * 32 + j] = logits[6 * 32 + j] = 0.0f;
    logits[0] = logits[1] = 0.0f;
    /* top-two logits per group: g0 0  g1 -.75  g2 -.5  g3 0  g4 0  g5 .25  g6 0  g7 .75;
       ranking 7, 5, then 0, 3, 4, 6 tie (2 sigmoid(0) each): the two kept are 0 and 3 */
    run_route(&c, logits, bias, idx, w);
    bool kept2[8] = {true, false, false, true, false, true, false, true};
    CHECKF(in_kept(idx, 8, kept2, 32), "tied group scores: lower group index must win");
    check_case("tied group scores", &c, logits, bias);

    /* topk_group == n_group: nothing masked, same as one group */
    zrouter_cfg all = c;
    all.topk_group = 8;
    zrouter_cfg one = c;
    one.n_group = 1, one.topk_group = 1;
    for (int e = 0; e < 256; e++) logits[e] = 3.0f * rng_unif(&rng), bias[e] = 0.1f * rng_unif(&rng);
    run_route(&all, logits, bias, idx, w);
    run_route(&one, logits, bias, bidx, bw);
    CHECK(!memcmp(idx, bidx, sizeof idx) && !memcmp(w, bw, sizeof w));
}

/*
 * MODELS.md: masked groups are -inf (transformers 5.17, DeepSeek's reference); mlx
 * writes 0.0, which differs only when the kept groups hold fewer than K positive
 * biased scores.  Build exactly that: each kept group has one positive expert.
 */
static void test_mask_vs_mlx(void) {
    zrouter_cfg c = ds_cfg();
    float logits[256], bias[256];
    for (int e = 0; e < 256; e++) {
        logits[e] = 0.0f; /* p = 0.5 everywhere: sel = 0.5 + bias */
        int g = e / 32, j = e % 32;
        if (g < 4) bias[e] = j == 0 ? 0.4f : -0.7f - 0.001f * (float)j; /* 0.9, then <= -0.2 */
        else bias[e] = -1.1f;                                              /* -0.6 each */
    }
    /* group scores: kept 0.9 + -0.201 ~ 0.7; masked -1.2 */
    int32_t idx[8], tidx[8], midx[8];
    float w[8], tw[8], mw[8];
    run_route(&c, logits, bias, idx, w);
    brute_route(&c, logits, bias, MASK_NEG_INF, tidx, tw);
    brute_route(&c, logits, bias, MASK_ZERO, midx, mw);
    CHECKF(memcmp(tidx, midx, sizeof tidx) != 0, "the case must separate -inf from mlx's 0.0");
    bool kept[8] = {true, true, true, true, false, false, false, false};
    CHECKF(in_kept(idx, 8, kept, 32), "masked groups must stay excluded (-inf), got expert %d..",
           idx[4]);
    CHECKF(!memcmp(idx, tidx, sizeof idx), "zop_route must follow transformers (-inf mask)");
    CHECKF(memcmp(idx, midx, sizeof idx) != 0, "zop_route follows mlx's 0.0 mask");
    /* the first four are the positive experts of groups 0..3; then group 0's next best */
    CHECK(idx[0] == 0 && idx[1] == 32 && idx[2] == 64 && idx[3] == 96 && idx[4] == 1);
    check_case("mask -inf vs mlx 0.0", &c, logits, bias);
}

/* Random cases of one shape; `coarse` draws from a few values to provoke ties. */
static void random_cases(const char *what, zrouter_cfg c, int n, bool coarse, bool with_bias) {
    float *logits = malloc((size_t)c.n_experts * sizeof(float));
    float *bias = malloc((size_t)c.n_experts * sizeof(float));
    int bad = 0;
    for (int i = 0; i < n && bad < 3; i++) {
        for (int32_t e = 0; e < c.n_experts; e++) {
            if (coarse) {
                logits[e] = (float)((int)(rng_u64(&rng) % 5) - 2);
                bias[e] = 0.05f * (float)(rng_u64(&rng) % 3);
            } else {
                logits[e] = 4.0f * rng_unif(&rng);
                bias[e] = 0.2f * rng_unif(&rng);
            }
        }
        if (!check_case(what, &c, logits, with_bias ? bias : NULL)) bad++;
    }
    free(logits);
    free(bias);
}

static void test_families(void) {
    zrouter_cfg glm = {.n_experts = 64, .k = 4, .n_group = 1, .topk_group = 1,
                       .norm_topk_prob = true, .scale = 1.8f};
    random_cases("GLM-4.7-Flash 64/4", glm, 300, false, true);
    random_cases("GLM-4.7-Flash 64/4 coarse", glm, 300, true, true);
    zrouter_cfg ds = ds_cfg();
    random_cases("DeepSeek-V3 256/8 groups 8/4", ds, 300, false, true);
    random_cases("DeepSeek-V3 256/8 groups 8/4 coarse", ds, 300, true, true);
    zrouter_cfg kimi = {.n_experts = 384, .k = 8, .n_group = 1, .topk_group = 1,
                        .norm_topk_prob = true, .scale = 2.827f};
    random_cases("Kimi-K2.5 384/8", kimi, 200, false, true);
    random_cases("Kimi-K2.5 384/8 coarse", kimi, 200, true, true);
    zrouter_cfg nonorm = glm;
    nonorm.norm_topk_prob = false;
    random_cases("norm_topk_prob false", nonorm, 200, false, true);
    zrouter_cfg sm = {.n_experts = 64, .k = 6, .n_group = 1, .topk_group = 1,
                      .norm_topk_prob = false, .scale = 1.0f, .softmax_scoring = true};
    random_cases("softmax scoring", sm, 200, false, false);
    random_cases("softmax scoring coarse", sm, 200, true, false);
    sm.norm_topk_prob = true;
    random_cases("softmax scoring, normalised, biased", sm, 200, false, true);
    zrouter_cfg g4 = {.n_experts = 64, .k = 6, .n_group = 4, .topk_group = 2,
                      .norm_topk_prob = true, .scale = 1.0f};
    random_cases("64 experts in 4 groups, keep 2", g4, 300, true, true);
}

static void test_softmax_scoring(void) {
    /* weights are the softmax probabilities of the chosen experts */
    zrouter_cfg c = {.n_experts = 6, .k = 2, .n_group = 1, .topk_group = 1,
                     .norm_topk_prob = false, .scale = 1.0f, .softmax_scoring = true};
    float logits[6] = {0.0f, 2.0f, 1.0f, -1.0f, 2.0f, 0.5f};
    int32_t idx[2];
    float w[2];
    run_route(&c, logits, NULL, idx, w);
    double z = 0;
    for (int e = 0; e < 6; e++) z += exp(logits[e]);
    CHECKF(idx[0] == 1 && idx[1] == 4, "softmax: got %d %d (want 1 4: tie, lower first)", idx[0],
           idx[1]);
    CHECKF(fabs(w[0] - exp(2.0) / z) < 1e-6 && fabs(w[1] - exp(2.0) / z) < 1e-6,
           "softmax weights %g %g, want %g", (double)w[0], (double)w[1], exp(2.0) / z);
}

int main(void) {
    test_semantics();
    test_epsilon();
    test_ties();
    test_groups();
    test_mask_vs_mlx();
    test_softmax_scoring();
    test_families();
    return tc_done();
}
