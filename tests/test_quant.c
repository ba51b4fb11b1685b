/*
 * test_quant.c — quantized weights (MLX affine 2..8-bit, mxfp4): layout, quantizer,
 * reference dequantizer and CPU kernels.
 *
 *  - Packing order on hand-built words (4-bit 0x76543210 = elements 0..7, 8-bit bytes,
 *    2-bit, 3/5/6-bit streams whose codes straddle words) through zweight_get, and
 *    zquant_pack reproducing the same words.
 *  - zweight_check / zweight_kind / sizes; zweight_rows slices of quantized weights.
 *  - The affine quantizer against hand-computed groups (MLX's edge/bias rule, round
 *    half to even, clamping, the eps scale of constant groups) and mxfp4 against
 *    hand-computed codes (ties to the smaller magnitude, saturation, E8M0 bytes);
 *    random round trips: every code is clamp(rint((w - bias) / scale)) with the
 *    float32 parameters, stored scale/bias are their bf16 roundings, and the error
 *    is <= scale/2 (<= scale where the code was clamped, as MLX's own test allows).
 *  - Kernels (every bits x group, mxfp4, F16/F32 scales, odd row counts, n = 1, 2, 3,
 *    5 and token/column tiling cases): zk_qrows_generic, zk_qrows_avx2 and the cpu
 *    backend (1 and 2 threads) against zop_matmul_ref, and the transposed kernels
 *    against zop_matmul_t_ref.  Guard floats around every output, NaN canaries inside.
 *
 * Error bounds (u = 2^-24).  With s, b, q the stored scale, bias and codes, let
 * T = sum_g (s_g sum_i q_i x_i + b_g sum_i x_i) (exact, computed in double) and
 * A = sum_g (|s_g| sum_i |q_i x_i| + |b_g| sum_i |x_i|).  The reference (dequantize
 * element-wise, two roundings, then a float32 dot) and the factored kernels (group
 * dots, a scale product, group sums of x, a bias product, a sum over groups, a
 * horizontal sum) each pass every term through at most K + 2*ng + 8 roundings, so
 *   rigorous:    |y - T| <= gamma_{K + 2 ng + 8} * A       (Higham 3.1, any order)
 *   statistical: nmse(y, ref) < 1e-9.  The errors are random-sign roundings of
 *     terms of size up to A, so nmse scales like K u^2 (A/|T|)^2; with biases that
 *     cancel (A/|T| ~ 10) it reaches ~2e-10 at K = 2048 (the largest value seen is
 *     printed at the end).  1e-9 leaves a margin of 5 and still fails a bias off by
 *     1e-4 relative (tried), let alone a wrong code, scale or group.
 */
#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "ops/ops.h"
#include "ops/quant.h"
#include "tcheck.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ helpers */

static uint64_t rng_state = 0x9a4e7u;

static uint64_t rng_u64(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static float rng_unif(void) { /* [-1, 1) */
    return (float)((double)(rng_u64() >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
}

static int64_t rng_int(int64_t lo, int64_t hi) { /* [lo, hi] */
    return lo + (int64_t)(rng_u64() % (uint64_t)(hi - lo + 1));
}

static uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) abort();
    return p;
}

#define U_F32 (1.0 / 16777216.0)
#define NMSE_MAX 1e-9

static double gamma_n(int64_t n) {
    return (double)n * U_F32 / (1.0 - (double)n * U_F32);
}

/* guarded output: [GUARD canaries | n floats (NaN canary) | GUARD canaries] */
#define GUARD 16
#define CANARY_GUARD 0x7fa5a5a5u
#define CANARY_FILL 0x7fc0ffeeu

typedef struct gbuf {
    float *base, *p;
    int64_t n;
} gbuf;

static void gbuf_refill(gbuf *b) {
    for (int64_t i = 0; i < b->n; i++) b->p[i] = u2f(CANARY_FILL);
}

static gbuf gbuf_new(int64_t n) {
    gbuf b = {.base = xmalloc((size_t)(n + 2 * GUARD) * sizeof(float)), .n = n};
    b.p = b.base + GUARD;
    for (int64_t i = 0; i < n + 2 * GUARD; i++) b.base[i] = u2f(CANARY_GUARD);
    gbuf_refill(&b);
    return b;
}

static bool gbuf_guards_ok(const gbuf *b) {
    for (int64_t i = 0; i < GUARD; i++)
        if (f2u(b->base[i]) != CANARY_GUARD || f2u(b->p[b->n + i]) != CANARY_GUARD) return false;
    return true;
}

static bool bits_equal(const float *a, const float *b, int64_t n) {
    return memcmp(a, b, (size_t)n * sizeof(float)) == 0;
}

static double nmse_seen;

static double nmse(const float *y, const float *ref, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(y[i]) || isnan(ref[i])) return INFINITY; /* NaN always fails */
        double d = (double)y[i] - (double)ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    double e = den > 0 ? num / den : (num > 0 ? INFINITY : 0.0);
    if (e < NMSE_MAX && e > nmse_seen) nmse_seen = e;
    return e;
}

/* ------------------------------------------------------------------ weights */

/* A quantized weight owning its buffers (sized exactly: ASan sees over-reads). */
typedef struct qw {
    zweight w;
    void *data, *scales, *biases;
} qw;

