/*
 * matmul_neon.c — NEON kernels for F32, F16 and BF16 weights (both precision modes),
 * aarch64.  matmul_avx2.c's algorithm 4 lanes wide:
 * rows: 4 weight rows x 2 tokens per tile, 8 columns per step (two vectors per
 * accumulator), each weight vector widened once and used for both tokens; the last
 * K % 8 columns in scalar code.  cols: y[c..c+4) += x[r] * W[r, c..c+4) over r in order.
 */
#include "backend/cpu/kernels.h"

#include "backend/cpu/simd_neon.h"

/* 4 weights of row r from column c; dt is a constant at every call site. */
ZK_AI float32x4_t load4(const zweight *w, zdtype dt, int64_t r, int64_t c) {
    const size_t i = (size_t)r * (size_t)w->cols + (size_t)c;
    uint16_t h[4];
    switch (dt) {
    case ZDT_BF16:
        memcpy(h, (const uint16_t *)w->data + i, sizeof h);
        return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(h), 16));
    case ZDT_F16:
        memcpy(h, (const uint16_t *)w->data + i, sizeof h);
        return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(h)));
    default: {
        float f[4];
        memcpy(f, (const float *)w->data + i, sizeof f);
        return vld1q_f32(f);
    }
    }
}

/* rows [r0, r0+R) x tokens [t0, t0+N), R <= 4, N <= 2 */
ZK_AI void tile(const zweight *w, zdtype dt, const float *x, int64_t t0, int N, float *y,
                int64_t r0, int R) {
    const int64_t K = w->cols, K8 = K & ~(int64_t)7;
    float32x4_t acc[4][2][2];
    for (int i = 0; i < 4; i++)
        for (int t = 0; t < 2; t++) acc[i][t][0] = acc[i][t][1] = vdupq_n_f32(0.0f);
    const float *x0 = x + t0 * K, *x1 = x + (t0 + (N > 1)) * K;
    for (int64_t c = 0; c < K8; c += 8) {
        const float32x4_t a0 = vld1q_f32(x0 + c), a1 = vld1q_f32(x0 + c + 4);
        const float32x4_t b0 = vld1q_f32(x1 + c), b1 = vld1q_f32(x1 + c + 4);
        for (int i = 0; i < R; i++) {
            const float32x4_t w0 = load4(w, dt, r0 + i, c), w1 = load4(w, dt, r0 + i, c + 4);
            acc[i][0][0] = vfmaq_f32(acc[i][0][0], w0, a0);
            acc[i][0][1] = vfmaq_f32(acc[i][0][1], w1, a1);
            if (N > 1) {
                acc[i][1][0] = vfmaq_f32(acc[i][1][0], w0, b0);
                acc[i][1][1] = vfmaq_f32(acc[i][1][1], w1, b1);
            }
        }
    }
    for (int i = 0; i < R; i++)
        for (int t = 0; t < N; t++) {
            const float *xt = t ? x1 : x0;
            float s = vaddvq_f32(vaddq_f32(acc[i][t][0], acc[i][t][1]));
            for (int64_t c = K8; c < K; c++) s += zweight_get(w, r0 + i, c) * xt[c];
            y[(t0 + t) * w->rows + r0 + i] = s;
        }
}

#define TILE(t, N, r, R) tile(w, dt, x, t, N, y, r, R)
static inline __attribute__((always_inline)) void
rows_impl(const zweight *w, zdtype dt, const float *x, int64_t n, float *y, int64_t r0, int64_t r1) {
    ZK_DENSE_TILES(n, r0, r1, TILE);
}
#undef TILE

void zk_rows_neon(const zweight *w, const float *x, int64_t n, float *y, int64_t r0, int64_t r1) {
#define ROWS(dt) rows_impl(w, dt, x, n, y, r0, r1)
    ZK_DENSE_DTYPE(w->dtype, ROWS)
#undef ROWS
}

ZK_AI void cols_impl(const zweight *w, zdtype dt, const float *x, int64_t n, float *y, int64_t c0,
                     int64_t c1) {
    const int64_t c4 = c0 + ((c1 - c0) & ~(int64_t)3);
    for (int64_t t = 0; t < n; t++) {
        const float *xt = x + t * w->rows;
        float *yt = y + t * w->cols;
        for (int64_t c = c0; c < c4; c += 4) {
            float32x4_t acc = vdupq_n_f32(0.0f);
            for (int64_t r = 0; r < w->rows; r++)
                acc = vfmaq_f32(acc, vdupq_n_f32(xt[r]), load4(w, dt, r, c));
            vst1q_f32(yt + c, acc);
        }
        for (int64_t c = c4; c < c1; c++) {
            float acc = 0.0f;
            for (int64_t r = 0; r < w->rows; r++) acc += zweight_get(w, r, c) * xt[r];
            yt[c] = acc;
        }
    }
}

void zk_cols_neon(const zweight *w, const float *x, int64_t n, float *y, int64_t c0, int64_t c1) {
#define COLS(dt) cols_impl(w, dt, x, n, y, c0, c1)
    ZK_DENSE_DTYPE(w->dtype, COLS)
#undef COLS
}
