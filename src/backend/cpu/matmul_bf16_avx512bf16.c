/*
 * matmul_bf16_avx512bf16.c — the fast mode's product for BF16 weights on CPUs with
 * AVX512_BF16: the activations rounded to bf16 (round to nearest even, vcvtne2ps2bf16)
 * once per call and token tile, then vdpbf16ps: 32 weight x activation pairs per
 * instruction into 16 float32 lanes.  Each activation moves by at most 2^-9 of itself
 * (tests bound |y - exact| by (2^-8 + gamma_{K+8}) sum |w x|).  Compiled with the AVX-512
 * and -mavx512bf16 flags (CMakeLists.txt), called only when zk_isa_bf16_dot says so.
 *
 * Tiles: 4 rows x 1 token or 2 rows x 2 tokens, 32 columns per step, masked tail; per
 * (row, token) the same operations whatever the tile or range.
 */
#include "backend/cpu/kernels.h"

#include <immintrin.h>

#define AI static inline __attribute__((always_inline))

enum { XB_MAX = 16384 }; /* bf16 activations on the stack: tile tokens x chunk columns */

typedef struct bfargs {
    const zweight *w;
    const uint16_t *xb; /* [nt][cw] bf16 activations of the chunk */
    float *y;
    int64_t c0, cw;     /* the column chunk */
    int64_t t, t_abs;   /* first token of the tile in xb and in y */
} bfargs;

/* rows r, r + S, .. (R of them) x tokens t, t + 1 (N of them) over the chunk */
AI void tile(const bfargs *A, int64_t r, int R, int N, int64_t S) {
    const zweight *w = A->w;
    __m512 acc[4][2];
    for (int i = 0; i < 4; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    const uint16_t *x0 = A->xb + A->t * A->cw, *x1 = x0 + (N > 1 ? A->cw : 0);
    for (int64_t c = 0; c < A->cw; c += 32) {
        const int64_t left = A->cw - c;
        const __mmask32 m = left >= 32 ? (__mmask32)0xffffffffu : (__mmask32)((1u << left) - 1u);
        const __m512i a = _mm512_maskz_loadu_epi16(m, x0 + c), b = _mm512_maskz_loadu_epi16(m, x1 + c);
        for (int i = 0; i < R; i++) {
            const uint16_t *wr = (const uint16_t *)w->data + (r + i * S) * w->cols + A->c0 + c;
            const __m512i wv = _mm512_maskz_loadu_epi16(m, wr);
            acc[i][0] = _mm512_dpbf16_ps(acc[i][0], (__m512bh)wv, (__m512bh)a);
            if (N > 1) acc[i][1] = _mm512_dpbf16_ps(acc[i][1], (__m512bh)wv, (__m512bh)b);
        }
    }
    for (int i = 0; i < R; i++)
        for (int t = 0; t < N; t++) {
            const float v = _mm512_reduce_add_ps(acc[i][t]);
            float *yo = &A->y[(A->t_abs + t) * w->rows + r + i * S];
            *yo = A->c0 == 0 ? v : *yo + v;
        }
}

/* x[0, cw) to bf16, zero-padded to a multiple of 32 */
static void to_bf16(const float *x, int64_t cw, uint16_t *xb) {
    for (int64_t c = 0; c < cw; c += 32) {
        const int64_t left = cw - c;
        const __mmask16 lo = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
        const __mmask16 hi = left >= 32 ? (__mmask16)0xffff
                             : left > 16 ? (__mmask16)((1u << (left - 16)) - 1u) : (__mmask16)0;
        const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, x + c + 16),
                                               _mm512_maskz_loadu_ps(lo, x + c));
        const __mmask32 m = left >= 32 ? (__mmask32)0xffffffffu : (__mmask32)((1u << left) - 1u);
        _mm512_mask_storeu_epi16(xb + c, m, (__m512i)v);
    }
}

void zk_rows_bf16dot_avx512bf16(const zweight *w, const float *x, int64_t n, float *y, int64_t r0,
                                int64_t r1) {
    const int64_t K = w->cols;
    if (K == 0) {
        for (int64_t t = 0; t < n; t++)
            for (int64_t r = r0; r < r1; r++) y[t * w->rows + r] = 0.0f;
        return;
    }
    uint16_t xb[XB_MAX];
    bfargs A = {.w = w, .xb = xb, .y = y};
    for (A.c0 = 0; A.c0 < K; A.c0 += XB_MAX) {
        A.cw = K - A.c0 < XB_MAX ? K - A.c0 : XB_MAX;
        const int64_t tile_n = XB_MAX / A.cw;
        for (int64_t t0 = 0; t0 < n; t0 += tile_n) {
            const int64_t nt = n - t0 < tile_n ? n - t0 : tile_n;
            for (int64_t t = 0; t < nt; t++) to_bf16(x + (t0 + t) * K + A.c0, A.cw, xb + t * A.cw);
            for (int64_t t = 0; t < nt; t += 2) {
                A.t = t;
                A.t_abs = t0 + t;
#define TILE(r, R, N, S) tile(&A, r, R, N, S)
                ZK_ROW_TILES(r0, r1, nt - t >= 2, TILE);
#undef TILE
            }
        }
    }
}
