/*
 * ops_ref.c — scalar reference implementations of ops.h.  Clarity over speed:
 * every loop accumulates in float32 in index order.  The build passes
 * -ffp-contract=off so `a * b + c` stays two roundings.
 */
#include "ops/ops.h"

#include <math.h>
#include <stdlib.h>

float zop_dot_row_ref(const zweight *w, int64_t r, const float *x) {
    float acc = 0.0f;
    const zwkind k = zweight_kind(w);
    if (w->q != ZQ_NONE && k != ZW_COUNT) {
        /* quantized: dequantize 256 at a time, the values zweight_get gives one by one */
        float buf[256];
        for (int64_t c0 = 0; c0 < w->cols; c0 += 256) {
            const int64_t m = w->cols - c0 < 256 ? w->cols - c0 : 256;
            zwfmt_table[k].dequant(w, r, c0, m, buf);
            for (int64_t c = 0; c < m; c++) acc += buf[c] * x[c0 + c];
        }
        return acc;
    }
    for (int64_t c = 0; c < w->cols; c++) acc += zweight_get(w, r, c) * x[c];
    return acc;
}

void zop_matmul_ref(const zweight *w, const float *x, int64_t n, float *y, int64_t r0,
                    int64_t r1) {
    for (int64_t t = 0; t < n; t++)
        for (int64_t r = r0; r < r1; r++) y[t * w->rows + r] = zop_dot_row_ref(w, r, x + t * w->cols);
}

void zop_matmul_t_ref(const zweight *w, const float *x, int64_t n, float *y, int64_t c0,
                      int64_t c1) {
    for (int64_t t = 0; t < n; t++) {
        const float *xt = x + t * w->rows;
        for (int64_t c = c0; c < c1; c++) {
            float acc = 0.0f;
            for (int64_t r = 0; r < w->rows; r++) acc += zweight_get(w, r, c) * xt[r];
            y[t * w->cols + c] = acc;
        }
    }
}

void zop_rmsnorm(const float *x, const float *w, int64_t d, float eps, float *y) {
    float ss = 0.0f;
    for (int64_t i = 0; i < d; i++) ss += x[i] * x[i];
    float inv = 1.0f / sqrtf(ss / (float)d + eps);
    for (int64_t i = 0; i < d; i++) y[i] = w[i] * (x[i] * inv);
}

void zop_layernorm(const float *x, const float *w, const float *b, int64_t d, float eps,
                   float *y) {
    float sum = 0.0f;
    for (int64_t i = 0; i < d; i++) sum += x[i];
    const float mean = sum / (float)d;
    float ss = 0.0f;
    for (int64_t i = 0; i < d; i++) ss += (x[i] - mean) * (x[i] - mean);
    const float inv = 1.0f / sqrtf(ss / (float)d + eps);
    for (int64_t i = 0; i < d; i++) y[i] = (x[i] - mean) * inv * w[i] + b[i];
}

void zop_add_rmsnorm(float *x, const float *f, const float *w, int64_t d, float eps, float *y) {
    float ss = 0.0f;
    for (int64_t i = 0; i < d; i++) {
        x[i] += f[i];
        ss += x[i] * x[i];
    }
    float inv = 1.0f / sqrtf(ss / (float)d + eps);
    for (int64_t i = 0; i < d; i++) y[i] = w[i] * (x[i] * inv);
}

void zop_rope_table(int64_t pos, const float *inv_freq, int64_t half, float mscale,
                    float *cos_t, float *sin_t) {
    for (int64_t i = 0; i < half; i++) {
        float ang = (float)pos * inv_freq[i]; /* float32 product, as the references */
        cos_t[i] = (float)cos((double)ang) * mscale;
        sin_t[i] = (float)sin((double)ang) * mscale;
    }
}

void zop_rope_interleaved(float *x, int64_t d, const float *cos_t, const float *sin_t) {
    for (int64_t i = 0; i < d / 2; i++) {
        float a = x[2 * i], b = x[2 * i + 1];
        x[2 * i] = a * cos_t[i] - b * sin_t[i];
        x[2 * i + 1] = b * cos_t[i] + a * sin_t[i];
    }
}

