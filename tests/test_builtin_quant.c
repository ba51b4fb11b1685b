/*
 * test_builtin_quant.c — the weight formats of the builtin models (src/model/builtin.c):
 *   - the default is MLX affine 4-bit group 64 with bf16 scales and biases for every
 *     Linear weight, the embedding and lm_head; the router gate stays bf16 and the norms
 *     float; bits=2..8 / group=32,128 / mode=mxfp4 / bits=16 give those layouts; a weight
 *     whose width is not a multiple of the group stays bf16 (glm47-tiny at group 128: the
 *     kv_b and q_b inputs are 64 wide);
 *   - the generated values: every layout dequantizes to weights of mean ~0 and standard
 *     deviation within 15% of the bf16 model's 1/sqrt(fan_in) (checked on q_a, kv_b and an
 *     expert), codes use the whole range, the embedding's values are O(1);
 *   - zmlx info counts the bytes of the stored format (packed codes + 4 bytes of scale and
 *     bias per 64 at 4-bit g64) and names it ("affine4 g64", "mxfp4", "BF16");
 *   - every layout runs: 4 greedy tokens on the cpu backend in both precisions, finite
 *     logits, the same tokens from 1 and 2 threads.
 */
#include "model/model.h"
#include "tcheck.h"
#include "zmlx.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

static zmlx_model *load(const char *spec, zmlx_precision prec, int threads) {
    zmlx_model_params mp = zmlx_model_default_params();
    mp.precision = prec;
    mp.threads = threads;
    zmlx_model *m = NULL;
    char err[ZMLX_ERR_MAX];
    CHECKF(zmlx_model_load(spec, &mp, &m, err, sizeof err) == ZMLX_OK, "%s: %s", spec, err);
    return m;
}

/* mean and standard deviation of w's dequantized values; *span = the codes used */
static void stats(const zweight *w, double *mean, double *sd, int *lo, int *hi) {
    double s = 0, s2 = 0;
    int64_t n = 0;
    *lo = 1 << 30, *hi = -1;
    for (int64_t r = 0; r < w->rows; r += 1 + w->rows / 64)
        for (int64_t c = 0; c < w->cols; c++) {
            double v = zweight_get(w, r, c);
            s += v, s2 += v * v, n++;
            if (w->q != ZQ_NONE) {
                const uint8_t *row = (const uint8_t *)w->data + r * zweight_row_data_bytes(w);
                int q = (int)zq_code(row, c, w->bits);
                *lo = q < *lo ? q : *lo, *hi = q > *hi ? q : *hi;
            }
        }
    *mean = s / (double)n;
    *sd = sqrt(s2 / (double)n - *mean * *mean);
}

static void check_weight(const char *spec, const char *what, const zweight *w, zqfmt q, int bits,
                         int group) {
    if (w->cols % group) q = ZQ_NONE; /* not a multiple of the group: bf16, as MLX leaves it */
    CHECKF(w->q == q && (q == ZQ_NONE ? w->dtype == ZDT_BF16 : w->bits == bits && w->group == group),
           "%s %s: format q%d bits %d group %d dtype %s", spec, what, (int)w->q, w->bits, w->group,
           zdtype_table[w->dtype].name);
    CHECKF(zweight_check(w, NULL, 0), "%s %s: not a valid weight", spec, what);
    if (q == ZQ_AFFINE) CHECK(w->sdtype == ZDT_BF16 && w->biases);
    if (q == ZQ_MXFP4) CHECK(w->sdtype == ZDT_U8 && !w->biases);
    double mean, sd;
    int lo, hi;
    stats(w, &mean, &sd, &lo, &hi);
    const double want = 1.0 / sqrt((double)w->cols);
    CHECKF(fabs(mean) < 0.1 * want && fabs(sd / want - 1.0) < 0.15,
           "%s %s: mean %.3g sd %.3g, want ~0 and %.3g", spec, what, mean, sd, want);
    if (q != ZQ_NONE)
        CHECKF(lo == 0 && hi == (1 << bits) - 1, "%s %s: codes %d..%d", spec, what, lo, hi);
}

