#!/usr/bin/env python3
"""mlx_ds_check.py — cross-check zmlx on the DeepSeek fixtures against mlx-lm.

Runs the tiny checkpoints fixtures/models/dsv3-tiny (mlx-lm `deepseek_v3`) and
dsv32-tiny (mlx-lm `deepseek_v32`, DSA indexer) through three implementations and
compares them on the golden prompt:

  golden   golden.json, made by Hugging Face transformers 5.17 (float32 arithmetic);
  zmlx     `zmlx generate DIR --prompt-ids ... --max-tokens 40 --ignore-eos
           --precision exact --json --logits-out FILE` (cpu backend, f32 KV cache);
  mlx-lm   the model class of mlx-lm (mlx 0.32.4 CPU, mlx-lm 0.32.2), weights cast to
           float32, greedy with its KV cache.

What this script does to make mlx-lm load the HF-named checkpoints (nothing else):
  * config: the fixtures are written in the transformers-5 dialect, with the rope
    settings in `rope_parameters` {rope_type: yarn, rope_theta, factor, ...}.  mlx-lm's
    deepseek_v3 / deepseek_v32 ModelArgs only read `rope_scaling` and `rope_theta`, so
    without help it would silently run plain RoPE (MODELS.md 1.3 warns about exactly
    this).  The script passes `rope_scaling = rope_parameters` and `rope_theta =
    rope_parameters.rope_theta` as config overrides (mlx_lm.utils.load_model's
    model_config); rope_utils.initialize_rope accepts the `rope_type` key.
  * weights: none renamed.  mlx-lm's own Model.sanitize maps the HF names: it stacks the
    per-expert tensors into switch_mlp and splits kv_b_proj into embed_q / unembed_out.
  * dtype: the stored bf16 weights are cast to float32 after loading
    (model.set_dtype(mx.float32); the router correction bias is float32 on disk), so
    mlx-lm computes in float32 like the golden and zmlx --precision exact.
  * mlx-lm's natural dtype (bf16 activations) cannot be run here: mlx's CPU
    gather_mm (SwitchGLU's expert matmuls) only supports float32
    ("[GatherMM::eval] Currently only supports float32", mlx 0.32.4).

Comparisons, per fixture:
  * greedy tokens (40) of each implementation against the golden ones: matched count
    and first divergence;
  * logits: zmlx's 40 rows vs golden logits_step0 / logits_last; mlx-lm teacher-forced
    on the golden tokens (so all 40 rows are comparable) vs golden and vs zmlx: max
    |diff| and max |diff| / max |ref| per row (worst row reported);
  * prefill argmax at every prompt position (mlx-lm vs golden);
  * for deepseek_v32, mlx-lm again with the indexer's k_norm eps set to 1e-6 (the
    transformers / DeepSeek value zmlx uses) instead of mlx's nn.LayerNorm default
    1e-5, to separate that difference from the rest;
  * the q_a / kv_a norm eps: dsv3-tiny with rms_norm_eps set to 0.05 (weights
    symlinked into a temp dir) through zmlx and mlx-lm, which both keep 1e-6 for
    those two norms; control: mlx-lm with those norms at 0.05 too;
  * Kimi-K2.5's checkpoint layout: dsv3-tiny rewritten as a kimi_k25 checkpoint
    (`language_model.` names, vision tensors, `text_config`), through zmlx and mlx-lm's
    `kimi_k25`, against dsv3-tiny's golden;
  * two controls that must NOT match, showing the comparison can fail: mlx-lm with the
    config as shipped (no rope override: plain RoPE instead of YaRN) and, for
    deepseek_v32, with index_topk = 2^20 (the indexer never selects: dense attention).

Usage: /tmp/mlxenv/bin/python tools/mlx_ds_check.py [--zmlx build/zmlx]
          [--fixtures ../shared/fixtures/models] [--models dsv3-tiny,dsv32-tiny]
          [--json-out FILE]
Exit 0 when zmlx matches the golden (40/40 tokens, logits rel. error <= 1e-4) on every
fixture; the mlx-lm figures are reported, not asserted (they are a second opinion, and
the references differ on purpose in places; see docs/deepseek_v32.md).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

try:
    import mlx.core as mx
    from mlx_lm.models.cache import make_prompt_cache
    from mlx_lm.utils import load_model
except ImportError as exc:  # pragma: no cover - environment problem
    sys.exit(f"mlx_ds_check: needs mlx and mlx-lm (e.g. /tmp/mlxenv/bin/python): {exc}")

ZMLX_TOL = 1e-4  # golden tolerance of tests/test_golden.c (rel. to max |ref|)


def rel_diff(a, ref):
    a = np.asarray(a, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    d = float(np.max(np.abs(a - ref)))
    return d, d / float(np.max(np.abs(ref)))


def rows_diff(a, ref):
    """Worst row of two [n, V] arrays: (max abs diff, max rel diff, row of the worst rel)."""
    worst = (0.0, 0.0, -1)
    for i in range(min(len(a), len(ref))):
        d, r = rel_diff(a[i], ref[i])
        if r > worst[1]:
            worst = (max(worst[0], d), r, i)
        else:
            worst = (max(worst[0], d), worst[1], worst[2])
    return {"max_abs": worst[0], "max_rel": worst[1], "worst_row": worst[2]}


def agree(tokens, ref):
    n = min(len(tokens), len(ref))
    first = next((i for i in range(n) if tokens[i] != ref[i]), None)
    return {"matched": sum(int(tokens[i] == ref[i]) for i in range(n)), "total": len(ref),
            "first_divergence": first}


# ---------------------------------------------------------------- zmlx


def run_zmlx(zmlx, model_dir, prompt, steps):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "logits.f32")
        cmd = [zmlx, "generate", str(model_dir), "--prompt-ids", ",".join(map(str, prompt)),
               "--max-tokens", str(steps), "--ignore-eos", "--precision", "exact", "--json",
               "--logits-out", out]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: exit {res.returncode}: {res.stderr.strip()}")
        j = json.loads(res.stdout)
        logits = np.fromfile(out, dtype="<f4")
    vocab = logits.size // len(j["tokens"])
    return {"tokens": j["tokens"], "logits": logits.reshape(len(j["tokens"]), vocab),
            "patterns": j.get("patterns"), "backend": j.get("backend"),
            "kv_dtype": j.get("kv_dtype")}


# ---------------------------------------------------------------- mlx-lm


def mlx_overrides(config):
    """The config keys mlx-lm needs that the transformers-5 dialect spells differently."""
    over = {}
    rp = config.get("rope_parameters")
    if rp and "rope_scaling" not in config:
        over["rope_scaling"] = dict(rp)
        if "rope_theta" in rp:
            over["rope_theta"] = rp["rope_theta"]
    return over


def load_mlx(model_dir, rope_fix=True, extra=None, k_norm_eps=None):
    """mlx-lm's model of MODEL_DIR in float32.  rope_fix: apply mlx_overrides (the
    controls run without it); extra: more config overrides; k_norm_eps: the indexer's
    LayerNorm eps (None = mlx's default)."""
    config = json.loads((Path(model_dir) / "config.json").read_text())
    over = mlx_overrides(config) if rope_fix else {}
    over.update(extra or {})
    model, _ = load_model(Path(model_dir), model_config=over)
    model.set_dtype(mx.float32)
    if k_norm_eps is not None:
        for layer in model.model.layers:
            layer.self_attn.indexer.k_norm.eps = k_norm_eps
    mx.eval(model.parameters())
    return model, over


def mlx_run(model, prompt, steps, forced=None):
    """Prefill + `steps` decode steps with the KV cache.  Returns the greedy (or forced)
    tokens, the logits row that chose each token [steps, V] in float32, and the prefill
    argmax at every prompt position."""
    cache = make_prompt_cache(model)
    logits = model(mx.array([prompt]), cache=cache).astype(mx.float32)
    mx.eval(logits)
    prefill_argmax = np.array(mx.argmax(logits[0], axis=-1)).tolist()
    row = logits[0, -1]
    rows, toks = [], []
    for i in range(steps):
        rows.append(np.array(row))
        tok = int(forced[i]) if forced is not None else int(np.argmax(rows[-1]))
        toks.append(tok)
        if i + 1 == steps:
            break
        row = model(mx.array([[tok]]), cache=cache).astype(mx.float32)[0, -1]
        mx.eval(row)
    return {"tokens": toks, "logits": np.stack(rows), "prefill_argmax": prefill_argmax}


# ---------------------------------------------------------------- report


def check_model(args, name):
    d = Path(args.fixtures) / name
    golden = json.loads((d / "golden.json").read_text())
    prompt, gtok = golden["prompt_ids"], golden["greedy_tokens"]
    steps = len(gtok)
    g0 = np.array(golden["logits_step0"], dtype=np.float64)
    gl = np.array(golden["logits_last"], dtype=np.float64)
    config = json.loads((d / "config.json").read_text())
    rep = {"model": name, "model_type": config["model_type"], "steps": steps,
           "min_top1_top2_margin": golden.get("min_top1_top2_margin")}

    z = run_zmlx(args.zmlx, d, prompt, steps)
    rep["zmlx"] = {
        "backend": z["backend"], "patterns": z["patterns"], "kv_dtype": z["kv_dtype"],
        "tokens_vs_golden": agree(z["tokens"], gtok),
        "step0_vs_golden": dict(zip(("max_abs", "max_rel"), rel_diff(z["logits"][0], g0))),
        "last_vs_golden": dict(zip(("max_abs", "max_rel"), rel_diff(z["logits"][-1], gl))),
    }

    # (key, rope_fix, extra config, k_norm eps); the last two are controls showing that
    # the comparison is sensitive to what it claims to check
    variants = [("mlx_f32", True, None, None)]
    if config["model_type"] == "deepseek_v32":
        variants.append(("mlx_f32_knorm_eps1e-6", True, None, 1e-6))
        variants.append(("control_dense_indexer", True, {"index_topk": 1 << 20}, None))
    variants.append(("control_config_as_shipped", False, None, None))
    for key, rope_fix, extra, eps in variants:
        model, over = load_mlx(d, rope_fix, extra, eps)
        free = mlx_run(model, prompt, steps)
        forced = mlx_run(model, prompt, steps, forced=gtok)
        rep[key] = {
            "config_overrides": over,
            "k_norm_eps": eps if eps is not None else (
                1e-5 if config["model_type"] == "deepseek_v32" else None),
            "greedy_tokens": free["tokens"],
            "tokens_vs_golden": agree(free["tokens"], gtok),
            "tokens_vs_zmlx": agree(free["tokens"], z["tokens"]),
            "prefill_argmax_vs_golden": agree(free["prefill_argmax"],
                                              golden["prefill_logits_argmax"]),
            "step0_vs_golden": dict(zip(("max_abs", "max_rel"), rel_diff(forced["logits"][0], g0))),
            "last_vs_golden": dict(zip(("max_abs", "max_rel"), rel_diff(forced["logits"][-1], gl))),
            "forced_argmax_vs_golden": agree(
                [int(np.argmax(r)) for r in forced["logits"]], gtok),
            "forced_rows_vs_zmlx": rows_diff(forced["logits"], z["logits"]),
        }
        del model
    return rep


def eps_split_check(args, name, eps=0.05):
    """The q_a / kv_a RMSNorms of deepseek_v3-style models use 1e-6 whatever
    rms_norm_eps says (MODELS.md 3.1; mlx-lm hard-codes it).  With the fixture's config
    at rms_norm_eps = `eps` (the weights symlinked), zmlx must still match mlx-lm; the
    control is mlx-lm with its q_a / kv_a eps also set to `eps`, what an engine that
    used rms_norm_eps there would compute."""
    d = Path(args.fixtures) / name
    golden = json.loads((d / "golden.json").read_text())
    prompt, steps = golden["prompt_ids"], len(golden["greedy_tokens"])
    config = json.loads((d / "config.json").read_text())
    config["rms_norm_eps"] = eps
    rep = {"model": name, "rms_norm_eps": eps}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "config.json").write_text(json.dumps(config))
        os.symlink(d / "model.safetensors", Path(tmp) / "model.safetensors")
        z = run_zmlx(args.zmlx, tmp, prompt, steps)
        for key, attn_eps in (("mlx_attn_eps_1e-6", None), ("control_attn_eps_rms", eps)):
            model, _ = load_mlx(tmp)
            if attn_eps is not None:
                for layer in model.model.layers:
                    layer.self_attn.q_a_layernorm.eps = attn_eps
                    layer.self_attn.kv_a_layernorm.eps = attn_eps
            forced = mlx_run(model, prompt, steps, forced=z["tokens"])
            rep[key] = {"forced_argmax_vs_zmlx": agree(
                [int(np.argmax(r)) for r in forced["logits"]], z["tokens"]),
                "rows_vs_zmlx": rows_diff(forced["logits"], z["logits"])}
    return rep


