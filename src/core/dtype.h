/*
 * dtype.h — the element types a stored tensor may have, as one table
 * (name, bytes per element, whether the engine can compute with it yet).
 * Quantized layouts (MLX affine, mxfp4, fp8 blocks) are built on U32/U8/F8 tensors
 * plus scales; they are described by the weight formats of model/weight.h.
 */
#ifndef ZMLX_CORE_DTYPE_H
#define ZMLX_CORE_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum zdtype {
    ZDT_F32 = 0,
    ZDT_F16,
    ZDT_BF16,
    ZDT_F64,
    ZDT_I64,
    ZDT_I32,
    ZDT_I16,
    ZDT_I8,
    ZDT_U64,
    ZDT_U32,
    ZDT_U16,
    ZDT_U8,
    ZDT_BOOL,
    ZDT_F8_E4M3,
    ZDT_F8_E5M2,
    ZDT_COUNT
} zdtype;

typedef struct zdtype_traits {
    const char *name; /* the safetensors spelling */
    size_t size;      /* bytes per element */
    bool compute;     /* usable as a float weight now */
} zdtype_traits;

extern const zdtype_traits zdtype_table[ZDT_COUNT];

/* Look a safetensors dtype name up; returns false if unknown. */
bool zdtype_from_name(const char *name, size_t len, zdtype *out);

static inline float zbf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Round-to-nearest-even, NaN kept quiet (as torch / mlx round). */
static inline uint16_t zf32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float zf16_to_f32(uint16_t h);

#endif