static qw qw_alloc(zqfmt q, int bits, int group, zdtype sdt, int64_t rows, int64_t cols) {
    qw o = {.w = {.dtype = ZDT_U32, .rows = rows, .cols = cols, .q = q, .bits = bits,
                  .group = group, .sdtype = sdt}};
    size_t ns = (size_t)(rows * (cols / group)) * zdtype_table[sdt].size;
    o.data = xmalloc((size_t)(rows * cols * bits / 8));
    o.scales = xmalloc(ns);
    o.biases = q == ZQ_AFFINE ? xmalloc(ns) : NULL;
    o.w.data = o.data;
    o.w.scales = o.scales;
    o.w.biases = o.biases;
    return o;
}

static void qw_free(qw *o) {
    free(o->data);
    free(o->scales);
    free(o->biases);
}

/* Random floats through the quantizers (bf16 scales / E8M0). */
static qw qw_quantized(zqfmt q, int bits, int group, int64_t rows, int64_t cols) {
    qw o = qw_alloc(q, bits, group, q == ZQ_AFFINE ? ZDT_BF16 : ZDT_U8, rows, cols);
    float *row = xmalloc((size_t)cols * sizeof(float));
    const int64_t words = cols * bits / 32, ng = cols / group;
    for (int64_t r = 0; r < rows; r++) {
        float off = 0.5f * rng_unif(); /* groups not centred on 0: biases matter */
        for (int64_t c = 0; c < cols; c++) row[c] = rng_unif() + off;
        if (q == ZQ_AFFINE)
            CHECK(zquant_affine_row(row, cols, bits, group, (uint32_t *)o.data + r * words,
                                    (uint16_t *)o.scales + r * ng, (uint16_t *)o.biases + r * ng));
        else
            CHECK(zquant_mxfp4_row(row, cols, (uint32_t *)o.data + r * words,
                                   (uint8_t *)o.scales + r * ng));
    }
    free(row);
    return o;
}

/* Random codes with random F16 or F32 scales (|s| in 2^-7..2^-2) and biases (2^-5..1). */
static qw qw_random(int bits, int group, zdtype sdt, int64_t rows, int64_t cols) {
    qw o = qw_alloc(ZQ_AFFINE, bits, group, sdt, rows, cols);
    uint8_t *d = o.data;
    for (int64_t i = 0; i < rows * cols * bits / 8; i++) d[i] = (uint8_t)rng_u64();
    for (int64_t i = 0; i < rows * (cols / group); i++)
        for (int k = 0; k < 2; k++) {
            uint64_t r = rng_u64();
            uint16_t h = (uint16_t)(((r & 1) << 15) | ((uint64_t)(k ? 10 : 8) + (r >> 1) % 5) << 10 |
                                    ((r >> 8) & 0x3ffu));
            void *dst = k ? o.biases : o.scales;
            if (sdt == ZDT_F32) ((float *)dst)[i] = zf16_to_f32(h);
            else ((uint16_t *)dst)[i] = h;
        }
    return o;
}

/* element (r, c) as (scale, code value, bias) from the stored fields */
static void elem(const zweight *w, int64_t r, int64_t c, double *s, double *v, double *b) {
    const int64_t ng = w->cols / w->group, gi = r * ng + c / w->group;
    const uint8_t *row = (const uint8_t *)w->data + r * zweight_row_data_bytes(w);
    uint32_t q = zq_code(row, c, w->bits);
    *s = zweight_scale_at(w->sdtype, w->scales, gi);
    *b = w->q == ZQ_AFFINE ? zweight_scale_at(w->sdtype, w->biases, gi) : 0.0;
    *v = w->q == ZQ_AFFINE ? (double)q : (double)zfp4_e2m1[q];
}

/* T and A of the header, per output, for Y = X W^T (or X W when transposed). */
static void exact_q(const zweight *w, const float *x, int64_t n, bool transposed, double *ex,
                    double *ab) {
    const int64_t out = transposed ? w->cols : w->rows, K = transposed ? w->rows : w->cols;
    for (int64_t i = 0; i < n * out; i++) ex[i] = ab[i] = 0.0;
    for (int64_t r = 0; r < w->rows; r++)
        for (int64_t c = 0; c < w->cols; c++) {
            double s, v, b;
            elem(w, r, c, &s, &v, &b);
            for (int64_t t = 0; t < n; t++) {
                int64_t o = transposed ? c : r, k = transposed ? r : c;
                double xv = x[t * K + k];
                ex[t * out + o] += (s * v + b) * xv;
                ab[t * out + o] += (fabs(s * v) + fabs(b)) * fabs(xv);
            }
        }
}

static int64_t bound_violation(const float *y, const double *ex, const double *ab, int64_t cnt,
                               int64_t steps) {
    double g = gamma_n(steps);
    for (int64_t i = 0; i < cnt; i++)
        if (isnan(y[i]) || fabs((double)y[i] - ex[i]) > g * ab[i] + 1e-37) return i;
    return -1;
}

static const char *fmt_name(const zweight *w, char *buf, size_t n) {
    snprintf(buf, n, "%s g%d %s", zwfmt_table[zweight_kind(w)].name, w->group,
             zdtype_table[w->sdtype].name);
    return buf;
}

/* ------------------------------------------------------------------ layout */

/* A [1, cols] affine weight over `words` with scale s and bias b (bf16). */
static zweight one_row(const uint32_t *words, int64_t cols, int bits, uint16_t *sb, int ng,
                       float s, float b) {
    for (int g = 0; g < ng; g++) {
        sb[g] = zf32_to_bf16(s);
        sb[ng + g] = zf32_to_bf16(b);
    }
    return (zweight){.dtype = ZDT_U32, .rows = 1, .cols = cols, .data = words, .q = ZQ_AFFINE,
                     .bits = bits, .group = (int)cols / ng, .sdtype = ZDT_BF16, .scales = sb,
                     .biases = sb + ng};
}

