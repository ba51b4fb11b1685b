#!/usr/bin/env python3
"""kimi_regex_exhaustive.py — differential test of zmlx's PCRE2 rewrite of Kimi's pre-tokenizer
pattern against tiktoken, over every Unicode code point (surrogates excepted) in 14 contexts
("!c", "ca", "c1", "Ac", "ac", "cc", " c", "c's", "c\\n", "你c", "c你", "ac'S", "c x", "1c").

Pieces are not visible from outside a tokenizer, so each batch gets its own vocabulary: the
256 bytes and every substring of every context (with the newline that separates contexts in a
line; no piece can reach past it into the next context).  Any piece either engine makes is
then one id (tiktoken and zmlx both look a whole piece up first), so the ids are the split.
Each batch is encoded by tiktoken (as tokenization_kimi.py calls it) and by
`zmlx tokenize DIR --jsonl`, and the ids must be identical.  Not run by ctest (needs tiktoken):

  /tmp/tkvenv/bin/python tests/kimi_regex_exhaustive.py build/zmlx [first_cp last_cp]
  /tmp/tkvenv/bin/python tests/kimi_regex_exhaustive.py build/zmlx --random N

--random N: N random strings over letters, digits, punctuation, whitespace, Han and its
neighbours, marks, case oddities, contractions and special tokens, encoded with the
kimi-tiny fixture (real merges) with and without special parsing: ids must be identical.
"""
import base64
import json
import os
import subprocess
import sys
import tempfile

import tiktoken

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kimi_fixture import PAT, kimi_encode, specials  # noqa: E402

CONTEXTS = ["!{}", "{}a", "{}1", "A{}", "a{}", "{}{}", " {}", "{}'s", "{}\n", "你{}", "{}你",
            "a{}'S", "{} x", "1{}"]
BATCH = 8192   # code points per vocabulary
LINE = 128     # code points per encoded string


def strings(first, last):
    cps = [c for c in range(first, last + 1) if not 0xD800 <= c <= 0xDFFF]
    for i in range(0, len(cps), LINE):
        yield "\n".join(ctx.format(chr(c), chr(c)) for c in cps[i:i + LINE] for ctx in CONTEXTS)


def vocab(texts):
    toks = {bytes([b]) for b in range(256)}
    for t in texts:
        for ctx in t.split("\n"):
            ctx += "\n"
            toks.update(ctx[i:j].encode() for i in range(len(ctx)) for j in range(i + 1, len(ctx) + 1))
    return {tok: r for r, tok in enumerate(toks)}


def run_batch(zmlx, texts, tmp):
    ranks = vocab(texts)
    with open(os.path.join(tmp, "tiktoken.model"), "w") as f:
        for tok, r in ranks.items():
            f.write("%s %d\n" % (base64.b64encode(tok).decode(), r))
    with open(os.path.join(tmp, "tokenizer_config.json"), "w") as f:
        f.write('{"added_tokens_decoder": {}}\n')
    with open(os.path.join(tmp, "in.jsonl"), "w") as f:
        for t in texts:
            f.write(json.dumps(t) + "\n")
    enc = tiktoken.Encoding(name="x", pat_str=PAT, mergeable_ranks=ranks,
                            special_tokens=specials(len(ranks)))
    out = subprocess.run([zmlx, "tokenize", tmp, "--jsonl", os.path.join(tmp, "in.jsonl")],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    bad = []
    for t, line in zip(texts, out):
        if json.loads(line) != kimi_encode(enc, t, True):
            bad.append(t)
    assert len(out) == len(texts), (len(out), len(texts))
    return bad


POOL = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'''     \n\n\r\t")
        + list(".,;:!?-_()[]{}<>|/\\\"#@$%^&*+=~`你好世界中文漢字東京都々〇〆、。「」・ーかなカナ한국어")
        + ["\u0301", "\u093f", "\u0e48", "ſ", "ǅ", "ʰ", "ᾈ", "Ɤ", "Ᲊ", "É", "é", "ß", "İ", "ﬁ",
           "Ⅻ", "½", "١", "\u3000", "\u00a0", "\u2028", "\u0085", "\u200b", "😀", "👍🏽",
           "\U0002B739", "\U00031350", "\U0002EBF0", "\U00020000", "К", "к", "Ω"]
        + ["<|im_end|>", "<|im_user|>", "[BOS]", "<think>", "</think>", "<|im_", "'s", "'S",
           "'ll", "'Ve", "'ſ", "'t"])


def random_check(zmlx, n):
    """n random strings from POOL through the kimi-tiny fixture (real merges), both modes."""
    import random
    fx = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "kimi-tiny")
    ranks = {}
    for line in open(os.path.join(fx, "tiktoken.model"), "rb"):
        tok, r = line.split()
        ranks[base64.b64decode(tok)] = int(r)
    enc = tiktoken.Encoding(name="kimi-tiny", pat_str=PAT, mergeable_ranks=ranks,
                            special_tokens=specials(len(ranks)))
    rng = random.Random(1)
    texts = ["".join(rng.choice(POOL) for _ in range(rng.randint(1, 60))) for _ in range(n)]
    mism = 0
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "in.jsonl")
        with open(path, "w") as f:
            f.write("".join(json.dumps(t) + "\n" for t in texts))
        for special, flag in ((True, []), (False, ["--no-special"])):
            out = subprocess.run([zmlx, "tokenize", fx, "--jsonl", path] + flag,
                                 capture_output=True, text=True, check=True).stdout.splitlines()
            for t, line in zip(texts, out):
                if json.loads(line) != kimi_encode(enc, t, special):
                    mism += 1
                    print("MISMATCH (special=%s): %r" % (special, t))
    print("%d random strings x 2 special modes, %d mismatches" % (n, mism))
    sys.exit(1 if mism else 0)


def main():
    zmlx = sys.argv[1]
    if len(sys.argv) > 3 and sys.argv[2] == "--random":
        random_check(zmlx, int(sys.argv[3]))
    first = int(sys.argv[2], 0) if len(sys.argv) > 2 else 0
    last = int(sys.argv[3], 0) if len(sys.argv) > 3 else 0x10FFFF
    total = mism = 0
    with tempfile.TemporaryDirectory() as tmp:
        for lo in range(first, last + 1, BATCH):
            texts = list(strings(lo, min(lo + BATCH - 1, last)))
            if not texts:
                continue
            bad = run_batch(zmlx, texts, tmp)
            total += len(texts)
            mism += len(bad)
            for t in bad[:3]:
                print("MISMATCH in U+%04X..: %r" % (lo, t[:200]))
    n_cps = sum(1 for c in range(first, last + 1) if not 0xD800 <= c <= 0xDFFF)
    print("%d strings (%d code points x %d contexts), %d mismatches"
          % (total, n_cps, len(CONTEXTS), mism))
    sys.exit(1 if mism else 0)


if __name__ == "__main__":
    main()
