/*
 * quant_q8_x86.h — the fast mode's quantized product Y = X W^T on x86 (xq.h), a template
 * included once per ISA level with Q8_NAME (the function) and Q8_VNNI (0/1) defined:
 * quant_q8_avx2.c, quant_q8_avx512.c, quant_q8_avx512vnni.c, each compiled with its
 * level's flags and called only after zk_isa_supported says the CPU has them.
 *
 * The activations of each weight group are quantized to int8 with one float scale, then
 * per 32 elements the unsigned codes (u8) meet the activations (s8) in one vpmaddubsw
 * (pairs summed by vpmaddwd) or, with VNNI, one vpdpbusd into int32; one float
 * conversion and FMA per group:
 *     y = sum_g (a_g d_g) * I_g  +  sum_g b_g s_g  +  sum_g a_g c_g
 * (the last two are vector dots over the row's groups after its groups; c_g is
 * m (s_g - d_g qs_g), or m s_g for 8-bit codes centred on m = 128 without VNNI).
 *
 * Codes and the activation order they meet (zxq_perm):
 *   4-bit g>=64  32 bytes -> low nibbles (even elements), high nibbles (odd)   NIB64
 *                (AVX-512: both halves in one 512-bit register, 64 elements per step)
 *   4-bit g32    16 bytes -> [low | high] in one register                     NIB32
 *   mxfp4        as 4-bit g32; vpshufb maps each nibble to |2 E2M1| and its sign
 *                moves to the activation (vpsignb)                          NIB32
 *   2-bit        8 bytes broadcast, 64-bit lane j shifted right by 2j        CRUMB
 *   3/5/6-bit    four blocks of 8 codes (zk_codes8) packed to bytes          NAT
 *   8-bit        32 bytes; without VNNI centred (q ^ 0x80) and signed like mxfp4  NAT
 * Without VNNI the int16 pairs stay below 2^15: 15 x 127 x 2 per vpmaddubsw at <= 4
 * bits (accumulated in int16 over a group of <= 128: 4 x 3810), 63 x 254 at 6 bits,
 * 128 x 254 centred at 8 bits (one vpmaddwd per 32 elements above 4 bits).
 *
 * Tiles as quant_avx2.c: 4 rows x 1 token (decode) or 2 rows x 2 tokens; per (row,
 * token) the same operations in the same order whatever the tile, so a row's value
 * depends on neither the row range nor n.
 */
#include "backend/cpu/kernels.h"

#include "backend/cpu/simd_avx2.h"
#include "backend/cpu/quant_q8.h"
#include "backend/cpu/xq.h"

#include <immintrin.h>

#define AI static inline __attribute__((always_inline))

/* Which activation order a layout's codes meet. */
AI zxq_perm perm_of(int bits, int fp4, int G) {
    if (fp4 || (bits == 4 && G == 32)) return ZXQ_NIB32;
    if (bits == 4) return ZXQ_NIB64;
    return bits == 2 ? ZXQ_CRUMB : ZXQ_NAT;
}

/* 32 int32 lanes (4 registers, elements in order) -> 32 bytes in order */
AI __m256i pack32(__m256i v0, __m256i v1, __m256i v2, __m256i v3) {
    __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(v0, v1), _mm256_packs_epi32(v2, v3));
    return _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* 32 activations in order, rounded (xq.h) */
AI __m256i quant32(const float *x, __m256 id, __m256i *isum) {
    __m256i v[4];
    for (int i = 0; i < 4; i++) {
        v[i] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * i), id));
        *isum = _mm256_add_epi32(*isum, v[i]);
    }
    return pack32(v[0], v[1], v[2], v[3]);
}

/* Quantize gn groups of one token (x at the chunk's first column) into xq (cw bytes in
 * the layout's order), d, s and c (xq.h).  corr: 0 none (mxfp4), 1 c = m (s - d qs),
 * 2 c = m s (8-bit, centred codes). */
