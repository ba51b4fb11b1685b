/*
 * quant.c — MLX's affine and mxfp4 quantizers (see quant.h for the exact rules and
 * where they come from).  Scalar, float32, row by row; the packed output is read
 * back by model/weight.c's reference dequantizers and the CPU kernels.
 */
#include "ops/quant.h"

#include "core/dtype.h"
#include "model/weight.h"

#include <math.h>
#include <string.h>

enum { MAX_GROUP = 128 };

void zquant_pack(const uint32_t *codes, int64_t n, int bits, uint32_t *words) {
    int64_t nw = (n * bits + 31) / 32;
    memset(words, 0, (size_t)nw * sizeof *words);
    for (int64_t j = 0; j < n; j++) {
        uint64_t o = (uint64_t)j * (uint64_t)bits;
        unsigned sh = (unsigned)(o & 31u);
        uint32_t c = bits < 32 ? codes[j] & ((1u << bits) - 1u) : codes[j];
        words[o >> 5] |= c << sh;
        if (sh + (unsigned)bits > 32u) words[(o >> 5) + 1] |= c >> (32u - sh);
    }
}

void zquant_affine_params(const float *w, int group, int bits, float *scale, float *bias) {
    const float n_bins = (float)((1 << bits) - 1), eps = 1e-7f;
    float mx = -INFINITY, mn = INFINITY;
    for (int j = 0; j < group; j++) {
        mx = w[j] > mx ? w[j] : mx;
        mn = w[j] < mn ? w[j] : mn;
    }
    bool use_min = fabsf(mn) > fabsf(mx);
    float s = (mx - mn) / n_bins;
    s = s > eps ? s : eps;
    s = use_min ? s : -s;
    float edge = use_min ? mn : mx;
    float q0 = rintf(edge / s);
    float b = 0.0f;
    if (q0 != 0.0f) {
        s = edge / q0;
        b = edge;
    }
    *scale = s;
    *bias = b;
}

static bool affine_args_ok(int64_t cols, int bits, int group) {
    bool bits_ok = bits == 2 || bits == 3 || bits == 4 || bits == 5 || bits == 6 || bits == 8;
    bool group_ok = group == 32 || group == 64 || group == 128;
    return bits_ok && group_ok && cols >= 0 && cols % group == 0;
}

bool zquant_affine_row_as(const float *w, int64_t cols, int bits, int group, uint32_t *packed,
                          zdtype sdtype, void *scales, void *biases) {
    if (!affine_args_ok(cols, bits, group) || (sdtype != ZDT_BF16 && sdtype != ZDT_F32))
        return false;
    const float n_bins = (float)((1 << bits) - 1);
    const int64_t words_per_group = (int64_t)group * bits / 32; /* whole: group >= 32 */
    uint32_t q[MAX_GROUP];
    for (int64_t g = 0; g < cols / group; g++) {
        const float *wg = w + g * group;
        float s, b;
        zquant_affine_params(wg, group, bits, &s, &b);
        for (int j = 0; j < group; j++) {
            float v = rintf((wg[j] - b) / s);
            v = v > 0.0f ? v : 0.0f; /* NaN lands here too */
            v = v < n_bins ? v : n_bins;
            q[j] = (uint32_t)v;
        }
        zquant_pack(q, group, bits, packed + g * words_per_group);
        if (sdtype == ZDT_BF16) {
            ((uint16_t *)scales)[g] = zf32_to_bf16(s);
            ((uint16_t *)biases)[g] = zf32_to_bf16(b);
        } else {
            ((float *)scales)[g] = s;
            ((float *)biases)[g] = b;
        }
    }
    return true;
}

bool zquant_affine_row(const float *w, int64_t cols, int bits, int group, uint32_t *packed,
                       uint16_t *scales_bf16, uint16_t *biases_bf16) {
    return zquant_affine_row_as(w, cols, bits, group, packed, ZDT_BF16, scales_bf16, biases_bf16);
}

uint32_t zquant_fp4_code(float v) {
    uint32_t best = 0;
    float bd = fabsf(v - zfp4_e2m1[0]);
    for (uint32_t k = 1; k < 16; k++) {
        float d = fabsf(v - zfp4_e2m1[k]);
        if (d < bd) { /* strict: the first index wins ties, as argmin */
            bd = d;
            best = k;
        }
    }
    return best;
}

/* ceil(log2(s)) for finite s > 0, exactly: s = m * 2^x with m in [0.5, 1). */
static int ceil_log2(float s) {
    int x;
    float m = frexpf(s, &x);
    return m == 0.5f ? x - 1 : x;
}

bool zquant_mxfp4_row(const float *w, int64_t cols, uint32_t *packed, uint8_t *scales_e8m0) {
    if (cols < 0 || cols % 32 != 0) return false;
    uint32_t q[32];
    for (int64_t g = 0; g < cols / 32; g++) {
        const float *wg = w + g * 32;
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fabsf(wg[j]) > amax ? fabsf(wg[j]) : amax;
        float s = amax / 6.0f;
        int e = 0;
        if (s != 0.0f) {
            e = isfinite(s) ? ceil_log2(s) : 127;
            e = e < -127 ? -127 : e > 127 ? 127 : e;
        }
        for (int j = 0; j < 32; j++) q[j] = zquant_fp4_code(ldexpf(wg[j], -e));
        zquant_pack(q, 32, 4, packed + g * 4);
        scales_e8m0[g] = (uint8_t)(e + 127);
    }
    return true;
}
