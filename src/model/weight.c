/*
 * weight.c — the weight-layout table, validation, sizes and row views, and the
 * reference dequantizers (element access for reference paths and tests).
 * The fast kernels live in backend/cpu/; they are tested against these.
 */
#include "model/weight.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const float zfp4_e2m1[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                             -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

/* ---- reference dequantizers ----
 * Tensors inside a safetensors file need not be aligned to their element size, so
 * elements are read with memcpy (one load on every target we build for). */

static void deq_f32(const zweight *w, int64_t r, int64_t c0, int64_t n, float *out) {
    const uint8_t *p = (const uint8_t *)w->data + ((size_t)r * (size_t)w->cols + (size_t)c0) * 4;
    memcpy(out, p, (size_t)n * sizeof(float));
}

static uint16_t load_u16(const uint8_t *p, int64_t i) {
    uint16_t v;
    memcpy(&v, p + 2 * i, sizeof v);
    return v;
}

static void deq_f16(const zweight *w, int64_t r, int64_t c0, int64_t n, float *out) {
    const uint8_t *p = (const uint8_t *)w->data + ((size_t)r * (size_t)w->cols + (size_t)c0) * 2;
    for (int64_t c = 0; c < n; c++) out[c] = zf16_to_f32(load_u16(p, c));
}

static void deq_bf16(const zweight *w, int64_t r, int64_t c0, int64_t n, float *out) {
    const uint8_t *p = (const uint8_t *)w->data + ((size_t)r * (size_t)w->cols + (size_t)c0) * 2;
    for (int64_t c = 0; c < n; c++) out[c] = zbf16_to_f32(load_u16(p, c));
}

/* w = scale * q + bias, float32, from the stored scale and bias (SYSTEM.md section 1) */
static void deq_affine(const zweight *w, int64_t r, int64_t c0, int64_t n, float *out) {
    const uint8_t *row = (const uint8_t *)w->data + (size_t)r * (size_t)zweight_row_data_bytes(w);
    const int64_t ng = w->cols / w->group;
    for (int64_t c = c0; c < c0 + n; c++) {
        int64_t g = r * ng + c / w->group;
        float s = zweight_scale_at(w->sdtype, w->scales, g);
        float b = zweight_scale_at(w->sdtype, w->biases, g);
        out[c - c0] = s * (float)zq_code(row, c, w->bits) + b;
    }
}

static void deq_mxfp4(const zweight *w, int64_t r, int64_t c0, int64_t n, float *out) {
    const uint8_t *row = (const uint8_t *)w->data + (size_t)r * (size_t)zweight_row_data_bytes(w);
    const int64_t ng = w->cols / 32;
    for (int64_t c = c0; c < c0 + n; c++) {
        float s = ze8m0_to_f32(((const uint8_t *)w->scales)[r * ng + c / 32]);
        out[c - c0] = zfp4_e2m1[zq_code(row, c, 4)] * s;
    }
}

/* fp8 block: e4m3 byte * the float scale of its BxB block (rows counted from brow0) */
static void deq_fp8(const zweight *w, int64_t r, int64_t c0, int64_t n, float *out) {
    const uint8_t *row = (const uint8_t *)w->data + (size_t)r * (size_t)w->cols;
    const int64_t B = w->group, nbc = (w->cols + B - 1) / B, br = (r + w->brow0) / B;
    for (int64_t c = c0; c < c0 + n; c++)
        out[c - c0] = zfp8_e4m3_to_f32(row[c]) * zweight_scale_at(w->sdtype, w->scales, br * nbc + c / B);
}

/* ---- the table: one row per layout ---- */

const zwfmt zwfmt_table[ZW_COUNT] = {
    /*             name       q          dtype     bits elems bytes dequant */
    [ZW_F32] = {"f32", ZQ_NONE, ZDT_F32, 32, 1, 4, deq_f32},
    [ZW_F16] = {"f16", ZQ_NONE, ZDT_F16, 16, 1, 2, deq_f16},
    [ZW_BF16] = {"bf16", ZQ_NONE, ZDT_BF16, 16, 1, 2, deq_bf16},
    [ZW_AFFINE2] = {"affine2", ZQ_AFFINE, ZDT_U32, 2, 16, 4, deq_affine},
    [ZW_AFFINE3] = {"affine3", ZQ_AFFINE, ZDT_U32, 3, 8, 3, deq_affine},
    [ZW_AFFINE4] = {"affine4", ZQ_AFFINE, ZDT_U32, 4, 8, 4, deq_affine},
    [ZW_AFFINE5] = {"affine5", ZQ_AFFINE, ZDT_U32, 5, 8, 5, deq_affine},
    [ZW_AFFINE6] = {"affine6", ZQ_AFFINE, ZDT_U32, 6, 4, 3, deq_affine},
    [ZW_AFFINE8] = {"affine8", ZQ_AFFINE, ZDT_U32, 8, 4, 4, deq_affine},
    [ZW_MXFP4] = {"mxfp4", ZQ_MXFP4, ZDT_U32, 4, 8, 4, deq_mxfp4},
    [ZW_FP8_E4M3] = {"fp8_e4m3", ZQ_FP8_BLOCK, ZDT_F8_E4M3, 8, 1, 1, deq_fp8},
};

