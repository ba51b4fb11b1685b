#!/usr/bin/env python3
"""Cross-check `zmlx convert` and zmlx's MLX loading against mlx-lm itself, both ways.

usage: /tmp/mlxenv/bin/python tools/mlx_crosscheck.py [--zmlx build/zmlx]
           [--shared ../shared] [--tokens 40] [--cases PATTERN] [--json-out FILE]
           [--write-fixtures tests/fixtures/mlx]

Needs mlx + mlx-lm (the CPU wheels are enough) for tooling only; zmlx itself never
imports Python.  For every case (a fixture or builtin model x conversion options):

  (a) mlx_lm.convert writes M; zmlx loads M and decodes greedily
      (`zmlx generate M --precision exact --patterns none --ignore-eos --json`); mlx-lm
      decodes M greedily too; the two token streams are compared.
  (b) `zmlx convert` writes Z from the same source; Z's tensors, config.json and index
      are compared with M's byte for byte; mlx-lm loads Z and decodes greedily; its
      tokens are compared with zmlx's own (zmlx on Z, or on the builtin model itself).

Agreement is reported as identical tokens / total, the first divergence and both
engines' top-1 - top-2 logit margins there.  Non-quantized tensors are kept in float32
(--dtype float32) in the main cases so that mlx-lm also computes in float32 (its
activations take the weights' dtype); the bf16 cases show what mlx-lm does by default
(bf16 activations) against zmlx's float32 reference.

mlx-lm 0.32 reads `rope_scaling` / `rope_theta`, not transformers-5's `rope_parameters`:
the DeepSeek fixtures (which only have rope_parameters) get a rope_scaling copy in the
temporary source directory, as the released DeepSeek configs have.  mlx-lm's convert
needs a tokenizer: the fixtures get the matching fixture tokenizer.json.

--write-fixtures DIR copies the M of the cases named in FIXTURE_CASES (config.json,
model.safetensors, index) to DIR/<case>/ with expected.json (prompt ids, mlx-lm's
greedy tokens and margins, versions, options): tests/cli_convert.sh checks them
without Python.
"""
import argparse
import fnmatch
import json
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import mlx.core as mx
import numpy as np

import mlx_lm
from mlx_lm.convert import convert as mlx_convert
from mlx_lm.generate import generate_step
from mlx_lm.utils import load_model

F32 = ["--dtype", "float32"]
OPTIONS = {  # name: (mlx_lm.convert kwargs, zmlx convert args)
    "affine4-g64-f32": (dict(quantize=True, q_bits=4, q_group_size=64, dtype="float32"),
                        ["--q-bits", "4", "--q-group-size", "64"] + F32),
    "affine8-g32-f32": (dict(quantize=True, q_bits=8, q_group_size=32, dtype="float32"),
                        ["--q-bits", "8", "--q-group-size", "32"] + F32),
    "affine3-g128-f32": (dict(quantize=True, q_bits=3, q_group_size=128, dtype="float32"),
                         ["--q-bits", "3", "--q-group-size", "128"] + F32),
    "mxfp4-f32": (dict(quantize=True, q_mode="mxfp4", dtype="float32"),
                  ["--q-mode", "mxfp4"] + F32),
    "dense-f32": (dict(dtype="float32"), ["--no-quant"] + F32),
    "affine4-g64-bf16": (dict(quantize=True, q_bits=4, q_group_size=64),
                         ["--q-bits", "4", "--q-group-size", "64"]),
}
SOURCES = {  # fixture: tokenizer fixture
    "glm47-tiny": "glm-bpe",
    "glm47-tiny-v5": "glm-bpe",
    "dsv3-tiny": "dsv3-bpe",
    "dsv32-tiny": "dsv3-bpe",
    "dsv32-tiny-fp8": "dsv3-bpe",  # dsv32-tiny with DeepSeek's fp8 blocks (made here)
    "kimi-tiny-int4": "dsv3-bpe",  # dsv3-tiny in Kimi-K2.5's layout, int4 experts (made here)
}
BUILTINS = {"builtin:glm47-tiny": [0, 5, 17, 99, 400, 3, 250, 811, 42, 7, 1000, 64],
            "builtin:dsv32-tiny": [0, 5, 17, 99, 400, 3, 250, 811, 42, 7, 1000, 64]}
FIXTURE_CASES = ["glm47-tiny/affine4-g64-f32", "dsv3-tiny/mxfp4-f32"]


def st_tensors(d):
    """name -> (dtype, shape, bytes) over every *.safetensors of d."""
    out = {}
    for f in sorted(Path(d).glob("*.safetensors")):
        b = f.read_bytes()
        (n,) = struct.unpack("<Q", b[:8])
        h = json.loads(b[8:8 + n])
        for k, v in h.items():
            if k != "__metadata__":
                s, e = v["data_offsets"]
                out[k] = (v["dtype"], v["shape"], b[8 + n + s:8 + n + e])
    return out