void zop_rope_half(float *x, int64_t d, const float *cos_t, const float *sin_t) {
    const int64_t h = d / 2;
    for (int64_t i = 0; i < h; i++) {
        float a = x[i], b = x[h + i];
        x[i] = a * cos_t[i] - b * sin_t[i];
        x[h + i] = b * cos_t[i] + a * sin_t[i];
    }
}

void zop_softmax(float *x, int64_t n) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    float inv = 1.0f / sum;
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

void zop_silu_mul(const float *g, const float *u, int64_t n, float *h) {
    for (int64_t i = 0; i < n; i++) {
        float s = 1.0f / (1.0f + expf(-g[i]));
        h[i] = (g[i] * s) * u[i];
    }
}

void zop_add(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

void zop_embed(const zweight *w, int32_t id, float *out) {
    zweight_row_f32(w, id, out);
}

/* Is (va, a) ranked before (vb, b)?  Higher value first, then lower index. */
static bool ranks_before(float va, int32_t a, float vb, int32_t b) {
    return va > vb || (va == vb && a < b);
}

void zop_route(const zrouter_cfg *cfg, const float *logits, const float *bias, float *work,
               int32_t *idx, float *weights) {
    const int32_t E = cfg->n_experts;
    float *p = work, *sel = work + E;
    if (cfg->softmax_scoring) {
        for (int32_t e = 0; e < E; e++) p[e] = logits[e];
        zop_softmax(p, E);
    } else {
        for (int32_t e = 0; e < E; e++) p[e] = 1.0f / (1.0f + expf(-logits[e]));
    }
    for (int32_t e = 0; e < E; e++) sel[e] = p[e] + (bias ? bias[e] : 0.0f);

    if (cfg->n_group > 1 && cfg->topk_group < cfg->n_group) {
        /* group score = sum of the two best `sel` in the group; drop the weakest groups */
        const int32_t G = cfg->n_group, per = E / G;
        float gscore[ZOP_MAX_GROUPS];
        bool keep[ZOP_MAX_GROUPS];
        for (int32_t g = 0; g < G; g++) {
            float b1 = -INFINITY, b2 = -INFINITY;
            for (int32_t j = 0; j < per; j++) {
                float v = sel[g * per + j];
                if (v > b1) {
                    b2 = b1;
                    b1 = v;
                } else if (v > b2) {
                    b2 = v;
                }
            }
            gscore[g] = per > 1 ? b1 + b2 : b1;
            keep[g] = false;
        }
        for (int32_t n = 0; n < cfg->topk_group; n++) {
            int32_t best = -1;
            for (int32_t g = 0; g < G; g++)
                if (!keep[g] && (best < 0 || ranks_before(gscore[g], g, gscore[best], best)))
                    best = g;
            keep[best] = true;
        }
        for (int32_t g = 0; g < G; g++)
            if (!keep[g])
                for (int32_t j = 0; j < per; j++) sel[g * per + j] = -INFINITY;
    }

    /* selection sort of the k best: k is small (4..8) */
    for (int32_t n = 0; n < cfg->k; n++) {
        int32_t best = -1;
        for (int32_t e = 0; e < E; e++) {
            bool taken = false;
            for (int32_t m = 0; m < n; m++) taken |= idx[m] == e;
            if (!taken && (best < 0 || ranks_before(sel[e], e, sel[best], best))) best = e;
        }
        idx[n] = best;
    }
    float sum = 0.0f;
    for (int32_t n = 0; n < cfg->k; n++) {
        weights[n] = p[idx[n]];
        sum += weights[n];
    }
    if (cfg->norm_topk_prob) /* transformers: no k > 1 special case */
        for (int32_t n = 0; n < cfg->k; n++) weights[n] /= (sum + 1e-20f);
    for (int32_t n = 0; n < cfg->k; n++) weights[n] *= cfg->scale;
}
