/*
 * kimi_regex.c — Kimi-K2.5's pre-tokenizer pattern (pat_str of tokenization_kimi.py, run by
 * tiktoken's Rust fancy-regex) rewritten for PCRE2 10.42.  Not for: tokenizer.json regexes
 * (regex.c translates those from Oniguruma syntax).
 *
 * The pattern, in Rust syntax (A&&B inside a class is the intersection of A and B):
 *   [\p{Han}]+
 *   |
 * [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+CONTR?
 *   |
 * [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*CONTR?
 *   | \p{N}{1,3} | ' '?[^\s\p{L}\p{N}]+[\r\n]* | \s*[\r\n]+ | \s+(?!\S) | \s+
 *   with CONTR = (?i:'s|'t|'re|'ve|'m|'ll|'d)
 *
 * What changes for PCRE2 (each checked against tiktoken, see tests/test_tiktoken.c and
 * docs/tokenizer.md):
 *   [X&&[^\p{Han}]]  PCRE2 10.42 has no class intersection  -> (?:(?!HAN)[X]): a char not
 *                    Han, then a char of X — the same set, one char wide, no backtracking
 *                    difference (a lookahead consumes nothing)
 *   \p{Han}          PCRE2 >= 10.40 reads an unqualified script as Script_Extensions
 *                    (U+3001 "、" would be Han); Rust reads Script -> \p{sc:Han}
 *   Unicode 14 vs 16 PCRE2's tables are Unicode 14, tiktoken's regex crate Unicode 16:
 *                    general categories get unicode.c's added ranges (between 14 and 16
 *                    nothing left L, M or N; U+1171E moved Mn -> Mc, inside M), and Han
 *                    gets the ideographs added since: U+2B739 (15.0), U+31350-U+323AF
 *                    (Ext H, 15.0), U+2EBF0-U+2EE5D (Ext I, 15.1)
 *   \s \S            Rust: White_Space -> \p{White_Space} (PCRE2's \s adds U+180E)
 *   (?i:'s ...)      both fold s/S/U+017F ſ the same way (simple case folding)
 * Leftmost-first alternation and greedy backtracking are the same in both engines.
 */
#include "tokenizer/tok_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Han (Script) code points assigned after Unicode 14, the version of PCRE2 10.42's tables. */
static const char tok_han_added[] = "\\x{2B739}\\x{2EBF0}-\\x{2EE5D}\\x{31350}-\\x{323AF}";

typedef struct tok_pbuf {
    char *p;
    size_t n, cap;
    int oom;
} tok_pbuf;

static void pb_put(tok_pbuf *b, const char *s) {
    size_t n = strlen(s);
    if (b->oom || tok_grow((void **)&b->p, &b->cap, b->n + n + 1, 1)) {
        b->oom = 1;
        return;
    }
    memcpy(b->p + b->n, s, n + 1);
    b->n += n;
}

/* Class items for general categories `cats` ("Lu,Lt,..."), each with its Unicode 16
 * additions: "\p{Lu}\x{..}-\x{..}\p{Lt}...". */
static void pb_cats(tok_pbuf *b, const char *cats) {
    char name[4], ranges[TOK_UNI_MAX];
    for (const char *c = cats; *c;) {
        size_t k = strcspn(c, ",");
        snprintf(name, sizeof name, "%.*s", (int)k, c);
        pb_put(b, "\\p{");
        pb_put(b, name);
        pb_put(b, "}");
        tok_uni_ranges(name, 1, ranges, sizeof ranges);
        pb_put(b, ranges);
        c += k + (c[k] == ',');
    }
}

/* (?:(?!HAN)[cats]): one char of `cats` that is not Han */
static void pb_not_han(tok_pbuf *b, const char *cats) {
    pb_put(b, "(?:(?![\\p{sc:Han}");
    pb_put(b, tok_han_added);
    pb_put(b, "])[");
    pb_cats(b, cats);
    pb_put(b, "])");
}

/* The two letter alternatives: C? UPPER* LOWER+ CONTR?  and  C? UPPER+ LOWER* CONTR? */
static void pb_letters(tok_pbuf *b, const char *upper_q, const char *lower_q) {
    pb_put(b, "[^\\r\\n");
    pb_cats(b, "L,N");
    pb_put(b, "]?");
    pb_not_han(b, "Lu,Lt,Lm,Lo,M");
    pb_put(b, upper_q);
    pb_not_han(b, "Ll,Lm,Lo,M");
    pb_put(b, lower_q);
    pb_put(b, "(?i:'s|'t|'re|'ve|'m|'ll|'d)?");
}

zmlx_status tok_kimi_regex(pcre2_code **out, char **text, zerr *e) {
    tok_pbuf b = {0};
    *out = NULL;
    if (text) *text = NULL;
    pb_put(&b, "[\\p{sc:Han}");
    pb_put(&b, tok_han_added);
    pb_put(&b, "]+|");
    pb_letters(&b, "*", "+");
    pb_put(&b, "|");
    pb_letters(&b, "+", "*");
    pb_put(&b, "|[");
    pb_cats(&b, "N");
    pb_put(&b, "]{1,3}| ?[^\\p{White_Space}");
    pb_cats(&b, "L,N");
    pb_put(&b, "]+[\\r\\n]*|\\p{White_Space}*[\\r\\n]+|\\p{White_Space}+(?!\\P{White_Space})"
               "|\\p{White_Space}+");
    if (b.oom) {
        free(b.p);
        return zerr_set(e, ZMLX_ERR_NOMEM, "out of memory");
    }
    zmlx_status st =
        tok_regex_compile(b.p, b.n, TOK_RE_PCRE2, "the Kimi pre-tokenizer pattern", out, e);
    if (!st && text)
        *text = b.p;
    else
        free(b.p);
    return st;
}
