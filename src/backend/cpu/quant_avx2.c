/*
 * quant_avx2.c — AVX2 + FMA kernels for quantized weights (MLX affine 2..8-bit,
 * mxfp4): Y = X W^T, the decode-critical product.  Compiled with -mavx2 -mfma
 * -mf16c (CMakeLists.txt) and only called after zk_select() has checked the CPU.
 * Not here: the transposed product (the portable kernel serves it).
 *
 * Per group of G elements the factored form
 *     y = sum_g scale_g * sum_i(q_i * x_i)  +  sum_g bias_g * xs[g]   (mxfp4: no bias)
 * with xs the group sums of x, computed once per token tile and shared by all rows
 * of the call; the bias part is one vector dot product per row after its groups.
 * Codes are unpacked to float lanes:
 *
 *   4-bit  16 at a time: 8 bytes zero-extended to 8 lanes, lane m = byte m:
 *            byte m = [ e(2m+1) | e(2m) ]  ->  even = byte & 0x0f, odd = byte & 0xf0
 *          odd lanes hold 16 q, so they meet x / 16 (exact: a power of two); x is
 *          split into its even and odd elements once per call and token tile
 *          (xp, on the stack), for all rows
 *   8-bit  two words, 8 bytes zero-extended to 8 lanes     [e3|e2|e1|e0][e7|..|e4]
 *   2-bit  16 bits, broadcast, lane i >> 2i, & 3
 *   3/5/6  `bits` bytes into a u64 u; lanes whose code starts below stream bit 16
 *          shift u, the others shift u >> 16 (every code then fits one 32-bit lane)
 *   mxfp4  4-bit codes; vpermps looks the low 3 bits up in {0,.5,1,1.5,2,3,4,6},
 *          bit 3 moves to the float sign
 *
 * Tiles: 4 rows x 1 token (decode) or 2 rows x 2 tokens, each block of codes
 * unpacked once per tile; per (row, token) the same operations in the same order
 * whatever the tile, so a row's value depends on neither the row range nor n.
 */
#include "backend/cpu/kernels.h"

#include "backend/cpu/simd_avx2.h"

#include <immintrin.h>

/* x[16k .. 16k+16) split into its even elements and its odd elements / 16 (the lanes
 * of pair16). */
static inline __attribute__((always_inline)) void load_x_pair(const float *x, int64_t k,
                                                              __m256 *even, __m256 *odd) {
    const __m256 a = _mm256_loadu_ps(x + 16 * k), b = _mm256_loadu_ps(x + 16 * k + 8);
    /* per 128-bit lane [a0 a2 b0 b2 | a4 a6 b4 b6], then 64-bit lanes 0 2 1 3 */
    *even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xd8));
    *odd = _mm256_mul_ps(
        _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xdd)), 0xd8)),
        _mm256_set1_ps(1.0f / 16.0f));
}

/* The 16 4-bit codes of pair k (elements 16k..16k+15): 8 bytes zero-extended to 8
 * lanes; lane m holds elements 2m (low nibble, as q) and 2m+1 (high nibble, as 16 q). */
static inline __attribute__((always_inline)) void pair16(const uint8_t *row, int64_t k,
                                                         __m256 *even, __m256 *odd) {
    const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(row + 8 * k)));
    *even = _mm256_cvtepi32_ps(_mm256_and_si256(v, _mm256_set1_epi32(0xf)));
    *odd = _mm256_cvtepi32_ps(_mm256_and_si256(v, _mm256_set1_epi32(0xf0)));
}

/* xs[t * gn + g] = sum of group g0 + g of token t (x rows ldx apart) */
static void group_sums8(const float *x, int64_t ldx, int64_t nt, int64_t g0, int64_t gn, int G,
                        float *xs) {
    for (int64_t t = 0; t < nt; t++)
        for (int64_t g = 0; g < gn; g++) {
            const float *p = x + t * ldx + (g0 + g) * G;
            __m256 a = _mm256_loadu_ps(p);
            for (int i = 8; i < G; i += 8) a = _mm256_add_ps(a, _mm256_loadu_ps(p + i));
            xs[t * gn + g] = zk_hsum8(a);
        }
}

/* Scale i broadcast; bf16 (MLX's scales) without leaving the vector unit. */
static inline __attribute__((always_inline)) __m256 bcast_scale(const zweight *w, int64_t i,
                                                               int bf16) {
    if (bf16) {
        uint16_t h; /* scales may be unaligned in the mapped file */
        memcpy(&h, (const uint8_t *)w->scales + 2 * i, sizeof h);
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_set1_epi16((short)h), 16));
    }
    return _mm256_set1_ps(zweight_scale_at(w->sdtype, w->scales, i));
}