static void prep_token(const float *x, int64_t gn, int G, zxq_perm perm, int corr, float m,
                       int8_t *xq, float *d, float *s, float *c) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    /* in-lane even/odd split of 16 bytes: [e0 e2 .. e14 | e1 e3 .. e15] */
    const __m256i eo = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0, 2,
                                        4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    /* in-lane stride-4 split: dword j = bytes j, j+4, j+8, j+12 */
    const __m256i s4 = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15, 0, 4,
                                        8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    for (int64_t g = 0; g < gn; g++) {
        const float *p = x + g * G;
        __m256 mx = _mm256_setzero_ps(), sum = _mm256_setzero_ps();
        for (int i = 0; i < G; i += 8) {
            __m256 v = _mm256_loadu_ps(p + i);
            mx = _mm256_max_ps(mx, _mm256_and_ps(v, absmask));
            sum = _mm256_add_ps(sum, v);
        }
        const float amax = zk_hmax8(mx), dd = amax / 127.0f;
        const __m256 id = _mm256_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
        __m256i isum = _mm256_setzero_si256();
        int8_t *o = xq + g * G;
        if (perm == ZXQ_NIB64) {
            for (int k = 0; k < G; k += 64) {
                __m256i a = _mm256_shuffle_epi8(quant32(p + k, id, &isum), eo);
                __m256i b = _mm256_shuffle_epi8(quant32(p + k + 32, id, &isum), eo);
                _mm256_storeu_si256((__m256i *)(o + k),
                                    _mm256_permute4x64_epi64(_mm256_unpacklo_epi64(a, b), 0xd8));
                _mm256_storeu_si256((__m256i *)(o + k + 32),
                                    _mm256_permute4x64_epi64(_mm256_unpackhi_epi64(a, b), 0xd8));
            }
        } else {
            for (int k = 0; k < G; k += 32) {
                __m256i v = quant32(p + k, id, &isum);
                if (perm == ZXQ_NIB32)
                    v = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(v, eo), 0xd8);
                else if (perm == ZXQ_CRUMB)
                    v = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(v, s4),
                                                    _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
                _mm256_storeu_si256((__m256i *)(o + k), v);
            }
        }
        const float ss = zk_hsum8(sum);
        d[g] = dd;
        s[g] = ss;
        c[g] = corr == 1 ? m * (ss - dd * (float)zk_hsum8_epi32(isum)) : corr == 2 ? m * ss : 0.0f;
    }
}

/* ---- codes of 32 (or 64) elements as bytes, in the order of perm_of ---- */

AI __m256i nib32(const uint8_t *p) { /* 16 bytes -> [low nibbles | high nibbles] */
    const __m128i v = _mm_loadu_si128((const __m128i *)p), m = _mm_set1_epi8(0x0f);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm_and_si128(v, m));
}

AI __m256i crumb32(const uint8_t *p) { /* 8 bytes -> 32 2-bit codes */
    int64_t u;
    memcpy(&u, p, sizeof u);
    __m256i v = _mm256_srlv_epi64(_mm256_set1_epi64x(u), _mm256_setr_epi64x(0, 2, 4, 6));
    return _mm256_and_si256(v, _mm256_set1_epi8(3));
}

/* elements e..e+31, 3/5/6 bits (end: zk_codes8) */
AI __m256i nat32(const uint8_t *row, int64_t e, int bits, const uint8_t *end) {
    const int64_t k = e / 8;
    return pack32(zk_codes8(row, k, bits, end), zk_codes8(row, k + 1, bits, end),
                  zk_codes8(row, k + 2, bits, end), zk_codes8(row, k + 3, bits, end));
}

/* The 32 codes of a row from element e as unsigned bytes in the order of perm_of, and
 * for signed codes (mxfp4, and 8-bit centred on 128 without VNNI) their signs in *sg,
 * which move to the activations: |c| * (x with c's sign) = c * x. */
