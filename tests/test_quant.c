/*
 * test_quant.c — quantized weights (MLX affine 2..8-bit, mxfp4): layout, quantizer
 * and reference dequantizer.
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
 *  - The cpu and cpu-ref backends accept exactly the layouts zweight_check admits.
 * The kernels over these layouts are tested per ISA level in test_kernels.c.
 */
#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "ops/ops.h"
#include "ops/quant.h"
#include "tkern.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
                float amp = ldexpf(1.0f, (int)rng_int(&tk_rng, -12, 4)), off = amp * rng_unif(&tk_rng);
                for (int c = 0; c < COLS; c++) w[c] = amp * rng_unif(&tk_rng) + off;
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
        float amp = ldexpf(1.0f, (int)rng_int(&tk_rng, -20, 10));
        for (int c = 0; c < COLS; c++) w[c] = amp * rng_unif(&tk_rng) * (rng_u64(&tk_rng) % 4 ? 1.0f : 0.01f);
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
    test_packing();
    test_check();
    test_rows_slice();
    test_affine_hand();
    test_mxfp4_hand();
    test_roundtrip();
    test_supports();
    return tc_done();
}
