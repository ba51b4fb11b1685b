/*
 * kernels.c — the portable CPU kernels (any architecture): the `scalar` level of
 * kernels.h, and the portable model of the fast mode's int8 arithmetic.  They convert
 * a weight row (or a quantized group) once and reuse it for every token.
 */
#include "backend/cpu/kernels.h"

#include "backend/cpu/xq.h"
#include "ops/ops.h"

enum { CHUNK = 256, MAX_GROUP = 128 };

void zk_rows_generic(const zweight *w, const float *x, int64_t n, float *y, int64_t r0,
                     int64_t r1) {
    float buf[CHUNK];
    for (int64_t r = r0; r < r1; r++) {
        for (int64_t t = 0; t < n; t++) y[t * w->rows + r] = 0.0f;
        for (int64_t c0 = 0; c0 < w->cols; c0 += CHUNK) {
            int64_t m = w->cols - c0 < CHUNK ? w->cols - c0 : CHUNK;
            /* convert columns c0..c0+m of row r */
            for (int64_t c = 0; c < m; c++) buf[c] = zweight_get(w, r, c0 + c);
            for (int64_t t = 0; t < n; t++) {
                const float *xt = x + t * w->cols + c0;
                float acc = 0.0f;
                for (int64_t c = 0; c < m; c++) acc += buf[c] * xt[c];
                y[t * w->rows + r] += acc;
            }
        }
    }
}

void zk_cols_generic(const zweight *w, const float *x, int64_t n, float *y, int64_t c0,
                     int64_t c1) {
    zop_matmul_t_ref(w, x, n, y, c0, c1);
}

/* xs[t * gn + g] = sum of group g0 + g of token t (x rows ldx apart), in index order */
static void group_sums(const float *x, int64_t ldx, int64_t nt, int64_t g0, int64_t gn, int group,
                       float *xs) {
    for (int64_t t = 0; t < nt; t++)
        for (int64_t g = 0; g < gn; g++) {
            const float *p = x + t * ldx + (g0 + g) * group;
            float s = 0.0f;
            for (int i = 0; i < group; i++) s += p[i];
            xs[t * gn + g] = s;
        }
}

/* Codes [c0, c0 + m) of a packed row as floats: q for affine, the E2M1 value for mxfp4. */
static void unpack_group(const zweight *w, const uint8_t *row, int64_t c0, int m, float *q) {
    const int bits = w->bits;
    if (32 % bits == 0) { /* 2, 4, 8 bits: whole codes per word */
        const int per = 32 / bits;
        const uint32_t mask = (1u << bits) - 1u;
        for (int i = 0; i < m; i += per) {
            uint32_t v = zq_word(row, (c0 + i) / per);
            for (int k = 0; k < per; k++, v >>= bits) q[i + k] = (float)(v & mask);
        }
    } else {
        for (int i = 0; i < m; i++) q[i] = (float)zq_code(row, c0 + i, bits);
    }
    if (w->q == ZQ_MXFP4)
        for (int i = 0; i < m; i++) q[i] = zfp4_e2m1[(int)q[i]];
}

/*
 * Y = X W^T for affine and mxfp4, group by group:
 *   y[t, r] = sum_g  scale_g * sum_i(q_i x_i) + bias_g * xs[t, g]
 * with xs the group sums of x, computed once per token tile for all rows.  At most
 * ZK_QSUMS sums live on the stack: wider rows go in column chunks, more tokens in
 * token tiles; neither changes the order of operations of any (row, token).
 */