def compare_dirs(m, z):
    a, b = st_tensors(m), st_tensors(z)
    same = sum(1 for k in a if k in b and a[k] == b[k])
    diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    files = {f: (Path(m, f).read_bytes() == Path(z, f).read_bytes())
             for f in ("config.json", "model.safetensors.index.json")}
    return {"tensors": len(a), "identical": same, "differing": diff[:8], "files_identical": files}


def mlx_greedy(d, ids, n):
    model, _ = load_model(Path(d))
    toks, margins = [], []
    gen = generate_step(mx.array(ids), model, max_tokens=n,
                        sampler=lambda x: mx.argmax(x, axis=-1))
    for (tok, lp), _ in zip(gen, range(n)):
        s = mx.sort(lp.astype(mx.float32))
        toks.append(int(tok))
        margins.append(float(s[-1] - s[-2]))
    return {"tokens": toks, "margins": margins}


def zmlx_greedy(zmlx, model, ids, n, tmp):
    logits = Path(tmp, "logits.bin")
    cmd = [zmlx, "generate", str(model), "--prompt-ids", ",".join(map(str, ids)),
           "--max-tokens", str(n), "--ignore-eos", "--precision", "exact", "--patterns", "none",
           "--json", "--logits-out", str(logits)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        return {"error": r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}"}
    toks = json.loads(r.stdout)["tokens"]
    lg = np.fromfile(logits, dtype="<f4").reshape(len(toks), -1)
    s = np.sort(lg, axis=1)
    return {"tokens": toks, "margins": [float(x) for x in s[:, -1] - s[:, -2]]}


def agreement(x, y):
    """Compare two runs: identical count, first divergence and the margins there."""
    if "error" in x or "error" in y:
        return {"error": x.get("error") or y.get("error")}
    n = min(len(x["tokens"]), len(y["tokens"]))
    same = sum(1 for i in range(n) if x["tokens"][i] == y["tokens"][i])
    first = next((i for i in range(n) if x["tokens"][i] != y["tokens"][i]), None)
    r = {"identical": same, "total": n, "first_divergence": first}
    if first is not None:
        r["margin_at_divergence"] = [x["margins"][first], y["margins"][first]]
    return r


def to_fp8_blocks(src):
    """Rewrite src's attention / MLP / indexer Linear weights as the released DeepSeek-V3.2
    stores them: F8_E4M3 with a float32 weight_scale_inv per 128 x 128 block (powers of
    two, scale_fmt ue8m0); the router, embeddings, norms and weights_proj stay bf16."""
    t = st_tensors(src)
    out = {}
    for k, (dt, shape, raw) in t.items():
        fp8 = (len(shape) == 2 and k.endswith(".weight") and (".self_attn." in k or ".mlp." in k)
               and ".mlp.gate.weight" not in k and "weights_proj" not in k)
        if not fp8:
            out[k] = (dt, shape, raw)
            continue
        w = mx.array(np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(mx.float32)
        w = w.reshape(shape)
        r, c = shape
        sr, sc = (r + 127) // 128, (c + 127) // 128
        wp = mx.pad(w, ((0, sr * 128 - r), (0, sc * 128 - c))).reshape(sr, 128, sc, 128)
        amax = mx.max(mx.abs(wp), axis=(1, 3))
        s = mx.power(2.0, mx.ceil(mx.log2(mx.maximum(amax, 1e-30) / 448.0)))
        q = mx.to_fp8((wp / s[:, None, :, None]).reshape(sr * 128, sc * 128)[:r, :c])
        out[k] = ("F8_E4M3", shape, bytes(np.array(q)))
        out[k + "_scale_inv"] = ("F32", [sr, sc], bytes(np.array(s.astype(mx.float32))))
    write_st(Path(src, "model.safetensors"), out)
    cfg = json.loads(Path(src, "config.json").read_text())
    cfg["quantization_config"] = {"activation_scheme": "dynamic", "fmt": "e4m3",
                                  "quant_method": "fp8", "scale_fmt": "ue8m0",
                                  "weight_block_size": [128, 128]}
    Path(src, "config.json").write_text(json.dumps(cfg, indent=2))


def write_st(path, tensors, fmt="pt"):
    hdr, data = {"__metadata__": {"format": fmt}}, b""
    for k in sorted(tensors):
        dt, shape, raw = tensors[k]
        hdr[k] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    hb = json.dumps(hdr).encode()
    hb += b" " * (-(8 + len(hb)) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(hb)) + hb + data)


def to_kimi_int4(src, shared):
    """Rewrite src (dsv3-tiny) in Kimi-K2.5's layout: a kimi_k25 config with the text model
    in text_config and the released compressed-tensors quantization_config, every tensor
    under `language_model.`, the routed experts as int4 (symmetric, group 32, bf16 scale,
    q + 8 packed 8 per int32, low nibble first) and a stub vision tower to be dropped."""
    out = {}
    for k, (dt, shape, raw) in st_tensors(src).items():
        if ".mlp.experts." not in k:
            out["language_model." + k] = (dt, shape, raw)
            continue
        w = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        w = w.reshape(shape[0], shape[1] // 32, 32)
        amax = np.abs(w).max(axis=2, keepdims=True)
        sc = np.array(mx.array(np.maximum(amax, 1e-8) / 7.0).astype(mx.bfloat16).astype(mx.float32))
        q = np.clip(np.rint(w / sc), -8, 7).astype(np.int64) + 8
        q = q.reshape(shape[0], shape[1] // 8, 8)
        packed = np.zeros((shape[0], shape[1] // 8), np.uint32)
        for i in range(8):
            packed |= (q[:, :, i].astype(np.uint32) << (4 * i))
        base = "language_model." + k[:-len(".weight")]
        sb = (sc.reshape(shape[0], shape[1] // 32).view(np.uint32) >> 16).astype(np.uint16)
        out[base + ".weight_packed"] = ("I32", [shape[0], shape[1] // 8], packed.tobytes())
        out[base + ".weight_scale"] = ("BF16", [shape[0], shape[1] // 32], sb.tobytes())
        out[base + ".weight_shape"] = ("I32", [2], np.array(shape, np.int32).tobytes())
    out["vision_tower.blocks.0.attn.weight"] = ("F32", [2, 2], bytes(16))
    out["mm_projector.proj.weight"] = ("F32", [2], bytes(8))
    write_st(Path(src, "model.safetensors"), out)
    tc = json.loads(Path(src, "config.json").read_text())
    tc["model_type"] = "kimi_k2"
    kimi = json.loads(Path(shared, "fixtures/configs/kimi-k2.5.config.json").read_text())
    cfg = {"architectures": ["KimiK25ForConditionalGeneration"], "model_type": "kimi_k25",
           "text_config": tc, "quantization_config": kimi["quantization_config"],
           "vision_config": {"hidden_size": 8}, "bos_token_id": tc.get("bos_token_id"),
           "eos_token_id": tc.get("eos_token_id"), "tie_word_embeddings": False}
    Path(src, "config.json").write_text(json.dumps(cfg, indent=2))


def prepare_source(shared, fixture, tmp):
    src = Path(tmp, "hf-" + fixture)
    base = {"dsv32-tiny-fp8": "dsv32-tiny", "kimi-tiny-int4": "dsv3-tiny"}.get(fixture, fixture)
    shutil.copytree(Path(shared, "fixtures/models", base), src)
    for p in src.iterdir():
        p.chmod(0o644)
    shutil.copy(Path(shared, "fixtures/tokenizers", SOURCES[fixture], "tokenizer.json"), src)
    cfg = json.loads(Path(src, "config.json").read_text())
    # mlx-lm reads only the released keys; add them as `zmlx convert` does
    rp, types = cfg.get("rope_parameters"), cfg.get("mlp_layer_types")
    if isinstance(rp, dict):
        if "rope_theta" in rp and "rope_theta" not in cfg:
            cfg["rope_theta"] = rp["rope_theta"]
        if rp.get("rope_type", "default") != "default" and cfg.get("rope_scaling") is None:
            cfg["rope_scaling"] = {k: v for k, v in rp.items() if k not in ("rope_theta", "rope_type")}
            cfg["rope_scaling"]["type"] = rp["rope_type"]
    if isinstance(types, list) and "first_k_dense_replace" not in cfg:
        k = next((i for i, t in enumerate(types) if t != "dense"), len(types))
        if all(t == "sparse" for t in types[k:]):
            cfg["first_k_dense_replace"] = k
    Path(src, "config.json").write_text(json.dumps(cfg, indent=2))
    ids = json.loads(Path(src, "golden.json").read_text())["prompt_ids"]
    Path(src, "golden.json").unlink()
    if fixture.endswith("-fp8"):
        to_fp8_blocks(src)
    if fixture.startswith("kimi-"):
        to_kimi_int4(src, shared)
    return src, ids


def fmt_agree(a):
    if "error" in a:
        return "n/a (" + a["error"][:60] + ")"
    s = f"{a['identical']}/{a['total']}"
    if a["first_divergence"] is not None:
        m = a["margin_at_divergence"]
        s += f" (first diff at {a['first_divergence']}, margins {m[0]:.2g} / {m[1]:.2g})"
    return s


def run_case(args, name, src, ids, mlx_kw, zargs, tmp, builtin):
    res = {"case": name, "prompt_ids": ids, "options": zargs}
    m, z = Path(tmp, name.replace("/", "_") + "-mlx"), Path(tmp, name.replace("/", "_") + "-zmlx")
    r = subprocess.run([args.zmlx, "convert", str(src), str(z)] + zargs, capture_output=True, text=True)
    if r.returncode != 0:
        res["error"] = "zmlx convert: " + r.stderr.strip()
        return res
    if not builtin:
        mlx_convert(str(src), str(m), **mlx_kw)
        res["files"] = compare_dirs(m, z)
        res["mlx_on_mlx"] = mlx_greedy(m, ids, args.tokens)
        res["zmlx_on_mlx"] = zmlx_greedy(args.zmlx, m, ids, args.tokens, tmp)
        res["a"] = agreement(res["mlx_on_mlx"], res["zmlx_on_mlx"])
    res["mlx_on_zmlx"] = mlx_greedy(z, ids, args.tokens)
    # zmlx's own tokens for the same weights: the source itself when the export is exact
    # (dense float32 of bf16 weights: the same model), else zmlx on its conversion
    exact = "--no-quant" in zargs
    res["zmlx_ref"] = zmlx_greedy(args.zmlx, src if exact else z, ids, args.tokens, tmp)
    res["b"] = agreement(res["mlx_on_zmlx"], res["zmlx_ref"])
    res["_dirs"] = (m, z)
    return res


def write_fixture(res, out_dir):
    m, _ = res["_dirs"]
    d = Path(out_dir, res["case"].replace("/", "-"))
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    for f in ("config.json", "model.safetensors", "model.safetensors.index.json"):
        shutil.copy(Path(m, f), d)
    exp = {"source": "shared/fixtures/models/" + res["case"].split("/")[0],
           "zmlx_convert_args": res["options"], "prompt_ids": res["prompt_ids"],
           "tokens": res["mlx_on_mlx"]["tokens"], "margins": res["mlx_on_mlx"]["margins"],
           "made_by": f"mlx_lm.convert (mlx-lm {mlx_lm.__version__}, mlx {mx.__version__}), "
                      "greedy tokens from mlx_lm.generate.generate_step on the CPU"}
    Path(d, "expected.json").write_text(json.dumps(exp, indent=1) + "\n")
    print(f"wrote fixture {d}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--zmlx", default="build/zmlx")
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--tokens", type=int, default=40)
    ap.add_argument("--cases", default="*", help="fnmatch pattern over case names")
    ap.add_argument("--json-out")
    ap.add_argument("--write-fixtures")
    args = ap.parse_args()
    args.zmlx = str(Path(args.zmlx).resolve())
    results = []
    print(f"mlx {mx.__version__}, mlx-lm {mlx_lm.__version__}, {args.tokens} greedy tokens\n")
    print("| case | (b) zmlx convert vs mlx_lm.convert | (a) zmlx on mlx-lm's checkpoint "
          "vs mlx-lm | (b) mlx-lm on zmlx's checkpoint vs zmlx |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="zmlx-xcheck-") as tmp:
        cases = []
        for fx in SOURCES:
            for opt in OPTIONS:
                cases.append((f"{fx}/{opt}", fx, opt, False))
        for b in BUILTINS:
            for opt in ("dense-f32", "affine4-g64-f32"):
                cases.append((f"{b}/{opt}", b, opt, True))
        for name, src_name, opt, builtin in cases:
            if not fnmatch.fnmatch(name, args.cases):
                continue
            if builtin:
                src, ids = src_name, BUILTINS[src_name]
            else:
                src, ids = prepare_source(args.shared, src_name, tmp)
            mlx_kw, zargs = OPTIONS[opt]
            res = run_case(args, name, src, ids, mlx_kw, zargs, tmp, builtin)
            results.append(res)
            f = res.get("files")
            differ = [] if f is None else [k for k, v in f["files_identical"].items() if not v]
            files = ("-" if f is None else f"{f['identical']}/{f['tensors']} tensors"
                     + (f" ({', '.join(differ)} differ)" if differ else ""))
            print(f"| {name} | {files} | "
                  f"{fmt_agree(res['a']) if 'a' in res else '-'} | "
                  f"{fmt_agree(res['b']) if 'b' in res else res.get('error', '')} |", flush=True)
            if args.write_fixtures and name in FIXTURE_CASES:
                write_fixture(res, args.write_fixtures)
            if not builtin:
                shutil.rmtree(src)
    if args.json_out:
        for r in results:
            r.pop("_dirs", None)
        Path(args.json_out).write_text(json.dumps(
            {"mlx": mx.__version__, "mlx_lm": mlx_lm.__version__, "results": results}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