zwkind zweight_kind(const zweight *w) {
    switch (w->q) {
    case ZQ_NONE:
        switch (w->dtype) {
        case ZDT_F32: return ZW_F32;
        case ZDT_F16: return ZW_F16;
        case ZDT_BF16: return ZW_BF16;
        default: return ZW_COUNT;
        }
    case ZQ_AFFINE:
        switch (w->bits) {
        case 2: return ZW_AFFINE2;
        case 3: return ZW_AFFINE3;
        case 4: return ZW_AFFINE4;
        case 5: return ZW_AFFINE5;
        case 6: return ZW_AFFINE6;
        case 8: return ZW_AFFINE8;
        default: return ZW_COUNT;
        }
    case ZQ_MXFP4: return w->bits == 4 ? ZW_MXFP4 : ZW_COUNT;
    case ZQ_FP8_BLOCK: return w->bits == 8 && w->dtype == ZDT_F8_E4M3 ? ZW_FP8_E4M3 : ZW_COUNT;
    default: return ZW_COUNT;
    }
}

__attribute__((format(printf, 3, 4))) static bool fail(char *why, size_t n, const char *fmt, ...);

static bool fail(char *why, size_t n, const char *fmt, ...) {
    if (why && n) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, n, fmt, ap);
        va_end(ap);
    }
    return false;
}

bool zweight_check(const zweight *w, char *why, size_t n) {
    if (w->rows < 0 || w->cols < 0)
        return fail(why, n, "negative shape [%lld, %lld]", (long long)w->rows, (long long)w->cols);
    zwkind k = zweight_kind(w);
    if (k == ZW_COUNT) {
        if (w->q == ZQ_NONE)
            return fail(why, n, "dense dtype %s is not a weight type (F32, F16, BF16)",
                        (unsigned)w->dtype < ZDT_COUNT ? zdtype_table[w->dtype].name : "?");
        if (w->q == ZQ_AFFINE)
            return fail(why, n, "affine bits %d unsupported (2, 3, 4, 5, 6, 8)", w->bits);
        if (w->q == ZQ_MXFP4) return fail(why, n, "mxfp4 needs bits 4, not %d", w->bits);
        if (w->q == ZQ_FP8_BLOCK)
            return fail(why, n, "fp8 block needs F8_E4M3 data and bits 8, not %s and %d",
                        (unsigned)w->dtype < ZDT_COUNT ? zdtype_table[w->dtype].name : "?", w->bits);
        return fail(why, n, "unknown quantization format %d", (int)w->q);
    }
    if (w->q != ZQ_FP8_BLOCK && w->brow0 != 0)
        return fail(why, n, "brow0 %d set on a %s weight", (int)w->brow0, zwfmt_table[k].name);
    if (w->q == ZQ_FP8_BLOCK) {
        if (w->group < 1) return fail(why, n, "fp8 block size %d must be >= 1", w->group);
        if (w->brow0 < 0 || w->brow0 >= w->group)
            return fail(why, n, "fp8 brow0 %d outside [0, %d)", (int)w->brow0, w->group);
        if (w->sdtype != ZDT_BF16 && w->sdtype != ZDT_F16 && w->sdtype != ZDT_F32)
            return fail(why, n, "fp8 block scales must be F32, BF16 or F16");
        if (w->rows > 0 && w->cols > 0 && !w->scales) return fail(why, n, "fp8 weight without scales");
        if (w->biases) return fail(why, n, "fp8 block weights have no biases");
        if (w->cols > INT64_MAX / 4) return fail(why, n, "cols %lld too large", (long long)w->cols);
    } else if (w->q != ZQ_NONE) {
        const bool aff = w->q == ZQ_AFFINE;
        if (aff && w->group != 32 && w->group != 64 && w->group != 128)
            return fail(why, n, "affine group size %d unsupported (32, 64, 128)", w->group);
        if (!aff && w->group != 32) return fail(why, n, "mxfp4 group size must be 32, not %d", w->group);
        if (aff && w->sdtype != ZDT_BF16 && w->sdtype != ZDT_F16 && w->sdtype != ZDT_F32)
            return fail(why, n, "affine scales must be BF16, F16 or F32");
        if (!aff && w->sdtype != ZDT_U8) return fail(why, n, "mxfp4 scales must be U8 (E8M0)");
        if (w->cols % w->group != 0)
            return fail(why, n, "cols %lld not a multiple of the group size %d", (long long)w->cols,
                        w->group);
        if (w->cols > (INT64_MAX >> 4) || (w->cols * w->bits) % 32 != 0)
            return fail(why, n, "cols %lld x %d bits is not a whole number of uint32 words",
                        (long long)w->cols, w->bits);
        if (w->rows > 0 && w->cols > 0 && (!w->scales || (aff && !w->biases)))
            return fail(why, n, "%s", aff ? "affine weight without scales or biases"
                                          : "mxfp4 weight without scales");
        if (!aff && w->biases) return fail(why, n, "mxfp4 has no biases");
    } else if (w->cols > INT64_MAX / 4) {
        return fail(why, n, "cols %lld too large", (long long)w->cols);
    }
    int64_t rb = zweight_row_bytes(w);
    if (w->rows > 0 && rb > 0 && w->rows > INT64_MAX / rb)
        return fail(why, n, "[%lld, %lld] too large", (long long)w->rows, (long long)w->cols);
    if (w->rows > 0 && w->cols > 0 && !w->data) return fail(why, n, "no data");
    return true;
}