enum { XP_MAX = 8192 }; /* floats of split x (4-bit) on the stack: tokens x chunk columns */

/* xp[t * cw + 16 j ...] = the even, then odd / 16 elements of x[t * ldx + c0 + 16 j ...] */
static void split_x(const float *x, int64_t ldx, int64_t nt, int64_t c0, int64_t cw, float *xp) {
    for (int64_t t = 0; t < nt; t++)
        for (int64_t j = 0; j < cw / 16; j++) {
            __m256 e, o;
            load_x_pair(x + t * ldx + c0, j, &e, &o);
            _mm256_storeu_ps(xp + t * cw + 16 * j, e);
            _mm256_storeu_ps(xp + t * cw + 16 * j + 8, o);
        }
}

typedef struct qargs {
    const zweight *w;
    const float *x;  /* token 0 of the tile, row length cols */
    const float *xp; /* 4-bit: split x of the tile's tokens over the chunk, xpw per token */
    int64_t xpw;
    const float *xs; /* group sums of the tile's tokens, gn per token */
    float *y;
    int64_t t;      /* first token of the tile, relative to x / xs */
    int64_t t_abs;  /* the same token in y */
    int64_t g0, gn; /* the column chunk, in groups */
    int64_t rb;     /* packed bytes per row */
} qargs;

/*
 * Rows r, r + S, .. (R of them) x tokens t, t + 1 (N of them) over groups [g0, g0 + gn).  Two
 * accumulators per (row, token) and group: the even and odd elements (affine 4-bit),
 * or the even and odd blocks of 8 (other layouts); tot += (acc0 + acc1) * scale.
 */
static inline __attribute__((always_inline)) void qtile(const qargs *a, int64_t r, int R, int N,
                                                        int64_t S, int bits, int fp4, int bf16) {
    const zweight *w = a->w;
    const int64_t K = w->cols, G = w->group, ng = K / G, B = G / 16; /* pairs of blocks */
    const bool nib = bits == 4 && !fp4;
    const float *x0 = a->x + a->t * K, *x1 = x0 + (N > 1 ? K : 0);
    const float *p0 = nib ? a->xp + a->t * a->xpw : NULL, *p1 = nib ? p0 + (N > 1 ? a->xpw : 0) : NULL;
    const uint8_t *rows[4], *end = (const uint8_t *)w->data + w->rows * a->rb;
    __m256 tot[4][2];
    for (int i = 0; i < 4; i++) {
        rows[i] = (const uint8_t *)w->data + (r + (i < R ? i : 0) * S) * a->rb;
        tot[i][0] = tot[i][1] = _mm256_setzero_ps();
    }
    for (int64_t g = a->g0; g < a->g0 + a->gn; g++) {
        __m256 acc0[4][2], acc1[4][2];
        for (int i = 0; i < 4; i++)
            acc0[i][0] = acc0[i][1] = acc1[i][0] = acc1[i][1] = _mm256_setzero_ps();
        for (int64_t kb = 0; kb < B; kb++) {
            const int64_t k = g * B + kb; /* pair index in the row */
            __m256 xa0, xa1, xb0, xb1;
            if (nib) {
                const int64_t kl = k - a->g0 * B; /* pair index in the chunk */
                xa0 = _mm256_loadu_ps(p0 + 16 * kl), xa1 = _mm256_loadu_ps(p0 + 16 * kl + 8);
                xb0 = _mm256_loadu_ps(p1 + 16 * kl), xb1 = _mm256_loadu_ps(p1 + 16 * kl + 8);
            } else {
                xa0 = _mm256_loadu_ps(x0 + 16 * k), xa1 = _mm256_loadu_ps(x0 + 16 * k + 8);
                xb0 = _mm256_loadu_ps(x1 + 16 * k), xb1 = _mm256_loadu_ps(x1 + 16 * k + 8);
            }
            for (int i = 0; i < R; i++) {
                __m256 q0, q1;
                if (nib) {
                    pair16(rows[i], k, &q0, &q1);
                } else {
                    q0 = zk_block8(rows[i], 2 * k, bits, fp4, end);
                    q1 = zk_block8(rows[i], 2 * k + 1, bits, fp4, end);
                }
                acc0[i][0] = _mm256_fmadd_ps(q0, xa0, acc0[i][0]);
                acc1[i][0] = _mm256_fmadd_ps(q1, xa1, acc1[i][0]);
                if (N > 1) {
                    acc0[i][1] = _mm256_fmadd_ps(q0, xb0, acc0[i][1]);
                    acc1[i][1] = _mm256_fmadd_ps(q1, xb1, acc1[i][1]);
                }
            }
        }
        for (int i = 0; i < R; i++) {
            const __m256 s = bcast_scale(w, (r + i * S) * ng + g, bf16);
            for (int t = 0; t < N; t++)
                tot[i][t] = _mm256_fmadd_ps(_mm256_add_ps(acc0[i][t], acc1[i][t]), s, tot[i][t]);
        }
    }
    for (int i = 0; i < R; i++)
        for (int t = 0; t < N; t++) {
            float v = zk_hsum8(tot[i][t]);
            if (!fp4) {
                const int64_t ssz = (int64_t)zdtype_table[w->sdtype].size;
                const uint8_t *b = (const uint8_t *)w->biases + ((r + i * S) * ng + a->g0) * ssz;
                v += zk_sdot8(b, w->sdtype, a->xs + (a->t + t) * a->gn, a->gn);
            }
            float *yo = &a->y[(a->t_abs + t) * w->rows + r + i * S];
            *yo = a->g0 == 0 ? v : *yo + v;
        }
}