/* codes[j] are the expected elements of `words` (cols of them): check get, row_f32, pack */
static void check_stream(const char *what, const uint32_t *words, int nw, int bits,
                         const uint32_t *codes, int64_t cols) {
    uint16_t sb[4];
    zweight w = one_row(words, cols, bits, sb, 1, 1.0f, 0.0f);
    float row[64];
    zweight_row_f32(&w, 0, row);
    bool get_ok = true, row_ok = true;
    for (int64_t c = 0; c < cols; c++) {
        get_ok &= zweight_get(&w, 0, c) == (float)codes[c];
        row_ok &= row[c] == (float)codes[c];
    }
    CHECKF(get_ok && row_ok, "%s: zweight_get %s, zweight_row_f32 %s", what, get_ok ? "ok" : "wrong",
           row_ok ? "ok" : "wrong");
    uint32_t packed[16];
    zquant_pack(codes, cols, bits, packed);
    CHECKF(memcmp(packed, words, (size_t)nw * 4) == 0, "%s: zquant_pack differs", what);
    /* scale and bias apply as scale * q + bias */
    w = one_row(words, cols, bits, sb, 1, 2.0f, -1.0f);
    bool aff_ok = true;
    for (int64_t c = 0; c < cols; c++) aff_ok &= zweight_get(&w, 0, c) == 2.0f * (float)codes[c] - 1.0f;
    CHECKF(aff_ok, "%s: scale * q + bias", what);
}

static void test_packing(void) {
    uint32_t codes[64];
    /* 4-bit: the first element is the lowest nibble */
    const uint32_t w4[4] = {0x76543210u, 0xfedcba98u, 0x01234567u, 0x89abcdefu};
    for (int j = 0; j < 16; j++) codes[j] = (uint32_t)j, codes[16 + j] = (uint32_t)(j < 8 ? 7 - j : 23 - j);
    check_stream("4-bit", w4, 4, 4, codes, 32);
    /* 8-bit: the first element is the low byte */
    uint32_t w8[8];
    for (int k = 0; k < 8; k++)
        w8[k] = (uint32_t)(4 * k) | (uint32_t)(4 * k + 1) << 8 | (uint32_t)(4 * k + 2) << 16 |
                (uint32_t)(4 * k + 3) << 24;
    for (int j = 0; j < 32; j++) codes[j] = (uint32_t)j;
    check_stream("8-bit", w8, 8, 8, codes, 32);
    /* 2-bit: 16 per word, 0xe4 = 0b11100100 = elements 0, 1, 2, 3 */
    const uint32_t w2[2] = {0xe4e4e4e4u, 0xe4e4e4e4u};
    for (int j = 0; j < 32; j++) codes[j] = (uint32_t)j & 3u;
    check_stream("2-bit", w2, 2, 2, codes, 32);
    /* 3-bit, codes j & 7: elements 10 and 21 straddle words (bits 30-32, 63-65) */
    const uint32_t w3[3] = {0x88fac688u, 0xc688fac6u, 0xfac688fau};
    for (int j = 0; j < 32; j++) codes[j] = (uint32_t)j & 7u;
    check_stream("3-bit", w3, 3, 3, codes, 32);
    CHECK(zq_code(w3, 10, 3) == 2 && zq_code(w3, 21, 3) == 5); /* by hand: 0b10, 0b101 */
    /* 5-bit, codes j & 31 */
    const uint32_t w5[5] = {0x8a418820u, 0xc5a92839u, 0xca307b9au, 0x38bdab49u, 0xffbbcdebu};
    for (int j = 0; j < 32; j++) codes[j] = (uint32_t)j & 31u;
    check_stream("5-bit", w5, 5, 5, codes, 32);
    /* 6-bit, codes 7j & 63 */
    const uint32_t w6[6] = {0xdc54e1c0u, 0x6ff8c6a8u, 0xa626d434u,
                            0xcc17edf0u, 0x6be885a4u, 0x6522c4f7u};
    for (int j = 0; j < 32; j++) codes[j] = (uint32_t)(7 * j) & 63u;
    check_stream("6-bit", w6, 6, 6, codes, 32);

    /* mxfp4: nibbles low first, E2M1 values, E8M0 scale 2^(s-127) */
    const uint8_t sc[2] = {128, 125}; /* x2, x0.25 */
    zweight m = {.dtype = ZDT_U32, .rows = 1, .cols = 64, .data = (const uint32_t[8]){
                     0x76543210u, 0xfedcba98u, 0, 0, 0x76543210u, 0xfedcba98u, 0, 0},
                 .q = ZQ_MXFP4, .bits = 4, .group = 32, .sdtype = ZDT_U8, .scales = sc};
    const float v[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};
    bool ok = true;
    for (int j = 0; j < 16; j++) {
        ok &= zweight_get(&m, 0, j) == 2.0f * v[j] && zweight_get(&m, 0, 32 + j) == 0.25f * v[j];
        ok &= signbit(zweight_get(&m, 0, j)) == signbit(v[j]);
    }
    CHECKF(ok, "mxfp4 decoding");
    CHECK(ze8m0_to_f32(127) == 1.0f && ze8m0_to_f32(0) == ldexpf(1.0f, -127) &&
          ze8m0_to_f32(254) == ldexpf(1.0f, 127) && isinf(ze8m0_to_f32(255)));
}

