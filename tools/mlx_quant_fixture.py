#!/usr/bin/env python3
"""Write tests/fixtures/mlx/quant/quant.safetensors: mx.quantize outputs for test_quant_mlx.c.

usage: /tmp/mlxenv/bin/python tools/mlx_quant_fixture.py OUT.safetensors

Needs mlx (the CPU wheel is enough).  The input rows mix distributions that exercise
the quantizers' edges: gaussian and uniform weights at several scales, rows with a
dominant minimum (affine picks the min edge), constant and all-zero groups, exact
E2M1 ties (0.25, 0.75, ... 5 times a power of two, either sign) and group maxima just
above 6 * 2^k (the mxfp4 exponent rounds up).  Stored tensors:
  x.f32 [R, C] float32, x.bf16 [R, C] bfloat16 (the same values rounded)
  affine.b{bits}.g{group}.{f32|bf16}.{weight,scales,biases}   mx.quantize of x.<src>
  mxfp4.{f32|bf16}.{weight,scales}                            mode="mxfp4"
The scales/biases keep mlx's dtype: float32 from x.f32, bfloat16 from x.bf16.
"""
import sys

import mlx.core as mx
import numpy as np

R, C = 12, 256


def rows():
    rng = np.random.default_rng(20240611)
    x = np.zeros((R, C), np.float32)
    x[0] = rng.standard_normal(C) * 0.02
    x[1] = rng.uniform(-1, 1, C)
    x[2] = rng.standard_normal(C) * 300.0
    x[3] = rng.standard_normal(C) * 1e-5
    x[4] = rng.uniform(0.1, 0.9, C)          # all positive: bias = min side
    x[5] = rng.standard_normal(C); x[5, ::17] = -9.0  # dominant minimum
    x[6, :64] = 0.375; x[6, 64:128] = 0.0; x[6, 128:] = rng.standard_normal(128)
    ties = np.array([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 6.0], np.float32)
    x[7] = np.tile(np.concatenate([ties, -ties, ties * 0.5, -ties * 0.25]), C // 32)
    for k in range(C // 32):  # group maxima just above 6 * 2^k
        g = rng.standard_normal(32).astype(np.float32)
        m = np.float32(6.0 * 2.0 ** (k - 4))
        g = g / np.abs(g).max() * m
        g[0] = np.nextafter(m, np.float32(np.inf))
        x[8, k * 32:(k + 1) * 32] = g
    x[9] = rng.integers(-16, 17, C).astype(np.float32) * 0.125
    x[10] = rng.standard_normal(C) * np.exp(rng.uniform(-6, 3, C))
    x[11] = rng.laplace(0, 0.05, C)
    return x


def main():
    out = sys.argv[1]
    x = rows()
    t = {"x.f32": mx.array(x), "x.bf16": mx.array(x).astype(mx.bfloat16)}
    for src in ("f32", "bf16"):
        xs = t["x." + src]
        for bits in (2, 3, 4, 5, 6, 8):
            for g in (32, 64, 128):
                w, s, b = mx.quantize(xs, group_size=g, bits=bits)
                p = f"affine.b{bits}.g{g}.{src}"
                t[p + ".weight"], t[p + ".scales"], t[p + ".biases"] = w, s, b
        w, s = mx.quantize(xs, group_size=32, bits=4, mode="mxfp4")
        t[f"mxfp4.{src}.weight"], t[f"mxfp4.{src}.scales"] = w, s
    mx.save_safetensors(out, t, metadata={"format": "mlx", "mlx": mx.__version__})
    print(f"wrote {out}: {len(t)} tensors, mlx {mx.__version__}")


if __name__ == "__main__":
    main()