AI __m256i codes32(const uint8_t *row, int64_t e, int bits, int fp4, const uint8_t *end,
                   __m256i *sg) {
    if (fp4) {
        const __m256i n = nib32(row + e / 2);
        const __m256i mag = _mm256_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, 1, 2, 3, 4, 6, 8, 12, 0, 1, 2,
                                             3, 4, 6, 8, 12, 0, 1, 2, 3, 4, 6, 8, 12);
        const __m256i sgn = _mm256_setr_epi8(1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1, -1, 1,
                                             1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1, -1);
        *sg = _mm256_shuffle_epi8(sgn, n);
        return _mm256_shuffle_epi8(mag, n);
    }
    if (bits == 8) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(row + e));
        if (Q8_VNNI) return v; /* vpdpbusd sums u8 x s8 in int32: no centring needed */
        *sg = _mm256_xor_si256(v, _mm256_set1_epi8((char)0x80));
        return _mm256_abs_epi8(*sg);
    }
    return bits == 4 ? nib32(row + e / 2) : bits == 2 ? crumb32(row + e / 4) : nat32(row, e, bits, end);
}

/* 4-bit, group >= 64: 64 elements per step (NIB64). */
AI void group_dots_nib64(const uint8_t *const *rows, int64_t e0, int G, const int8_t *x0,
                         const int8_t *x1, int R, int N, __m256i out[4][2]) {
    const __m256i m = _mm256_set1_epi8(0x0f);
#if defined(__AVX512BW__)
    __m512i h[4][2];
    for (int i = 0; i < R; i++) h[i][0] = h[i][1] = _mm512_setzero_si512();
    for (int k = 0; k < G; k += 64) {
        const __m512i xa = _mm512_loadu_si512(x0 + k), xb = _mm512_loadu_si512(x1 + k);
        for (int i = 0; i < R; i++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(rows[i] + (e0 + k) / 2));
            const __m512i c = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(v, m)),
                                                 _mm256_and_si256(_mm256_srli_epi16(v, 4), m), 1);
#if Q8_VNNI
            h[i][0] = _mm512_dpbusd_epi32(h[i][0], c, xa);
            if (N > 1) h[i][1] = _mm512_dpbusd_epi32(h[i][1], c, xb);
#else
            h[i][0] = _mm512_add_epi16(h[i][0], _mm512_maddubs_epi16(c, xa));
            if (N > 1) h[i][1] = _mm512_add_epi16(h[i][1], _mm512_maddubs_epi16(c, xb));
#endif
        }
    }
    for (int i = 0; i < R; i++)
        for (int t = 0; t < N; t++) {
#if Q8_VNNI
            const __m512i s = h[i][t];
#else
            const __m512i s = _mm512_madd_epi16(h[i][t], _mm512_set1_epi16(1));
#endif
            out[i][t] = _mm256_add_epi32(_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64(s, 1));
        }
#else
    __m256i h[4][2];
    for (int i = 0; i < R; i++) h[i][0] = h[i][1] = _mm256_setzero_si256();
    for (int k = 0; k < G; k += 64) { /* int16 sums over the group, one vpmaddwd */
        const __m256i xe0 = _mm256_loadu_si256((const __m256i *)(x0 + k)),
                      xo0 = _mm256_loadu_si256((const __m256i *)(x0 + k + 32)),
                      xe1 = _mm256_loadu_si256((const __m256i *)(x1 + k)),
                      xo1 = _mm256_loadu_si256((const __m256i *)(x1 + k + 32));
        for (int i = 0; i < R; i++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(rows[i] + (e0 + k) / 2));
            const __m256i lo = _mm256_and_si256(v, m), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m);
            h[i][0] = _mm256_add_epi16(h[i][0], _mm256_add_epi16(_mm256_maddubs_epi16(lo, xe0),
                                                                 _mm256_maddubs_epi16(hi, xo0)));
            if (N > 1)
                h[i][1] = _mm256_add_epi16(h[i][1], _mm256_add_epi16(_mm256_maddubs_epi16(lo, xe1),
                                                                     _mm256_maddubs_epi16(hi, xo1)));
        }
    }
    for (int i = 0; i < R; i++)
        for (int t = 0; t < N; t++) out[i][t] = _mm256_madd_epi16(h[i][t], _mm256_set1_epi16(1));