static void test_check(void) {
    char why[160];
    uint32_t d[64] = {0};
    uint16_t s[64] = {0};
    zweight base = {.dtype = ZDT_U32, .rows = 2, .cols = 128, .data = d, .q = ZQ_AFFINE,
                    .bits = 4, .group = 64, .sdtype = ZDT_BF16, .scales = s, .biases = s};
    static const int bits_ok[] = {2, 3, 4, 5, 6, 8}, groups_ok[] = {32, 64, 128};
    for (int i = 0; i < 6; i++)
        for (int g = 0; g < 3; g++) {
            zweight w = base;
            w.bits = bits_ok[i], w.group = groups_ok[g];
            CHECKF(zweight_check(&w, why, sizeof why), "bits %d group %d: %s", w.bits, w.group, why);
            CHECK((int)zweight_kind(&w) == (int)ZW_AFFINE2 + i);
        }
    struct {
        const char *what;
        zweight w;
    } bad[] = {
        {"bits 1", base}, {"bits 7", base}, {"group 16", base}, {"group 256", base},
        {"cols % group", base}, {"U8 scales", base}, {"no biases", base}, {"no scales", base},
        {"mxfp4 g64", base}, {"mxfp4 bits 8", base}, {"mxfp4 bf16 scales", base},
        {"dense U32", {.dtype = ZDT_U32, .rows = 1, .cols = 1, .data = d}}, {"format 9", base},
        {"negative rows", base},
    };
    bad[0].w.bits = 1;
    bad[1].w.bits = 7;
    bad[2].w.group = 16;
    bad[3].w.group = 256;
    bad[4].w.cols = 96;
    bad[5].w.sdtype = ZDT_U8;
    bad[6].w.biases = NULL;
    bad[7].w.scales = NULL;
    for (int i = 8; i < 11; i++) bad[i].w = (zweight){.dtype = ZDT_U32, .rows = 2, .cols = 128,
        .data = d, .q = ZQ_MXFP4, .bits = 4, .group = 32, .sdtype = ZDT_U8, .scales = s};
    bad[8].w.group = 64;
    bad[9].w.bits = 8;
    bad[10].w.sdtype = ZDT_BF16;
    bad[12].w.q = (zqfmt)9;
    bad[13].w.rows = -1;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = 0;
        CHECKF(!zweight_check(&bad[i].w, why, sizeof why) && why[0], "%s accepted", bad[i].what);
    }
    CHECK(zweight_check(&bad[8].w, NULL, 0) == false); /* why may be NULL */
    /* mxfp4 valid; dense designated initializers stay dense */
    zweight mx = bad[8].w;
    mx.group = 32;
    CHECKF(zweight_check(&mx, why, sizeof why), "mxfp4: %s", why);
    zweight dense = {.dtype = ZDT_BF16, .rows = 3, .cols = 5, .data = s};
    CHECK(dense.q == ZQ_NONE && zweight_kind(&dense) == ZW_BF16 && zweight_check(&dense, why, 160));
    /* sizes */
    zweight a = base;
    a.rows = 10, a.cols = 256;
    CHECK(zweight_row_data_bytes(&a) == 128 && zweight_row_bytes(&a) == 128 + 8 + 8);
    CHECK(zweight_bytes(&a) == 10 * 144);
    a.bits = 3, a.group = 32, a.sdtype = ZDT_F32;
    CHECK(zweight_row_data_bytes(&a) == 96 && zweight_row_bytes(&a) == 96 + 32 + 32);
    mx.rows = 3, mx.cols = 64;
    CHECK(zweight_bytes(&mx) == 3 * (32 + 2));
    CHECK(zweight_bytes(&dense) == 30 && zweight_row_bytes(&dense) == 10);
    CHECK(!strcmp(zwfmt_table[ZW_AFFINE4].name, "affine4") && zwfmt_table[ZW_AFFINE6].pack_elems == 4 &&
          zwfmt_table[ZW_AFFINE6].pack_bytes == 3 && zwfmt_table[ZW_AFFINE5].pack_bytes == 5);
}

/* zweight_rows of quantized weights: the view's elements are the parent's rows */
static void test_rows_slice(void) {
    qw a = qw_quantized(ZQ_AFFINE, 3, 32, 9, 96);
    qw m = qw_quantized(ZQ_MXFP4, 4, 32, 9, 64);
    qw f = qw_random(6, 64, ZDT_F32, 9, 128);
    const qw *all[] = {&a, &m, &f};
    for (int i = 0; i < 3; i++) {
        const zweight *w = &all[i]->w;
        bool ok = true;
        for (int64_t r0 = 0; r0 < w->rows; r0++)
            for (int64_t nr = 0; r0 + nr <= w->rows; nr++) {
                zweight v = zweight_rows(w, r0, nr);
                ok &= v.rows == nr && zweight_bytes(&v) == nr * zweight_row_bytes(w);
                for (int64_t r = 0; r < nr; r++)
                    for (int64_t c = 0; c < w->cols; c++)
                        ok &= f2u(zweight_get(&v, r, c)) == f2u(zweight_get(w, r0 + r, c));
            }
        char nm[64];
        CHECKF(ok, "zweight_rows %s", fmt_name(w, nm, sizeof nm));
    }
    qw_free(&a);
    qw_free(&m);
    qw_free(&f);
}

/* ------------------------------------------------------------------ quantizers */