/* One layout: column chunks of at most ZK_QSUMS groups (and XP_MAX columns at 4 bits),
 * token tiles that fit xs (and xp), rows in fours or pairs of rows x pairs of tokens. */
static inline __attribute__((always_inline)) void rows_fmt(const zweight *w, const float *x,
                                                           int64_t n, float *y, int64_t r0,
                                                           int64_t r1, int bits, int fp4,
                                                           int bf16) {
    const int64_t K = w->cols, G = w->group, ng = K / G;
    const bool nib = bits == 4 && !fp4;
    const int64_t gmax = nib && XP_MAX / G < ZK_QSUMS ? XP_MAX / G : ZK_QSUMS;
    if (ng == 0) { /* empty dot products */
        for (int64_t t = 0; t < n; t++)
            for (int64_t r = r0; r < r1; r++) y[t * w->rows + r] = 0.0f;
        return;
    }
    float xs[ZK_QSUMS], xp[XP_MAX];
    qargs a = {.w = w, .y = y, .xs = xs, .xp = xp, .rb = zweight_row_data_bytes(w)};
    for (a.g0 = 0; a.g0 < ng; a.g0 += gmax) {
        a.gn = ng - a.g0 < gmax ? ng - a.g0 : gmax;
        a.xpw = a.gn * G;
        int64_t tile = ZK_QSUMS / a.gn;
        if (nib && XP_MAX / a.xpw < tile) tile = XP_MAX / a.xpw;
        for (int64_t t0 = 0; t0 < n; t0 += tile) {
            const int64_t nt = n - t0 < tile ? n - t0 : tile;
            a.x = x + t0 * K;
            if (!fp4) group_sums8(a.x, K, nt, a.g0, a.gn, (int)G, xs);
            if (nib) split_x(a.x, K, nt, a.g0 * G, a.xpw, xp);
            for (int64_t t = 0; t < nt; t += 2) {
                a.t = t;
                a.t_abs = t0 + t;
#define TILE(r, R, N, S) qtile(&a, r, R, N, S, bits, fp4, bf16)
                ZK_ROW_TILES(r0, r1, nt - t >= 2, TILE);
#undef TILE
            }
        }
    }
}

/* bf16 scales (MLX's) get their own instantiation; F16 / F32 go through a switch. */
static inline __attribute__((always_inline)) void rows_bits(const zweight *w, const float *x,
                                                            int64_t n, float *y, int64_t r0,
                                                            int64_t r1, int bf16) {
#define FMT(b) rows_fmt(w, x, n, y, r0, r1, b, 0, bf16)
    ZK_AFFINE_BITS(w->bits, FMT)
#undef FMT
}

void zk_qrows_avx2(const zweight *w, const float *x, int64_t n, float *y, int64_t r0, int64_t r1) {
    if (w->q == ZQ_MXFP4) rows_fmt(w, x, n, y, r0, r1, 4, 1, 0);
    else if (w->sdtype == ZDT_BF16) rows_bits(w, x, n, y, r0, r1, 1);
    else rows_bits(w, x, n, y, r0, r1, 0);
}
