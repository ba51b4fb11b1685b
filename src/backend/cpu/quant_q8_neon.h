/*
 * quant_q8_neon.h — the fast mode's quantized product Y = X W^T on aarch64 (xq.h), a
 * template included with Q8_NAME (the function) and Q8_DOTPROD (0/1) defined:
 * quant_q8_neon.c (Advanced SIMD: vmull_s8 + vpadalq_s16) and quant_q8_neondot.c (the
 * dot product extension: sdot, compiled with +dotprod, called only when the CPU has it).
 *
 * The activations of each weight group are quantized to int8 with one float scale; per
 * 32 elements the codes (as s8: at most 63, 8-bit centred on 128, mxfp4 as 2 E2M1 in
 * [-12, 12] through a table lookup) meet the activations in two sdot (or 4 vmull/vmlal
 * pairs, |pair| <= 128 x 127 x 2 < 2^15, then vpadalq into int32); one float conversion
 * and FMA per group:
 *     y = sum_g (a_g d_g) * I_g  +  sum_g b_g s_g  +  sum_g a_g c_g
 * with c_g = m (s_g - d_g qs_g), or m s_g for the centred 8-bit codes (xq.h).
 *
 * Codes and the activation order they meet (zxq_perm), 32 elements as two 16-byte halves:
 *   4-bit, mxfp4  16 bytes: low nibbles (even elements) | high nibbles (odd)    NIB32
 *   2-bit         8 bytes shifted right by 0, 2 | 4, 6                         CRUMB
 *   3/5/6, 8-bit  natural order                                                NAT
 * Tiles and chunks: quant_q8_drive.h; per (row, token) the same steps whatever the tile,
 * range or n.
 */
#include "backend/cpu/kernels.h"

#include "backend/cpu/simd_neon.h"
#include "backend/cpu/quant_q8.h"
#include "backend/cpu/xq.h"

ZK_AI zxq_perm perm_of(int bits, int fp4, int G) {
    if (fp4 || bits == 4) return ZXQ_NIB32;
    return bits == 2 ? ZXQ_CRUMB : ZXQ_NAT;
}

/* 4 int32 vectors (16 values in order) -> 16 bytes */
ZK_AI int8x16_t narrow16(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
    return vcombine_s8(vmovn_s16(vcombine_s16(vmovn_s32(a), vmovn_s32(b))),
                       vmovn_s16(vcombine_s16(vmovn_s32(c), vmovn_s32(d))));
}

/* Quantize gn groups of one token (xq.h) into xq (the layout's order), d, s and c.
 * corr: 0 none (mxfp4), 1 c = m (s - d qs), 2 c = m s (8-bit, centred codes). */
static void prep_token(const float *x, int64_t gn, int G, zxq_perm perm, int corr, float m,
                       int8_t *xq, float *d, float *s, float *c) {
    for (int64_t g = 0; g < gn; g++) {
        const float *p = x + g * G;
        float32x4_t mx = vdupq_n_f32(0.0f), sum = vdupq_n_f32(0.0f);
        for (int i = 0; i < G; i += 4) {
            const float32x4_t v = vld1q_f32(p + i);
            mx = vmaxq_f32(mx, vabsq_f32(v));
            sum = vaddq_f32(sum, v);
        }
        const float amax = vmaxvq_f32(mx), dd = amax / 127.0f;
        const float32x4_t id = vdupq_n_f32(amax > 0.0f ? 127.0f / amax : 0.0f);
        int32x4_t isum = vdupq_n_s32(0);
        int8_t *o = xq + g * G;
        for (int k = 0; k < G; k += 32) {
            int32x4_t q[8];
            for (int j = 0; j < 8; j++) {
                q[j] = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(p + k + 4 * j), id));
                isum = vaddq_s32(isum, q[j]);
            }
            int8x16_t a = narrow16(q[0], q[1], q[2], q[3]), b = narrow16(q[4], q[5], q[6], q[7]);
            if (perm == ZXQ_NIB32) {
                const int8x16_t ev = vuzp1q_s8(a, b), od = vuzp2q_s8(a, b);
                a = ev, b = od;
            } else if (perm == ZXQ_CRUMB) { /* elements j, j+4, .. j+28 for j = 0, 1 | 2, 3 */
                const int8x16_t ev = vuzp1q_s8(a, b), od = vuzp2q_s8(a, b);
                a = vcombine_s8(vget_low_s8(vuzp1q_s8(ev, ev)), vget_low_s8(vuzp1q_s8(od, od)));
                b = vcombine_s8(vget_low_s8(vuzp2q_s8(ev, ev)), vget_low_s8(vuzp2q_s8(od, od)));
            }
            vst1q_s8(o + k, a);
            vst1q_s8(o + k + 16, b);
        }
        const float ss = vaddvq_f32(sum);
        d[g] = dd;
        s[g] = ss;
        c[g] = corr == 1 ? m * (ss - dd * (float)vaddvq_s32(isum)) : corr == 2 ? m * ss : 0.0f;
    }
}

