#!/usr/bin/env python3
"""kimi_fixture.py — builds the synthetic Kimi-K2.5 tokenizer fixture (tests/fixtures/kimi-tiny/)
and its golden ids with the reference: tiktoken (Rust fancy-regex, Kimi's pat_str) used the way
tokenization_kimi.py uses it.  Not run by ctest: the committed golden.json is what
tests/test_tiktoken.c reads, so the C tests need no Python.

  python3 -m venv /tmp/tkvenv && /tmp/tkvenv/bin/pip install tiktoken regex
  /tmp/tkvenv/bin/python tests/kimi_fixture.py tests/fixtures/kimi-tiny

The vocabulary: the 256 bytes (ranks a seeded permutation of 0..255), then byte-level BPE merges
trained on the corpus below (rank = merge order), then a few tokens no merge sequence reaches
(only tiktoken's whole-piece lookup produces them).  Specials: 256 ids after the ranks, named
as in Kimi-K2.5's tokenizer_config.json, the unnamed ones "<|reserved_token_N|>" as
tokenization_kimi.py names them.
"""
import base64
import collections
import json
import os
import random
import sys

import regex
import tiktoken

PAT = "|".join([
    r"""[\p{Han}]+""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])

# offset from the first special id -> content (Kimi-K2.5 tokenizer_config.json, MODELS.md 5)
NAMED = {0: "[BOS]", 1: "[EOS]", 2: "<|im_end|>", 3: "<|im_user|>", 4: "<|im_assistant|>",
         6: "<|start_header_id|>", 7: "<|end_header_id|>", 9: "[EOT]", 10: "<|im_system|>",
         11: "<|tool_calls_section_begin|>", 12: "<|tool_calls_section_end|>",
         13: "<|tool_call_begin|>", 14: "<|tool_call_argument_begin|>", 15: "<|tool_call_end|>",
         17: "<|im_middle|>", 18: "<|media_begin|>", 19: "<|media_content|>", 20: "<|media_end|>",
         21: "<|media_pad|>", 22: "<think>", 23: "</think>", 254: "[UNK]", 255: "[PAD]"}

CORPUS = """
The quick brown fox jumps over the lazy dog. It's a test: don't panic, we'll see what they've done.
I'm sure you'd like it; they're here. THE END. Hello, World! HelloWorld HTTPServer iPhone McDonald.
Tokenizers split text into pieces, then merge bytes into tokens by rank. Ranks are learned from text.
def encode(text, allowed_special="all"):
    return [rank for piece in split(text) for rank in merge(piece)]
int main(void) { printf("%d\\n", 42); return 0; }  // comment
for (size_t i = 0; i < n; i++) sum += x[i] * y[i];
Numbers: 0 1 2 3 12 123 1234 2024-06-30 3.14159 1,000,000 +49 (0)30 1234567.
你好，世界！我们今天学习中文分词。中文和English混合在一起的句子。人工智能正在改变世界。
月之暗面的Kimi模型使用tiktoken分词器。这是一个测试句子，包含标点符号：逗号、句号。
日本語のテキストも少し入れます。ひらがなとカタカナ、漢字が混ざっています。東京は大きい都市です。
한국어 문장도 조금 있습니다. 안녕하세요, 반갑습니다.
Привет, мир! Это тест токенизатора. Москва — столица России.
Ελληνικά: Γειά σου Κόσμε. Οι λέξεις είναι εδώ.
Deutsch: Grüße aus München, schöne Straße, Äpfel und Öl. Français: déjà vu, garçon, élève, où.
Español: ¿Qué tal? ¡Muy bien! Niño, año, corazón. Português: ação, não, pão.
العربية: مرحبا بالعالم. हिन्दी: नमस्ते दुनिया। ไทย: สวัสดีชาวโลก
Emoji: 😀 😃 👍🏽 ❤️ 🇫🇷 👨‍👩‍👧 ✨🚀 and symbols © ® ™ € £ ¥ ° ± × ÷ → ← ∑ ∫ √ ∞.
    indented line with spaces
\tTabbed line\ttab
Line one
Line two

Paragraph after a blank line.   Trailing spaces   
<think>Let me think about this step by step.</think>The answer is 4.
https://www.example.com/path/to/page?query=value&x=1#anchor  user@example.com  #hashtag @mention
"""


def split(text):
    return regex.findall(PAT, text, flags=regex.V1)


def train(corpus, n_merges, seed):
    rng = random.Random(seed)
    order = list(range(256))
    rng.shuffle(order)
    ranks = {bytes([b]): order[b] for b in range(256)}
    words = collections.Counter(split(corpus))
    seqs = {w: [bytes([c]) for c in w.encode()] for w in words}
    for _ in range(n_merges):
        pairs = collections.Counter()
        for w, seq in seqs.items():
            for a, b in zip(seq, seq[1:]):
                pairs[a, b] += words[w]
        pairs = {p: c for p, c in pairs.items() if p[0] + p[1] not in ranks}
        if not pairs:
            break
        best = max(pairs, key=lambda p: (pairs[p], p))
        new = best[0] + best[1]
        ranks[new] = len(ranks)
        for w, seq in seqs.items():
            out, i = [], 0
            while i < len(seq):
                if i + 1 < len(seq) and seq[i] == best[0] and seq[i + 1] == best[1]:
                    out.append(new)
                    i += 2
                else:
                    out.append(seq[i])
                    i += 1
            seqs[w] = out
    # whole pieces no merge sequence reaches: only the direct lookup finds them
    for extra in [" zmlx", "abracadabra", " Kimi", "<think>", "東京都", "\u00e9cole", "  \n"]:
        if extra.encode() not in ranks:
            ranks[extra.encode()] = len(ranks)
    return ranks


def specials(n_base):
    return {NAMED.get(k, "<|reserved_token_%d|>" % (n_base + k)): n_base + k for k in range(256)}


def kimi_chunks(text):
    """tokenization_kimi.py's input splitting: 400k-char windows, then no run of more than
    25000 whitespace or non-whitespace chars (str.isspace)."""
    for w in range(0, len(text), 400_000):
        s = text[w:w + 400_000]
        run, space, start = 0, s[:1].isspace(), 0
        for i, ch in enumerate(s):
            now = ch.isspace()
            if now != space:
                run, space = 1, now
            else:
                run += 1
                if run > 25_000:
                    yield s[start:i]
                    start, run = i, 1
        yield s[start:]


def kimi_encode(enc, text, special):
    ids = []
    for sub in kimi_chunks(text):
        if special:
            ids += enc.encode(sub, allowed_special="all")
        else:
            ids += enc.encode(sub, disallowed_special=())
    return ids


def pieces(text):
    """The split tiktoken makes: every substring of text is a token, so each piece is found
    whole by tiktoken's direct lookup and comes back as one id."""
    b = text.encode()
    ranks = {bytes([i]): i for i in range(256)}
    for i in range(len(b)):
        for j in range(i + 2, len(b) + 1):
            ranks.setdefault(b[i:j], len(ranks))
    enc = tiktoken.Encoding(name="pieces", pat_str=PAT, mergeable_ranks=ranks, special_tokens={})
    dec = {v: k for k, v in ranks.items()}
    return [dec[t].decode() for t in enc.encode_ordinary(text)]


# strings aimed at the pattern: Han boundaries, case mixes, contractions, marks, digits, spaces
SPLIT_CASES = [
    "你好世界", "你好，世界！", "中文English混合", "English中文", "a你b", "你a", "A你", "你's", "你'S",
    "你好abc", "abc你好", "ABC你好DEF", "日本語のテキスト", "漢字かな交じり文", "カタカナ漢字", "々〇",
    "〆切", "〡〢〣", "⺀⼀", "豈更", "㐀㐁", "𠀀𪚥", "𫜹x", "𮯰x", "𱍐x", "x𫜹y", "한국어", "한국어中文",
    "ｈｅｌｌｏ", "Ｈｅｌｌｏ世界", "、", "a、b", "你好。", "「引用」", "・中黒", "ー長音", "㈱", "㍿",
    "don't", "DON'T", "Don'T", "I'M", "we'Ve", "you'LL", "she'd", "it's", "'s", "x's", "x'S", "x'ſ",
    "O'Neil", "rock'n'roll", "can't've", "ÉCOLE's", "naïve's", "'twas", "l'été", "c'est", "x'", "x''s",
    "HelloWorld", "helloWorld", "HTTPServer", "iPhone", "McDonald", "ABCdef", "abcDEF", "AbCdEf",
    "ÉCOLE école", "ǅemal", "ǈ", "ʰello", "Xʰ", "ΑΒΓαβγ", "ПриВЕТ", "ǲa", "ᾈᾀ",
    "e\u0301", "\u0301abc", "A\u0301B", "a\u20dd", "ก่า", "สวัสดี", "नमस्ते", "عربي", "עברית",
    "𝔘𝔫𝔦", "𝐀𝐁𝐂𝐝", "ꭰꭱ", "Ᲊᲊ", "\u1C89abc", "\uA7CBabc", "\U00016D43\U00016D44", "\U0001E4D0",
    "12345", "١٢٣٤", "Ⅻ", "ⅫⅫ", "½¼", "1,234.56", "①②③", "x1", "1x", "〇1", "Ⅻ1", "\U00016D70\U00016D71",
    "  a", "a  ", "a \n\n b", "\t\tx", "\r\n", "x\u3000y", "\u00a0x", " \u2028 ", "x\n", "\n\n\n",
    "   ", " ", "\n", "a\r\nb", " \n ", "\x0b\x0c", "\u0085x", "\u180ex", "a\u200bb",
    "...!!!", "(a)", " --", "#hash", "@user", "https://example.com/a?b=c", "😀👍🏽", "🇫🇷", "👨‍👩‍👧",
    " !x", "!x", " !!\n\n", "a!\n", "\x00abc", "\x7f", "\ue000", "\U0010FFFF", "\u0378", "\U000E0001",
    "<think>", "<|im_end|>", "[BOS]",
]

TEXT_CASES = [
    "", "Hello, world!", "The quick brown fox jumps over the lazy dog.",
    "It's a test: don't panic, we'll see.", "Tokenizers split text into pieces.",
    "def f(x):\n    return x ** 2\n", "int main(void) { return 0; }",
    "你好，世界！我们今天学习中文分词。", "月之暗面的Kimi模型", "東京都に住んでいます。",
    "Привет, мир!", "Grüße aus München", "déjà vu, élève", "😀 ✨🚀 ❤️", "abracadabra zmlx Kimi",
    "<|im_system|>system<|im_middle|>You are Kimi, an AI assistant created by Moonshot AI.<|im_end|>"
    "<|im_user|>user<|im_middle|>What is 2+2?<|im_end|><|im_assistant|>assistant<|im_middle|><think>",
    "<think>Let me think.</think>The answer is 4.<|im_end|>", "[BOS]text[EOS]", "a<think>b</think>c",
    "<|im_end", "<|im_end|><|im_end|>", "<|reserved_token_%d|>", "<|reserved_token_1|>",
    "<|tool_call_begin|>functions.get:0<|tool_call_argument_begin|>{\"x\": 1}<|tool_call_end|>",
    "   indented\n\ttab\r\nwindows\n\n\nblank", "1234567890 3.14159 1,000,000", "x" * 300,
    " " * 40 + "x", "\n" * 10, "a " * 100,
]

# inputs past tokenization_kimi.py's 25000-char run limit: (unit, times, suffix); the golden
# keeps their length, the FNV-1a hash of the ids and the ids around the cut
LONG_CASES = [("the", 8_400, ""), (" ", 25_003, "x"), ("你好", 13_000, "。"), ("ab c", 7_000, "")]


def fnv64(ids):
    h = 0xcbf29ce484222325
    for i in ids:
        for byte in int(i).to_bytes(4, "little", signed=True):
            h = ((h ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/kimi-tiny"
    os.makedirs(out, exist_ok=True)
    ranks = train(CORPUS, 1500, seed=7)
    n_base = len(ranks)
    spec = specials(n_base)
    enc = tiktoken.Encoding(name="kimi-tiny", pat_str=PAT, mergeable_ranks=ranks,
                            special_tokens=spec)
    with open(os.path.join(out, "tiktoken.model"), "w") as f:
        for tok, r in sorted(ranks.items(), key=lambda kv: kv[1]):
            f.write("%s %d\n" % (base64.b64encode(tok).decode(), r))
    decoder = {str(n_base + k): {"content": c, "lstrip": False, "normalized": False,
                                 "rstrip": False, "single_word": False, "special": True}
               for k, c in sorted(NAMED.items())}
    config = {"added_tokens_decoder": decoder, "bos_token": "[BOS]", "eos_token": "[EOS]",
              "pad_token": "[PAD]", "unk_token": "[UNK]", "tokenizer_class": "TikTokenTokenizer",
              "model_max_length": 1048576}
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=2, ensure_ascii=False)
        f.write("\n")
    texts = [t % (n_base + 5) if "%d" in t else t for t in TEXT_CASES]
    texts += SPLIT_CASES + CORPUS.split("\n")
    cases = []
    for t in texts:
        ids = kimi_encode(enc, t, True)
        plain = kimi_encode(enc, t, False)
        assert enc.decode(ids) == t and enc.decode(plain) == t
        cases.append({"text": t, "ids": ids, "ids_nospecial": plain})
    for unit, times, suffix in LONG_CASES:
        t = unit * times + suffix
        ids = kimi_encode(enc, t, True)
        whole = enc.encode(t, allowed_special="all")
        assert enc.decode(ids) == t
        cases.append({"repeat": unit, "times": times, "suffix": suffix, "n": len(ids),
                      "fnv64": fnv64(ids), "head": ids[:40], "tail": ids[-40:],
                      "differs_unchunked": ids != whole})
    splits = [{"text": t, "pieces": pieces(t)} for t in SPLIT_CASES]
    golden = {"source": "tiktoken %s, pat_str of tokenization_kimi.py, specials as tokenization_kimi.py"
                        % tiktoken.__version__ if hasattr(tiktoken, "__version__") else "tiktoken",
              "n_base": n_base, "n_vocab": enc.n_vocab, "cases": cases, "splits": splits}
    with open(os.path.join(out, "golden.json"), "w") as f:
        json.dump(golden, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print("n_base %d, %d cases, %d splits" % (n_base, len(cases), len(splits)))


if __name__ == "__main__":
    main()
