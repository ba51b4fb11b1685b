#!/usr/bin/env python3
"""Make the quantized-checkpoint fixtures of tests/fixtures/quant/ (test_load_quant.c).

Run with the mlx venv (numpy, safetensors, mlx, mlx-lm):
    /tmp/mlxenv/bin/python tests/make_quant_fixtures.py [--shared ../shared] [--out tests/fixtures/quant]

What it writes (all small; the C tests need no Python):
  glm-mlx-affine4/, glm-mlx-mxfp4/
      A 2-layer, 128-token GLM-4.7-Flash-style model cut from fixtures/models/glm47-tiny
      (layer 0 dense, layer 1 MoE with experts 0..3, top-2; vocab rows 0..127), converted by mlx-lm's own
      `mlx_lm.convert -q` (affine 4-bit group 64, and mxfp4) with --dtype float32, so the
      checkpoints carry mlx-lm's real layout: stacked `switch_mlp` experts, split MLA
      `embed_q` / `unembed_out` (embed_q stays dense at group 64: its 32 columns are not a
      multiple of 64), quantized embed_tokens / lm_head, dense router.  golden.json holds
      mlx-lm's own greedy decode of that converted model in float32 (prompt, 12 tokens,
      first and last step logits, prefill argmax) in the format of the shared goldens.
  tensors/model.safetensors + tensors/tensors.json
      fp8 e4m3 block tensors with edge blocks ("fp8a" 136 x 140 with block 128 and F32
      scales, "fp8b" 70 x 45 with block 32 and BF16 scales) and compressed-tensors int4
      tensors ("int4a" 24 x 72 (72 % 32 != 0), "int4b" 16 x 40, "int4c" 12 x 64, group 32,
      BF16 scales), each with its float32 dequantized reference "<name>.ref" computed
      here in numpy (e4m3 decoded independently of the engine).  tensors.json lists them
      (the test binds them through the loader's resolver via a per-tensor config).
  dsv32-fp8/, dsv32-fp8-ref/
      A 2-layer DeepSeek-V3.2 model (indexer included; weights cut from
      fixtures/models/dsv32-tiny, hidden 48, vocab 96) with every Linear but lm_head and
      the indexer's weights_proj in fp8 e4m3, weight_block_size [32, 32], power-of-two F32
      scales (scale_fmt ue8m0), and its dequantized twin: the same values stored as bf16,
      which holds them exactly (a 3-bit-mantissa e4m3 times a power of two).
  kimi-int4/, kimi-int4-ref/
      A 2-layer Kimi-K2.5-layout model (kimi_k25 config with text_config, tensors under
      `language_model.`, the released compressed-tensors quantization_config verbatim:
      routed experts int4 group 32 symmetric, everything in `ignore` bf16), weights cut
      from fixtures/models/dsv3-tiny (hidden 64, 4 experts; moe_intermediate 48 so down_proj
      has 48 columns, not a multiple of 32); its twin stores the dequantized experts as float16,
      which holds bf16 scale * (q - 8) exactly.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import mlx.core as mx
from safetensors.numpy import save_file

RNG = np.random.default_rng(20260115)


def load_f32(path):
    w = mx.load(path)
    return {k: np.array(v.astype(mx.float32)) for k, v in w.items()}


def bf16_bits(a):
    """float32 -> bf16 bit patterns (round to nearest even), as uint16."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def bf16_round(a):
    return (bf16_bits(a).astype(np.uint32) << 16).view(np.float32)


