/*
 * trand.h — seeded random numbers for the tests (splitmix64: every test draws the
 * same sequence on every machine and thread count) and the normalised mean squared
 * error the statistical checks use.
 *
 *   trng r = {seed};   rng_u64(&r)  64 random bits
 *                      rng_uni(&r)  double uniform in [-1, 1) (53-bit grid)
 *                      rng_unif(&r) the same rounded to float
 *                      rng_int(&r, lo, hi)  integer in [lo, hi]
 *   nmse(y, ref, n) = sum (y - ref)^2 / sum ref^2 in double (INFINITY when ref is all
 *   zero and y is not or either holds a NaN, 0 when both are zero).
 */
#ifndef ZMLX_TRAND_H
#define ZMLX_TRAND_H

#include <math.h>
#include <stdint.h>

typedef struct trng {
    uint64_t s;
} trng;

static inline uint64_t rng_u64(trng *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline double rng_uni(trng *r) {
    return (double)(rng_u64(r) >> 11) * (1.0 / 4503599627370496.0) - 1.0; /* / 2^52 */
}

static inline float rng_unif(trng *r) {
    return (float)rng_uni(r);
}

static inline int64_t rng_int(trng *r, int64_t lo, int64_t hi) {
    return lo + (int64_t)(rng_u64(r) % (uint64_t)(hi - lo + 1));
}

static inline double nmse(const float *y, const float *ref, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(y[i]) || isnan(ref[i])) return INFINITY; /* NaN always fails */
        double d = (double)y[i] - (double)ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    return den > 0 ? num / den : (num > 0 ? INFINITY : 0.0);
}

#endif
