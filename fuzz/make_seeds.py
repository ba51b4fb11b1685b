#!/usr/bin/env python3
"""make_seeds.py — writes the seed corpus of fuzz_safetensors (fuzz/corpus/safetensors):
a few small valid safetensors images and near-misses of each check zst_parse makes.
Run from the repository root; every file stays under 4 KB."""
import json
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "safetensors")


def image(header, data=b"", raw=None):
    h = raw if raw is not None else json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(h)) + h + data


def t(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


SEEDS = {
    "valid_empty": image({}),
    "valid_meta": image({"__metadata__": {"format": "pt"}, "w": t("BF16", [2, 3], 0, 12)},
                        bytes(range(12))),
    "valid_multi": image({"a.bias": t("F32", [4], 0, 16), "b.weight": t("U32", [2, 2], 16, 32),
                          "s": t("I64", [], 32, 40), "z": t("F16", [0, 5], 40, 40),
                          "q": t("F8_E4M3", [1, 1, 1, 1, 1, 1, 1, 8], 40, 48)}, bytes(48)),
    "valid_padded": image(None, bytes(4),
                          raw=b'{"x":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}    '),
    "bad_short": b"\x02\x00\x00",
    "bad_len": struct.pack("<Q", 1 << 40) + b"{}",
    "bad_json": image(None, raw=b'{"x":{"dtype":'),
    "bad_utf8": image(None, bytes(4),
                      raw=b'{"x\xff":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}'),
    "bad_dtype": image({"x": t("Q4", [1], 0, 1)}, bytes(1)),
    "bad_shape": image({"x": t("F32", [-1, 2.5], 0, 4)}, bytes(4)),
    "bad_dims": image({"x": t("U8", [1] * 9, 0, 1)}, bytes(1)),
    "bad_range": image({"x": t("U8", [8], 4, 12)}, bytes(8)),
    "bad_order": image({"x": t("U8", [0], 4, 2)}, bytes(8)),
    "bad_count": image({"x": t("BF16", [2, 3], 0, 10)}, bytes(12)),
    "bad_overflow": image({"x": t("BF16", [1 << 32, 1 << 32], 0, 0)}),
    "bad_overlap": image({"a": t("U8", [8], 0, 8), "b": t("U8", [4], 6, 10)}, bytes(10)),
    "bad_dup": image(None, bytes(2), raw=b'{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                     b'"x":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}'),
    "bad_meta": image({"__metadata__": {"n": 1}}),
    "bad_long": image(None, raw=('{"' + "\u00e9" * 200 + '":{"dtype":"' + "x" * 200 +
                                 '","shape":[],"data_offsets":[0,0]}}').encode()),
    "bad_array": image([1, 2]),
}

os.makedirs(OUT, exist_ok=True)
for name, blob in SEEDS.items():
    assert len(blob) < 4096, name
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(blob)