int64_t zweight_row_data_bytes(const zweight *w) {
    zwkind k = zweight_kind(w);
    if (k == ZW_COUNT) return 0;
    return w->cols / zwfmt_table[k].pack_elems * zwfmt_table[k].pack_bytes;
}

/* bytes of one row's scales (and again of its biases); fp8 block: of one block-row */
static int64_t row_scale_bytes(const zweight *w) {
    if (w->q == ZQ_NONE || w->group <= 0) return 0;
    int64_t per = w->q == ZQ_FP8_BLOCK ? (w->cols + w->group - 1) / w->group : w->cols / w->group;
    return per * (int64_t)zdtype_table[w->sdtype].size;
}

int64_t zweight_row_bytes(const zweight *w) {
    if (w->q == ZQ_FP8_BLOCK) /* the row's share of its block-row's scales */
        return w->group > 0 ? w->cols + (row_scale_bytes(w) + w->group - 1) / w->group : 0;
    return zweight_row_data_bytes(w) + row_scale_bytes(w) * (w->q == ZQ_AFFINE ? 2 : 1);
}

int64_t zweight_bytes(const zweight *w) {
    if (w->q == ZQ_FP8_BLOCK) { /* every block-row the rows touch */
        if (w->group <= 0 || w->rows <= 0) return 0;
        int64_t nbr = (w->brow0 + w->rows + w->group - 1) / w->group;
        return w->rows * w->cols + nbr * row_scale_bytes(w);
    }
    return w->rows * zweight_row_bytes(w);
}

zweight zweight_rows(const zweight *w, int64_t r0, int64_t n) {
    zweight v = *w;
    v.rows = n;
    v.data = (const uint8_t *)w->data + (size_t)r0 * (size_t)zweight_row_data_bytes(w);
    if (w->q == ZQ_FP8_BLOCK && w->group > 0) {
        int64_t r = w->brow0 + r0;
        v.scales = (const uint8_t *)w->scales + (size_t)(r / w->group) * (size_t)row_scale_bytes(w);
        v.brow0 = (int32_t)(r % w->group);
    } else if (w->q != ZQ_NONE) {
        size_t sb = (size_t)r0 * (size_t)row_scale_bytes(w);
        v.scales = (const uint8_t *)w->scales + sb;
        if (w->biases) v.biases = (const uint8_t *)w->biases + sb;
    }
    return v;
}

float zweight_get(const zweight *w, int64_t r, int64_t c) {
    size_t i = (size_t)r * (size_t)w->cols + (size_t)c;
    if (w->q == ZQ_NONE) { /* the dense fast path of the reference matmul */
        switch (w->dtype) {
        case ZDT_F32: {
            float f;
            memcpy(&f, (const uint8_t *)w->data + 4 * i, sizeof f);
            return f;
        }
        case ZDT_BF16: return zbf16_to_f32(load_u16(w->data, (int64_t)i));
        case ZDT_F16: return zf16_to_f32(load_u16(w->data, (int64_t)i));
        default: return 0.0f; /* zweight_check refuses the others */
        }
    }
    zwkind k = zweight_kind(w);
    float v = 0.0f;
    if (k != ZW_COUNT) zwfmt_table[k].dequant(w, r, c, 1, &v);
    return v;
}

void zweight_row_f32(const zweight *w, int64_t r, float *out) {
    zwkind k = zweight_kind(w);
    if (k != ZW_COUNT) {
        zwfmt_table[k].dequant(w, r, 0, w->cols, out);
        return;
    }
    for (int64_t c = 0; c < w->cols; c++) out[c] = 0.0f;
}