static void test_affine_hand(void) {
    float w[32];
    uint32_t p[4];
    uint16_t s, b;
    /* A: w = 0..31, 4-bit: |max| wins, scale = 31 / -15, bias 31, q = round((31 - j) 15/31) */
    for (int j = 0; j < 32; j++) w[j] = (float)j;
    float fs, fb;
    zquant_affine_params(w, 32, 4, &fs, &fb);
    CHECK(fs == 31.0f / -15.0f && fb == 31.0f);
    CHECK(zquant_affine_row(w, 32, 4, 32, p, &s, &b));
    const uint32_t pa[4] = {0xccddeeffu, 0x8899aabbu, 0x44556677u, 0x00112233u};
    CHECKF(!memcmp(p, pa, sizeof pa) && s == 0xc004 && b == 0x41f8,
           "case A: %08x %08x %08x %08x s %04x b %04x", p[0], p[1], p[2], p[3], s, b);
    zweight wa = {.dtype = ZDT_U32, .rows = 1, .cols = 32, .data = p, .q = ZQ_AFFINE, .bits = 4,
                  .group = 32, .sdtype = ZDT_BF16, .scales = &s, .biases = &b};
    CHECK(zweight_get(&wa, 0, 0) == 31.0f - 2.0625f * 15.0f); /* bf16(-2.0667) = -2.0625 */
    CHECK(zweight_get(&wa, 0, 31) == 31.0f);

    /* B: w = (j - 20) / 4, |min| wins: scale (2.75 + 5) / 15 -> q0 = round(-5 / .5167) = -10,
     * scale = -5 / -10 = 0.5, bias -5; q = rint(j / 2): 0.5 -> 0, 1.5 -> 2, 2.5 -> 2 (half
     * to even), 15.5 -> 16 clamped to 15 */
    for (int j = 0; j < 32; j++) w[j] = (float)(j - 20) * 0.25f;
    CHECK(zquant_affine_row(w, 32, 4, 32, p, &s, &b));
    const uint32_t pb[4] = {0x43222100u, 0x87666544u, 0xcbaaa988u, 0xffeeedccu};
    CHECKF(!memcmp(p, pb, sizeof pb) && s == 0x3f00 && b == 0xc0a0,
           "case B: %08x %08x %08x %08x s %04x b %04x", p[0], p[1], p[2], p[3], s, b);

    /* C: a constant group: scale = -1e-7 (eps, negated), q0 = -3e7, bias = 3: exact */
    for (int j = 0; j < 32; j++) w[j] = 3.0f;
    CHECK(zquant_affine_row(w, 32, 4, 32, p, &s, &b));
    CHECK(s == 0xb3d7 && b == 0x4040 && p[0] == 0 && p[1] == 0 && p[2] == 0 && p[3] == 0);
    CHECK(zweight_get(&wa, 0, 17) == 3.0f);
    /* D: zeros: q0 = 0 -> bias 0, dequantizes to 0 */
    memset(w, 0, sizeof w);
    CHECK(zquant_affine_row(w, 32, 4, 32, p, &s, &b));
    CHECK(s == 0xb3d7 && b == 0 && p[0] == 0 && zweight_get(&wa, 0, 5) == 0.0f);
    /* bad arguments write nothing */
    CHECK(!zquant_affine_row(w, 32, 7, 32, p, &s, &b) && !zquant_affine_row(w, 48, 4, 32, p, &s, &b) &&
          !zquant_affine_row(w, 32, 4, 16, p, &s, &b) && !zquant_mxfp4_row(w, 48, p, (uint8_t *)&s));
}

static void test_mxfp4_hand(void) {
    /* group 0: max|w| = 6 -> scale 1 (byte 127); ties go to the smaller magnitude
     * (0.25 -> 0, 0.75 -> .5, 1.25 -> 1, 1.75 -> 1.5, 2.5 -> 2, 3.5 -> 3, 5 -> 4, -5 -> -4),
     * -0.25 and -0 -> +0 (the first index), 5.5 -> 6, 0.3 -> .5.
     * group 1: the same / 8: max .75 -> log2(.125) = -3 -> byte 124, same codes.
     * group 2: 8.4 -> s = 1.4, exponent ceil(log2 1.4) = 1 (byte 128): 8.4 / 2 -> 4, and
     * nothing saturates (mx.quantize of mlx 0.32.4 gives these words). */
    float w[96];
    const float g0[32] = {6,    -6,   0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f,  5,     -5,   -0.25f,
                          0.1f, 0,    -0.0f, 0.5f,  -0.5f, 1,     -1,   1.5f,  -1.5f, 2,    -2,
                          3,    -3,   4,     -4,    5.5f,  -5.5f, 0.3f, -0.3f, 6,     -6};
    for (int j = 0; j < 32; j++) {
        w[j] = g0[j];
        w[32 + j] = g0[j] * 0.125f;
        w[64 + j] = j == 0 ? 8.4f : (float)(j - 1) * 0.25f - 4.0f;
    }
    uint32_t p[12];
    uint8_t s[3];
    CHECK(zquant_mxfp4_row(w, 96, p, s));
    const uint32_t want[12] = {0x543210f7u, 0x910000e6u, 0xd5c4b3a2u, 0xf791f7e6u,
                               0x543210f7u, 0x910000e6u, 0xd5c4b3a2u, 0xf791f7e6u,
                               0xabbbbcc6u, 0x09999aaau, 0x11110000u, 0x33332222u};
    CHECKF(!memcmp(p, want, sizeof want) && s[0] == 127 && s[1] == 124 && s[2] == 128,
           "mxfp4 hand case: scales %d %d %d", s[0], s[1], s[2]);
    CHECK(zquant_fp4_code(-0.0f) == 0 && zquant_fp4_code(100.0f) == 7 && zquant_fp4_code(-7.0f) == 15);
    float z[32] = {0};
    CHECK(zquant_mxfp4_row(z, 32, p, s) && s[0] == 127 && p[0] == 0 && p[3] == 0);
}

