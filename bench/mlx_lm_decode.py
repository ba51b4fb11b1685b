#!/usr/bin/env python3
"""mlx_lm_decode.py — one mlx-lm decode measurement on the CPU, for bench/cpu_quant_decode.sh
(a benchmark helper, not part of the engine).

    python mlx_lm_decode.py MLX_DIR --prompt-ids 1,2,3 --max-tokens 32 [--dtype float32]
    -> one JSON line: {"engine": "mlx-lm", "decode_tok_s": .., "prefill_tok_s": ..,
       "n_generated": .., "dtype": .., "mlx": version, "mlx_lm": version, "device": "cpu"}

--dtype float32 casts the checkpoint's bf16 parameters (scales, biases, norms, router) to
float32 before decoding: mlx 0.32's CPU quantized matmul is ~10x slower with bf16
activations than with float32 ones (0.03 vs 0.38 GB/s measured on the dev VM), so float32
is mlx-lm's fastest CPU configuration; --dtype model keeps the checkpoint's dtype.

Loads the model only (mlx_lm.utils.load_model: no tokenizer needed), greedy decoding with
mlx_lm.generate.generate_step on mx.cpu.  Decode rate = (tokens - 1) / (time from the first
generated token to the last), as mlx-lm's own generation_tps counts it.

    python mlx_lm_decode.py --make-random CONFIG.json OUT_DIR [--q-bits 4 --q-group-size 64]
writes an MLX checkpoint with that config and random weights, quantized like mlx_lm.convert
(for trying this script before `zmlx convert` can write the builtin model itself).
"""
import argparse
import json
import sys
import time


def measure(args):
    import mlx.core as mx
    import mlx_lm
    from mlx_lm.generate import generate_step
    from mlx_lm.utils import load_model

    mx.set_default_device(mx.cpu)
    model, _ = load_model(__import__("pathlib").Path(args.model))
    if args.dtype == "float32":
        model.set_dtype(mx.float32)
    prompt = mx.array([int(t) for t in args.prompt_ids.split(",")])
    t0 = time.perf_counter()
    stamps = []
    for _tok, _ in generate_step(prompt, model, max_tokens=args.max_tokens):
        stamps.append(time.perf_counter())
    n = len(stamps)
    decode = (n - 1) / (stamps[-1] - stamps[0]) if n > 1 else float("nan")
    prefill = len(prompt) / (stamps[0] - t0) if n else float("nan")
    print(json.dumps({"engine": "mlx-lm", "decode_tok_s": decode, "prefill_tok_s": prefill,
                      "n_generated": n, "dtype": args.dtype, "mlx": mx.__version__,
                      "mlx_lm": mlx_lm.__version__,
                      "device": "cpu"}))


def make_random(args):
    import pathlib

    import mlx.core as mx
    import mlx.nn as nn
    from mlx.utils import tree_flatten, tree_map
    from mlx_lm.utils import _get_classes, save_config

    config = json.load(open(args.make_random))
    model_class, args_class = _get_classes(config=config)
    model = model_class(args_class.from_dict(config))
    mx.random.seed(1234)
    params = tree_map(lambda p: (mx.random.uniform(-1, 1, p.shape) * (3.0 / p.shape[-1]) ** 0.5)
                      .astype(mx.bfloat16) if p.ndim >= 2 else p.astype(mx.bfloat16),
                      model.parameters())
    model.update(params)
    q = {"group_size": args.q_group_size, "bits": args.q_bits, "mode": "affine"}
    nn.quantize(model, group_size=args.q_group_size, bits=args.q_bits,
                class_predicate=lambda p, m: hasattr(m, "to_quantized")
                and m.weight.shape[-1] % args.q_group_size == 0 and not p.endswith("mlp.gate"))
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    weights = dict(tree_flatten(model.parameters()))
    mx.save_safetensors(str(out / "model.safetensors"), weights, metadata={"format": "mlx"})
    config["quantization"] = q
    config["quantization_config"] = q
    save_config(config, config_path=out / "config.json")
    print(f"wrote {out} ({sum(v.nbytes for v in weights.values()) / 1e9:.2f} GB)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?")
    ap.add_argument("--prompt-ids", default="1,2,3,4")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--dtype", choices=("float32", "model"), default="float32")
    ap.add_argument("--make-random", metavar="CONFIG")
    ap.add_argument("out", nargs="?")
    ap.add_argument("--q-bits", type=int, default=4)
    ap.add_argument("--q-group-size", type=int, default=64)
    args = ap.parse_args()
    if args.make_random:
        args.out = args.out or args.model
        if not args.out:
            sys.exit("usage: mlx_lm_decode.py --make-random CONFIG.json OUT_DIR")
        make_random(args)
    elif args.model:
        measure(args)
    else:
        sys.exit("usage: mlx_lm_decode.py MLX_DIR [--prompt-ids ..] [--max-tokens N]")


if __name__ == "__main__":
    main()
