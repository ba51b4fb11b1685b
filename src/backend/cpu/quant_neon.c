/*
 * quant_neon.c — NEON kernels for quantized weights (MLX affine 2..8-bit, mxfp4) in the
 * exact mode, aarch64:
 *   rows  Y = X W^T in the factored form of quant_avx2.c,
 *           y = sum_g scale_g * sum_i(q_i * x_i) + sum_g bias_g * xs[g]
 *         (xs the group sums of x, once per token tile for all rows), codes unpacked 8 at
 *         a time to floats (zk_block8_neon), two accumulators per (row, token) and group;
 *   cols  Y = X W bit-identical to zop_matmul_t_ref (both modes): each element
 *         dequantized as the reference does, times x[r], added in row order, every step
 *         rounded to float32 (no FMA).
 * Tiles: 4 rows x 1 token or 2 rows x 2 tokens (ZK_ROW_TILES); per (row, token) the same
 * steps whatever the tile, range or n.
 */
#include "backend/cpu/kernels.h"

#include "backend/cpu/simd_neon.h"
#include "ops/ops.h"

typedef struct qargs {
    const zweight *w;
    const float *x;  /* token 0 of the tile, rows of cols */
    const float *xs; /* group sums of the tile's tokens, gn per token */
    float *y;
    int64_t t, t_abs; /* first token of the pair in the tile and in y */
    int64_t g0, gn;   /* the column chunk, in groups */
    int64_t rb;       /* packed bytes per row */
} qargs;

ZK_AI void qtile(const qargs *a, int64_t r, int R, int N, int64_t S, int bits, int fp4) {
    const zweight *w = a->w;
    const int64_t K = w->cols, G = w->group, ng = K / G;
    const float *x0 = a->x + a->t * K, *x1 = x0 + (N > 1 ? K : 0);
    const uint8_t *rows[4], *end = (const uint8_t *)w->data + w->rows * a->rb;
    float32x4_t tot[4][2];
    for (int i = 0; i < 4; i++) {
        rows[i] = (const uint8_t *)w->data + (r + (i < R ? i : 0) * S) * a->rb;
        tot[i][0] = tot[i][1] = vdupq_n_f32(0.0f);
    }
    for (int64_t g = a->g0; g < a->g0 + a->gn; g++) {
        float32x4_t acc[4][2][2];
        for (int i = 0; i < 4; i++)
            for (int t = 0; t < 2; t++) acc[i][t][0] = acc[i][t][1] = vdupq_n_f32(0.0f);
        for (int64_t e = g * G; e < (g + 1) * G; e += 8) {
            const float32x4_t xa0 = vld1q_f32(x0 + e), xa1 = vld1q_f32(x0 + e + 4);
            const float32x4_t xb0 = vld1q_f32(x1 + e), xb1 = vld1q_f32(x1 + e + 4);
            for (int i = 0; i < R; i++) {
                float32x4_t q0, q1;
                zk_block8_neon(rows[i], e / 8, bits, fp4, end, &q0, &q1);
                acc[i][0][0] = vfmaq_f32(acc[i][0][0], q0, xa0);
                acc[i][0][1] = vfmaq_f32(acc[i][0][1], q1, xa1);
                if (N > 1) {
                    acc[i][1][0] = vfmaq_f32(acc[i][1][0], q0, xb0);
                    acc[i][1][1] = vfmaq_f32(acc[i][1][1], q1, xb1);
                }
            }
        }
        for (int i = 0; i < R; i++) {
            const int64_t si = (r + i * S) * ng + g;
            const float s = fp4 ? ze8m0_to_f32(((const uint8_t *)w->scales)[si])
                                : zweight_scale_at(w->sdtype, w->scales, si);
            for (int t = 0; t < N; t++)
                tot[i][t] = vfmaq_f32(tot[i][t], vaddq_f32(acc[i][t][0], acc[i][t][1]), vdupq_n_f32(s));
        }
    }
    const int64_t ssz = (int64_t)zdtype_table[w->sdtype].size;
    for (int i = 0; i < R; i++)
        for (int t = 0; t < N; t++) {
            float v = vaddvq_f32(tot[i][t]);
            if (!fp4)
                v += zk_sdot_neon((const uint8_t *)w->biases + ((r + i * S) * ng + a->g0) * ssz,
                                  w->sdtype, a->xs + (a->t + t) * a->gn, a->gn);
            float *yo = &a->y[(a->t_abs + t) * w->rows + r + i * S];
            *yo = a->g0 == 0 ? v : *yo + v;
        }
}

/* xs[t * gn + g] = sum of group g0 + g of token t (x rows ldx apart) */
static void group_sums(const float *x, int64_t ldx, int64_t nt, int64_t g0, int64_t gn, int G,
                       float *xs) {
    for (int64_t t = 0; t < nt; t++)
        for (int64_t g = 0; g < gn; g++) {
            const float *p = x + t * ldx + (g0 + g) * G;
            float32x4_t s = vld1q_f32(p);
            for (int i = 4; i < G; i += 4) s = vaddq_f32(s, vld1q_f32(p + i));
            xs[t * gn + g] = vaddvq_f32(s);
        }
}