/* random rows: the rule, the bf16 storage, the error bound */
static void test_roundtrip(void) {
    static const int bits[] = {2, 3, 4, 5, 6, 8}, groups[] = {32, 64, 128};
    enum { COLS = 512 };
    float w[COLS], out[COLS];
    uint32_t p[COLS * 8 / 32];
    uint16_t s[COLS / 32], b[COLS / 32];
    for (int bi = 0; bi < 6; bi++)
        for (int gi = 0; gi < 3; gi++) {
            const int B = bits[bi], G = groups[gi];
            bool rule = true, store = true, err = true, deq = true;
            for (int rep = 0; rep < 8; rep++) {
                float amp = ldexpf(1.0f, (int)rng_int(-12, 4)), off = amp * rng_unif();
                for (int c = 0; c < COLS; c++) w[c] = amp * rng_unif() + off;
                if (rep == 0) w[0] = w[1] = -amp * 3; /* a dominant minimum */
                CHECK(zquant_affine_row(w, COLS, B, G, p, s, b));
                zweight q = {.dtype = ZDT_U32, .rows = 1, .cols = COLS, .data = p, .q = ZQ_AFFINE,
                             .bits = B, .group = G, .sdtype = ZDT_BF16, .scales = s, .biases = b};
                zweight_row_f32(&q, 0, out);
                for (int g = 0; g < COLS / G; g++) {
                    float fs, fb;
                    zquant_affine_params(w + g * G, G, B, &fs, &fb);
                    store &= s[g] == zf32_to_bf16(fs) && b[g] == zf32_to_bf16(fb);
                    for (int i = 0; i < G; i++) {
                        int c = g * G + i;
                        float raw = rintf((w[c] - fb) / fs), nb = (float)((1 << B) - 1);
                        float want = raw < 0 ? 0 : raw > nb ? nb : raw;
                        uint32_t code = zq_code(p, c, B);
                        rule &= (float)code == want;
                        double e = fabs((double)w[c] - ((double)fs * code + fb));
                        err &= e <= fabs((double)fs) * (raw == want ? 0.5 : 1.0) * (1 + 1e-6);
                        deq &= f2u(out[c]) == f2u(zbf16_to_f32(s[g]) * (float)code + zbf16_to_f32(b[g]));
                    }
                }
            }
            CHECKF(rule && store && err && deq, "affine round trip %d-bit g%d: rule %d store %d "
                   "error %d dequant %d", B, G, rule, store, err, deq);
        }
    /* mxfp4: |w - deq| <= half the E2M1 spacing at w / scale, which never exceeds 6 */
    bool ok = true;
    uint8_t e8[COLS / 32];
    for (int rep = 0; rep < 16; rep++) {
        float amp = ldexpf(1.0f, (int)rng_int(-20, 10));
        for (int c = 0; c < COLS; c++) w[c] = amp * rng_unif() * (rng_u64() % 4 ? 1.0f : 0.01f);
        CHECK(zquant_mxfp4_row(w, COLS, p, e8));
        zweight q = {.dtype = ZDT_U32, .rows = 1, .cols = COLS, .data = p, .q = ZQ_MXFP4, .bits = 4,
                     .group = 32, .sdtype = ZDT_U8, .scales = e8};
        zweight_row_f32(&q, 0, out);
        for (int c = 0; c < COLS; c++) {
            double sc = ze8m0_to_f32(e8[c / 32]), v = fabs(w[c]) / sc;
            double half = v <= 2 ? 0.25 : v <= 4 ? 0.5 : 1.0;
            ok &= v <= 6;
            ok &= fabs((double)w[c] - out[c]) <= half * sc * (1 + 1e-6);
        }
    }
    CHECKF(ok, "mxfp4 round trip error");
}

/* ------------------------------------------------------------------ kernels */

typedef struct kernel {
    const char *name;
    zk_rows_fn rows;
} kernel;

static int n_kernels;
static kernel kernels[4];
static void *cpu1, *cpu2;

