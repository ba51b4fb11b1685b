/*
 * weight.h — a matrix as the model stores it: [rows, cols] row-major in its stored
 * dtype (F32, F16, BF16 for now), pointing at mapped or generated memory it does not
 * own.  Y = X W^T is the only product the engine needs (PyTorch Linear layout).
 * Quantized formats (MLX affine, mxfp4, fp8 blocks) will extend this struct with
 * scales and biases; the kernels dispatch on `dtype`.
 */
#ifndef ZMLX_MODEL_WEIGHT_H
#define ZMLX_MODEL_WEIGHT_H

#include "core/dtype.h"

#include <stdint.h>

typedef struct zweight {
    zdtype dtype;
    int64_t rows, cols;
    const void *data; /* rows * cols elements, row-major */
} zweight;

/* Rows [r0, r0 + n) of w as a weight of its own (no copy). */
static inline zweight zweight_rows(const zweight *w, int64_t r0, int64_t n) {
    zweight v = *w;
    v.rows = n;
    v.data = (const uint8_t *)w->data + (size_t)r0 * (size_t)w->cols * zdtype_table[w->dtype].size;
    return v;
}

static inline int64_t zweight_bytes(const zweight *w) {
    return w->rows * w->cols * (int64_t)zdtype_table[w->dtype].size;
}

/* Element (r, c) as float — for reference code and tests, not for hot loops. */
float zweight_get(const zweight *w, int64_t r, int64_t c);
/* Row r converted to float into out[cols]. */
void zweight_row_f32(const zweight *w, int64_t r, float *out);

#endif
