/*
 * test_quant_mlx.c — the quantizers of ops/quant.h against mx.quantize itself: the
 * committed fixture tests/fixtures/mlx/quant/quant.safetensors (written by
 * tools/mlx_quant_fixture.py with mlx 0.32.4) holds 12 rows of 256 floats (edge
 * cases: dominant minima, constant and zero groups, E2M1 ties, group maxima just above
 * 6 * 2^k) in float32 and bfloat16, and mlx's packed words, scales and biases for
 * affine 2/3/4/5/6/8-bit x group 32/64/128 and for mxfp4.  Every byte must match:
 * this is what makes `zmlx convert` write what mlx-lm writes.
 */
#include "io/safetensors.h"
#include "ops/quant.h"
#include "tcheck.h"

#include <stdbool.h>
#include <stdint.h>

static const zst_tensor *get(const zst_archive *a, const char *name) {
    const zst_tensor *t = zst_find(a, name);
    CHECKF(t != NULL, "fixture tensor %s missing", name);
    return t;
}

/* Row r of x.<src> as float. */
static void row_f32(const zst_tensor *x, int64_t r, float *out) {
    int64_t C = x->shape[1];
    for (int64_t c = 0; c < C; c++) {
        if (x->dtype == ZDT_F32) {
            memcpy(&out[c], x->data + 4 * (r * C + c), 4);
        } else {
            uint16_t h;
            memcpy(&h, x->data + 2 * (r * C + c), 2);
            out[c] = zbf16_to_f32(h);
        }
    }
}

/* Compare `n` bytes of row r (row_bytes each) of fixture tensor t with got. */
static bool same_row(const zst_tensor *t, int64_t r, const void *got, size_t row_bytes) {
    return t && t->nbytes == (uint64_t)t->shape[0] * row_bytes &&
           memcmp(t->data + (size_t)r * row_bytes, got, row_bytes) == 0;
}

static void test_affine(const zst_archive *a, const char *src) {
    char name[96];
    snprintf(name, sizeof name, "x.%s", src);
    const zst_tensor *x = get(a, name);
    if (!x) return;
    const int64_t R = x->shape[0], C = x->shape[1];
    const zdtype sdt = x->dtype; /* mlx returns scales in the weight's dtype */
    const size_t ss = zdtype_table[sdt].size;
    float *row = malloc((size_t)C * sizeof *row);
    uint32_t *packed = malloc((size_t)C);
    uint8_t *sc = malloc((size_t)C * 4), *bi = malloc((size_t)C * 4);
    static const int bits[] = {2, 3, 4, 5, 6, 8}, groups[] = {32, 64, 128};
    for (int bi_ = 0; bi_ < 6; bi_++)
        for (int gi = 0; gi < 3; gi++) {
            const int B = bits[bi_], G = groups[gi];
            char p[64];
            snprintf(p, sizeof p, "affine.b%d.g%d.%s", B, G, src);
            snprintf(name, sizeof name, "%s.weight", p);
            const zst_tensor *tw = get(a, name);
            snprintf(name, sizeof name, "%s.scales", p);
            const zst_tensor *ts = get(a, name);
            snprintf(name, sizeof name, "%s.biases", p);
            const zst_tensor *tb = get(a, name);
            int bad_w = 0, bad_s = 0, bad_b = 0;
            for (int64_t r = 0; r < R; r++) {
                row_f32(x, r, row);
                CHECK(zquant_affine_row_as(row, C, B, G, packed, sdt, sc, bi));
                bad_w += !same_row(tw, r, packed, (size_t)(C * B / 8));
                bad_s += !(ts && ts->dtype == sdt && same_row(ts, r, sc, (size_t)(C / G) * ss));
                bad_b += !(tb && tb->dtype == sdt && same_row(tb, r, bi, (size_t)(C / G) * ss));
            }
            CHECKF(bad_w + bad_s + bad_b == 0,
                   "%s: rows differing from mx.quantize: weight %d, scales %d, biases %d", p,
                   bad_w, bad_s, bad_b);
        }
    free(row);
    free(packed);
    free(sc);
    free(bi);
}

static void test_mxfp4(const zst_archive *a, const char *src) {
    char name[96];
    snprintf(name, sizeof name, "x.%s", src);
    const zst_tensor *x = get(a, name);
    snprintf(name, sizeof name, "mxfp4.%s.weight", src);
    const zst_tensor *tw = get(a, name);
    snprintf(name, sizeof name, "mxfp4.%s.scales", src);
    const zst_tensor *ts = get(a, name);
    if (!x) return;
    const int64_t R = x->shape[0], C = x->shape[1];
    float *row = malloc((size_t)C * sizeof *row);
    uint32_t *packed = malloc((size_t)C / 2);
    uint8_t *sc = malloc((size_t)C / 32);
    int bad_w = 0, bad_s = 0;
    for (int64_t r = 0; r < R; r++) {
        row_f32(x, r, row);
        CHECK(zquant_mxfp4_row(row, C, packed, sc));
        bad_w += !same_row(tw, r, packed, (size_t)C / 2);
        bad_s += !(ts && ts->dtype == ZDT_U8 && same_row(ts, r, sc, (size_t)C / 32));
    }
    CHECKF(bad_w + bad_s == 0, "mxfp4 from %s: rows differing from mx.quantize: weight %d, scales %d",
           src, bad_w, bad_s);
    free(row);
    free(packed);
    free(sc);
}

int main(void) {
    const char *root = getenv("ZMLX_SRC");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/mlx/quant", root ? root : "..");
    zst_archive *a;
    zerr e = {{0}};
    if (zst_open(dir, &a, &e) != ZMLX_OK) {
        CHECKF(false, "%s", e.msg);
        return tc_done();
    }
    test_affine(a, "f32");
    test_affine(a, "bf16");
    test_mxfp4(a, "f32");
    test_mxfp4(a, "bf16");
    uint16_t s, b;
    float w[64] = {0};
    uint32_t p[8];
    CHECK(!zquant_affine_row_as(w, 64, 4, 64, p, ZDT_F16, &s, &b)); /* only BF16 / F32 */
    zst_close(a);
    return tc_done();
}
