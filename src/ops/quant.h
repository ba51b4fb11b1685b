/*
 * quant.h — MLX's quantizers in plain C, one row at a time, writing exactly the
 * layouts model/weight.h reads (MODELS.md 4.3, 4.4): affine ("affine" mode of
 * mx.quantize: packed uint32 stream, bf16 scales and biases) and mxfp4 (E2M1 nibbles,
 * E8M0 scale bytes).  For load-time requantization (mlx-lm's kv_b_proj), quantized
 * builtin models, and tests.  Not a kernel: matching MLX bit for bit comes first.
 */
#ifndef ZMLX_OPS_QUANT_H
#define ZMLX_OPS_QUANT_H

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
 * mxfp4 of one row (group 32), as mlx/ops.cpp fp_quantize: per group
 * s = max|w| / 6; e = round(log2(s)) (0 when s == 0), clamped to [-127, 127];
 * scale byte e + 127; each element w / 2^e goes to the nearest E2M1 value, ties to
 * the lower table index (argmin over {+0, +.5, .., +6, -0, .., -6}: the smaller
 * magnitude), saturating at +-6 (max|w| / 2^e can reach 6 * sqrt(2)).
 * Computed in float32 (MLX divides and takes log2 in the weight's dtype, so bf16
 * inputs may differ in rare groups whose log2 sits at a rounding boundary).
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
