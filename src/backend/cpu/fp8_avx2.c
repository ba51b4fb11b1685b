/*
 * fp8_avx2.c — AVX2 + FMA rows kernel for fp8 e4m3 block weights (see fp8.c for the
 * contract).  Compiled with -mavx2 -mfma -mf16c (CMakeLists.txt: *_avx2.c) and only
 * installed after zk_select() has checked the CPU.
 *
 * Eight e4m3 bytes become eight floats without a table and without denormal
 * arithmetic (which can cost a microcode assist per lane on x86):
 *   normal    (e > 0):  bits = (em << 20) + (120 << 23)       em = byte & 0x7f
 *   subnormal (e = 0):  float(m) * 2^-9
 *   NaN       (em = 0x7f)
 *   then the sign bit (byte & 0x80) << 24.
 * Per (row, token) and column block: two accumulators over alternate 8-column steps,
 * a scalar tail for a block whose length is not a multiple of 8, then
 * total += (acc0 + acc1) * scale; the same operations whatever the tile of tokens.
 */
#include "backend/cpu/kernels.h"

#include "backend/cpu/simd_avx2.h"

#include <immintrin.h>

static inline __attribute__((always_inline)) __m256 dec8(const uint8_t *p) {
    const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
    const __m256i em = _mm256_and_si256(v, _mm256_set1_epi32(0x7f));
    const __m256 normal = _mm256_castsi256_ps(
        _mm256_add_epi32(_mm256_slli_epi32(em, 20), _mm256_set1_epi32(120 << 23)));
    const __m256 sub = _mm256_mul_ps(_mm256_cvtepi32_ps(em), _mm256_set1_ps(0x1p-9f));
    const __m256 is_sub = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(8), em));
    const __m256 nan = _mm256_castsi256_ps(_mm256_cmpeq_epi32(em, _mm256_set1_epi32(0x7f)));
    const __m256 sign = _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_and_si256(v, _mm256_set1_epi32(0x80)), 24));
    return _mm256_or_ps(_mm256_or_ps(_mm256_blendv_ps(normal, sub, is_sub), nan), sign);
}

enum { TT = 4 }; /* tokens per tile */

/* Row r, tokens [t0, t0 + nt) (nt <= TT), into y. */
static inline __attribute__((always_inline)) void row_tile(const zweight *w, const float *x,
                                                           float *y, int64_t r, int64_t t0,
                                                           int nt) {
    const int64_t K = w->cols, B = w->group, nbc = (K + B - 1) / B;
    const uint8_t *row = (const uint8_t *)w->data + r * K;
    const int64_t srow = (r + w->brow0) / B * nbc;
    __m256 tot[TT];
    float tail[TT];
    for (int t = 0; t < TT; t++) tot[t] = _mm256_setzero_ps(), tail[t] = 0.0f;
    for (int64_t b = 0; b < nbc; b++) {
        const int64_t c0 = b * B, c1 = c0 + B < K ? c0 + B : K, c8 = c0 + (c1 - c0) / 8 * 8;
        __m256 a0[TT], a1[TT];
        for (int t = 0; t < TT; t++) a0[t] = a1[t] = _mm256_setzero_ps();
        int64_t c = c0;
        for (; c + 16 <= c8; c += 16) {
            const __m256 q0 = dec8(row + c), q1 = dec8(row + c + 8);
            for (int t = 0; t < nt; t++) {
                const float *xt = x + (t0 + t) * K + c;
                a0[t] = _mm256_fmadd_ps(q0, _mm256_loadu_ps(xt), a0[t]);
                a1[t] = _mm256_fmadd_ps(q1, _mm256_loadu_ps(xt + 8), a1[t]);
            }
        }
        if (c < c8) { /* one more step of 8 */
            const __m256 q0 = dec8(row + c);
            for (int t = 0; t < nt; t++)
                a0[t] = _mm256_fmadd_ps(q0, _mm256_loadu_ps(x + (t0 + t) * K + c), a0[t]);
            c += 8;
        }
        const float s = zweight_scale_at(w->sdtype, w->scales, srow + b);
        const __m256 sv = _mm256_set1_ps(s);
        for (int t = 0; t < nt; t++) {
            tot[t] = _mm256_fmadd_ps(_mm256_add_ps(a0[t], a1[t]), sv, tot[t]);
            if (c < c1) { /* the block's last (c1 - c8) columns */
                const float *xt = x + (t0 + t) * K;
                float d = 0.0f;
                for (int64_t i = c; i < c1; i++) d += zfp8_e4m3_to_f32(row[i]) * xt[i];
                tail[t] += s * d;
            }
        }
    }
    for (int t = 0; t < nt; t++) y[(t0 + t) * w->rows + r] = zk_hsum8(tot[t]) + tail[t];
}

void zk_fp8_rows_avx2(const zweight *w, const float *x, int64_t n, float *y, int64_t r0,
                      int64_t r1) {
    for (int64_t r = r0; r < r1; r++)
        for (int64_t t0 = 0; t0 < n; t0 += TT) {
            const int64_t nt = n - t0 < TT ? n - t0 : TT;
            switch (nt) { /* constant tile widths for the compiler */
            case 4: row_tile(w, x, y, r, t0, 4); break;
            case 3: row_tile(w, x, y, r, t0, 3); break;
            case 2: row_tile(w, x, y, r, t0, 2); break;
            default: row_tile(w, x, y, r, t0, 1); break;
            }
        }
}