#endif
}

/* The int32 lanes of one group's dot products, rows [r, r + R) x tokens t, t + 1. */
AI void group_dots(const q8args *A, const uint8_t *const *rows, int64_t g, int R, int N, int bits,
                   int fp4, __m256i out[4][2]) {
    const int G = A->w->group;
    const uint8_t *end = (const uint8_t *)A->w->data + A->w->rows * A->rb;
    const int8_t *x0 = A->a->q + A->t * A->cw + (g - A->g0) * G, *x1 = x0 + (N > 1 ? A->cw : 0);
    if (bits == 4 && !fp4 && G >= 64) {
        group_dots_nib64(rows, g * G, G, x0, x1, R, N, out);
        return;
    }
    const bool sgnd = fp4 || (bits == 8 && !Q8_VNNI);
#if !Q8_VNNI
    const bool wide = bits > 4 && !fp4; /* one vpmaddwd per 32 elements */
    const __m256i ones = _mm256_set1_epi16(1);
#endif
#if !Q8_VNNI
    __m256i h[4][2];
    for (int i = 0; i < R; i++) h[i][0] = h[i][1] = _mm256_setzero_si256();
#endif
    for (int i = 0; i < R; i++) out[i][0] = out[i][1] = _mm256_setzero_si256();
    for (int k = 0; k < G; k += 32) {
        const __m256i xa = _mm256_loadu_si256((const __m256i *)(x0 + k)),
                      xb = _mm256_loadu_si256((const __m256i *)(x1 + k));
        for (int i = 0; i < R; i++) {
            __m256i sg = _mm256_setzero_si256();
            const __m256i c = codes32(rows[i], g * G + k, bits, fp4, end, &sg);
            const __m256i a = sgnd ? _mm256_sign_epi8(xa, sg) : xa;
            const __m256i b = sgnd && N > 1 ? _mm256_sign_epi8(xb, sg) : xb;
#if Q8_VNNI
            out[i][0] = _mm256_dpbusd_epi32(out[i][0], c, a);
            if (N > 1) out[i][1] = _mm256_dpbusd_epi32(out[i][1], c, b);
#else
            const __m256i pa = _mm256_maddubs_epi16(c, a);
            const __m256i pb = N > 1 ? _mm256_maddubs_epi16(c, b) : pa;
            if (wide) {
                out[i][0] = _mm256_add_epi32(out[i][0], _mm256_madd_epi16(pa, ones));
                if (N > 1) out[i][1] = _mm256_add_epi32(out[i][1], _mm256_madd_epi16(pb, ones));
            } else {
                h[i][0] = _mm256_add_epi16(h[i][0], pa);
                if (N > 1) h[i][1] = _mm256_add_epi16(h[i][1], pb);
            }
#endif
        }
    }
#if !Q8_VNNI
    if (!wide)
        for (int i = 0; i < R; i++)
            for (int t = 0; t < N; t++) out[i][t] = _mm256_madd_epi16(h[i][t], ones);
#endif
}


/* 8 scales (or biases) of a row from group i as floats: affine BF16 / F16 / F32, or
 * mxfp4's E8M0 bytes halved (its codes are 2 E2M1); as zk_q8_scale, 8 at a time. */
AI __m256 scales8(const zweight *w, const void *p, int64_t i, int fp4, int bf16) {
    if (fp4) {
        const __m256i e = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)((const uint8_t *)p + i)));
        const __m256i v = _mm256_blendv_epi8(_mm256_slli_epi32(e, 23), _mm256_set1_epi32(0x00400000),
                                             _mm256_cmpeq_epi32(e, _mm256_setzero_si256()));
        return _mm256_mul_ps(_mm256_castsi256_ps(v), _mm256_set1_ps(0.5f));
    }
    if (bf16 || w->sdtype == ZDT_BF16) {
        const __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)p + i));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    if (w->sdtype == ZDT_F16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
    return _mm256_loadu_ps((const float *)p + i);
}

