#!/usr/bin/env python3
"""Write variants of a safetensors checkpoint directory for the CLI loader tests.

usage: st_variants.py SRC_DIR OUT_DIR

Each variant is OUT_DIR/<name>/ with config.json and model.safetensors (or shards):
  sharded       the same tensors split over two shards + model.safetensors.index.json
  mtp           an extra MTP layer model.layers.<n_layers>.* (must be ignored)
  truncated     the file cut in the middle of the data section
  hdr_too_long  the 8-byte header length points past the end of the file
  bad_offsets   one tensor's data_offsets end past the data section
  overlap       two tensors' byte ranges overlap
  bytecount     one tensor's shape disagrees with its byte count
  missing       one tensor removed from the header (its bytes stay)
  bad_json      the header is not valid JSON
  non_utf8      a tensor name with bytes that are not UTF-8
  bad_config    config.json is not valid JSON
  other_type    config.json says model_type qwen3_moe (not a supported family)
Standard library only: it edits headers and copies bytes, no torch.
"""
import json, os, shutil, struct, sys


def read(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def write(path, header, data, raw_header=None):
    h = raw_header if raw_header is not None else json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def variant(src, out, name):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    shutil.copy(os.path.join(src, "config.json"), d)
    return d


def main():
    src, out = sys.argv[1], sys.argv[2]
    header, data = read(os.path.join(src, "model.safetensors"))
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    names = sorted(tensors)
    cfg = json.load(open(os.path.join(src, "config.json")))

    # sharded: re-pack into two files
    d = variant(src, out, "sharded")
    weight_map = {}
    for i, part in enumerate((names[: len(names) // 2], names[len(names) // 2:])):
        fname = "model-%05d-of-00002.safetensors" % (i + 1)
        h, blob, off = {}, b"", 0
        for k in part:
            b, e = tensors[k]["data_offsets"]
            chunk = data[b:e]
            h[k] = {"dtype": tensors[k]["dtype"], "shape": tensors[k]["shape"],
                    "data_offsets": [off, off + len(chunk)]}
            blob += chunk
            off += len(chunk)
            weight_map[k] = fname
        write(os.path.join(d, fname), h, blob)
    json.dump({"metadata": {}, "weight_map": weight_map}, open(os.path.join(d, "model.safetensors.index.json"), "w"))

    # mtp: one extra layer's worth of tensors appended (copies of layer 1's)
    d = variant(src, out, "mtp")
    h, blob = dict(header), data
    n = cfg["num_hidden_layers"]
    for k in names:
        if k.startswith("model.layers.1."):
            b, e = tensors[k]["data_offsets"]
            nk = k.replace("model.layers.1.", "model.layers.%d." % n, 1)
            h[nk] = {"dtype": tensors[k]["dtype"], "shape": tensors[k]["shape"],
                     "data_offsets": [len(blob), len(blob) + e - b]}
            blob += data[b:e]
    h["model.layers.%d.eh_proj.weight" % n] = {"dtype": "BF16", "shape": [2], "data_offsets": [len(blob), len(blob) + 4]}
    blob += b"\0\0\0\0"
    write(os.path.join(d, "model.safetensors"), h, blob)

    d = variant(src, out, "truncated")
    write(os.path.join(d, "model.safetensors"), header, data[: len(data) // 2])

    d = variant(src, out, "hdr_too_long")
    hb = json.dumps(header).encode()
    with open(os.path.join(d, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hb) + len(data) + 100) + hb + data)

    victim = "model.layers.0.self_attn.o_proj.weight"
    d = variant(src, out, "bad_offsets")
    h = json.loads(json.dumps(header))
    b, e = h[victim]["data_offsets"]
    h[victim]["data_offsets"] = [len(data) - (e - b) + 64, len(data) + 64]
    write(os.path.join(d, "model.safetensors"), h, data)

    d = variant(src, out, "overlap")
    h = json.loads(json.dumps(header))
    other = "model.layers.0.self_attn.q_a_proj.weight"
    h[victim]["data_offsets"] = list(h[other]["data_offsets"])
    h[victim]["shape"] = list(h[other]["shape"])
    write(os.path.join(d, "model.safetensors"), h, data)

    d = variant(src, out, "bytecount")
    h = json.loads(json.dumps(header))
    h[victim]["shape"] = [h[victim]["shape"][0], h[victim]["shape"][1] + 1]
    write(os.path.join(d, "model.safetensors"), h, data)

    d = variant(src, out, "missing")
    h = json.loads(json.dumps(header))
    del h[victim]
    write(os.path.join(d, "model.safetensors"), h, data)

    d = variant(src, out, "bad_json")
    hb = json.dumps(header).encode()
    write(os.path.join(d, "model.safetensors"), None, data, raw_header=hb[:-5] + b"]]]]]")

    d = variant(src, out, "non_utf8")
    hb = json.dumps(header).encode().replace(victim.encode(), b"model.layers.0.self_attn.o_proj.\xff\xfeweight")
    write(os.path.join(d, "model.safetensors"), None, data, raw_header=hb)

    d = variant(src, out, "bad_config")
    shutil.copy(os.path.join(src, "model.safetensors"), d)
    with open(os.path.join(d, "config.json"), "w") as f:
        f.write('{"model_type": "glm4_moe_lite", "hidden_size": 128,,}')

    d = variant(src, out, "other_type")
    shutil.copy(os.path.join(src, "model.safetensors"), d)
    c2 = dict(cfg)
    c2["model_type"] = "qwen3_moe"
    json.dump(c2, open(os.path.join(d, "config.json"), "w"))


if __name__ == "__main__":
    main()