def save_st(path, tensors, dtypes):
    """safetensors with explicit dtypes: numpy arrays plus {name: "BF16" | "F8_E4M3"} for
    the types numpy lacks (given as uint16 / uint8 bit patterns)."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        dt = dtypes.get(name) or {np.float32: "F32", np.float16: "F16", np.int32: "I32",
                                  np.int64: "I64", np.uint32: "U32", np.uint8: "U8"}[a.dtype.type]
        b = a.tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(len(h).to_bytes(8, "little") + h + b"".join(blobs))
    os.replace(path + ".tmp", path)


def write_json(path, obj):
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")
    os.replace(path + ".tmp", path)


# ---------------------------------------------------------------- e4m3 and int4

def e4m3_table():
    """The 256 e4m3fn values (bias 7, subnormals m * 2^-9, 0x7f / 0xff NaN)."""
    t = np.zeros(256, np.float64)
    for b in range(256):
        s, e, m = b >> 7, (b >> 3) & 15, b & 7
        if e == 15 and m == 7:
            v = np.nan
        elif e == 0:
            v = m * 2.0 ** -9
        else:
            v = (1 + m / 8) * 2.0 ** (e - 7)
        t[b] = -v if s else v
    return t


E4M3 = e4m3_table()
E4M3_FINITE = np.array([b for b in range(256) if not np.isnan(E4M3[b])])


def to_e4m3(x):
    """Nearest finite e4m3 code of each value (saturating at +-448)."""
    vals = E4M3[E4M3_FINITE]
    idx = np.abs(x.reshape(-1, 1) - vals.reshape(1, -1)).argmin(axis=1)
    return E4M3_FINITE[idx].astype(np.uint8).reshape(x.shape)


def fp8_block(w, B):
    """w [R, C] -> (e4m3 codes, power-of-two F32 scale_inv [ceil(R/B), ceil(C/B)], ref)."""
    R, C = w.shape
    nbr, nbc = -(-R // B), -(-C // B)
    s = np.zeros((nbr, nbc), np.float32)
    q = np.zeros((R, C), np.uint8)
    for i in range(nbr):
        for j in range(nbc):
            blk = w[i * B:(i + 1) * B, j * B:(j + 1) * B]
            amax = float(np.abs(blk).max()) or 1.0
            s[i, j] = 2.0 ** np.ceil(np.log2(amax / 448.0))  # ue8m0: powers of two
            q[i * B:(i + 1) * B, j * B:(j + 1) * B] = to_e4m3(blk / s[i, j])
    rows = np.arange(R) // B
    cols = np.arange(C) // B
    ref = (E4M3[q] * s[rows][:, cols].astype(np.float64)).astype(np.float32)
    # the e4m3 table above agrees with mlx's own decoder
    assert np.array_equal(np.array(mx.from_fp8(mx.array(q), dtype=mx.float32)),
                          E4M3[q].astype(np.float32))
    return q, s, ref


def int_sym(w, bits=4, group=32):
    """compressed-tensors symmetric int: (weight_packed I32 [R, ceil(C*bits/32)],
    bf16 scale bits [R, ceil(C/group)], float32 ref = scale * (q - off))."""
    R, C = w.shape
    off = 1 << (bits - 1)
    ng = -(-C // group)
    scale = np.zeros((R, ng), np.float32)
    qs = np.zeros((R, C), np.int64)
    for g in range(ng):
        blk = w[:, g * group:(g + 1) * group]
        sc = bf16_round(np.maximum(np.abs(blk).max(axis=1), 1e-8) / off)
        scale[:, g] = sc
        qs[:, g * group:(g + 1) * group] = np.clip(np.round(blk / sc[:, None]), -off, off - 1)
    u = (qs + off).astype(np.uint64)  # offset codes, element j at stream bits j*bits
    words = -(-C * bits // 32)
    packed = np.zeros((R, words), np.uint64)
    for j in range(C):
        bit = j * bits
        packed[:, bit // 32] |= (u[:, j] << np.uint64(bit % 32)) & np.uint64(0xFFFFFFFF)
        if bit % 32 + bits > 32:
            packed[:, bit // 32 + 1] |= u[:, j] >> np.uint64(32 - bit % 32)
    ref = (scale[:, np.arange(C) // group].astype(np.float64) * qs).astype(np.float32)
    if bits == 4:  # unpacked again the plain way: nibble i of word k is element 8k + i
        p32 = packed.astype(np.uint32)
        nib = np.stack([(p32 >> np.uint32(4 * i)) & np.uint32(15) for i in range(8)], axis=2)
        assert np.array_equal(nib.reshape(R, -1)[:, :C].astype(np.int64) - off, qs)
    return packed.astype(np.uint32).view(np.int32), bf16_bits(scale), ref


# ---------------------------------------------------------------- tensors

def make_tensors(out):
    t, dt, listing = {}, {}, {}
    for name, (R, C, B, sd) in {"fp8a": (136, 140, 128, "F32"), "fp8b": (70, 45, 32, "BF16")}.items():
        w = (RNG.standard_normal((R, C)) * np.exp(RNG.uniform(-6, 2, (R, 1)))).astype(np.float32)
        w[0, :5] = [0.0, -0.0, 1e-30, 2.0 ** -9 * 3, -448.0]  # zeros, subnormal codes, max
        q, s, ref = fp8_block(w, B)
        t[f"{name}.weight"] = q
        dt[f"{name}.weight"] = "F8_E4M3"
        if sd == "BF16":
            t[f"{name}.weight_scale_inv"] = bf16_bits(s)
            dt[f"{name}.weight_scale_inv"] = "BF16"
        else:
            t[f"{name}.weight_scale_inv"] = s
        t[f"{name}.ref"] = ref
        listing[name] = {"layout": "fp8", "rows": R, "cols": C, "block": B}
    for name, (R, C) in {"int4a": (24, 72), "int4b": (16, 40), "int4c": (12, 64)}.items():
        w = RNG.standard_normal((R, C)).astype(np.float32) * 0.05
        pk, sc, ref = int_sym(w)
        t[f"{name}.weight_packed"] = pk
        t[f"{name}.weight_scale"] = sc
        dt[f"{name}.weight_scale"] = "BF16"
        t[f"{name}.weight_shape"] = np.array([R, C], np.int32)
        t[f"{name}.ref"] = ref
        listing[name] = {"layout": "int4", "rows": R, "cols": C, "group": 32}
    d = os.path.join(out, "tensors")
    os.makedirs(d, exist_ok=True)
    save_st(os.path.join(d, "model.safetensors"), t, dt)
    write_json(os.path.join(d, "tensors.json"), listing)


# ---------------------------------------------------------------- MLX (mlx-lm convert)

def glm_small(shared, dst):
    """glm47-tiny cut to 2 layers, 4 experts (top-2) and 128 vocabulary rows, bf16, HF names."""
    src = os.path.join(shared, "fixtures/models/glm47-tiny")
    cfg = json.load(open(os.path.join(src, "config.json")))
    cfg.update(num_hidden_layers=2, vocab_size=128, n_routed_experts=4, num_experts_per_tok=2)
    w = mx.load(os.path.join(src, "model.safetensors"))
    keep = {}
    for k, v in w.items():
        if k.startswith("model.layers.") and int(k.split(".")[2]) >= 2:
            continue
        if ".mlp.experts." in k and int(k.split(".")[5]) >= 4:
            continue
        if k in ("model.embed_tokens.weight", "lm_head.weight"):
            v = v[:128]
        if k.endswith("mlp.gate.weight") or k.endswith("e_score_correction_bias"):
            v = v[:4]
        keep[k] = v
    os.makedirs(dst, exist_ok=True)
    mx.save_safetensors(os.path.join(dst, "model.safetensors"), keep)
    write_json(os.path.join(dst, "config.json"), cfg)
    tok = os.path.join(shared, "fixtures/tokenizers/glm-bpe/tokenizer.json")
    shutil.copy(tok, os.path.join(dst, "tokenizer.json"))
    write_json(os.path.join(dst, "tokenizer_config.json"), {"tokenizer_class": "PreTrainedTokenizerFast"})


def mlx_convert(hf, out, args):
    if os.path.exists(out):
        shutil.rmtree(out)
    subprocess.run([sys.executable, "-m", "mlx_lm", "convert", "--hf-path", hf, "--mlx-path", out,
                    "--dtype", "float32", "-q"] + args, check=True, stdout=subprocess.DEVNULL)


def mlx_golden(model_dir, prompt, n):
    """mlx-lm's greedy decode of the converted model (float32 throughout)."""
    from mlx_lm.models.cache import make_prompt_cache
    from mlx_lm.utils import load_model
    from pathlib import Path
    model, _ = load_model(Path(model_dir))
    cache = make_prompt_cache(model)
    logits = model(mx.array(prompt)[None], cache=cache)[0].astype(mx.float32)
    mx.eval(logits)
    prefill_argmax = [int(i) for i in mx.argmax(logits, axis=-1).tolist()]
    last = logits[-1]
    step0 = [float(v) for v in last.tolist()]
    toks = []
    for _ in range(n):
        t = int(mx.argmax(last).item())
        toks.append(t)
        if len(toks) == n:
            break
        last = model(mx.array([[t]]), cache=cache)[0, -1].astype(mx.float32)
    return {"prompt_ids": prompt, "greedy_tokens": toks, "prefill_logits_argmax": prefill_argmax,
            "logits_step0": step0, "logits_last": [float(v) for v in last.tolist()],
            "source": "mlx-lm %s (mlx %s), float32, greedy, KV cache" % (
                __import__("mlx_lm").__version__, mx.__version__)}