/*
 * Rows r, r + S, .. (R of them) x tokens t, t + 1 (N of them) over the chunk's groups.
 * Groups go in blocks of 8: the 8 scales of each row times the 8 activation scales d are
 * one vector product, each group's lane broadcast by vpermps; the bias and correction
 * terms of the block are two vector FMAs into a second accumulator (one horizontal sum
 * per row at the end).  A last partial block goes group by group.
 */
AI void q8tile(const q8args *A, int64_t r, int R, int N, int64_t S, int bits, int fp4,
               int bf16) {
    const zweight *w = A->w;
    const int64_t ng = w->cols / w->group, g0 = A->g0, g1 = A->g0 + A->gn;
    const uint8_t *rows[4];
    __m256 tot[4][2], bsum[4][2];
    float tail[4][2] = {{0}};
    for (int i = 0; i < 4; i++) {
        rows[i] = (const uint8_t *)w->data + (r + (i < R ? i : 0) * S) * A->rb;
        tot[i][0] = tot[i][1] = bsum[i][0] = bsum[i][1] = _mm256_setzero_ps();
    }
    const int64_t tg0 = A->t * A->gn, tg1 = tg0 + (N > 1 ? A->gn : 0); /* token t, t + 1 */
    const float *dd[2] = {A->a->d + tg0, A->a->d + tg1}, *ss[2] = {A->a->s + tg0, A->a->s + tg1},
                *cc[2] = {A->a->c + tg0, A->a->c + tg1};
    int64_t g = g0;
    for (; g + 8 <= g1; g += 8) {
        __m256 sd[4][2];
        for (int i = 0; i < R; i++) {
            const int64_t si = (r + i * S) * ng + g;
            const __m256 av = scales8(w, w->scales, si, fp4, bf16);
            const __m256 bv = fp4 ? av : scales8(w, w->biases, si, 0, bf16);
            for (int t = 0; t < N; t++) {
                sd[i][t] = _mm256_mul_ps(av, _mm256_loadu_ps(dd[t] + g - g0));
                if (!fp4) {
                    bsum[i][t] = _mm256_fmadd_ps(bv, _mm256_loadu_ps(ss[t] + g - g0), bsum[i][t]);
                    bsum[i][t] = _mm256_fmadd_ps(av, _mm256_loadu_ps(cc[t] + g - g0), bsum[i][t]);
                }
            }
        }
        for (int j = 0; j < 8; j++) {
            __m256i dots[4][2];
            group_dots(A, rows, g + j, R, N, bits, fp4, dots);
            const __m256i lane = _mm256_set1_epi32(j);
            for (int i = 0; i < R; i++)
                for (int t = 0; t < N; t++)
                    tot[i][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots[i][t]),
                                                _mm256_permutevar8x32_ps(sd[i][t], lane), tot[i][t]);
        }
    }
    for (; g < g1; g++) {
        __m256i dots[4][2];
        group_dots(A, rows, g, R, N, bits, fp4, dots);
        for (int i = 0; i < R; i++) {
            const int64_t si = (r + i * S) * ng + g;
            const float a = zk_q8_scale(w, si, fp4, bf16);
            for (int t = 0; t < N; t++) {
                tot[i][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots[i][t]),
                                            _mm256_set1_ps(a * dd[t][g - g0]), tot[i][t]);
                if (!fp4)
                    tail[i][t] += zweight_scale_at(w->sdtype, w->biases, si) * ss[t][g - g0] +
                                  a * cc[t][g - g0];
            }
        }
    }
    for (int i = 0; i < R; i++)
        for (int t = 0; t < N; t++) {
            const float v = zk_hsum8(_mm256_add_ps(tot[i][t], bsum[i][t])) + tail[i][t];
            float *yo = &A->y[(A->t_abs + t) * w->rows + r + i * S];
            *yo = g0 == 0 ? v : *yo + v;
        }
}

#define Q8_CORR8 (Q8_VNNI ? 1 : 2) /* the corr of 8-bit codes: centred without VNNI */
#include "backend/cpu/quant_q8_drive.h"