static void matmul_case(const zweight *w, int64_t n) {
    char nm[64];
    fmt_name(w, nm, sizeof nm);
    const int64_t rows = w->rows, K = w->cols, cnt = n * rows, ng = K / w->group;
    float *x = xmalloc((size_t)(n * K) * sizeof(float));
    for (int64_t i = 0; i < n * K; i++) x[i] = rng_unif();
    double *ex = xmalloc((size_t)cnt * sizeof(double)), *ab = xmalloc((size_t)cnt * sizeof(double));
    exact_q(w, x, n, false, ex, ab);
    const int64_t steps = K + 2 * ng + 8;

    gbuf ref = gbuf_new(cnt), y = gbuf_new(cnt), part = gbuf_new(cnt);
    zop_matmul_ref(w, x, n, ref.p, 0, rows);
    int64_t bad = bound_violation(ref.p, ex, ab, cnt, steps);
    CHECKF(gbuf_guards_ok(&ref) && bad < 0, "ref %s [%lld x %lld] n=%lld: element %lld = %g, exact %g",
           nm, (long long)rows, (long long)K, (long long)n, (long long)bad,
           bad < 0 ? 0.0 : (double)ref.p[bad], bad < 0 ? 0.0 : ex[bad]);
    for (int k = 0; k < n_kernels; k++) {
        gbuf_refill(&y);
        kernels[k].rows(w, x, n, y.p, 0, rows);
        double e = nmse(y.p, ref.p, cnt);
        bad = bound_violation(y.p, ex, ab, cnt, steps);
        CHECKF(gbuf_guards_ok(&y) && e < NMSE_MAX && bad < 0,
               "%s %s [%lld x %lld] n=%lld: guards %d, nmse %.3g, bound violated at %lld",
               kernels[k].name, nm, (long long)rows, (long long)K, (long long)n,
               gbuf_guards_ok(&y), e, (long long)bad);
        /* a partial range writes only its rows, with the full-range values */
        int64_t lo = rng_int(0, rows), hi = rng_int(lo, rows);
        gbuf_refill(&part);
        kernels[k].rows(w, x, n, part.p, lo, hi);
        bool only = true, same = true;
        for (int64_t t = 0; t < n; t++)
            for (int64_t r = 0; r < rows; r++) {
                uint32_t v = f2u(part.p[t * rows + r]);
                if (r < lo || r >= hi) only &= v == CANARY_FILL;
                else same &= v == f2u(y.p[t * rows + r]);
            }
        CHECKF(gbuf_guards_ok(&part) && only && same, "%s %s [%lld x %lld] n=%lld rows [%lld, %lld): "
               "outside %d, same %d", kernels[k].name, nm, (long long)rows, (long long)K,
               (long long)n, (long long)lo, (long long)hi, only, same);
    }
    /* the cpu backend: 1 thread == 2 threads == its kernel over the whole range */
    gbuf y1 = gbuf_new(cnt), y2 = gbuf_new(cnt);
    zmm_job j1 = {.w = *w, .x = x, .y = y1.p, .n = n}, j2 = {.w = *w, .x = x, .y = y2.p, .n = n};
    zbackend_cpu.matmul(cpu1, &j1, 1);
    zbackend_cpu.matmul(cpu2, &j2, 1);
    zk_table sel = zk_select();
    gbuf_refill(&y);
    zk_rows_for(&sel, w)(w, x, n, y.p, 0, rows);
    CHECKF(gbuf_guards_ok(&y1) && gbuf_guards_ok(&y2) && nmse(y1.p, ref.p, cnt) < NMSE_MAX &&
           bits_equal(y1.p, y2.p, cnt) && bits_equal(y1.p, y.p, cnt),
           "cpu backend %s [%lld x %lld] n=%lld: 1 thread %s 2 threads, %s its kernel", nm,
           (long long)rows, (long long)K, (long long)n, bits_equal(y1.p, y2.p, cnt) ? "==" : "!=",
           bits_equal(y1.p, y.p, cnt) ? "==" : "!=");
    free(y1.base);
    free(y2.base);
    free(ref.base);
    free(y.base);
    free(part.base);
    free(ex);
    free(ab);
    free(x);
}

/* Y = X W: the portable kernel is the reference bit for bit; the backend agrees */
static void matmul_t_case(const zweight *w, int64_t n) {
    char nm[64];
    fmt_name(w, nm, sizeof nm);
    const int64_t out = w->cols, K = w->rows, cnt = n * out;
    float *x = xmalloc((size_t)(n * K) * sizeof(float));
    for (int64_t i = 0; i < n * K; i++) x[i] = rng_unif();
    double *ex = xmalloc((size_t)cnt * sizeof(double)), *ab = xmalloc((size_t)cnt * sizeof(double));
    exact_q(w, x, n, true, ex, ab);
    gbuf ref = gbuf_new(cnt), y = gbuf_new(cnt), y1 = gbuf_new(cnt), y2 = gbuf_new(cnt);
    zop_matmul_t_ref(w, x, n, ref.p, 0, out);
    int64_t bad = bound_violation(ref.p, ex, ab, cnt, K + 2);
    zk_qcols_generic(w, x, n, y.p, 0, out);
    zmm_job j1 = {.w = *w, .x = x, .y = y1.p, .n = n}, j2 = {.w = *w, .x = x, .y = y2.p, .n = n};
    zbackend_cpu.matmul_t(cpu1, &j1, 1);
    zbackend_cpu.matmul_t(cpu2, &j2, 1);
    CHECKF(bad < 0 && gbuf_guards_ok(&ref) && gbuf_guards_ok(&y) && bits_equal(y.p, ref.p, cnt) &&
           gbuf_guards_ok(&y1) && gbuf_guards_ok(&y2) && bits_equal(y1.p, y2.p, cnt) &&
           nmse(y1.p, ref.p, cnt) < NMSE_MAX,
           "matmul_t %s [%lld x %lld] n=%lld", nm, (long long)w->rows, (long long)w->cols, (long long)n);
    free(ref.base);
    free(y.base);
    free(y1.base);
    free(y2.base);
    free(ex);
    free(ab);
    free(x);
}

