#!/usr/bin/env python3
"""make_tiktoken_seeds.py — writes the seed corpus of fuzz_tiktoken (fuzz/corpus/tiktoken):
even first byte = a tiktoken.model [+ NUL + tokenizer_config.json], valid ones and
near-misses of each load check; odd first byte = text for the kimi-tiny fixture.
Run from the repository root; every file stays under 8 KB."""
import base64
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus", "tiktoken")


def model(extra=b"", n_bytes=256):
    lines = [b"%s %d" % (base64.b64encode(bytes([b])), b) for b in range(n_bytes)]
    return b"\n".join(lines) + b"\n" + extra


def cfg(specials):
    return json.dumps({"added_tokens_decoder": {str(k): {"content": v, "special": True}
                                                for k, v in specials.items()}}).encode()


def kimi_head(limit):
    """The kimi-tiny fixture's tokens of rank < limit (all 256 bytes are among them)."""
    path = os.path.join(ROOT, "tests", "fixtures", "kimi-tiny", "tiktoken.model")
    keep = [l for l in open(path, "rb").read().splitlines() if int(l.split()[1]) < limit]
    return b"\n".join(keep) + b"\n"


MERGES = b"aGU= 256\ndGg= 257\ndGhl 258\nIHQ= 259\n"
SEEDS = {
    "model_bytes": b"0" + model(),
    "model_merges_specials": b"0" + model(MERGES) + b"\0" + cfg({260: "<|im_end|>", 261: "[BOS]"}),
    "model_kimi_head": b"2" + kimi_head(420) + b"\0" + cfg({420: "<|im_end|>", 442: "<think>"}),
    "model_crlf": b"0" + model(MERGES).replace(b"\n", b"\r\n"),
    "bad_base64": b"0" + model(b"YWI 256\n"),
    "bad_padding": b"0" + model(b"YWJ= 256\n"),
    "bad_dup_token": b"0" + model(b"AA== 256\n"),
    "bad_rank_gap": b"0" + model(b"YWI= 300\n"),
    "bad_missing_byte": b"0" + model(n_bytes=200),
    "bad_fields": b"0" + model(b"YWI= 256 x\n"),
    "bad_config_json": b"0" + model() + b"\0{\"added_tokens_decoder\": {",
    "bad_config_prefix": b"0" + model() + b"\0" + cfg({256: "<a>", 257: "<a>b"}),
    "bad_config_dup": b"0" + model() + b"\0" + cfg({256: "<a>", 257: "<a>"}),
    "text_chat": "1<|im_system|>system<|im_middle|>You are Kimi.<|im_end|><|im_user|>user"
                 "<|im_middle|>你好，世界！don't DON'T<|im_end|><|im_assistant|>assistant"
                 "<|im_middle|><think>".encode(),
    "text_mixed": "1HelloWorld HTTPServer 你好abc ÉCOLE's x'ſ ǅemal ก่า नमस्ते 12345 ١٢٣ "
                  "  \n\n\t😀👍🏽 𫜹𮯰𱍐 々〇、。\u3000\u00a0end".encode(),
    "text_invalid_utf8": b"1ok \xff\xfe\xe4\xbd bytes\x80 \xf0\x9f\x98\x80! <|im_e\xffnd|>",
    "text_long_run": b"3" + b"the" * 2000 + b" " * 1500 + b"x",
    "text_specials_only": b"1<|im_end|><|im_end|>[BOS][EOS]<think></think><|reserved_token_1300|>",
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        assert len(data) < 8192, (name, len(data))
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print("%d seeds in %s" % (len(SEEDS), OUT))


if __name__ == "__main__":
    main()