def make_mlx(shared, out, tmp):
    hf = os.path.join(tmp, "glm-small")
    glm_small(shared, hf)
    prompt = [3, 17, 42, 99, 120, 100, 5, 77, 125, 31]
    for name, args in {"glm-mlx-affine4": ["--q-bits", "4", "--q-group-size", "64"],
                       "glm-mlx-mxfp4": ["--q-mode", "mxfp4"]}.items():
        conv = os.path.join(tmp, name)
        mlx_convert(hf, conv, args)
        dst = os.path.join(out, name)
        if os.path.exists(dst):
            shutil.rmtree(dst)
        os.makedirs(dst)
        for f in ("config.json", "model.safetensors"):  # tokenizer files are not needed
            shutil.copy(os.path.join(conv, f), os.path.join(dst, f))
        write_json(os.path.join(dst, "golden.json"), mlx_golden(dst, prompt, 12))


# ---------------------------------------------------------------- micro DeepSeek models

MICRO = dict(hidden_size=48, num_attention_heads=2, num_key_value_heads=2, q_lora_rank=40,
             kv_lora_rank=40, qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16,
             intermediate_size=72, moe_intermediate_size=40, n_routed_experts=8,
             num_experts_per_tok=2, n_shared_experts=1, num_hidden_layers=2, vocab_size=96,
             bos_token_id=0, eos_token_id=1)


