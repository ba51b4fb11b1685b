/*
 * quant.h — MLX's quantizers in plain C, one row at a time, writing exactly the
 * layouts model/weight.h reads (MODELS.md 4.3, 4.4): affine ("affine" mode of
 * mx.quantize: packed uint32 stream, bf16 scales and biases) and mxfp4 (E2M1 nibbles,
 * E8M0 scale bytes).  For load-time requantization (mlx-lm's kv_b_proj), quantized
 * builtin models, and tests.  Not a kernel: matching MLX bit for bit comes first.
 */
#ifndef ZMLX_OPS_QUANT_H
#define ZMLX_OPS_QUANT_H

#include "core/dtype.h"

#include <stdbool.h>
#include <stdint.h>

/*
 * MLX affine parameters of one group of `group` floats at `bits` bits, in float32
 * before any rounding to bf16 (mlx/ops.cpp affine_quantize):
 *   scale = max((max - min) / (2^bits - 1), 1e-7), negated unless |min| > |max|;
 *   edge  = min if |min| > |max| else max;  q0 = round(edge / scale);
 *   if q0 != 0: scale = edge / q0, bias = edge;  else bias = 0.
 */
void zquant_affine_params(const float *w, int group, int bits, float *scale, float *bias);

/*
 * Quantize one row of `cols` floats: packed[cols * bits / 32] words, and
 * scales/biases[cols / group] as bf16 bits.  q = clamp(round((w - bias) / scale), 0,
 * 2^bits - 1) with the float32 scale (round half to even, as MLX's rint; NaN -> 0).
 * Returns false (writing nothing) unless bits is 2, 3, 4, 5, 6 or 8, group is 32, 64
 * or 128 and cols is a multiple of group.
 */
bool zquant_affine_row(const float *w, int64_t cols, int bits, int group, uint32_t *packed,
                       uint16_t *scales_bf16, uint16_t *biases_bf16);

/*
 * The same with the scales and biases stored as `sdtype`: ZDT_BF16 (rounded to nearest
 * even) or ZDT_F32 (the float32 values themselves), as mx.quantize returns them in
 * the dtype of the weight it quantizes.  False for any other sdtype.
 */
bool zquant_affine_row_as(const float *w, int64_t cols, int bits, int group, uint32_t *packed,
                          zdtype sdtype, void *scales, void *biases);

/*
 * mxfp4 of one row (group 32), as mx.quantize(mode="mxfp4") of mlx 0.32 on the CPU:
 * per group s = max|w| / 6 (float32); the scale exponent is e = ceil(log2(s)), the
 * smallest with max|w| <= 6 * 2^e (so nothing saturates), computed exactly from s's
 * bits, and 0 when s == 0; scale byte e + 127.  Each element w / 2^e goes to the
 * nearest E2M1 value, ties to the lower table index (argmin over {+0, +.5, .., +6, -0,
 * .., -6}: the smaller magnitude; -0.25 -> +0).  (Measured on mlx 0.32.4; the mlx
 * source at commit 0087b782 rounded the exponent to nearest instead, saturating at 6.)
 * mlx wraps e + 127 into a byte below e = -127 (max|w| < 6 * 2^-127); this clamps.
 * packed[cols / 8], scales[cols / 32].  Returns false unless cols % 32 == 0.
 */
bool zquant_mxfp4_row(const float *w, int64_t cols, uint32_t *packed, uint8_t *scales_e8m0);

/* The E2M1 code (0..15) nearest to v, as above. */
uint32_t zquant_fp4_code(float v);

/*
 * Pack n codes (each < 2^bits, 1 <= bits <= 32) into the little-endian stream of
 * weight.h: code j at stream bits [j*bits, (j+1)*bits).  Writes (zero-fills first)
 * ceil(n * bits / 32) words.
 */
void zquant_pack(const uint32_t *codes, int64_t n, int bits, uint32_t *words);

#endif
