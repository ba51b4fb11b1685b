/*
 * test_fp8.c — the fp8 e4m3 block layout (model/weight.h) and its CPU kernels
 * (backend/cpu/fp8.c, fp8_avx2.c):
 *   - all 256 e4m3 codes decode to sign * 2^(e-7) * (1 + m/8) (e > 0), sign * m * 2^-9
 *     (e = 0), NaN for 0x7f / 0xff, computed here with ldexp;
 *   - zweight_check, sizes and zweight_rows views at any first row (brow0), whose
 *     elements are the parent's;
 *   - the rows kernels (portable and, on AVX2 machines, AVX2) against the reference
 *     product for block sizes 1, 7, 32, 128 and shapes with edge blocks, 1..6 tokens,
 *     within 1e-5 of the largest output; each (row, token) value bit-identical whatever
 *     the row range and the token count; the transposed kernel bit-identical to the
 *     reference; the cpu and cpu-ref backends accept the layout.
 */
#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "ops/ops.h"
#include "tcheck.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

static uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static uint32_t rnd(uint32_t *s) {
    *s ^= *s << 13, *s ^= *s >> 17, *s ^= *s << 5;
    return *s;
}

static void test_decode(void) {
    int bad = 0;
    for (int b = 0; b < 256; b++) {
        const int s = b >> 7, e = (b >> 3) & 15, m = b & 7;
        float want = e == 0 ? (float)ldexp(m, -9) : (float)ldexp(1.0 + m / 8.0, e - 7);
        if (s) want = -want;
        float got = zfp8_e4m3_to_f32((uint8_t)b);
        if (e == 15 && m == 7) bad += !isnan(got);
        else bad += f2u(got) != f2u(want);
    }
    CHECKF(bad == 0, "%d e4m3 codes decode wrong", bad);
    CHECK(zfp8_e4m3_to_f32(0x7e) == 448.0f && zfp8_e4m3_to_f32(0x01) == 0x1p-9f);
}

/* A random fp8 weight [R, K] at block B (no NaN codes), scales of dtype sd. */
typedef struct fw {
    zweight w;
    uint8_t *q;
    void *s;
} fw;

static fw fw_make(int64_t R, int64_t K, int B, zdtype sd, uint32_t *seed) {
    fw f;
    const int64_t nbr = (R + B - 1) / B, nbc = (K + B - 1) / B;
    f.q = malloc((size_t)(R * K) + 1);
    f.s = malloc((size_t)(nbr * nbc) * 4 + 4);
    for (int64_t i = 0; i < R * K; i++) {
        uint8_t b = (uint8_t)rnd(seed);
        f.q[i] = (b & 0x7f) == 0x7f ? (uint8_t)(b ^ 1) : b;
    }
    for (int64_t i = 0; i < nbr * nbc; i++) {
        float v = ldexpf(1.0f + (float)(rnd(seed) % 8) / 8.0f, (int)(rnd(seed) % 9) - 12);
        if (sd == ZDT_F32) memcpy((uint8_t *)f.s + 4 * i, &v, 4);
        else {
            uint16_t h = zf32_to_bf16(v);
            memcpy((uint8_t *)f.s + 2 * i, &h, 2);
        }
    }
    f.w = (zweight){.dtype = ZDT_F8_E4M3, .rows = R, .cols = K, .data = f.q, .q = ZQ_FP8_BLOCK,
                    .bits = 8, .group = B, .sdtype = sd, .scales = f.s};
    return f;
}

static void test_layout(void) {
    uint32_t seed = 1;
    fw f = fw_make(70, 45, 32, ZDT_BF16, &seed);
    char why[128];
    CHECKF(zweight_check(&f.w, why, sizeof why), "%s", why);
    CHECK(zweight_kind(&f.w) == ZW_FP8_E4M3 && !strcmp(zwfmt_table[ZW_FP8_E4M3].name, "fp8_e4m3"));
    CHECK(zweight_bytes(&f.w) == 70 * 45 + 3 * 2 * 2);
    CHECK(zbackend_cpu.supports_weight(&f.w) && zbackend_cpu_ref.supports_weight(&f.w));
    zweight bad = f.w;
    bad.biases = f.s;
    CHECK(!zweight_check(&bad, why, sizeof why) && strstr(why, "biases"));
    bad = f.w, bad.group = 0;
    CHECK(!zweight_check(&bad, why, sizeof why));
    bad = f.w, bad.dtype = ZDT_U8;
    CHECK(!zweight_check(&bad, why, sizeof why) && zweight_kind(&bad) == ZW_COUNT);
    bad = f.w, bad.sdtype = ZDT_U8;
    CHECK(!zweight_check(&bad, why, sizeof why));
    bad = f.w, bad.brow0 = 32;
    CHECK(!zweight_check(&bad, why, sizeof why));
    bad = f.w, bad.q = ZQ_NONE, bad.dtype = ZDT_F32, bad.brow0 = 1;
    CHECK(!zweight_check(&bad, why, sizeof why) && strstr(why, "brow0"));
    bool ok = true; /* views at every first row, views of views */
    for (int64_t r0 = 0; r0 < 70; r0 += 3)
        for (int64_t nr = 1; r0 + nr <= 70; nr += 11) {
            zweight v = zweight_rows(&f.w, r0, nr), v2 = zweight_rows(&v, nr / 2, nr - nr / 2);
            ok &= zweight_check(&v, NULL, 0) && zweight_check(&v2, NULL, 0);
            ok &= v.brow0 == (int32_t)(r0 % 32);
            for (int64_t r = 0; r < nr; r++)
                for (int64_t c = 0; c < 45; c += 4) {
                    ok &= f2u(zweight_get(&v, r, c)) == f2u(zweight_get(&f.w, r0 + r, c));
                    if (r >= nr / 2)
                        ok &= f2u(zweight_get(&v2, r - nr / 2, c)) == f2u(zweight_get(&f.w, r0 + r, c));
                }
        }
    CHECK(ok);
    free(f.q);
    free(f.s);
}