ZK_AI void rows_fmt(const zweight *w, const float *x, int64_t n, float *y, int64_t r0, int64_t r1,
                    int bits, int fp4) {
    const int64_t K = w->cols, G = w->group, ng = K / G;
    if (ng == 0) { /* empty dot products */
        for (int64_t t = 0; t < n; t++)
            for (int64_t r = r0; r < r1; r++) y[t * w->rows + r] = 0.0f;
        return;
    }
    float xs[ZK_QSUMS];
    qargs a = {.w = w, .y = y, .xs = xs, .rb = zweight_row_data_bytes(w)};
    for (a.g0 = 0; a.g0 < ng; a.g0 += ZK_QSUMS) {
        a.gn = ng - a.g0 < ZK_QSUMS ? ng - a.g0 : ZK_QSUMS;
        const int64_t tile = ZK_QSUMS / a.gn;
        for (int64_t t0 = 0; t0 < n; t0 += tile) {
            const int64_t nt = n - t0 < tile ? n - t0 : tile;
            a.x = x + t0 * K;
            if (!fp4) group_sums(a.x, K, nt, a.g0, a.gn, (int)G, xs);
            for (int64_t t = 0; t < nt; t += 2) {
                a.t = t;
                a.t_abs = t0 + t;
#define TILE(r, R, N, S) qtile(&a, r, R, N, S, bits, fp4)
                ZK_ROW_TILES(r0, r1, nt - t >= 2, TILE);
#undef TILE
            }
        }
    }
}

void zk_qrows_neon(const zweight *w, const float *x, int64_t n, float *y, int64_t r0, int64_t r1) {
#define FMT(b) rows_fmt(w, x, n, y, r0, r1, b, 0)
    if (w->q == ZQ_MXFP4) rows_fmt(w, x, n, y, r0, r1, 4, 1);
    else ZK_AFFINE_BITS(w->bits, FMT)
#undef FMT
}

enum { CW = 256, TT = 4 }; /* cols: columns per chunk, tokens per tile */

ZK_AI void cols_fmt(const zweight *w, const float *x, int64_t n, float *y, int64_t c0, int64_t c1,
                    int bits, int fp4) {
    const int64_t rb = zweight_row_data_bytes(w), ng = w->cols / w->group, G = w->group;
    const uint8_t *end = (const uint8_t *)w->data + w->rows * rb;
    for (int64_t cc = c0; cc < c1; cc += CW) {
        const int64_t ce = c1 - cc < CW ? c1 : cc + CW;
        for (int64_t t0 = 0; t0 < n; t0 += TT) {
            const int nt = n - t0 < TT ? (int)(n - t0) : TT;
            for (int t = 0; t < nt; t++)
                for (int64_t c = cc; c < ce; c++) y[(t0 + t) * w->cols + c] = 0.0f;
            for (int64_t r = 0; r < w->rows; r++) {
                const uint8_t *row = (const uint8_t *)w->data + r * rb;
                for (int64_t c = cc; c < ce; c += 8) {
                    const int64_t g = r * ng + c / G;
                    float32x4_t q[2], v[2];
                    zk_block8_neon(row, c / 8, bits, fp4, end, &q[0], &q[1]);
                    const float32x4_t s = vdupq_n_f32(fp4 ? ze8m0_to_f32(((const uint8_t *)w->scales)[g])
                                                          : zweight_scale_at(w->sdtype, w->scales, g));
                    for (int h = 0; h < 2; h++)
                        v[h] = fp4 ? vmulq_f32(q[h], s)
                                   : vaddq_f32(vmulq_f32(s, q[h]),
                                               vdupq_n_f32(zweight_scale_at(w->sdtype, w->biases, g)));
                    for (int t = 0; t < nt; t++) {
                        float *yt = y + (t0 + t) * w->cols + c;
                        const float32x4_t xr = vdupq_n_f32(x[(t0 + t) * w->rows + r]);
                        vst1q_f32(yt, vaddq_f32(vld1q_f32(yt), vmulq_f32(v[0], xr)));
                        vst1q_f32(yt + 4, vaddq_f32(vld1q_f32(yt + 4), vmulq_f32(v[1], xr)));
                    }
                }
            }
        }
    }
}

/* whole blocks of 8 columns [a0, a1) */
static void cols_blocks(const zweight *w, const float *x, int64_t n, float *y, int64_t a0,
                        int64_t a1) {
#define FMT(b) cols_fmt(w, x, n, y, a0, a1, b, 0)
    if (w->q == ZQ_MXFP4) cols_fmt(w, x, n, y, a0, a1, 4, 1);
    else ZK_AFFINE_BITS(w->bits, FMT)
#undef FMT
}

void zk_qcols_neon(const zweight *w, const float *x, int64_t n, float *y, int64_t c0, int64_t c1) {
#define BODY(a0, a1) cols_blocks(w, x, n, y, a0, a1)
    ZK_QCOLS_BLOCKS8(w, x, n, y, c0, c1, BODY);
#undef BODY
}