static void test_kernels(void) {
    static const int bits[] = {2, 3, 4, 5, 6, 8}, groups[] = {32, 64, 128};
    static const int64_t rows_list[] = {1, 3, 7, 33, 130}, ns[] = {1, 2, 3, 5};
    for (int f = 0; f <= 18; f++) {
        const bool mx = f == 18;
        const int B = mx ? 4 : bits[f / 3], G = mx ? 32 : groups[f % 3];
        for (size_t ri = 0; ri < sizeof rows_list / sizeof rows_list[0]; ri++) {
            const int64_t cols = G * (ri % 2 ? 3 : 1) * (ri == 4 ? 2 : 1);
            qw q = qw_quantized(mx ? ZQ_MXFP4 : ZQ_AFFINE, B, G, rows_list[ri], cols);
            for (size_t i = 0; i < 4; i++) matmul_case(&q.w, ns[i]);
            if (ri < 3) matmul_t_case(&q.w, 1 + (int64_t)ri);
            qw_free(&q);
        }
        /* a wide row: several tasks in the backend */
        qw q = qw_quantized(mx ? ZQ_MXFP4 : ZQ_AFFINE, B, G, 300, 2048);
        matmul_case(&q.w, 1);
        matmul_case(&q.w, 3);
        qw_free(&q);
    }
    /* F16 and F32 scales and biases */
    for (int b = 0; b < 6; b++) {
        qw h = qw_random(bits[b], 64, ZDT_F16, 13, 192), s = qw_random(bits[b], 32, ZDT_F32, 6, 64);
        matmul_case(&h.w, 1);
        matmul_case(&h.w, 2);
        matmul_case(&s.w, 3);
        matmul_t_case(&h.w, 2);
        qw_free(&h);
        qw_free(&s);
    }
    /* token tiles (ZK_QSUMS / groups tokens at a time) and column chunks (> ZK_QSUMS groups) */
    qw t = qw_quantized(ZQ_AFFINE, 4, 32, 5, 32 * 64);
    matmul_case(&t.w, 40); /* tiles of 16 tokens */
    qw_free(&t);
    qw c = qw_quantized(ZQ_AFFINE, 4, 32, 3, 32 * (ZK_QSUMS + 1));
    matmul_case(&c.w, 1);
    matmul_case(&c.w, 2);
    qw_free(&c);
    qw m = qw_quantized(ZQ_MXFP4, 4, 32, 2, 32 * (ZK_QSUMS + 3));
    matmul_case(&m.w, 2);
    qw_free(&m);
    /* no columns: empty dot products are 0 */
    qw e = qw_quantized(ZQ_AFFINE, 4, 64, 5, 0);
    matmul_case(&e.w, 2);
    qw_free(&e);
}

/* many jobs over row views of one weight (as attention slices kv_b) */
static void test_views_jobs(void) {
    qw q = qw_quantized(ZQ_AFFINE, 4, 64, 40, 128);
    enum { NJ = 600 };
    zmm_job *jobs = calloc(NJ, sizeof *jobs), *jobs2 = calloc(NJ, sizeof *jobs2);
    float *x = xmalloc(NJ * 2 * 128 * sizeof(float));
    for (int i = 0; i < NJ * 2 * 128; i++) x[i] = rng_unif();
    gbuf y1 = gbuf_new(NJ * 16), y2 = gbuf_new(NJ * 16), yk = gbuf_new(NJ * 16);
    zk_table sel = zk_select();
    for (int j = 0; j < NJ; j++) {
        int64_t r0 = j % 31, nr = 1 + j % 8, n = 1 + j % 2;
        zweight v = zweight_rows(&q.w, r0, nr);
        jobs[j] = (zmm_job){.w = v, .x = x + j * 256, .y = y1.p + j * 16, .n = n};
        jobs2[j] = jobs[j];
        jobs2[j].y = y2.p + j * 16;
        zk_rows_for(&sel, &v)(&v, x + j * 256, n, yk.p + j * 16, 0, nr);
    }
    zbackend_cpu.matmul(cpu1, jobs, NJ);
    zbackend_cpu.matmul(cpu2, jobs2, NJ);
    CHECKF(gbuf_guards_ok(&y1) && gbuf_guards_ok(&y2) && bits_equal(y1.p, yk.p, y1.n) &&
           bits_equal(y2.p, yk.p, y2.n), "jobs over row views");
    free(y1.base);
    free(y2.base);
    free(yk.base);
    free(x);
    free(jobs);
    free(jobs2);
    qw_free(&q);
}

static void test_supports(void) {
    qw q = qw_quantized(ZQ_AFFINE, 5, 128, 2, 256);
    zweight bad = q.w;
    bad.group = 48;
    CHECK(zbackend_cpu.supports_weight(&q.w) && zbackend_cpu_ref.supports_weight(&q.w));
    CHECK(!zbackend_cpu.supports_weight(&bad) && !zbackend_cpu_ref.supports_weight(&bad));
    CHECK(zbackend_cpu.supports(ZDT_BF16) && !zbackend_cpu.supports(ZDT_U32));
    zk_table k = zk_select();
    for (int i = 0; i < ZW_COUNT; i++) CHECK(k.rows[i] && k.cols[i]);
    CHECK(zk_rows_for(&k, &bad) == NULL || zweight_kind(&bad) != ZW_COUNT);
    qw_free(&q);
}

int main(void) {
    kernels[n_kernels++] = (kernel){"generic", zk_qrows_generic};
#if defined(ZMLX_HAVE_X86)
    if (!strcmp(zk_select().isa, "avx2")) kernels[n_kernels++] = (kernel){"avx2", zk_qrows_avx2};
    else printf("note: this CPU lacks AVX2/FMA/F16C, the avx2 kernels are not tested\n");
#endif
    if (zbackend_cpu.init(1, &cpu1) != ZMLX_OK || zbackend_cpu.init(2, &cpu2) != ZMLX_OK) {
        fprintf(stderr, "cpu backend failed to start\n");
        return 1;
    }
    printf("kernels: selected %s\n", zk_select().isa);
    test_packing();
    test_check();
    test_rows_slice();
    test_affine_hand();
    test_mxfp4_hand();
    test_roundtrip();
    test_supports();
    test_kernels();
    test_views_jobs();
    printf("largest quantized matmul nmse seen: %.3g (limit %.0e)\n", nmse_seen, NMSE_MAX);
    zbackend_cpu.free(cpu1);
    zbackend_cpu.free(cpu2);
    return tc_done();
}
