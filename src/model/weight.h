/*
 * weight.h — a matrix as the model stores it: [rows, cols] row-major, either dense
 * (F32, F16, BF16) or quantized (MLX affine 2..8-bit, mxfp4), pointing at mapped or
 * generated memory it does not own.  Y = X W^T is the only product the engine needs
 * (PyTorch Linear layout).  rows and cols are always the LOGICAL (unpacked) sizes.
 *
 * Every layout is one row of zwfmt_table (name, bits, pack unit, reference
 * dequantizer); backends keep parallel tables of fast paths indexed by zwkind.
 * This file is not for kernels: the reference dequantizers here are plain scalar C.
 *
 * Quantized layouts (MODELS.md 4.3, 4.4), one row of `cols` elements:
 *
 *   data:   packed codes, a little-endian bit stream in uint32 words.  Element j sits
 *           at stream bits [j*bits, (j+1)*bits); stream bit n is bit n%32 of word n/32.
 *           Row r starts at word r * cols*bits/32.
 *
 *             4-bit word k:  bit 31                                     0
 *                            [ e7 | e6 | e5 | e4 | e3 | e2 | e1 | e0 ]   e_i = element 8k+i
 *             8-bit word k:  [ e3 | e2 | e1 | e0 ]                        (2-bit: 16 per word)
 *             3-bit, words 0 and 1 (element 10 straddles them):
 *                            word 0: [e10 lo 2 bits | e9 | ... | e1 | e0]
 *                            word 1: [ ...           | e11 | e10 hi 1 bit]
 *             (3-bit: 8 elements per 3 bytes, 5-bit: 8 per 5 bytes, 6-bit: 4 per 3 bytes)
 *
 *   scales: [rows, cols/group] of sdtype; biases the same (affine only).
 *     affine: w = scale * q + bias in float32, q unsigned in [0, 2^bits)
 *     mxfp4:  code = E2M1 nibble (bit 3 sign, bits 0-2 index {0,.5,1,1.5,2,3,4,6}),
 *             scale = E8M0 byte s, 2^(s-127); w = value(code) * scale
 *
 * fp8 block (DeepSeek-V3/V3.2 `weight_scale_inv`, MODELS.md 2.1), B = group:
 *
 *   data:   one e4m3fn byte per element, row-major [rows, cols] (row r at byte r*cols)
 *           byte = [ s | e e e e | m m m ]   bias 7, no infinities, 0x7f/0xff = NaN
 *   scales: [ceil(rows/B), ceil(cols/B)] of sdtype (F32, BF16, F16), one per BxB block;
 *           edge blocks (rows or cols not multiples of B) are simply smaller
 *           w[r][c] = e4m3(data[r][c]) * scales[(r + brow0) / B][c / B]   in float32
 *   brow0:  the row of the first block-row that is row 0 of this weight (0 unless the
 *           weight is a zweight_rows view starting inside a block-row): views may start
 *           at any row, `scales` then points at the block-row holding row 0.
 */
#ifndef ZMLX_MODEL_WEIGHT_H
#define ZMLX_MODEL_WEIGHT_H

#include "core/dtype.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum zqfmt {
    ZQ_NONE = 0, /* dense: `dtype` elements */
    ZQ_AFFINE,   /* MLX affine: scale * q + bias per group */
    ZQ_MXFP4,    /* OCP mxfp4: E2M1 codes, E8M0 scale per 32 */
    ZQ_FP8_BLOCK, /* e4m3 bytes, one float scale per BxB block */
    ZQ_COUNT
} zqfmt;

typedef struct zweight {
    zdtype dtype;       /* dense: F32, F16, BF16; fp8 block: F8_E4M3; other quantized: U32
                           (the packed type), not read */
    int64_t rows, cols; /* logical shape */
    const void *data;   /* dense: rows * cols elements; quantized: packed words, see above */
    /* Zero-initialised below = dense, so `(zweight){.dtype, .rows, .cols, .data}` stays dense. */
    zqfmt q;
    int bits;           /* affine: 2, 3, 4, 5, 6, 8; mxfp4: 4; fp8 block: 8 */
    int group;          /* elements per scale: affine 32, 64, 128; mxfp4 32; fp8 block: the
                           block side B (rows and columns) */
    zdtype sdtype;      /* scales/biases: BF16, F16, F32 (affine, fp8); U8 = E8M0 (mxfp4) */
    const void *scales; /* [rows, cols / group]; fp8: [ceil((brow0+rows)/B), ceil(cols/B)] */
    const void *biases; /* [rows, cols / group], affine only (NULL for mxfp4, fp8) */
    int32_t brow0;      /* fp8 block: row 0's offset inside its block-row (0 elsewhere) */
} zweight;

/* Every supported layout: the index of its row in zwfmt_table. */
typedef enum zwkind {
    ZW_F32 = 0,
    ZW_F16,
    ZW_BF16,
    ZW_AFFINE2,
    ZW_AFFINE3,
    ZW_AFFINE4,
    ZW_AFFINE5,
    ZW_AFFINE6,
    ZW_AFFINE8,
    ZW_MXFP4,
    ZW_FP8_E4M3, /* fp8 e4m3 with BxB block scales */
    ZW_COUNT /* also "no supported layout" */
} zwkind;