void zk_qrows_generic(const zweight *w, const float *x, int64_t n, float *y, int64_t r0,
                      int64_t r1) {
    const int64_t K = w->cols, G = w->group, ng = K / G, rb = zweight_row_data_bytes(w);
    const bool aff = w->q == ZQ_AFFINE;
    float xs[ZK_QSUMS], q[MAX_GROUP];
    if (ng == 0) /* empty dot products */
        for (int64_t t = 0; t < n; t++)
            for (int64_t r = r0; r < r1; r++) y[t * w->rows + r] = 0.0f;
    for (int64_t g0 = 0; g0 < ng; g0 += ZK_QSUMS) {
        const int64_t gn = ng - g0 < ZK_QSUMS ? ng - g0 : ZK_QSUMS, tile = ZK_QSUMS / gn;
        for (int64_t t0 = 0; t0 < n; t0 += tile) {
            const int64_t nt = n - t0 < tile ? n - t0 : tile;
            if (aff) group_sums(x + t0 * K, K, nt, g0, gn, (int)G, xs);
            for (int64_t r = r0; r < r1; r++) {
                const uint8_t *row = (const uint8_t *)w->data + r * rb;
                if (g0 == 0)
                    for (int64_t t = 0; t < nt; t++) y[(t0 + t) * w->rows + r] = 0.0f;
                for (int64_t g = g0; g < g0 + gn; g++) {
                    unpack_group(w, row, g * G, (int)G, q);
                    float s = zweight_scale_at(w->sdtype, w->scales, r * ng + g);
                    float b = aff ? zweight_scale_at(w->sdtype, w->biases, r * ng + g) : 0.0f;
                    for (int64_t t = 0; t < nt; t++) {
                        const float *xt = x + (t0 + t) * K + g * G;
                        float dot = 0.0f;
                        for (int64_t i = 0; i < G; i++) dot += q[i] * xt[i];
                        float *yo = &y[(t0 + t) * w->rows + r];
                        *yo += aff ? s * dot + b * xs[t * gn + (g - g0)] : s * dot;
                    }
                }
            }
        }
    }
}

/* Y = X W for quantized layouts: rows dequantized by the reference, summed in row
 * order exactly as zop_matmul_t_ref does (so the results are bit-identical). */
void zk_qcols_generic(const zweight *w, const float *x, int64_t n, float *y, int64_t c0,
                      int64_t c1) {
    const zw_dequant_fn deq = zwfmt_table[zweight_kind(w)].dequant;
    float buf[CHUNK];
    for (int64_t cc = c0; cc < c1; cc += CHUNK) {
        const int64_t m = c1 - cc < CHUNK ? c1 - cc : CHUNK;
        for (int64_t t = 0; t < n; t++)
            for (int64_t c = 0; c < m; c++) y[t * w->cols + cc + c] = 0.0f;
        for (int64_t r = 0; r < w->rows; r++) {
            deq(w, r, cc, m, buf);
            for (int64_t t = 0; t < n; t++) {
                const float xr = x[t * w->rows + r];
                float *yt = y + t * w->cols + cc;
                for (int64_t c = 0; c < m; c++) yt[c] += buf[c] * xr;
            }
        }
    }
}

/* 2 * E2M1: the mxfp4 codes as the integers the fast mode dots (scale E8M0 / 2) */
static const int8_t fp4_x2[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

/*
 * The fast mode's arithmetic (xq.h) in plain C, token by token and group by group:
 *   affine  y += a * (d * J + m * s) + b * s,   J = sum (q - m) xq exactly in int32
 *   mxfp4   y += (E8M0 / 2) * (d * I),          I = sum (2 E2M1) xq
 */
void zk_qrows_q8_generic(const zweight *w, const float *x, int64_t n, float *y, int64_t r0,
                         int64_t r1) {
    const int64_t K = w->cols, G = w->group, ng = G > 0 ? K / G : 0,
                  rb = zweight_row_data_bytes(w);
    const bool aff = w->q == ZQ_AFFINE;
    const int32_t m = aff ? 1 << (w->bits - 1) : 0;
    int8_t xq[MAX_GROUP];
    for (int64_t t = 0; t < n; t++) {
        for (int64_t r = r0; r < r1; r++) y[t * w->rows + r] = 0.0f;
        for (int64_t g = 0; g < ng; g++) {
            float s;
            int32_t qs;
            const float d = zxq_group(x + t * K + g * G, (int)G, xq, &s, &qs);
            for (int64_t r = r0; r < r1; r++) {
                const uint8_t *row = (const uint8_t *)w->data + r * rb;
                int32_t dot = 0;
                for (int64_t i = 0; i < G; i++) {
                    const uint32_t q = zq_code(row, g * G + i, w->bits);
                    dot += (aff ? (int32_t)q - m : fp4_x2[q]) * xq[i];
                }
                const float a = zweight_scale_at(w->sdtype, w->scales, r * ng + g);
                float *yo = &y[t * w->rows + r];
                if (aff)
                    *yo += a * (d * (float)dot + (float)m * s) +
                           zweight_scale_at(w->sdtype, w->biases, r * ng + g) * s;
                else
                    *yo += a * 0.5f * (d * (float)dot);
            }
        }
    }
}