def print_eps_split(rep):
    print(f"== {rep['model']} with rms_norm_eps {rep['rms_norm_eps']} (q_a / kv_a norms stay at 1e-6)")
    for key in ("mlx_attn_eps_1e-6", "control_attn_eps_rms"):
        m = rep[key]
        v = m["rows_vs_zmlx"]
        print(f"  mlx-lm {key}: argmax {fmt_tokens(m['forced_argmax_vs_zmlx'])} of zmlx's tokens, "
              f"logits max|diff| {v['max_abs']:.3g}, worst rel {v['max_rel']:.3g}")


def kimi_layout_check(args, name="dsv3-tiny"):
    """dsv3-tiny's weights in Kimi-K2.5's checkpoint layout (tests/test_golden.c builds
    the same in C): names prefixed `language_model.`, two vision tensors, the text config
    nested in `text_config` (model_type kimi_k2, rope in the released `rope_scaling`
    dialect, which is how Kimi-K2.5 ships it) under a kimi_k25 top level.  zmlx and
    mlx-lm's `kimi_k25` (its sanitize drops the vision tensors and strips the prefix)
    both load it with no overrides; both must reproduce dsv3-tiny's golden."""
    d = Path(args.fixtures) / name
    golden = json.loads((d / "golden.json").read_text())
    prompt, gtok = golden["prompt_ids"], golden["greedy_tokens"]
    g0 = np.array(golden["logits_step0"], dtype=np.float64)
    text = json.loads((d / "config.json").read_text())
    rp = text.pop("rope_parameters")
    text.update(model_type="kimi_k2", rope_theta=rp["rope_theta"],
                rope_scaling={k: v for k, v in rp.items() if k != "rope_theta"})
    top = {"architectures": ["KimiK25ForConditionalGeneration"], "model_type": "kimi_k25",
           "bos_token_id": 0, "eos_token_id": 1, "text_config": text,
           "vision_config": {"model_type": "kimi_k25_vision"}}
    weights = {"language_model." + k: v for k, v in mx.load(str(d / "model.safetensors")).items()}
    weights["vision_tower.blocks.0.norm0.weight"] = mx.ones((2,), dtype=mx.bfloat16)
    weights["mm_projector.proj.0.weight"] = mx.ones((2,), dtype=mx.bfloat16)
    rep = {"model": f"{name} in the kimi_k25 layout"}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "config.json").write_text(json.dumps(top))
        mx.save_safetensors(str(Path(tmp) / "model.safetensors"), weights)
        z = run_zmlx(args.zmlx, tmp, prompt, len(gtok))
        model, _ = load_model(Path(tmp))
        model.set_dtype(mx.float32)
        forced = mlx_run(model, prompt, len(gtok), forced=gtok)
    rep["zmlx_tokens_vs_golden"] = agree(z["tokens"], gtok)
    rep["zmlx_step0_vs_golden"] = rel_diff(z["logits"][0], g0)[1]
    rep["mlx_type"] = type(model).__module__
    rep["mlx_forced_argmax_vs_golden"] = agree([int(np.argmax(r)) for r in forced["logits"]], gtok)
    rep["mlx_step0_vs_golden"] = rel_diff(forced["logits"][0], g0)[1]
    rep["mlx_rows_vs_zmlx"] = rows_diff(forced["logits"], z["logits"])
    return rep


