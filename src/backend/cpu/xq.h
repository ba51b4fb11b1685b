/*
 * xq.h — the fast mode's int8 activations (kernels.h), defined once for every ISA.
 *
 * One token's activations are cut in groups of G (the weight's group size: 32, 64 or
 * 128, so a weight group meets exactly one activation scale) and each group is
 * quantized like llama.cpp's q8 blocks:
 *     amax = max |x_i|,   d = amax / 127,   xq_i = round_half_even(x_i * (127 / amax))
 * (all zero when amax is 0), with two float32 sums kept exact:
 *     s = sum x_i (the bias term),   qs = sum xq_i (an integer).
 * Every ISA computes the same d and xq bit for bit (the same float32 product, rounded
 * to nearest even); only the order of the float sums differs.
 *
 * An affine group (codes q in [0, 2^bits), scale a, bias b) then contributes
 *     a * sum(q_i x_i) + b * s
 *  ~  a * (d * J + m * s) + b * s,      J = sum (q_i - m) xq_i,  m = 2^(bits-1)
 * with J exact in integers (J = I - m * qs for the unsigned dot I = sum q_i xq_i).
 * Centring the codes on m leaves only (q - m) to meet the rounding error of xq, which
 * halves it for a group whose mean sits mid-range.  mxfp4 groups: the codes are
 * 2 * E2M1 (integers in [-12, 12]) and the scale is E8M0 / 2: a * d * I.
 *
 * The SIMD kernels store xq in the order their code unpacking produces (zxq_perm), so
 * that one load of packed codes meets one load of activations.
 */
#ifndef ZMLX_BACKEND_CPU_XQ_H
#define ZMLX_BACKEND_CPU_XQ_H

#include <math.h>
#include <stdint.h>

/* Order of xq inside a chunk of a group: position p holds element zxq_elem(perm, p). */
typedef enum zxq_perm {
    ZXQ_NAT = 0, /* natural order (3, 5, 6, 8 bits) */
    ZXQ_NIB32,   /* 32-element chunks: the 16 even elements, then the 16 odd ones (4-bit: the
                  * low and high nibbles of 16 bytes) */
    ZXQ_NIB64,   /* 64-element chunks: the 32 even, then the 32 odd elements (4-bit, 32 bytes) */
    ZXQ_CRUMB,   /* 32-element chunks: position 8j + m holds element 4m + j (2-bit: shift 2j of
                  * 8 bytes) */
} zxq_perm;

static inline int zxq_elem(zxq_perm perm, int p) {
    switch (perm) {
    case ZXQ_NIB32: return (p & ~31) + (p & 16 ? 2 * (p & 15) + 1 : 2 * (p & 15));
    case ZXQ_NIB64: return (p & ~63) + (p & 32 ? 2 * (p & 31) + 1 : 2 * (p & 31));
    case ZXQ_CRUMB: return (p & ~31) + 4 * (p & 7) + ((p & 31) >> 3);
    default: return p;
    }
}

/* Quantize one group of G floats in natural order (the portable definition): xq[G],
 * returns d; *s and *qs as above (s summed in index order). */
static inline float zxq_group(const float *x, int G, int8_t *xq, float *s, int32_t *qs) {
    float amax = 0.0f, sum = 0.0f;
    for (int i = 0; i < G; i++) {
        float a = fabsf(x[i]);
        amax = a > amax ? a : amax;
        sum += x[i];
    }
    const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    int32_t qsum = 0;
    for (int i = 0; i < G; i++) {
        xq[i] = (int8_t)lrintf(x[i] * id);
        qsum += xq[i];
    }
    *s = sum;
    *qs = qsum;
    return amax / 127.0f;
}

#endif