def ds_shapes(c, v32):
    """{name: shape} of a DeepSeek-style model with config c (HF names, no prefix)."""
    d, H, E = c["hidden_size"], c["num_attention_heads"], c["n_routed_experts"]
    nope, rope, v = c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"]
    ql, kl, I, mI = c["q_lora_rank"], c["kv_lora_rank"], c["intermediate_size"], c["moe_intermediate_size"]
    s = {"model.embed_tokens.weight": (c["vocab_size"], d), "lm_head.weight": (c["vocab_size"], d),
         "model.norm.weight": (d,)}
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        s.update({p + "input_layernorm.weight": (d,), p + "post_attention_layernorm.weight": (d,),
                  p + "self_attn.q_a_proj.weight": (ql, d), p + "self_attn.q_a_layernorm.weight": (ql,),
                  p + "self_attn.q_b_proj.weight": (H * (nope + rope), ql),
                  p + "self_attn.kv_a_proj_with_mqa.weight": (kl + rope, d),
                  p + "self_attn.kv_a_layernorm.weight": (kl,),
                  p + "self_attn.kv_b_proj.weight": (H * (nope + v), kl),
                  p + "self_attn.o_proj.weight": (d, H * v)})
        if v32:
            nI, dI = c["index_n_heads"], c["index_head_dim"]
            s.update({p + "self_attn.indexer.wq_b.weight": (nI * dI, ql),
                      p + "self_attn.indexer.wk.weight": (dI, d),
                      p + "self_attn.indexer.k_norm.weight": (dI,),
                      p + "self_attn.indexer.k_norm.bias": (dI,),
                      p + "self_attn.indexer.weights_proj.weight": (nI, d)})
        if l == 0:
            s.update({p + "mlp.gate_proj.weight": (I, d), p + "mlp.up_proj.weight": (I, d),
                      p + "mlp.down_proj.weight": (d, I)})
            continue
        s.update({p + "mlp.gate.weight": (E, d), p + "mlp.gate.e_score_correction_bias": (E,)})
        for e in range(E):
            q = p + f"mlp.experts.{e}."
            s.update({q + "gate_proj.weight": (mI, d), q + "up_proj.weight": (mI, d),
                      q + "down_proj.weight": (d, mI)})
        sI = mI * c["n_shared_experts"]
        s.update({p + "mlp.shared_experts.gate_proj.weight": (sI, d),
                  p + "mlp.shared_experts.up_proj.weight": (sI, d),
                  p + "mlp.shared_experts.down_proj.weight": (d, sI)})
    return s


def cut(src, shapes):
    """Each tensor of `shapes` as the leading block of the same-named source tensor."""
    out = {}
    for k, shp in shapes.items():
        a = src[k]
        out[k] = np.ascontiguousarray(a[tuple(slice(0, n) for n in shp)]).astype(np.float32)
        assert out[k].shape == tuple(shp), (k, a.shape, shp)
    return out


def store(w, bf16_names=None):
    """float32 arrays -> (tensors, dtypes): BF16 except the correction bias (F32)."""
    t, dt = {}, {}
    for k, a in w.items():
        if k.endswith("e_score_correction_bias"):
            t[k] = a
        else:
            assert np.array_equal(bf16_round(a), a), k  # the values are bf16 already
            t[k], dt[k] = bf16_bits(a), "BF16"
    return t, dt