static void check_model(const char *spec, zqfmt q, int bits, int group, const char *fmt) {
    zmlx_model *m = load(spec, ZMLX_PRECISION_FAST, 2);
    if (!m) return;
    const zlayer *L0 = &m->layers[0], *L1 = &m->layers[1];
    check_weight(spec, "q_a", &L0->q_a, q, bits, group);
    check_weight(spec, "o", &L0->o, q, bits, group);
    check_weight(spec, "lm_head", &m->lm_head, q, bits, group);
    check_weight(spec, "expert 3 down", &L1->exp_down[3], q, bits, group);
    check_weight(spec, "kv_b", &L0->kv_b, q, bits, group); /* 64 wide: bf16 at group 128 */
    CHECKF(L1->router.q == ZQ_NONE && L1->router.dtype == ZDT_BF16, "%s: router not bf16", spec);
    CHECK(m->embed.q == q && fabs(zweight_get(&m->embed, 7, 3)) <= 1.0f + 1e-3f);
    zmlx_model_info info;
    zmlx_model_get_info(m, &info);
    CHECKF(!strcmp(info.weight_format, fmt), "%s: weights \"%s\", want \"%s\"", spec,
           info.weight_format, fmt);
    zmlx_model_free(m);
}

/* 4 greedy tokens: finite logits, identical tokens from 1 and 2 threads, in both modes */
static void check_runs(const char *spec) {
    for (int p = 0; p < 2; p++) {
        int32_t tok[2][4];
        for (int th = 1; th <= 2; th++) {
            zmlx_model *m = load(spec, p ? ZMLX_PRECISION_FAST : ZMLX_PRECISION_EXACT, th);
            if (!m) return;
            zmlx_session *s = NULL;
            char err[ZMLX_ERR_MAX];
            CHECKF(zmlx_session_init(m, NULL, &s, err, sizeof err) == ZMLX_OK, "%s", err);
            const int32_t V = zmlx_model_vocab_size(m);
            float *lg = malloc((size_t)V * sizeof(float));
            int32_t ids[6] = {1, 72, 101, 108, 108, 111};
            size_t n = 6;
            bool finite = true;
            for (int i = 0; i < 4 && s; i++) {
                CHECKF(zmlx_session_eval(s, ids, n, lg, 0) == ZMLX_OK, "%s", zmlx_session_error(s));
                int32_t best = 0;
                for (int32_t v = 0; v < V; v++) {
                    finite &= isfinite(lg[v]);
                    if (lg[v] > lg[best]) best = v;
                }
                tok[th - 1][i] = ids[0] = best;
                n = 1;
            }
            CHECKF(finite, "%s: non-finite logits", spec);
            free(lg);
            zmlx_session_free(s);
            zmlx_model_free(m);
        }
        CHECKF(!memcmp(tok[0], tok[1], sizeof tok[0]), "%s %s: 1 and 2 threads decode differently",
               spec, p ? "fast" : "exact");
    }
}

int main(void) {
    check_model("builtin:glm47-tiny", ZQ_AFFINE, 4, 64, "affine4 g64");
    check_model("builtin:glm47-tiny:bits=8,group=32", ZQ_AFFINE, 8, 32, "affine8 g32");
    check_model("builtin:glm47-tiny:bits=3,group=128", ZQ_AFFINE, 3, 128, "affine3 g128");
    check_model("builtin:glm47-tiny:bits=2", ZQ_AFFINE, 2, 64, "affine2 g64");
    check_model("builtin:glm47-tiny:mode=mxfp4", ZQ_MXFP4, 4, 32, "mxfp4");
    check_model("builtin:glm47-tiny:bits=16", ZQ_NONE, 16, 64, "BF16");
    /* the probe (no weights) agrees with the loaded model's bytes */
    zmlx_model_info a, b;
    zmlx_model *m = load("builtin:glm47-tiny", ZMLX_PRECISION_FAST, 1);
    CHECK(zmlx_model_probe("builtin:glm47-tiny", NULL, &a, NULL, 0) == ZMLX_OK);
    if (m) {
        zmlx_model_get_info(m, &b);
        CHECK(a.bytes_per_token == b.bytes_per_token && a.weight_bytes_total == b.weight_bytes_total);
        /* q_a [64, 128] at 4-bit g64: 64 x (64 + 2 x 4) bytes */
        CHECK(zweight_bytes(&m->layers[0].q_a) == 64 * (64 + 8));
        zmlx_model_free(m);
    }
    CHECK(zmlx_model_probe("builtin:glm47-tiny:bits=16", NULL, &b, NULL, 0) == ZMLX_OK &&
          b.bytes_per_token > 3 * a.bytes_per_token);
    check_runs("builtin:glm47-tiny");
    check_runs("builtin:glm47-tiny:mode=mxfp4");
    check_runs("builtin:dsv32-tiny:bits=6,group=32");
    return tc_done();
}