/* The 32 codes of a row from element e as signed bytes, in the order of perm_of. */
ZK_AI void codes32(const uint8_t *row, int64_t e, int bits, int fp4, const uint8_t *end,
                   int8x16_t *c0, int8x16_t *c1) {
    if (bits == 4 || fp4) {
        const uint8x16_t v = vld1q_u8(row + e / 2);
        const uint8x16_t lo = vandq_u8(v, vdupq_n_u8(0x0f)), hi = vshrq_n_u8(v, 4);
        if (fp4) {
            static const int8_t lut[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
            const int8x16_t t = vld1q_s8(lut);
            *c0 = vqtbl1q_s8(t, lo);
            *c1 = vqtbl1q_s8(t, hi);
        } else {
            *c0 = vreinterpretq_s8_u8(lo);
            *c1 = vreinterpretq_s8_u8(hi);
        }
        return;
    }
    if (bits == 8) { /* centred: q - 128 */
        const uint8x16_t k = vdupq_n_u8(0x80);
        *c0 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(row + e), k));
        *c1 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(row + e + 16), k));
        return;
    }
    if (bits == 2) {
        const uint8x8_t v = vld1_u8(row + e / 4), m = vdup_n_u8(3);
        *c0 = vreinterpretq_s8_u8(vcombine_u8(vand_u8(v, m), vand_u8(vshr_n_u8(v, 2), m)));
        *c1 = vreinterpretq_s8_u8(vcombine_u8(vand_u8(vshr_n_u8(v, 4), m), vshr_n_u8(v, 6)));
        return;
    }
    uint32x4_t u[8];
    for (int j = 0; j < 4; j++) zk_codes8_neon(row, e / 8 + j, bits, end, &u[2 * j], &u[2 * j + 1]);
    *c0 = narrow16(vreinterpretq_s32_u32(u[0]), vreinterpretq_s32_u32(u[1]),
                   vreinterpretq_s32_u32(u[2]), vreinterpretq_s32_u32(u[3]));
    *c1 = narrow16(vreinterpretq_s32_u32(u[4]), vreinterpretq_s32_u32(u[5]),
                   vreinterpretq_s32_u32(u[6]), vreinterpretq_s32_u32(u[7]));
}

/* acc += the int32 dot of 16 codes with 16 activations (in groups of 4 lanes) */
ZK_AI int32x4_t dot16(int32x4_t acc, int8x16_t c, int8x16_t x) {
#if Q8_DOTPROD
    return vdotq_s32(acc, c, x);
#else
    int16x8_t p = vmull_s8(vget_low_s8(c), vget_low_s8(x));
    p = vmlal_s8(p, vget_high_s8(c), vget_high_s8(x));
    return vpadalq_s16(acc, p);
#endif
}


/* Rows r, r + S, .. (R of them) x tokens t, t + 1 (N of them) over the chunk's groups. */
ZK_AI void q8tile(const q8args *A, int64_t r, int R, int N, int64_t S, int bits, int fp4,
                  int bf16) {
    const zweight *w = A->w;
    const int64_t G = w->group, ng = w->cols / G;
    const uint8_t *rows[4], *end = (const uint8_t *)w->data + w->rows * A->rb;
    float32x4_t tot[4][2];
    for (int i = 0; i < 4; i++) {
        rows[i] = (const uint8_t *)w->data + (r + (i < R ? i : 0) * S) * A->rb;
        tot[i][0] = tot[i][1] = vdupq_n_f32(0.0f);
    }
    const float *d0 = A->a->d + A->t * A->gn, *d1 = d0 + (N > 1 ? A->gn : 0);
    for (int64_t g = A->g0; g < A->g0 + A->gn; g++) {
        const int8_t *x0 = A->a->q + A->t * A->cw + (g - A->g0) * G, *x1 = x0 + (N > 1 ? A->cw : 0);
        int32x4_t acc[4][2];
        for (int i = 0; i < 4; i++) acc[i][0] = acc[i][1] = vdupq_n_s32(0);
        for (int64_t k = 0; k < G; k += 32) {
            const int8x16_t xa0 = vld1q_s8(x0 + k), xa1 = vld1q_s8(x0 + k + 16);
            const int8x16_t xb0 = vld1q_s8(x1 + k), xb1 = vld1q_s8(x1 + k + 16);
            for (int i = 0; i < R; i++) {
                int8x16_t c0, c1;
                codes32(rows[i], g * G + k, bits, fp4, end, &c0, &c1);
                acc[i][0] = dot16(dot16(acc[i][0], c0, xa0), c1, xa1);
                if (N > 1) acc[i][1] = dot16(dot16(acc[i][1], c0, xb0), c1, xb1);
            }
        }
        for (int i = 0; i < R; i++) {
            const float a = zk_q8_scale(w, (r + i * S) * ng + g, fp4, bf16);
            tot[i][0] = vfmaq_f32(tot[i][0], vcvtq_f32_s32(acc[i][0]), vdupq_n_f32(a * d0[g - A->g0]));
            if (N > 1)
                tot[i][1] = vfmaq_f32(tot[i][1], vcvtq_f32_s32(acc[i][1]), vdupq_n_f32(a * d1[g - A->g0]));
        }
    }
    const int64_t ssz = (int64_t)zdtype_table[w->sdtype].size;
    for (int i = 0; i < R; i++)
        for (int t = 0; t < N; t++) {
            float v = vaddvq_f32(tot[i][t]);
            if (!fp4) {
                const int64_t o = ((r + i * S) * ng + A->g0) * ssz, tg = (A->t + t) * A->gn;
                v += zk_sdot_neon((const uint8_t *)w->biases + o, w->sdtype, A->a->s + tg, A->gn) +
                     zk_sdot_neon((const uint8_t *)w->scales + o, w->sdtype, A->a->c + tg, A->gn);
            }
            float *yo = &A->y[(A->t_abs + t) * w->rows + r + i * S];
            *yo = A->g0 == 0 ? v : *yo + v;
        }
}

#define Q8_CORR8 2 /* 8-bit codes centred on 128 */
#include "backend/cpu/quant_q8_drive.h"