def make_fp8(shared, out):
    src = load_f32(os.path.join(shared, "fixtures/models/dsv32-tiny/model.safetensors"))
    cfg = json.load(open(os.path.join(shared, "fixtures/models/dsv32-tiny/config.json")))
    cfg.update(MICRO, index_n_heads=4, index_head_dim=16, index_topk=4, mlp_layer_types=["dense", "sparse"],
               layer_types=["deepseek_sparse_attention"] * 2, n_group=4, topk_group=2)
    w = cut(src, ds_shapes(cfg, True))
    B = 32
    dense_only = ("lm_head.weight", "embed_tokens.weight", "mlp.gate.weight", "weights_proj.weight")
    qt, qdt = store({k: a for k, a in w.items() if a.ndim == 1 or k.endswith(dense_only)})
    twin = dict(w)
    for k, a in w.items():
        if a.ndim == 2 and not k.endswith(dense_only):
            q, sc, ref = fp8_block(a, B)
            qt[k], qdt[k] = q, "F8_E4M3"
            qt[k + "_scale_inv"] = sc
            twin[k] = ref
    tt, tdt = store(twin)  # e4m3 * 2^k is exact in bf16
    for name, (t, dt, qc) in {"dsv32-fp8": (qt, qdt, True), "dsv32-fp8-ref": (tt, tdt, False)}.items():
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        c = dict(cfg)
        if qc:
            c["quantization_config"] = {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                                        "scale_fmt": "ue8m0", "weight_block_size": [B, B]}
        save_st(os.path.join(d, "model.safetensors"), t, dt)
        write_json(os.path.join(d, "config.json"), c)


def make_int4(shared, out):
    src = load_f32(os.path.join(shared, "fixtures/models/dsv3-tiny/model.safetensors"))
    kimi = json.load(open(os.path.join(shared, "fixtures/configs/kimi-k2.5.config.json")))
    tc = dict(kimi["text_config"])
    tc.update(MICRO, hidden_size=64, moe_intermediate_size=48, n_routed_experts=4, n_group=1,
              topk_group=1, pad_token_id=None, max_position_embeddings=4096)
    tc.pop("quantization_config")
    w = cut(src, ds_shapes(tc, False))
    qt, qdt = store({k: a for k, a in w.items() if ".experts." not in k})
    twin_t, twin_dt = dict(qt), dict(qdt)
    for k, a in w.items():
        if ".experts." in k:
            pk, sc, ref = int_sym(a)
            base = k[: -len(".weight")]
            qt[base + ".weight_packed"] = pk
            qt[base + ".weight_scale"], qdt[base + ".weight_scale"] = sc, "BF16"
            qt[base + ".weight_shape"] = np.array(a.shape, np.int32)
            assert np.array_equal(ref.astype(np.float16).astype(np.float32), ref), k
            twin_t[k] = ref.astype(np.float16)  # bf16 scale * (q - 8): exact in f16
    for name, (t, dt, qc) in {"kimi-int4": (qt, qdt, True), "kimi-int4-ref": (twin_t, twin_dt, False)}.items():
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        c = {k: v for k, v in kimi.items() if k not in ("vision_config", "quantization_config")}
        c.update(bos_token_id=0, eos_token_id=1, pad_token_id=None, text_config=tc)
        if qc:
            c["quantization_config"] = kimi["quantization_config"]
        save_st(os.path.join(d, "model.safetensors"), {"language_model." + k: v for k, v in t.items()},
                {"language_model." + k: v for k, v in dt.items()})
        write_json(os.path.join(d, "config.json"), c)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--shared", default=os.path.join(here, "../../shared"))
    ap.add_argument("--out", default=os.path.join(here, "fixtures/quant"))
    ap.add_argument("--only", default="", help="comma list: tensors,mlx,fp8,int4")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    only = set(a.only.split(",")) if a.only else {"tensors", "mlx", "fp8", "int4"}
    with tempfile.TemporaryDirectory() as tmp:
        if "tensors" in only:
            make_tensors(a.out)
        if "mlx" in only:
            make_mlx(a.shared, a.out, tmp)
        if "fp8" in only:
            make_fp8(a.shared, a.out)
        if "int4" in only:
            make_int4(a.shared, a.out)


if __name__ == "__main__":
    main()