/* Reference dequantizer: elements [c0, c0 + n) of row r as float32. */
typedef void (*zw_dequant_fn)(const zweight *w, int64_t r, int64_t c0, int64_t n, float *out);

typedef struct zwfmt {
    const char *name;      /* "bf16", "affine4", "mxfp4" */
    zqfmt q;
    zdtype dtype;          /* dense element type; U32 for packed layouts */
    int bits;              /* bits per element */
    int pack_elems;        /* elements per pack unit (the smallest whole-byte run) */
    int pack_bytes;        /* bytes per pack unit */
    zw_dequant_fn dequant; /* the reference every kernel is tested against */
} zwfmt;

extern const zwfmt zwfmt_table[ZW_COUNT];

/* E2M1 code -> value, sign in bit 3 (index 8 is -0). */
extern const float zfp4_e2m1[16];

/* The layout of w, or ZW_COUNT when w's fields name none (zweight_check says why). */
zwkind zweight_kind(const zweight *w);

/*
 * Is w a layout the engine runs, with consistent fields?  Checks the dtype or the
 * bits/group/sdtype combination, cols % group == 0, (cols * bits) % 32 == 0 (affine,
 * mxfp4; fp8 block weights may have any shape: edge blocks), brow0, the scale/bias
 * pointers, and that the byte size fits int64.  On failure writes a
 * one-line reason into why[n] (when why is not NULL) and returns false.
 */
bool zweight_check(const zweight *w, char *why, size_t n);

/* Bytes of one row: packed data plus its scales and biases (fp8 block: the row's share
   of its block-row's scales, rounded up). */
int64_t zweight_row_bytes(const zweight *w);
/* Bytes of one row of packed data only (cols * bits / 8). */
int64_t zweight_row_data_bytes(const zweight *w);
/* Bytes of the whole matrix: rows * zweight_row_bytes (fp8 block: rows * cols plus every
   block scale the rows touch, exactly). */
int64_t zweight_bytes(const zweight *w);

/* Rows [r0, r0 + n) of w as a weight of its own (no copy): data, scales, biases move
   (fp8 block: scales move to r0's block-row and brow0 keeps r0's offset in it, so any
   r0 works). */
zweight zweight_rows(const zweight *w, int64_t r0, int64_t n);

/* Element (r, c) as float — for reference code and tests, not for hot loops. */
float zweight_get(const zweight *w, int64_t r, int64_t c);
/* Row r converted to float into out[cols]. */
void zweight_row_f32(const zweight *w, int64_t r, float *out);

/* ---- helpers shared by the reference and the CPU kernels ---- */

/* E8M0 byte -> 2^(s-127), as MLX decodes it: 0 -> 2^-127 (subnormal), 255 -> inf. */
static inline float ze8m0_to_f32(uint8_t s) {
    uint32_t u = s == 0 ? 0x00400000u : (uint32_t)s << 23;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Entry i of a scale/bias array of dtype dt (BF16, F16, F32, or U8 = E8M0).  Arrays in a
   safetensors file may be unaligned: read through memcpy. */
static inline float zweight_scale_at(zdtype dt, const void *p, int64_t i) {
    const uint8_t *b = (const uint8_t *)p;
    uint16_t h;
    float f;
    switch (dt) {
    case ZDT_BF16: memcpy(&h, b + 2 * i, 2); return zbf16_to_f32(h);
    case ZDT_F16: memcpy(&h, b + 2 * i, 2); return zf16_to_f32(h);
    case ZDT_U8: return ze8m0_to_f32(b[i]);
    default: memcpy(&f, b + 4 * i, 4); return f;
    }
}

/* e4m3fn byte -> float (exact): bias 7, subnormals m * 2^-9, 0x7f / 0xff NaN, no inf. */
static inline float zfp8_e4m3_to_f32(uint8_t b) {
    const uint32_t sign = (uint32_t)(b & 0x80u) << 24, e = (b >> 3) & 0xfu, m = b & 7u;
    uint32_t u;
    float f;
    if (e == 0xf && m == 7) {
        u = sign | 0x7fc00000u;
    } else if (e == 0) {
        f = (float)m * 0x1p-9f;
        return sign ? -f : f;
    } else {
        u = sign | ((e + 120u) << 23) | (m << 20);
    }
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Word i of a packed stream (memcpy: mapped tensors need not be 4-byte aligned). */
static inline uint32_t zq_word(const void *words, int64_t i) {
    uint32_t v;
    memcpy(&v, (const uint8_t *)words + 4 * i, sizeof v);
    return v;
}

/* Code j (bits wide) of a packed stream; reads the next word only when j straddles. */
static inline uint32_t zq_code(const void *words, int64_t j, int bits) {
    uint64_t o = (uint64_t)j * (uint64_t)bits;
    unsigned sh = (unsigned)(o & 31u);
    uint32_t v = zq_word(words, (int64_t)(o >> 5)) >> sh;
    if (sh + (unsigned)bits > 32u) v |= zq_word(words, (int64_t)(o >> 5) + 1) << (32u - sh);
    return v & ((1u << bits) - 1u);
}

#endif
