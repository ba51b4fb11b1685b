/* weight.c — element access for stored matrices (reference paths and tests). */
#include "model/weight.h"

float zweight_get(const zweight *w, int64_t r, int64_t c) {
    size_t i = (size_t)r * (size_t)w->cols + (size_t)c;
    switch (w->dtype) {
    case ZDT_F32: return ((const float *)w->data)[i];
    case ZDT_BF16: return zbf16_to_f32(((const uint16_t *)w->data)[i]);
    case ZDT_F16: return zf16_to_f32(((const uint16_t *)w->data)[i]);
    default: return 0.0f; /* the loader admits only the types above */
    }
}

void zweight_row_f32(const zweight *w, int64_t r, float *out) {
    size_t base = (size_t)r * (size_t)w->cols;
    switch (w->dtype) {
    case ZDT_F32: {
        const float *p = (const float *)w->data + base;
        for (int64_t c = 0; c < w->cols; c++) out[c] = p[c];
        break;
    }
    case ZDT_BF16: {
        const uint16_t *p = (const uint16_t *)w->data + base;
        for (int64_t c = 0; c < w->cols; c++) out[c] = zbf16_to_f32(p[c]);
        break;
    }
    case ZDT_F16: {
        const uint16_t *p = (const uint16_t *)w->data + base;
        for (int64_t c = 0; c < w->cols; c++) out[c] = zf16_to_f32(p[c]);
        break;
    }
    default:
        for (int64_t c = 0; c < w->cols; c++) out[c] = 0.0f;
        break;
    }
}