def print_kimi(rep):
    print(f"== {rep['model']} (mlx-lm {rep['mlx_type']})")
    print(f"  zmlx   tokens vs golden {fmt_tokens(rep['zmlx_tokens_vs_golden'])}, "
          f"step 0 rel {rep['zmlx_step0_vs_golden']:.3g}")
    print(f"  mlx-lm teacher-forced argmax vs golden {fmt_tokens(rep['mlx_forced_argmax_vs_golden'])}, "
          f"step 0 rel {rep['mlx_step0_vs_golden']:.3g}; all rows vs zmlx worst rel "
          f"{rep['mlx_rows_vs_zmlx']['max_rel']:.3g}")


def fmt_tokens(a):
    s = f"{a['matched']}/{a['total']}"
    if a["first_divergence"] is not None:
        s += f" (first divergence at {a['first_divergence']})"
    return s


def print_report(rep):
    print(f"== {rep['model']} ({rep['model_type']}), {rep['steps']} greedy steps, "
          f"golden min top1-top2 margin {rep['min_top1_top2_margin']:.4g}")
    z = rep["zmlx"]
    print(f"  zmlx ({z['backend']}, kv {z['kv_dtype']}, patterns {z['patterns']})")
    print(f"    tokens vs golden        {fmt_tokens(z['tokens_vs_golden'])}")
    for k in ("step0", "last"):
        v = z[f"{k}_vs_golden"]
        print(f"    logits {k:5s} vs golden  max|diff| {v['max_abs']:.3g}  rel {v['max_rel']:.3g}")
    for key in [k for k in rep if k.startswith(("mlx_", "control_"))]:
        m = rep[key]
        print(f"  mlx-lm {key} (k_norm eps {m['k_norm_eps']}, config overrides "
              f"{sorted(m['config_overrides'])})")
        print(f"    greedy tokens vs golden {fmt_tokens(m['tokens_vs_golden'])}")
        print(f"    greedy tokens vs zmlx   {fmt_tokens(m['tokens_vs_zmlx'])}")
        print(f"    prefill argmax vs golden {fmt_tokens(m['prefill_argmax_vs_golden'])}")
        print(f"    teacher-forced argmax vs golden tokens {fmt_tokens(m['forced_argmax_vs_golden'])}")
        for k in ("step0", "last"):
            v = m[f"{k}_vs_golden"]
            print(f"    logits {k:5s} vs golden  max|diff| {v['max_abs']:.3g}  rel {v['max_rel']:.3g}")
        v = m["forced_rows_vs_zmlx"]
        print(f"    logits, all rows vs zmlx max|diff| {v['max_abs']:.3g}  worst rel "
              f"{v['max_rel']:.3g} (row {v['worst_row']})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = Path(__file__).resolve().parent.parent
    ap.add_argument("--zmlx", default=str(root / "build" / "zmlx"))
    ap.add_argument("--fixtures", default=str(
        Path(os.environ.get("ZMLX_SHARED", root.parent / "shared")) / "fixtures" / "models"))
    ap.add_argument("--models", default="dsv3-tiny,dsv32-tiny")
    ap.add_argument("--json-out")
    args = ap.parse_args()
    mx.set_default_device(mx.cpu)

    reports, ok = [], True
    for name in args.models.split(","):
        rep = check_model(args, name)
        reports.append(rep)
        print_report(rep)
        z = rep["zmlx"]
        ok &= (z["tokens_vs_golden"]["matched"] == z["tokens_vs_golden"]["total"]
               and z["step0_vs_golden"]["max_rel"] <= ZMLX_TOL
               and z["last_vs_golden"]["max_rel"] <= ZMLX_TOL)
    split = eps_split_check(args, "dsv3-tiny")
    print_eps_split(split)
    kimi = kimi_layout_check(args)
    print_kimi(kimi)
    ok &= kimi["zmlx_tokens_vs_golden"]["matched"] == kimi["zmlx_tokens_vs_golden"]["total"]
    if args.json_out:
        tmp = args.json_out + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"mlx": mx.__version__, "reports": reports, "eps_split": split,
                       "kimi_layout": kimi}, f, indent=1)
        os.replace(tmp, args.json_out)
    print("zmlx vs golden:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