typedef struct kernel {
    const char *name;
    zk_rows_fn fn;
} kernel;

static void test_kernels(void) {
    kernel ks[2] = {{"generic", zk_fp8_rows_generic}};
    int nk = 1;
#if defined(ZMLX_HAVE_X86)
    if (strcmp(zk_select().isa, "scalar")) ks[nk++] = (kernel){"avx2", zk_fp8_rows_avx2};
    else printf("note: no AVX2 here, the avx2 fp8 kernel is not tested\n");
#endif
    static const struct {
        int64_t R, K;
        int B;
    } cases[] = {{1, 1, 1}, {5, 37, 7}, {33, 64, 32}, {40, 200, 128}, {129, 131, 128}, {17, 8, 32}, {9, 300, 32}};
    uint32_t seed = 99;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const int64_t R = cases[ci].R, K = cases[ci].K;
        fw f = fw_make(R, K, cases[ci].B, ci % 2 ? ZDT_BF16 : ZDT_F32, &seed);
        const int64_t N = 6;
        float *x = malloc((size_t)(N * (R > K ? R : K)) * sizeof(float));
        for (int64_t i = 0; i < N * (R > K ? R : K); i++) x[i] = (float)(int32_t)rnd(&seed) * 0x1p-31f;
        const size_t ny = (size_t)(N * (R > K ? R : K));
        float *ref = malloc(ny * sizeof(float)), *y = malloc(ny * sizeof(float)), *yk = malloc(ny * sizeof(float));
        zop_matmul_ref(&f.w, x, N, ref, 0, R);
        for (int k = 0; k < nk; k++) {
            ks[k].fn(&f.w, x, N, y, 0, R);
            double mx = 0, md = 0;
            for (int64_t i = 0; i < N * R; i++) mx = fmax(mx, fabs(ref[i])), md = fmax(md, fabs(y[i] - ref[i]));
            CHECKF(md <= 1e-5 * mx, "%s R%lld K%lld B%d: rel err %.3g", ks[k].name, (long long)R,
                   (long long)K, cases[ci].B, md / mx);
            bool same = true; /* any token count, any row range: the same values */
            for (int64_t n = 1; n <= N; n++) {
                const int64_t r0 = n % R, r1 = R - (n % 2 && R > r0 + 1 ? 1 : 0);
                for (int64_t t = 0; t < n; t++)
                    for (int64_t r = r0; r < r1; r++) yk[t * R + r] = NAN;
                ks[k].fn(&f.w, x, n, yk, r0, r1);
                for (int64_t t = 0; t < n; t++)
                    for (int64_t r = r0; r < r1; r++) same &= f2u(yk[t * R + r]) == f2u(y[t * R + r]);
            }
            CHECKF(same, "%s R%lld K%lld: values depend on the row range or token count", ks[k].name,
                   (long long)R, (long long)K);
        }
        zop_matmul_t_ref(&f.w, x, 2, ref, 0, K);
        zk_table sel = zk_select();
        zk_cols_for(&sel, &f.w)(&f.w, x, 2, y, 0, K);
        bool same = true;
        for (int64_t i = 0; i < 2 * K; i++) same &= f2u(y[i]) == f2u(ref[i]);
        CHECKF(same, "cols R%lld K%lld", (long long)R, (long long)K);
        free(x);
        free(ref);
        free(y);
        free(yk);
        free(f.q);
        free(f.s);
    }
}

int main(void) {
    test_decode();
    test_layout();
    test_kernels();
    return tc_done();
}
